"""Responses wire vocabulary: names and the tables that map it to the IR."""

from __future__ import annotations

from polyrelay import ir
from polyrelay.dialects import openai_errors

NAME = ir.OPENAI_RESPONSES


# Wire role → IR role.  Unknown roles become "user" and keep their name in the
# item extras (same-dialect only).
ROLE_FROM_WIRE = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


# IR role → wire role; a mid-conversation system message is a developer message.
ROLE_TO_WIRE = {"user": "user", "assistant": "assistant", "system": "developer"}


# (status, incomplete_details.reason / error.code) → IR stop reason.
STOP_FOR_INCOMPLETE = {"max_output_tokens": "max_tokens", "content_filter": "refusal"}


STOP_FOR_FAILED = {"context_length_exceeded": "context_window_exceeded"}


# IR stop reason → (response status, incomplete reason or failure code).
STATUS_FOR_STOP = {
    "end_turn": ("completed", None),
    "stop_sequence": ("completed", None),
    "tool_use": ("completed", None),
    "pause_turn": ("completed", None),
    "max_tokens": ("incomplete", "max_output_tokens"),
    "refusal": ("incomplete", "content_filter"),
    "context_window_exceeded": ("failed", "context_length_exceeded"),
}


# IR Usage attribute ← wire key (and sub key inside a *_details object).
USAGE_FIELDS = (
    ("input_tokens", "input_tokens", None),
    ("cached_tokens", "input_tokens_details", "cached_tokens"),
    ("output_tokens", "output_tokens", None),
    ("reasoning_tokens", "output_tokens_details", "reasoning_tokens"),
)


# Canonical error kind → (error.type, default error.code).  Unlike chat, an
# overload is "server_is_overloaded": the code the Responses API itself sends.
ERROR_TYPES = {**openai_errors.ERROR_TYPES, "overloaded": ("server_error", "server_is_overloaded")}


# error.type values that are really codes (OpenAI quota, Codex usage limits).
TYPES_THAT_ARE_CODES = frozenset({"usage_limit_reached", "usage_not_included", "insufficient_quota"})


# Responses effort names; other IR levels are mapped, "auto" means "omit".
EFFORT_TO_WIRE = {"max": "xhigh", "auto": None}


REQUEST_FIELDS = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "reasoning",
    "text", "max_output_tokens", "temperature", "top_p", "metadata", "stream",
})


RESPONSE_FIELDS = frozenset({
    "id", "model", "output", "status", "incomplete_details", "usage", "object", "output_text",
})


# A redacted Anthropic thinking block has no Responses form: it travels to a
# Responses client as a reasoning item whose wrapped encrypted_content starts so.
REDACTED_MARK = "redacted:"
