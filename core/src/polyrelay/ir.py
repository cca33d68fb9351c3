"""The internal representation every dialect decodes into and encodes from.

Four dialects (Anthropic Messages, OpenAI Chat Completions, OpenAI Responses,
Gemini generateContent) meet here, so translation is N decoders + M encoders
instead of a pairwise matrix.  Vocabulary choices:

* Roles are ``"user"``, ``"assistant"`` and ``"system"`` (a system message in
  the middle of a conversation, as Claude Code and Codex send them).
* Stop reasons use Anthropic's names (:data:`STOP_REASONS`); each codec maps
  them through an explicit table.
* :class:`Usage` counts *total* input (cached tokens included) and *total*
  output (reasoning included); the cached and reasoning parts are broken out.
* Tool-call arguments are kept as the JSON text the model produced, so a
  fragment stream and a whole value are the same kind of thing.
* Whatever a dialect sends that this model cannot say lands in
  ``extensions[<dialect name>]`` and is re-emitted only into that dialect.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

# -- dialect names ----------------------------------------------------------

ANTHROPIC = "anthropic"
OPENAI_CHAT = "openai-chat"
OPENAI_RESPONSES = "openai-responses"
GEMINI = "gemini"
DIALECTS = (ANTHROPIC, OPENAI_CHAT, OPENAI_RESPONSES, GEMINI)

STOP_REASONS = (
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "refusal",
    "pause_turn",
    "context_window_exceeded",
)

# Effort levels and their budgets (CLIProxyAPI's table, internal/thinking in router-for-me/CLIProxyAPI).
EFFORT_BUDGETS = {
    "none": 0,
    "auto": -1,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": 128000,
}


def effort_for_budget(budget: int) -> str:
    """Map a thinking token budget to the nearest effort level."""
    if budget < 0:
        return "auto"
    if budget == 0:
        return "none"
    for level in ("minimal", "low", "medium", "high"):
        if budget <= EFFORT_BUDGETS[level]:
            return level
    return "xhigh"


def budget_for_effort(effort: str) -> int:
    """Map an effort level to a thinking token budget (unknown levels → medium)."""
    return EFFORT_BUDGETS.get(effort, EFFORT_BUDGETS["medium"])


# -- thinking signatures ------------------------------------------------------

_SIGNATURE_PREFIX = "prx1."


def wrap_signature(origin: str, signature: str) -> str:
    """Label a signature with the dialect family that issued it.

    Used when a signature is handed to a client of another dialect, so that
    when the client replays it we know it must not go to a foreign upstream.
    """
    return f"{_SIGNATURE_PREFIX}{origin}.{signature}"


def unwrap_signature(value: str, default_origin: str) -> tuple[str, str]:
    """Split a possibly wrapped signature into ``(origin, signature)``."""
    if value.startswith(_SIGNATURE_PREFIX):
        origin, _, signature = value[len(_SIGNATURE_PREFIX):].partition(".")
        if origin in DIALECTS:
            return origin, signature
    return default_origin, value


# -- content parts ------------------------------------------------------------


@attrs.define
class Text:
    text: str
    # Dialect-specific extras (Anthropic ``cache_control``, citations...).
    extras: dict[str, Any] = attrs.field(factory=dict)
    type: Literal["text"] = "text"


@attrs.define
class Image:
    """An image given inline (``data`` is base64) or by ``url``."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    extras: dict[str, Any] = attrs.field(factory=dict)
    type: Literal["image"] = "image"


@attrs.define
class File:
    """A document (PDF, text...) given inline (base64 ``data``), by URL or by id."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    file_id: str | None = None
    filename: str | None = None
    extras: dict[str, Any] = attrs.field(factory=dict)
    type: Literal["file"] = "file"


@attrs.define
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, e.g. '{"path": "a.py"}'
    # "function" for ordinary tools; "custom" for free-form (Responses custom tools).
    kind: str = "function"
    # Gemini thoughtSignature carried on a functionCall part, with its origin.
    signature: str | None = None
    signature_origin: str | None = None
    extras: dict[str, Any] = attrs.field(factory=dict)
    type: Literal["tool_call"] = "tool_call"


@attrs.define
class ToolResult:
    call_id: str
    content: list[Text | Image | File] = attrs.field(factory=list)
    is_error: bool = False
    # Known when the decoder can pair the result with its call (Gemini needs it).
    name: str | None = None
    kind: str = "function"
    extras: dict[str, Any] = attrs.field(factory=dict)
    type: Literal["tool_result"] = "tool_result"


@attrs.define
class Thinking:
    """Reasoning text; ``signature`` is only valid for ``origin``'s family."""

    text: str = ""
    signature: str | None = None
    origin: str | None = None  # dialect name of the upstream that produced it
    redacted: bool = False  # Anthropic redacted_thinking; ``signature`` holds its data
    extras: dict[str, Any] = attrs.field(factory=dict)
    type: Literal["thinking"] = "thinking"


Part = Text | Image | File | ToolCall | ToolResult | Thinking


@attrs.define
class Message:
    role: Literal["user", "assistant", "system"]
    parts: list[Part] = attrs.field(factory=list)
    extras: dict[str, Any] = attrs.field(factory=dict)


# -- request ------------------------------------------------------------------


@attrs.define
class Tool:
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None  # JSON schema
    # "function" | "custom" | anything else is a built-in (web_search...)
    kind: str = "function"
    strict: bool | None = None
    # The tool as its dialect sent it: built-in tools only survive same-dialect.
    raw: dict[str, Any] | None = None
    extras: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class ToolChoice:
    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None  # with mode "tool"
    parallel: bool | None = None  # None = dialect default


@attrs.define
class ThinkingConfig:
    """What the client asked of reasoning: a budget, an effort, or both.

    ``enabled`` False means explicitly off; ``adaptive`` is Anthropic's
    model-decides mode.
    """

    enabled: bool = True
    budget: int | None = None
    effort: str | None = None
    adaptive: bool = False
    include_thoughts: bool | None = None
    summary: str | None = None  # Responses reasoning.summary


@attrs.define
class ResponseFormat:
    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


@attrs.define
class Request:
    model: str
    messages: list[Message] = attrs.field(factory=list)
    system: list[Text] = attrs.field(factory=list)
    tools: list[Tool] = attrs.field(factory=list)
    tool_choice: ToolChoice | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = attrs.field(factory=list)
    stream: bool = False
    thinking: ThinkingConfig | None = None
    response_format: ResponseFormat | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)
    # Dialect-keyed leftovers: extensions["anthropic"]["context_management"] ...
    extensions: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    # Stream options the client asked for (chat ``stream_options.include_usage``).
    include_usage: bool = False


# -- response -----------------------------------------------------------------


@attrs.define
class Usage:
    input_tokens: int = 0  # total input, cached included
    output_tokens: int = 0  # total output, reasoning included
    cached_tokens: int = 0  # cache reads (part of input_tokens)
    cache_write_tokens: int = 0  # cache writes (part of input_tokens)
    reasoning_tokens: int = 0  # part of output_tokens


@attrs.define
class Response:
    id: str
    model: str
    parts: list[Part] = attrs.field(factory=list)
    stop_reason: str | None = "end_turn"
    stop_sequence: str | None = None
    usage: Usage = attrs.field(factory=Usage)
    extensions: dict[str, dict[str, Any]] = attrs.field(factory=dict)


# -- errors -------------------------------------------------------------------

# Canonical error kinds; each dialect maps them to its own type/status names.
ERROR_KINDS = (
    "invalid_request",  # 400
    "authentication",  # 401
    "billing",  # 402
    "permission",  # 403
    "not_found",  # 404
    "request_too_large",  # 413
    "rate_limit",  # 429
    "api_error",  # 500
    "overloaded",  # 529 / 503
    "timeout",  # 504
)

_KIND_BY_STATUS = {
    400: "invalid_request",
    401: "authentication",
    402: "billing",
    403: "permission",
    404: "not_found",
    408: "timeout",
    413: "request_too_large",
    422: "invalid_request",
    429: "rate_limit",
    503: "overloaded",
    504: "timeout",
    529: "overloaded",
}


def error_kind_for_status(status: int) -> str:
    """Pick the canonical error kind for an HTTP status."""
    if status in _KIND_BY_STATUS:
        return _KIND_BY_STATUS[status]
    return "api_error" if status >= 500 else "invalid_request"


@attrs.define
class ErrorInfo:
    status: int
    message: str
    kind: str = attrs.field()
    code: str | None = None  # e.g. "model_not_found", "rate_limit_exceeded"
    retry_after: float | None = None  # seconds

    @kind.default
    def _kind(self) -> str:
        return error_kind_for_status(self.status)


# -- stream events ------------------------------------------------------------


@attrs.define(slots=True)
class MessageStart:
    id: str
    model: str
    usage: Usage | None = None


@attrs.define(slots=True)
class BlockStart:
    index: int
    kind: Literal["text", "thinking", "redacted_thinking", "tool_call"]
    id: str | None = None  # tool_call
    name: str | None = None  # tool_call
    tool_kind: str = "function"  # tool_call: "function" | "custom"
    data: str | None = None  # redacted_thinking payload


@attrs.define(slots=True)
class BlockDelta:
    index: int
    kind: Literal["text", "thinking", "arguments", "signature"]
    text: str
    origin: str | None = None  # signature deltas: issuing dialect


@attrs.define(slots=True)
class BlockStop:
    index: int


@attrs.define(slots=True)
class MessageDelta:
    stop_reason: str | None = None
    usage: Usage | None = None
    stop_sequence: str | None = None


@attrs.define(slots=True)
class MessageStop:
    pass


@attrs.define(slots=True)
class StreamError:
    error: ErrorInfo


Event = MessageStart | BlockStart | BlockDelta | BlockStop | MessageDelta | MessageStop | StreamError
