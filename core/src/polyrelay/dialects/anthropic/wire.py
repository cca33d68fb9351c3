"""Anthropic Messages wire vocabulary: names, limits and the tables that map it to the IR."""

from __future__ import annotations

import re

from polyrelay import ir

NAME = ir.ANTHROPIC


#: The API version polyrelay speaks (https://docs.anthropic.com/en/api/versioning).
API_VERSION = "2023-06-01"


BLOCKS_KEY = "anthropic_blocks"  # Message/ToolResult extras: [[position, raw block], ...]


# Anthropic requires max_tokens; CLIProxyAPI uses the same default for translated requests.
DEFAULT_MAX_TOKENS = 32000


# The smallest thinking budget Anthropic accepts.
MIN_THINKING_BUDGET = 1024


STOP_REASON_TO_IR = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "pause_turn": "pause_turn",
    "refusal": "refusal",
    "model_context_window_exceeded": "context_window_exceeded",
}


STOP_REASON_FROM_IR = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "pause_turn": "pause_turn",
    "refusal": "refusal",
    "context_window_exceeded": "model_context_window_exceeded",
}


TOOL_CHOICE_TO_IR = {"auto": "auto", "any": "required", "none": "none", "tool": "tool"}


TOOL_CHOICE_FROM_IR = {"auto": "auto", "required": "any", "none": "none", "tool": "tool"}


# IR effort level → output_config.effort (Anthropic knows low|medium|high|max).
# "auto" means "let the model decide", which is adaptive thinking without an effort.
EFFORT_FROM_IR: dict[str, str | None] = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",  # "max" exists only on some models; "high" is accepted by all
    "max": "max",
    "auto": None,
}


ERROR_TYPE_FROM_KIND = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "billing": "billing_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "api_error": "api_error",
    "overloaded": "overloaded_error",
    "timeout": "timeout_error",
}


ERROR_KIND_FROM_TYPE = {value: key for key, value in ERROR_TYPE_FROM_KIND.items()}


ERROR_STATUS_FROM_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


REQUEST_FIELDS = frozenset({
    "model", "messages", "system", "max_tokens", "metadata", "stop_sequences", "stream", "temperature",
    "top_p", "top_k", "tools", "tool_choice", "thinking", "output_config",
})


RESPONSE_FIELDS = frozenset({"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"})


USAGE_FIELDS = frozenset({
    "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens_details",
})


# Stream: content_block type → BlockStart kind, delta type → (BlockDelta kind, payload key).
STREAM_BLOCK_KINDS = {"text": "text", "thinking": "thinking", "redacted_thinking": "redacted_thinking",
                       "tool_use": "tool_call"}


STREAM_DELTAS = {"text_delta": ("text", "text"), "thinking_delta": ("thinking", "thinking"),
                  "signature_delta": ("signature", "signature"), "input_json_delta": ("arguments", "partial_json")}


TOOL_ID_INVALID = re.compile(r"[^A-Za-z0-9_-]")
