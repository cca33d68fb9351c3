"""Anthropic error bodies ↔ canonical errors."""

from __future__ import annotations

from typing import Any

from polyrelay import ir
from polyrelay.dialects.anthropic.wire import ERROR_KIND_FROM_TYPE, ERROR_STATUS_FROM_TYPE, ERROR_TYPE_FROM_KIND
from polyrelay.dialects.fields import str_or_none
from polyrelay.dialects.hints import retry_hint_in_text


def retry_hint(*sources: Any) -> float | None:
    """Seconds to wait, from a numeric ``retry_after`` field or "try again in 2s" wording."""
    for source in sources:
        if isinstance(source, dict):
            value = source.get("retry_after")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                return float(value)
        elif isinstance(source, str) and (seconds := retry_hint_in_text(source)) is not None:
            return seconds
    return None


def error_info(payload: Any, status: int | None, fallback: str) -> ir.ErrorInfo:
    """An Anthropic error object (``{"type":"error","error":{type,message}}``) → canonical error."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, str):
        error = {"message": error}
    if not isinstance(error, dict):
        error = payload if isinstance(payload, dict) else {}
    error_type = str_or_none(error.get("type")) or ""
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = fallback
    if status is None:  # in-stream errors have no HTTP status: the type says it
        status = ERROR_STATUS_FROM_TYPE.get(error_type, 500)
    kind = ERROR_KIND_FROM_TYPE.get(error_type) or ir.error_kind_for_status(status)
    code = error.get("code")
    return ir.ErrorInfo(status=status, message=message, kind=kind, code=code if isinstance(code, str) else None,
                        retry_after=retry_hint(error, payload, message))


def error_object(error: ir.ErrorInfo) -> dict[str, Any]:
    error_type = ERROR_TYPE_FROM_KIND.get(error.kind) or ERROR_TYPE_FROM_KIND[ir.error_kind_for_status(error.status)]
    return {"type": error_type, "message": error.message}
