"""Gemini wire vocabulary: the tables that map it to the IR, and the keys the codec knows."""

from __future__ import annotations

ROLE_TO_IR = {"user": "user", "model": "assistant", "function": "user"}


# Gemini has no system role inside ``contents``: a mid-conversation system
# message becomes a user turn at the same position (order matters more than role).
ROLE_FROM_IR = {"user": "user", "assistant": "model", "system": "user"}


FINISH_TO_STOP = {
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "refusal",
    "RECITATION": "refusal",
    "BLOCKLIST": "refusal",
    "PROHIBITED_CONTENT": "refusal",
    "SPII": "refusal",
    "IMAGE_SAFETY": "refusal",
    "LANGUAGE": "end_turn",
    "OTHER": "end_turn",
    "MALFORMED_FUNCTION_CALL": "end_turn",
    "UNEXPECTED_TOOL_CALL": "end_turn",
    "TOO_MANY_TOOL_CALLS": "end_turn",
    "FINISH_REASON_UNSPECIFIED": "end_turn",
}


STOP_TO_FINISH = {
    "end_turn": "STOP",
    "stop_sequence": "STOP",
    "tool_use": "STOP",  # Gemini has no tool reason: a call turn ends with STOP
    "pause_turn": "STOP",
    "max_tokens": "MAX_TOKENS",
    "context_window_exceeded": "MAX_TOKENS",
    "refusal": "SAFETY",
}


# Canonical error kind → google.rpc canonical status name.
STATUS_BY_KIND = {
    "invalid_request": "INVALID_ARGUMENT",
    "authentication": "UNAUTHENTICATED",
    "billing": "PERMISSION_DENIED",  # Google has no payment status; it refuses
    "permission": "PERMISSION_DENIED",
    "not_found": "NOT_FOUND",
    "request_too_large": "INVALID_ARGUMENT",
    "rate_limit": "RESOURCE_EXHAUSTED",
    "api_error": "INTERNAL",
    "overloaded": "UNAVAILABLE",
    "timeout": "DEADLINE_EXCEEDED",
}


# Canonical status name → HTTP status, for in-stream errors that lack ``code``.
HTTP_BY_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


TOOL_MODE_TO_IR = {"AUTO": "auto", "NONE": "none", "ANY": "required", "VALIDATED": "auto"}


TOOL_MODE_FROM_IR = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}


# Effort → thinkingLevel.  Gemini knows MINIMAL/LOW/MEDIUM/HIGH; anything above
# HIGH is clamped.  "auto" and "none" are budgets (-1 / 0), not levels.
LEVEL_FOR_EFFORT = {
    "minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH", "xhigh": "HIGH", "max": "HIGH",
}


# The documented value that makes Gemini 3 accept a functionCall part whose
# signature did not come from Gemini (https://ai.google.dev/gemini-api/docs/thought-signatures).
SKIP_SIGNATURE = "skip_thought_signature_validator"


PART_KEYS = ("text", "thought", "thoughtSignature", "inlineData", "fileData", "functionCall", "functionResponse")


REQUEST_KEYS = ("contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model")


GENERATION_KEYS = (
    "temperature", "topP", "topK", "maxOutputTokens", "stopSequences",
    "responseMimeType", "responseSchema", "responseJsonSchema", "thinkingConfig",
)
