"""Responses error bodies and error events (OpenAI, Codex) ↔ canonical errors."""

from __future__ import annotations

import time
from typing import Any

from polyrelay import ir
from polyrelay.dialects import openai_errors
from polyrelay.dialects.errorbody import read_error_body
from polyrelay.dialects.hints import retry_hint_in_text
from polyrelay.dialects.openai_responses.wire import TYPES_THAT_ARE_CODES
from polyrelay.jsonutil import dumps


def _error_info(status: int, body: dict[str, Any], fallback: str) -> ir.ErrorInfo:
    """An OpenAI/Codex error body → ErrorInfo (message, code, retry hint)."""
    message, code, etype = openai_errors.error_fields(body)
    message = message or fallback
    if code is None and etype in TYPES_THAT_ARE_CODES:
        code = etype
    # Codex usage limits say when they lift; that beats any wording in the message.
    err = openai_errors.error_source(body)
    retry = None
    resets_in = err.get("resets_in_seconds")
    resets_at = err.get("resets_at")
    if isinstance(resets_in, (int, float)) and not isinstance(resets_in, bool):
        retry = max(float(resets_in), 0.0)
    elif isinstance(resets_at, (int, float)) and not isinstance(resets_at, bool):
        retry = max(float(resets_at) - time.time(), 0.0)
    if retry is None:
        retry = retry_hint_in_text(message)
    return ir.ErrorInfo(status=status, message=message, code=code, retry_after=retry)


def decode_error_body(status: int, body: bytes) -> ir.ErrorInfo:
    """An upstream error body (OpenAI, Codex, or garbage) → ErrorInfo."""
    read = read_error_body(status, body)
    data = read.payload
    if not isinstance(data, dict):
        return read.plain()
    detail = data.get("detail")  # the Codex backend's 400s: {"detail": "..."}
    if detail is not None and "error" not in data:
        message = detail if isinstance(detail, str) else dumps(detail).decode()
        return ir.ErrorInfo(status=status, message=message, retry_after=retry_hint_in_text(message))
    return _error_info(status, data, read.fallback)


def stream_error(data: dict[str, Any], fallback_status: int) -> ir.ErrorInfo:
    """An ``error`` event or a failed response's ``error`` → ErrorInfo."""
    status = data.get("status")
    if not isinstance(status, int) or isinstance(status, bool):  # in-stream: only the code says it
        _, code, etype = openai_errors.error_fields(data)
        status = openai_errors.status_for_code(code, etype, fallback_status)
    return _error_info(status, data, "upstream stream failed")
