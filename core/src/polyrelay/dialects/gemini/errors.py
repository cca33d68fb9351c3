"""google.rpc.Status error bodies ↔ canonical errors."""

from __future__ import annotations

from typing import Any

from polyrelay import ir
from polyrelay.dialects.errorbody import no_message, read_error_body
from polyrelay.dialects.fields import str_or_none
from polyrelay.dialects.gemini.protojson import field_of
from polyrelay.dialects.gemini.wire import HTTP_BY_STATUS, STATUS_BY_KIND
from polyrelay.dialects.hints import parse_duration, retry_hint_in_text


def _format_duration(seconds: float) -> str:
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds:.3f}".rstrip("0") + "s"


def _retry_after(details: list[Any], message: str) -> float | None:
    """Google's retry hints, in CLIProxyAPI's order: RetryInfo, quotaResetDelay, the message text."""
    infos = [d for d in details if isinstance(d, dict)]
    for detail in infos:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = parse_duration(field_of(detail, "retryDelay"))
            if delay is not None:
                return delay
    for detail in infos:
        metadata = detail.get("metadata")
        if str(detail.get("@type", "")).endswith("google.rpc.ErrorInfo") and isinstance(metadata, dict):
            delay = parse_duration(metadata.get("quotaResetDelay"))
            if delay is not None:
                return delay
    return retry_hint_in_text(message)


def error_from_object(error: Any, status: int) -> ir.ErrorInfo:
    """A google.rpc.Status object → canonical error (``status`` 0: take it from the body)."""
    if not isinstance(error, dict):
        message = error if isinstance(error, str) and error else "upstream error"
        return ir.ErrorInfo(status=status if status >= 400 else 500, message=message)
    code = error.get("code")
    name = str_or_none(error.get("status"))
    if status < 400:  # in-stream errors arrive on a 200 response
        status = code if isinstance(code, int) and code >= 400 else HTTP_BY_STATUS.get(name or "", 500)
    message = str_or_none(error.get("message")) or ""
    details = error.get("details")
    details = details if isinstance(details, list) else []
    reason = next((d.get("reason") for d in details if isinstance(d, dict)
                   and str(d.get("@type", "")).endswith("google.rpc.ErrorInfo") and isinstance(d.get("reason"), str)),
                  None)
    return ir.ErrorInfo(status=status, message=message or name or no_message(status),
                        code=reason or name, retry_after=_retry_after(details, message))


def decode_error_body(status: int, body: bytes) -> ir.ErrorInfo:
    """Upstream error body (google.rpc.Status, maybe in a one-element array) → canonical error."""
    read = read_error_body(status, body)
    if isinstance(read.payload, dict) and isinstance(read.payload.get("error"), dict):
        return error_from_object(read.payload["error"], status)
    return read.plain()


def error_body_for(error: ir.ErrorInfo) -> dict[str, Any]:
    """Canonical error → ``{"error": {code, message, status, details?}}``."""
    status = STATUS_BY_KIND.get(error.kind) or ("INTERNAL" if error.status >= 500 else "INVALID_ARGUMENT")
    body: dict[str, Any] = {"code": error.status, "message": error.message, "status": status}
    details = []
    if error.code and error.code != status:
        details.append({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": error.code,
                        "domain": "polyrelay"})
    if error.retry_after is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": _format_duration(error.retry_after)})
    if details:
        body["details"] = details
    return {"error": body}
