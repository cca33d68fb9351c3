"""Chat Completions error bodies (OpenAI, DashScope, vLLM shapes) ↔ canonical errors."""

from __future__ import annotations

from typing import Any

from polyrelay import ir
from polyrelay.dialects import openai_errors
from polyrelay.dialects.fields import is_int
from polyrelay.dialects.hints import retry_hint_in_text
from polyrelay.dialects.openai_chat.wire import QUOTA_CODES


def error_fields(body: Any) -> tuple[str | None, str | None, str | None]:
    """(message, code, type) from any of the error shapes chat-like servers send."""
    if isinstance(body, list) and body:  # some proxies wrap the error object in an array
        body = body[0]
    return openai_errors.error_fields(body)


def error_info(status: int, message: str | None, code: str | None, type_: str | None) -> ir.ErrorInfo:
    kind = ir.error_kind_for_status(status)
    # Qwen's exhausted quota (403 or 429) is a rate limit; CLIProxyAPI's own 403 body also says
    # insufficient_quota but with type permission_error, and stays a permission fault.
    if type_ in QUOTA_CODES or (code in QUOTA_CODES and type_ is None):
        kind = "rate_limit"
    text = message or f"upstream returned HTTP {status}"
    return ir.ErrorInfo(status=status, message=text, kind=kind, code=code,
                        retry_after=retry_hint_in_text(text))


def stream_error(payload: dict[str, Any]) -> ir.ErrorInfo:
    """An in-stream ``{"error":{...}}``: no HTTP status, so infer one from its code/type."""
    message, code, type_ = error_fields(payload)
    err = payload.get("error")
    numeric = err.get("code") if isinstance(err, dict) else None
    # vLLM puts the HTTP status in error.code; otherwise the code/type names one.
    if isinstance(numeric, int) and is_int(numeric) and 400 <= numeric <= 599:
        status = numeric
    else:
        status = openai_errors.status_for_code(code, type_, 500)
    return error_info(status, message or "upstream stream error", code, type_)
