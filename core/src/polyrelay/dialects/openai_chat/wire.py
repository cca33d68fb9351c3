"""Chat Completions wire vocabulary: names and the tables that map it to the IR."""

from __future__ import annotations

from polyrelay import ir

NAME = ir.OPENAI_CHAT


#: finish_reason (https://platform.openai.com/docs/api-reference/chat/object) → IR stop reason.
#: Unknown values fall back to end_turn.
FINISH_TO_STOP: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",  # legacy functions API
    "content_filter": "refusal",
}


#: IR stop reason → finish_reason.  Chat has no stop_sequence or pause.
STOP_TO_FINISH: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "context_window_exceeded": "length",
}


# Qwen reports an exhausted quota as 403 or 429; CLIProxyAPI treats both as rate limits.
QUOTA_CODES = frozenset({"insufficient_quota", "quota_exceeded"})


#: IR effort levels chat cannot say, and what to send instead (None = omit, let the model decide).
EFFORT_TO_WIRE: dict[str, str | None] = {"auto": None, "max": "xhigh"}


# Top-level request fields this codec interprets; everything else goes to extensions.
REQUEST_FIELDS = frozenset({
    "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "max_tokens",
    "max_completion_tokens", "stop", "temperature", "top_p", "reasoning_effort",
    "response_format", "stream", "stream_options", "user", "enable_thinking", "thinking_budget",
})


# Qwen's own thinking switches are also kept verbatim so a Qwen upstream gets them back.
QWEN_THINKING = ("enable_thinking", "thinking_budget")


MESSAGE_FIELDS = {
    "system": {"role", "content"},
    "developer": {"role", "content"},
    "user": {"role", "content"},
    "assistant": {"role", "content", "tool_calls", "reasoning_content"},
    "tool": {"role", "content", "tool_call_id"},
}
