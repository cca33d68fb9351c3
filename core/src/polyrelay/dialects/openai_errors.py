"""The OpenAI error shape, shared by the Chat Completions and Responses codecs.

Both APIs answer errors as ``{"error": {"message", "type", "param", "code"}}``
and OpenAI-compatible servers vary it the same ways for both, so reading and
writing that shape lives here.  What only one codec knows stays there: the
Responses codec's Codex bodies (``detail``, ``usage_limit_reached`` with
``resets_at``) and its back-off sentence; the chat codec's Qwen quota rule
and arrays around the error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from polyrelay import ir

#: Canonical error kind → (error.type, default error.code): CLIProxyAPI's gateway shapes
#: (https://platform.openai.com/docs/guides/error-codes).  Kinds without a row are picked by
#: status, see error_type_and_code.
ERROR_TYPES: Mapping[str, tuple[str, str | None]] = {
    "invalid_request": ("invalid_request_error", None),
    "authentication": ("authentication_error", "invalid_api_key"),
    "billing": ("invalid_request_error", None),
    "permission": ("permission_error", "insufficient_quota"),
    "not_found": ("invalid_request_error", "model_not_found"),
    "request_too_large": ("invalid_request_error", None),
    "rate_limit": ("rate_limit_error", "rate_limit_exceeded"),
    "api_error": ("server_error", "internal_server_error"),
    "overloaded": ("server_error", "internal_server_error"),
    "timeout": ("server_error", "internal_server_error"),
}

#: error.code / error.type → HTTP status, for errors that arrive inside a stream
#: with no status line of their own (OpenAI, Qwen/DashScope and Codex values).
STATUS_FOR_CODE: Mapping[str, int] = {
    "invalid_request_error": 400,
    "invalid_parameter_error": 400,
    "invalid_prompt": 400,
    "context_length_exceeded": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "permission_error": 403,
    "usage_not_included": 403,
    "not_found_error": 404,
    "model_not_found": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "quota_exceeded": 429,
    "usage_limit_reached": 429,
    "tokens": 429,
    "requests": 429,
    "server_error": 500,
    "internal_server_error": 500,
    "overloaded_error": 503,
    "server_is_overloaded": 503,
    "slow_down": 503,
}


# -- writing -------------------------------------------------------------------


def error_type_and_code(error: ir.ErrorInfo, types: Mapping[str, tuple[str, str | None]] = ERROR_TYPES,
                        ) -> tuple[str, str | None]:
    """(error.type, error.code) for ``error``; its own code wins over the kind's default.

    ``types`` lets a codec override rows its clients read differently.  A kind
    with no row (not one of the canonical ones) is a server error from 500 up.
    """
    shape = types.get(error.kind)
    if shape is None:
        shape = ("server_error", None) if error.status >= 500 else ("invalid_request_error", None)
    return shape[0], error.code or shape[1]


def error_object(error: ir.ErrorInfo, types: Mapping[str, tuple[str, str | None]] = ERROR_TYPES, *,
                 with_param: bool = True) -> dict[str, Any]:
    """The inner ``{"message", "type", "param", "code"}`` object (``param`` is always null)."""
    type_, code = error_type_and_code(error, types)
    obj: dict[str, Any] = {"message": error.message, "type": type_}
    if with_param:
        obj["param"] = None
    obj["code"] = code
    return obj


# -- reading -------------------------------------------------------------------


def _scalar(value: Any) -> str | None:
    """A field as text: a non-empty string, or an integer (vLLM's numeric codes) spelled out."""
    if isinstance(value, str) and value:
        return value
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else None


def error_source(body: dict[str, Any]) -> dict[str, Any]:
    """The object holding the error fields: ``body["error"]``, or the body itself.

    DashScope's native API, vLLM (``{"object": "error", ...}``) and Codex
    stream events put message/type/code at the top level.
    """
    err = body.get("error")
    return err if isinstance(err, dict) else body


def error_fields(body: Any) -> tuple[str | None, str | None, str | None]:
    """(message, code, type) of an OpenAI-style error body; ``None`` for each one missing.

    Reads ``{"error": {...}}``, ``{"error": "text", "code": ...}``, the fields
    at the top level, and FastAPI's ``{"detail": "text"}`` (vLLM) as the message.
    Anything that is not a non-empty string or an integer counts as missing,
    so junk never reaches a table lookup.
    """
    if not isinstance(body, dict):
        return None, None, None
    err = body.get("error")
    if isinstance(err, str):
        return err or None, _scalar(body.get("code")), _scalar(body.get("type"))
    src = error_source(body)
    message = _scalar(src.get("message")) or _scalar(body.get("message")) or _scalar(body.get("detail"))
    return message, _scalar(src.get("code")), _scalar(src.get("type"))


def status_for_code(code: str | None, type_: str | None, default: int) -> int:
    """The HTTP status an in-stream error stands for: by its code, else its type, else ``default``."""
    for key in (code, type_):
        if key is not None and key in STATUS_FOR_CODE:
            return STATUS_FOR_CODE[key]
    return default
