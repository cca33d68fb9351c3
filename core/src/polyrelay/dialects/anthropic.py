"""The Anthropic Messages dialect (``/v1/messages``) ↔ the IR.

Conventions used for what the IR cannot say (see docs/_translation/anthropic.md):

* Part extras: ``cache_control`` (a dict) sits at ``extras["cache_control"]``
  because other dialects (OpenAI-compatible caches) mean the same thing by it;
  every other unknown key of a block sits in ``extras["anthropic"]`` and is
  written back only by this codec.  Keys of other dialects are never emitted.
* Block types the IR has no part for (server tool blocks, ``container_upload``,
  ``search_result``...) are kept verbatim with their position in
  ``extras["anthropic_blocks"]`` of the message / tool result, or under
  ``extensions["anthropic"]["_blocks"]`` of a response, and re-inserted at the
  same position by this codec only.
* Top-level request keys the IR has no field for go to
  ``extensions["anthropic"]`` verbatim; keys starting with ``_`` there are this
  codec's own bookkeeping, never request fields.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Sequence
from typing import Any

from polyrelay import ir
from polyrelay.dialects.base import (
    DialectError,
    content_field_problem,
    json_error_frame,
    merge_usage,
    reraise_as_dialect_error,
)
from polyrelay.dialects.fields import (
    ARRAY,
    BOOLEAN,
    NUMBER,
    OBJECT,
    STRING,
    checked,
    field,
    index_or_none,
    integer,
    str_or_none,
    thinking_budget,
    token_count,
    usage_count,
)
from polyrelay.dialects.hints import retry_hint_in_text
from polyrelay.dialects.media import parse_data_url, sniff_image_type
from polyrelay.jsonutil import dumps, loads
from polyrelay.sse import SSEEvent, SSEParser, frame

NAME = ir.ANTHROPIC
#: The API version polyrelay speaks (https://docs.anthropic.com/en/api/versioning).
API_VERSION = "2023-06-01"
BLOCKS_KEY = "anthropic_blocks"  # Message/ToolResult extras: [[position, raw block], ...]

# Anthropic requires max_tokens; CPA uses the same default for translated requests.
DEFAULT_MAX_TOKENS = 32000
# The smallest thinking budget Anthropic accepts.
MIN_THINKING_BUDGET = 1024

# -- mapping tables ----------------------------------------------------------------

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

_REQUEST_FIELDS = frozenset({
    "model", "messages", "system", "max_tokens", "metadata", "stop_sequences", "stream", "temperature",
    "top_p", "top_k", "tools", "tool_choice", "thinking", "output_config",
})
_RESPONSE_FIELDS = frozenset({"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"})
_USAGE_FIELDS = frozenset({
    "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens_details",
})

# Stream: content_block type → BlockStart kind, delta type → (BlockDelta kind, payload key).
_STREAM_BLOCK_KINDS = {"text": "text", "thinking": "thinking", "redacted_thinking": "redacted_thinking",
                       "tool_use": "tool_call"}
_STREAM_DELTAS = {"text_delta": ("text", "text"), "thinking_delta": ("thinking", "thinking"),
                  "signature_delta": ("signature", "signature"), "input_json_delta": ("arguments", "partial_json")}
_BLOCK_FOR_DELTA = {"text": "text", "thinking": "thinking", "signature": "thinking", "arguments": "tool_call"}

_TOOL_ID_INVALID = re.compile(r"[^A-Za-z0-9_-]")

# -- extras ---------------------------------------------------------------------------


def _extras(block: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    """Split a block's keys the IR does not model into part extras."""
    extras: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, value in block.items():
        if key == "type" or key in known:
            continue
        if key == "cache_control" and isinstance(value, dict):
            extras["cache_control"] = value
        else:
            rest[key] = value
    if rest:
        extras[NAME] = rest
    return extras


def _with_extras(block: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
    """Write back ``cache_control`` and this dialect's own leftovers (nothing foreign)."""
    cache_control = extras.get("cache_control")
    if isinstance(cache_control, dict):
        block["cache_control"] = cache_control
    own = extras.get(NAME)
    if isinstance(own, dict):
        block.update(own)
    return block


def _is_plain_text(part: ir.Part) -> bool:
    """A text part that a bare string says completely."""
    return isinstance(part, ir.Text) and "cache_control" not in part.extras and NAME not in part.extras


def _restore_blocks(blocks: list[dict[str, Any]], carried: Any) -> list[dict[str, Any]]:
    """Put carried raw blocks back at the positions they were decoded from."""
    if isinstance(carried, list):
        for entry in sorted((e for e in carried if isinstance(e, list) and len(e) == 2 and isinstance(e[0], int)),
                            key=lambda e: e[0]):
            blocks.insert(min(entry[0], len(blocks)), entry[1])
    return blocks


# -- content blocks → parts --------------------------------------------------------------


def _signature_in(value: str | None, upstream: bool) -> tuple[str | None, str | None]:
    """(origin, signature) of a signature read from an upstream response or a client request."""
    if not value:
        return None, None
    if upstream:
        return NAME, value
    return ir.unwrap_signature(value, default_origin=NAME)


def _decode_block(block: Any, path: str, upstream: bool = False) -> ir.Part | None:
    """One content block as a part; ``None`` for a block type the IR cannot hold."""
    checked(block, OBJECT, path, required=True)
    kind = field(block, "type", STRING, path, required=True)
    if kind == "text":
        return ir.Text(field(block, "text", STRING, path, required=True), extras=_extras(block, ("text",)))
    if kind == "image":
        return _decode_image(block, path)
    if kind == "document":
        return _decode_document(block, path)
    if kind == "tool_use":
        tool_input = block.get("input", {})
        if not isinstance(tool_input, dict):
            raise DialectError(f"{path}.input must be an object")
        return ir.ToolCall(id=field(block, "id", STRING, path, required=True),
                           name=field(block, "name", STRING, path, required=True),
                           arguments=dumps(tool_input).decode(), extras=_extras(block, ("id", "name", "input")))
    if kind == "tool_result":
        return _decode_tool_result(block, path)
    if kind == "thinking":
        origin, signature = _signature_in(field(block, "signature", STRING, path), upstream)
        return ir.Thinking(text=field(block, "thinking", STRING, path, required=True), signature=signature,
                           origin=origin, extras=_extras(block, ("thinking", "signature")))
    if kind == "redacted_thinking":
        origin, data = _signature_in(field(block, "data", STRING, path, required=True), upstream)
        return ir.Thinking(signature=data, origin=origin, redacted=True, extras=_extras(block, ("data",)))
    return None


def _decode_blocks(blocks: list[Any], path: str, upstream: bool = False) -> tuple[list[ir.Part], list[list[Any]]]:
    """Parts for the known blocks, and ``[position, block]`` for the others."""
    parts: list[ir.Part] = []
    carried: list[list[Any]] = []
    for i, block in enumerate(blocks):
        part = _decode_block(block, f"{path}[{i}]", upstream)
        if part is None:
            carried.append([i, block])
        else:
            parts.append(part)
    return parts, carried


def _decode_image(block: dict[str, Any], path: str) -> ir.Image:
    source = field(block, "source", OBJECT, path)
    if source is None:
        raise DialectError(f"{path}.source is required")
    extras = _extras(block, ("source",))
    if source.get("type") == "base64":
        return ir.Image(media_type=field(source, "media_type", STRING, f"{path}.source"),
                        data=field(source, "data", STRING, f"{path}.source", required=True), extras=extras)
    if source.get("type") == "url":
        return ir.Image(url=field(source, "url", STRING, f"{path}.source", required=True), extras=extras)
    # File-API ids and future source kinds: only this dialect can say them.
    extras.setdefault(NAME, {})["source"] = source
    return ir.Image(extras=extras)


def _decode_document(block: dict[str, Any], path: str) -> ir.File:
    source = field(block, "source", OBJECT, path)
    if source is None:
        raise DialectError(f"{path}.source is required")
    extras = _extras(block, ("source", "title"))
    part = ir.File(filename=field(block, "title", STRING, path), extras=extras)
    kind = source.get("type")
    if kind == "base64":
        part.media_type = field(source, "media_type", STRING, f"{path}.source")
        part.data = field(source, "data", STRING, f"{path}.source", required=True)
    elif kind == "text":
        # IR file data is base64; the text source goes back to plain text on encode.
        part.media_type = field(source, "media_type", STRING, f"{path}.source") or "text/plain"
        text = field(source, "data", STRING, f"{path}.source", required=True)
        part.data = base64.b64encode(text.encode()).decode()
    elif kind == "url":
        part.url = field(source, "url", STRING, f"{path}.source", required=True)
    elif kind == "file":
        part.file_id = field(source, "file_id", STRING, f"{path}.source", required=True)
    else:  # "content" sources and future kinds
        extras.setdefault(NAME, {})["source"] = source
    return part


def _decode_tool_result(block: dict[str, Any], path: str) -> ir.ToolResult:
    content = block.get("content")
    extras = _extras(block, ("tool_use_id", "content", "is_error"))
    parts: list[ir.Text | ir.Image | ir.File] = []
    if isinstance(content, str):
        parts.append(ir.Text(content))
    elif isinstance(content, list):
        carried: list[list[Any]] = []
        for i, inner in enumerate(content):
            part = _decode_block(inner, f"{path}.content[{i}]")
            if isinstance(part, (ir.Text, ir.Image, ir.File)):
                parts.append(part)
            else:  # search_result, tool_reference...: only Anthropic has them
                carried.append([i, inner])
        if carried:
            extras[BLOCKS_KEY] = carried
    elif content is not None:
        raise DialectError(f"{path}.content must be a string or an array of content blocks")
    return ir.ToolResult(call_id=field(block, "tool_use_id", STRING, path, required=True), content=parts,
                         is_error=bool(field(block, "is_error", BOOLEAN, path)), extras=extras)


# -- request decoding ----------------------------------------------------------------------


def _decode_message(message: Any, path: str) -> ir.Message:
    checked(message, OBJECT, path, required=True)
    role = field(message, "role", STRING, path, required=True)
    own = {key: value for key, value in message.items() if key not in ("role", "content")}
    if role not in ("user", "assistant", "system"):
        own["role"] = role  # a role we do not know yet: user content elsewhere, restored here
        role = "user"
    extras: dict[str, Any] = {NAME: own} if own else {}
    content = message.get("content")
    if isinstance(content, str):
        parts: list[ir.Part] = [ir.Text(content)]
    elif isinstance(content, list):
        parts, carried = _decode_blocks(content, f"{path}.content")
        if carried:
            extras[BLOCKS_KEY] = carried
    else:
        raise DialectError(f"{path}.content is required and must be a string or an array of content blocks")
    return ir.Message(role=role, parts=parts, extras=extras)  # type: ignore[arg-type]


def _decode_system(system: Any, ext: dict[str, Any]) -> list[ir.Text]:
    if system is None:
        return []
    if isinstance(system, str):
        return [ir.Text(system)]
    if not isinstance(system, list):
        raise DialectError("system must be a string or an array of text blocks")
    texts: list[ir.Text] = []
    carried: list[list[Any]] = []
    for i, block in enumerate(system):
        part = _decode_block(block, f"system[{i}]")
        if isinstance(part, ir.Text):
            texts.append(part)
        else:
            carried.append([i, block])
    if carried:
        ext["_system_blocks"] = carried
    return texts


def _decode_tool(tool: Any, path: str) -> ir.Tool:
    if not isinstance(tool, dict):
        raise DialectError(f"{path} must be an object")
    kind = field(tool, "type", STRING, path)
    if kind not in (None, "custom"):
        # Server tools (web_search_20250305, bash_20250124...) run at Anthropic: keep them whole.
        name = tool.get("name")
        return ir.Tool(name=name if isinstance(name, str) else kind, kind=kind, raw=dict(tool),
                       extras={"dialect": NAME})
    return ir.Tool(name=field(tool, "name", STRING, path, required=True),
                   description=field(tool, "description", STRING, path),
                   parameters=field(tool, "input_schema", OBJECT, path), strict=field(tool, "strict", BOOLEAN, path),
                   extras=_extras(tool, ("name", "description", "input_schema", "strict")))


def _decode_tool_choice(choice: Any) -> ir.ToolChoice | None:
    if choice is None:
        return None
    if not isinstance(choice, dict):
        raise DialectError("tool_choice must be an object")
    mode = TOOL_CHOICE_TO_IR.get(str_or_none(choice.get("type")) or "")
    if mode is None:
        raise DialectError('tool_choice.type must be "auto", "any", "none" or "tool"')
    name = field(choice, "name", STRING, "tool_choice", required=True) if mode == "tool" else None
    disable = field(choice, "disable_parallel_tool_use", BOOLEAN, "tool_choice")
    parallel = None if disable is None else not disable
    return ir.ToolChoice(mode=mode, name=name, parallel=parallel)  # type: ignore[arg-type]


def _decode_thinking(body: dict[str, Any], ext: dict[str, Any]) -> tuple[ir.ThinkingConfig | None,
                                                                          ir.ResponseFormat | None]:
    """``thinking`` + ``output_config`` → thinking config and response format."""
    config: ir.ThinkingConfig | None = None
    thinking = field(body, "thinking", OBJECT)
    if thinking is not None:
        kind = thinking.get("type")
        if kind == "enabled":
            budget = thinking_budget(thinking.get("budget_tokens"), "thinking.budget_tokens", required=True)
            config = ir.ThinkingConfig(budget=budget)
        elif kind == "disabled":
            config = ir.ThinkingConfig(enabled=False)
        elif kind == "adaptive":
            config = ir.ThinkingConfig(adaptive=True)
        else:
            raise DialectError('thinking.type must be "enabled", "disabled" or "adaptive"')
        rest = {k: v for k, v in thinking.items() if k not in ("type", "budget_tokens")}
        if rest:  # display, and whatever comes next
            ext["thinking"] = rest
    response_format = None
    output_config = field(body, "output_config", OBJECT)
    if output_config is not None:
        effort = field(output_config, "effort", STRING, "output_config")
        if effort is not None:
            # Effort without a thinking field is "thinking off, this much effort": say so.
            config = config or ir.ThinkingConfig(enabled=False)
            config.effort = effort
        rest = {k: v for k, v in output_config.items() if k != "effort"}
        fmt = rest.get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
            response_format = ir.ResponseFormat(type="json_schema", schema=fmt["schema"])
            del rest["format"]
        if rest:
            ext["output_config"] = rest
    return config, response_format


def _decode_request(body: dict[str, Any]) -> ir.Request:
    model = field(body, "model", STRING, required=True)
    messages = field(body, "messages", ARRAY, required=True)
    ext = {key: item for key, item in body.items() if key not in _REQUEST_FIELDS}
    tools = field(body, "tools", ARRAY)
    stop = body.get("stop_sequences")
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise DialectError("stop_sequences must be an array of strings")
    metadata = field(body, "metadata", OBJECT)
    request = ir.Request(
        model=model,
        messages=[_decode_message(m, f"messages[{i}]") for i, m in enumerate(messages)],
        system=_decode_system(body.get("system"), ext),
        tools=[_decode_tool(t, f"tools[{i}]") for i, t in enumerate(tools or [])],
        tool_choice=_decode_tool_choice(body.get("tool_choice")),
        max_tokens=token_count(body.get("max_tokens"), "max_tokens"),
        temperature=field(body, "temperature", NUMBER),
        top_p=field(body, "top_p", NUMBER),
        top_k=integer(body.get("top_k"), "top_k"),
        stop=list(stop or []),
        stream=bool(field(body, "stream", BOOLEAN)),
        metadata=dict(metadata or {}),
    )
    request.thinking, request.response_format = _decode_thinking(body, ext)
    if ext:
        request.extensions[NAME] = ext
    return request


# -- parts → content blocks ------------------------------------------------------------------


def _tool_id(value: str) -> str:
    """Anthropic accepts tool ids matching [A-Za-z0-9_-]+; others are rewritten the same way on both ends."""
    return _TOOL_ID_INVALID.sub("_", value)


def _call_input(call: ir.ToolCall) -> dict[str, Any]:
    """``tool_use.input`` (an object) for a call whose arguments are JSON text."""
    if call.kind == "custom":  # free-form input (Responses custom tools): wrapped, see _encode_tool
        return {"input": call.arguments}
    if not call.arguments.strip():
        return {}
    try:
        value = loads(call.arguments)
    except ValueError:
        value = None
    # Anthropic only takes an object; keep broken arguments visible to the model rather than drop them.
    return value if isinstance(value, dict) else {"_raw_arguments": call.arguments}


def _signature_out(signature: str | None, origin: str | None) -> str:
    """A signature for a client of this dialect: raw if ours, labelled if foreign."""
    if not signature:
        return ""
    return signature if origin in (None, NAME) else ir.wrap_signature(origin, signature)


def _encode_image(part: ir.Image) -> dict[str, Any] | None:
    data, media_type = part.data, part.media_type
    if data is None and part.url and (inline := parse_data_url(part.url)):
        media_type, data = media_type or inline.media_type, inline.data
    if data is not None:
        source: dict[str, Any] = {"type": "base64", "media_type": media_type or sniff_image_type(data), "data": data}
    elif part.url:
        source = {"type": "url", "url": part.url}
    else:
        source = {}
    block = _with_extras({"type": "image", "source": source}, part.extras)
    return block if block["source"] else None


def _encode_document(part: ir.File) -> dict[str, Any] | None:
    data, media_type = part.data, part.media_type
    if data is None and part.url and (inline := parse_data_url(part.url)):
        media_type, data = media_type or inline.media_type, inline.data
    source: dict[str, Any] = {}
    if data is not None:
        media_type = media_type or "application/pdf"
        source = {"type": "base64", "media_type": media_type, "data": data}
        if media_type.startswith("text/"):  # Anthropic's base64 source is PDF only; text goes as text
            try:
                source = {"type": "text", "media_type": "text/plain",
                          "data": base64.b64decode(data, validate=True).decode()}
            except (binascii.Error, ValueError):
                pass
    elif part.url:
        source = {"type": "url", "url": part.url}
    elif part.file_id:
        source = {"type": "file", "file_id": part.file_id}
    block: dict[str, Any] = {"type": "document", "source": source}
    if part.filename:
        block["title"] = part.filename
    block = _with_extras(block, part.extras)
    return block if block["source"] else None


def _encode_tool_result(part: ir.ToolResult) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": _tool_id(part.call_id)}
    carried = part.extras.get(BLOCKS_KEY)
    if not carried and len(part.content) == 1 and _is_plain_text(part.content[0]):
        block["content"] = part.content[0].text  # type: ignore[union-attr]
    else:
        inner = [b for b in map(_encode_request_part, part.content) if b is not None]
        inner = _restore_blocks(inner, carried)
        if inner:
            block["content"] = inner
    if part.is_error:
        block["is_error"] = True
    return _with_extras(block, part.extras)


def _encode_request_part(part: ir.Part) -> dict[str, Any] | None:
    """A part as a request content block; None when it cannot go to Anthropic."""
    if isinstance(part, ir.Text):
        # Anthropic refuses empty text blocks (OpenAI assistant turns often carry content "").
        return _with_extras({"type": "text", "text": part.text}, part.extras) if part.text else None
    if isinstance(part, ir.Image):
        return _encode_image(part)
    if isinstance(part, ir.File):
        return _encode_document(part)
    if isinstance(part, ir.ToolCall):
        block = {"type": "tool_use", "id": _tool_id(part.id), "name": part.name, "input": _call_input(part)}
        return _with_extras(block, part.extras)
    if isinstance(part, ir.ToolResult):
        return _encode_tool_result(part)
    if isinstance(part, ir.Thinking):
        # A foreign signature never goes to Anthropic, and Anthropic refuses thinking without its
        # signature: such blocks are dropped (the model does not need its old reasoning).
        if part.origin not in (None, NAME) or not part.signature:
            return None
        if part.redacted:
            return _with_extras({"type": "redacted_thinking", "data": part.signature}, part.extras)
        block = {"type": "thinking", "thinking": part.text, "signature": part.signature}
        return _with_extras(block, part.extras)
    return None


def _encode_message(message: ir.Message) -> dict[str, Any] | None:
    carried = message.extras.get(BLOCKS_KEY)
    content: str | list[dict[str, Any]]
    if not carried and len(message.parts) == 1 and _is_plain_text(message.parts[0]):
        content = message.parts[0].text  # type: ignore[union-attr]
    else:
        content = _restore_blocks([b for b in map(_encode_request_part, message.parts) if b is not None], carried)
        if not content:
            return None  # nothing Anthropic can take (e.g. only foreign reasoning): drop the turn
    out: dict[str, Any] = {"role": message.role, "content": content}
    own = message.extras.get(NAME)
    if isinstance(own, dict):
        out.update(own)
    return out


def _encode_system(system: list[ir.Text], carried: Any) -> str | list[dict[str, Any]] | None:
    if not carried and len(system) == 1 and _is_plain_text(system[0]):
        return system[0].text
    blocks = _restore_blocks([b for b in map(_encode_request_part, system) if b is not None], carried)
    return blocks or None


_CUSTOM_TOOL_SCHEMA = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}


def _encode_tool(tool: ir.Tool) -> dict[str, Any] | None:
    if tool.kind not in ("function", "custom"):
        # Built-in tools: only an Anthropic server tool, as Anthropic sent it, can go back.
        return dict(tool.raw) if tool.raw and tool.extras.get("dialect") == NAME else None
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    if tool.kind == "custom":
        # Free-form tools do not exist here: one string argument carries the text.
        out["input_schema"] = _CUSTOM_TOOL_SCHEMA
    else:
        out["input_schema"] = tool.parameters if tool.parameters is not None else {"type": "object", "properties": {}}
    if tool.strict:  # only "true" means something to Anthropic; false is its default
        out["strict"] = True
    return _with_extras(out, tool.extras)


def _encode_tool_choice(choice: ir.ToolChoice) -> dict[str, Any]:
    out: dict[str, Any] = {"type": TOOL_CHOICE_FROM_IR.get(choice.mode, "auto")}
    if choice.mode == "tool":
        out["name"] = choice.name or ""
    if choice.parallel is not None:
        out["disable_parallel_tool_use"] = not choice.parallel
    return out


def _encode_thinking(request: ir.Request, extra: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The ``thinking`` object and ``output_config.effort`` for a request."""
    config = request.thinking
    if config is None:
        return None, None
    effort = EFFORT_FROM_IR.get(config.effort, config.effort) if config.effort not in (None, "none") else None
    if not config.enabled or config.effort == "none" or config.budget == 0:
        return {**extra, "type": "disabled"}, effort
    if request.tool_choice is not None and request.tool_choice.mode in ("required", "tool"):
        return None, None  # Anthropic refuses thinking when a tool is forced
    if config.budget is not None and config.budget > 0 and not config.adaptive:
        max_tokens = request.max_tokens or DEFAULT_MAX_TOKENS
        if max_tokens <= MIN_THINKING_BUDGET:
            return None, None  # no budget fits below max_tokens
        budget = min(max(config.budget, MIN_THINKING_BUDGET), max_tokens - 1)
        return {**extra, "type": "enabled", "budget_tokens": budget}, effort
    # No budget (an effort level, "auto", or just "on"): let the model decide.
    return {**extra, "type": "adaptive"}, effort


def _encode_request(request: ir.Request) -> dict[str, Any]:
    ext = request.extensions.get(NAME, {})
    body: dict[str, Any] = {"model": request.model, "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS}
    body["messages"] = [m for m in map(_encode_message, request.messages) if m is not None]
    system = _encode_system(request.system, ext.get("_system_blocks"))
    if system is not None:
        body["system"] = system
    tools = [t for t in map(_encode_tool, request.tools) if t is not None]
    if tools:  # Anthropic refuses tool_choice without tools
        body["tools"] = tools
        if request.tool_choice is not None:
            body["tool_choice"] = _encode_tool_choice(request.tool_choice)
    user_id = request.metadata.get("user_id")
    if isinstance(user_id, str):  # the only metadata key Anthropic accepts
        body["metadata"] = {"user_id": user_id}
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    thinking, effort = _encode_thinking(request, ext.get("thinking") or {})
    thinking_on = thinking is not None and thinking["type"] != "disabled"
    if thinking is not None:
        body["thinking"] = thinking
    # With thinking on, Anthropic accepts only temperature 1, top_p >= 0.95 and no top_k.
    if request.temperature is not None and not (thinking_on and request.temperature != 1):
        body["temperature"] = request.temperature
    # Recent Claude models refuse temperature and top_p together (Gemini CLI always sends both):
    # temperature wins, which every model accepts.
    if request.top_p is not None and "temperature" not in body and not (thinking_on and request.top_p < 0.95):
        body["top_p"] = request.top_p
    if request.top_k is not None and not thinking_on:
        body["top_k"] = request.top_k
    output_config = dict(ext.get("output_config") or {})
    if effort:
        output_config["effort"] = effort
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema" and fmt.schema is not None:
        output_config["format"] = {"type": "json_schema", "schema": fmt.schema}
    if output_config:
        body["output_config"] = output_config
    if request.stream:
        body["stream"] = True
    for key, value in ext.items():
        # Leftovers of known fields (thinking.display...) were merged above, or dropped with their field.
        if not key.startswith("_") and key not in _REQUEST_FIELDS and key not in body:
            body[key] = value
    return body


# -- usage, ids, errors -----------------------------------------------------------------------


def _decode_usage(usage: dict[str, Any]) -> ir.Usage:
    """Anthropic usage (input excludes cache) → IR usage (input includes cache)."""
    cache_read = usage_count(usage.get("cache_read_input_tokens"))
    cache_write = usage_count(usage.get("cache_creation_input_tokens"))
    details = usage.get("output_tokens_details")
    reasoning = usage_count(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return ir.Usage(input_tokens=usage_count(usage.get("input_tokens")) + cache_read + cache_write,
                    output_tokens=usage_count(usage.get("output_tokens")), cached_tokens=cache_read,
                    cache_write_tokens=cache_write, reasoning_tokens=reasoning)


def _encode_usage(usage: ir.Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input_tokens": max(0, usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.output_tokens,
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


def _stop_reason_out(reason: str | None, tool_called: bool) -> str:
    if tool_called:  # a tool call means the client must act, whatever the upstream said
        return "tool_use"
    return STOP_REASON_FROM_IR.get(reason or "end_turn", "end_turn")


def _message_id(value: str | None) -> str:
    if not value:
        return "msg_" + uuid.uuid4().hex[:24]
    return value if value.startswith("msg_") else "msg_" + value


def _retry_hint(*sources: Any) -> float | None:
    """Seconds to wait, from a numeric ``retry_after`` field or "try again in 2s" wording."""
    for source in sources:
        if isinstance(source, dict):
            value = source.get("retry_after")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                return float(value)
        elif isinstance(source, str) and (seconds := retry_hint_in_text(source)) is not None:
            return seconds
    return None


def _error_info(payload: Any, status: int | None, fallback: str) -> ir.ErrorInfo:
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
                        retry_after=_retry_hint(error, payload, message))


# -- streams --------------------------------------------------------------------------------------


class AnthropicStreamDecoder:
    """Anthropic upstream SSE bytes → IR events."""

    def __init__(self) -> None:
        self.finished = False
        self._parser = SSEParser()
        self._started = False
        self._index: dict[int, int] = {}  # upstream block index → IR index
        self._skipped: set[int] = set()  # upstream blocks the IR cannot carry (server tools...)
        self._open: dict[int, str] = {}  # IR index → block kind, while open
        self._with_arguments: set[int] = set()  # tool blocks that received argument text
        self._usage: dict[str, Any] = {}  # raw cumulative usage: message_start, then message_delta
        self._delta_sent = False
        self._tool_called = False

    def feed(self, data: bytes) -> list[ir.Event]:
        """Consume bytes split anywhere; return the events they complete."""
        out: list[ir.Event] = []
        for event in self._parser.feed(data):
            self._handle(event, out)
        return out

    def close(self) -> list[ir.Event]:
        """End of body: flush the last frame and close open blocks (the core reports a cut stream)."""
        out: list[ir.Event] = []
        for event in self._parser.close():
            self._handle(event, out)
        if not self.finished:
            self._close_blocks(out)
        return out

    def _handle(self, event: SSEEvent, out: list[ir.Event]) -> None:
        if self.finished:
            return
        try:
            payload = loads(event.data)
        except ValueError:
            return  # not JSON: nothing an Anthropic stream means by it
        if not isinstance(payload, dict):
            return
        kind = str_or_none(payload.get("type")) or event.event
        if kind == "error":
            self._close_blocks(out)
            out.append(ir.StreamError(_error_info(payload, None, "upstream stream error")))
            self.finished = True
        elif kind == "message_start":
            self._message_start(payload, out)
        elif kind == "content_block_start":
            self._ensure_started(out)
            self._block_start(payload, out)
        elif kind == "content_block_delta":
            self._ensure_started(out)
            self._block_delta(payload, out)
        elif kind == "content_block_stop":
            index = self._index.get(index_or_none(payload.get("index")), -1)
            if index in self._open:
                self._stop(index, out)
        elif kind == "message_delta":
            self._ensure_started(out)
            self._message_delta(payload, out)
        elif kind == "message_stop":
            self._ensure_started(out)
            self._close_blocks(out)
            if not self._delta_sent:
                out.append(ir.MessageDelta(stop_reason="tool_use" if self._tool_called else "end_turn",
                                           usage=_decode_usage(self._usage)))
            out.append(ir.MessageStop())
            self.finished = True
        # "ping" and event types of the future: nothing to say.

    def _ensure_started(self, out: list[ir.Event]) -> None:
        if not self._started:
            self._started = True
            out.append(ir.MessageStart(id="", model=""))

    def _message_start(self, payload: dict[str, Any], out: list[ir.Event]) -> None:
        message = payload.get("message")
        message = message if isinstance(message, dict) else {}
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})
        if not self._started:
            self._started = True
            out.append(ir.MessageStart(id=str_or_none(message.get("id")) or "",
                                       model=str_or_none(message.get("model")) or "",
                                       usage=_decode_usage(self._usage) if isinstance(usage, dict) else None))

    def _open_block(self, upstream_index: int, kind: str, block: dict[str, Any], out: list[ir.Event]) -> int:
        index = len(self._index)
        self._index[upstream_index] = index
        self._open[index] = kind
        if kind == "tool_call":
            self._tool_called = True
            out.append(ir.BlockStart(index, "tool_call", id=str_or_none(block.get("id")) or "",
                                     name=str_or_none(block.get("name")) or ""))
            tool_input = block.get("input")
            if isinstance(tool_input, dict) and tool_input:  # a whole input up front (some proxies do this)
                self._delta(index, "arguments", dumps(tool_input).decode(), out)
        elif kind == "redacted_thinking":
            out.append(ir.BlockStart(index, "redacted_thinking", data=str_or_none(block.get("data"))))
        else:
            out.append(ir.BlockStart(index, kind))  # type: ignore[arg-type]
            field = "thinking" if kind == "thinking" else "text"
            self._delta(index, kind, block.get(field), out)
            if kind == "thinking":
                self._delta(index, "signature", block.get("signature"), out)
        return index

    def _delta(self, index: int, kind: str, text: Any, out: list[ir.Event]) -> None:
        if isinstance(text, str) and text:  # empty fragments say nothing
            out.append(ir.BlockDelta(index, kind, text, origin=NAME if kind == "signature" else None))  # type: ignore[arg-type]
            if kind == "arguments":
                self._with_arguments.add(index)

    def _block_start(self, payload: dict[str, Any], out: list[ir.Event]) -> None:
        upstream_index, block = index_or_none(payload.get("index")), payload.get("content_block")
        if upstream_index is None or upstream_index in self._index or upstream_index in self._skipped:
            return
        block = block if isinstance(block, dict) else {}
        kind = _STREAM_BLOCK_KINDS.get(str_or_none(block.get("type")) or "")
        if kind is None:
            self._skipped.add(upstream_index)  # server_tool_use, web_search_tool_result...: Anthropic-only
            return
        self._open_block(upstream_index, kind, block, out)

    def _block_delta(self, payload: dict[str, Any], out: list[ir.Event]) -> None:
        upstream_index, delta = index_or_none(payload.get("index")), payload.get("delta")
        if upstream_index is None or upstream_index in self._skipped or not isinstance(delta, dict):
            return
        spec = _STREAM_DELTAS.get(str_or_none(delta.get("type")) or "")
        if spec is None:
            return  # citations_delta and future delta kinds
        kind, field = spec
        index = self._index.get(upstream_index)
        if index is None:  # a delta without its content_block_start: open the block it implies
            index = self._open_block(upstream_index, _BLOCK_FOR_DELTA[kind], {}, out)
        if index in self._open:
            self._delta(index, kind, delta.get(field), out)

    def _stop(self, index: int, out: list[ir.Event]) -> None:
        if self._open.pop(index) == "tool_call" and index not in self._with_arguments:
            # A call without arguments: say "{}" so that no client has to parse "".
            out.append(ir.BlockDelta(index, "arguments", "{}"))
        out.append(ir.BlockStop(index))

    def _close_blocks(self, out: list[ir.Event]) -> None:
        for index in sorted(self._open):
            self._stop(index, out)

    def _message_delta(self, payload: dict[str, Any], out: list[ir.Event]) -> None:
        self._close_blocks(out)
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})
        delta = payload.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        reason = str_or_none(delta.get("stop_reason"))
        out.append(ir.MessageDelta(stop_reason=STOP_REASON_TO_IR.get(reason, "end_turn") if reason else None,
                                   usage=_decode_usage(self._usage),
                                   stop_sequence=str_or_none(delta.get("stop_sequence"))))
        self._delta_sent = True


class AnthropicStreamEncoder:
    """IR events → Anthropic SSE frames for a client (always SSE: Anthropic has no other stream form)."""

    def __init__(self, request: ir.Request) -> None:
        self._model = request.model
        self._started = False
        self._done = False
        self._index: dict[int, int] = {}  # IR index → wire index
        self._open: dict[int, str] = {}  # wire index → "text" | "thinking" | "redacted" | "tool" | "custom"
        self._signatures: dict[int, list[str | None]] = {}  # wire index → [signature so far, origin]
        self._tool_called = False
        self._usage = ir.Usage()
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None

    def encode(self, event: ir.Event) -> bytes:
        """Frames for one event."""
        if self._done:
            return b""
        out: list[bytes] = []
        if isinstance(event, ir.StreamError):
            out.append(_frame("error", {"type": "error", "error": _error_object(event.error)}))
            self._done = True
            return b"".join(out)
        if isinstance(event, ir.MessageStart):
            if not self._started:
                self._start(event.id, event.usage, out)
            return b"".join(out)
        self._start_if_needed(out)
        if isinstance(event, ir.BlockStart):
            if event.index not in self._index:
                self._open_block(event, out)
        elif isinstance(event, ir.BlockDelta):
            self._delta(event, out)
        elif isinstance(event, ir.BlockStop):
            wire = self._index.get(event.index)
            if wire is not None and wire in self._open:
                self._stop(wire, out)
        elif isinstance(event, ir.MessageDelta):
            # Held until MessageStop so the client sees exactly one message_delta.
            if event.stop_reason is not None:
                self._stop_reason, self._stop_sequence = event.stop_reason, event.stop_sequence
            if event.usage is not None:
                self._usage = merge_usage(self._usage, event.usage)
        elif isinstance(event, ir.MessageStop):
            self._finish_message(out)
        return b"".join(out)

    def finish(self) -> bytes:
        """Anthropic streams need no closing bytes after message_stop / error."""
        return b""

    def _start_if_needed(self, out: list[bytes]) -> None:
        if not self._started:
            self._start(None, None, out)

    def _start(self, message_id: str | None, usage: ir.Usage | None, out: list[bytes]) -> None:
        self._started = True
        if usage is not None:
            self._usage = merge_usage(self._usage, usage)
        message = {"id": _message_id(message_id), "type": "message", "role": "assistant", "model": self._model,
                   "content": [], "stop_reason": None, "stop_sequence": None, "usage": _encode_usage(self._usage)}
        out.append(_frame("message_start", {"type": "message_start", "message": message}))

    def _open_block(self, event: ir.BlockStart, out: list[bytes]) -> int:
        wire = len(self._index)
        self._index[event.index] = wire
        block: dict[str, Any]
        if event.kind == "tool_call":
            self._tool_called = True
            kind = "custom" if event.tool_kind == "custom" else "tool"
            block = {"type": "tool_use", "id": event.id or "toolu_" + uuid.uuid4().hex[:24], "name": event.name or "",
                     "input": {}}
        elif event.kind == "redacted_thinking":
            kind = "redacted"  # BlockStart has no origin: redacted data only ever comes from Anthropic
            block = {"type": "redacted_thinking", "data": event.data or ""}
        elif event.kind == "thinking":
            kind = "thinking"
            block = {"type": "thinking", "thinking": "", "signature": ""}
        else:
            kind = "text"
            block = {"type": "text", "text": ""}
        self._open[wire] = kind
        start = {"type": "content_block_start", "index": wire, "content_block": block}
        out.append(_frame("content_block_start", start))
        if kind == "custom":  # free-form input travels as the string of {"input": ...}
            out.append(self._delta_frame(wire, {"type": "input_json_delta", "partial_json": '{"input":"'}))
        return wire

    def _delta(self, event: ir.BlockDelta, out: list[bytes]) -> None:
        wire = self._index.get(event.index)
        if wire is None:
            wire = self._open_block(ir.BlockStart(event.index, _BLOCK_FOR_DELTA[event.kind]), out)  # type: ignore[arg-type]
        kind = self._open.get(wire)
        if event.kind == "signature":
            if kind == "thinking":  # sent once at block end: clients replace, not append, signatures
                held = self._signatures.setdefault(wire, ["", None])
                held[0] = (held[0] or "") + event.text
                held[1] = event.origin or held[1]
            return  # a signature on a tool call or text (Gemini) has no place in this dialect
        if not event.text:
            return
        delta: dict[str, Any] | None = None
        if event.kind == "text" and kind == "text":
            delta = {"type": "text_delta", "text": event.text}
        elif event.kind == "thinking" and kind == "thinking":
            delta = {"type": "thinking_delta", "thinking": event.text}
        elif event.kind == "arguments" and kind == "tool":
            delta = {"type": "input_json_delta", "partial_json": event.text}
        elif event.kind == "arguments" and kind == "custom":
            delta = {"type": "input_json_delta", "partial_json": dumps(event.text).decode()[1:-1]}
        if delta is not None:
            out.append(self._delta_frame(wire, delta))

    def _stop(self, wire: int, out: list[bytes]) -> None:
        kind = self._open.pop(wire)
        held = self._signatures.pop(wire, None)
        if held and held[0]:
            signature = _signature_out(held[0], held[1])
            out.append(self._delta_frame(wire, {"type": "signature_delta", "signature": signature}))
        if kind == "custom":
            out.append(self._delta_frame(wire, {"type": "input_json_delta", "partial_json": '"}'}))
        out.append(_frame("content_block_stop", {"type": "content_block_stop", "index": wire}))

    def _finish_message(self, out: list[bytes]) -> None:
        for wire in sorted(self._open):
            self._stop(wire, out)
        reason = _stop_reason_out(self._stop_reason, self._tool_called)
        delta = {"stop_reason": reason, "stop_sequence": self._stop_sequence if reason == "stop_sequence" else None}
        out.append(_frame("message_delta", {"type": "message_delta", "delta": delta,
                                            "usage": _encode_usage(self._usage)}))
        out.append(_frame("message_stop", {"type": "message_stop"}))
        self._done = True

    @staticmethod
    def _delta_frame(wire: int, delta: dict[str, Any]) -> bytes:
        return _frame("content_block_delta", {"type": "content_block_delta", "index": wire, "delta": delta})


def _frame(event: str, payload: dict[str, Any]) -> bytes:
    return frame(dumps(payload), event=event)


def _error_object(error: ir.ErrorInfo) -> dict[str, Any]:
    error_type = ERROR_TYPE_FROM_KIND.get(error.kind) or ERROR_TYPE_FROM_KIND[ir.error_kind_for_status(error.status)]
    return {"type": error_type, "message": error.message}


# -- responses --------------------------------------------------------------------------------------


def _decode_response(body: Any) -> ir.Response:
    if not isinstance(body, dict):
        raise DialectError("body must be a JSON object")
    content = body.get("content", [])
    if not isinstance(content, list):
        raise DialectError("content must be an array")
    parts, carried = _decode_blocks(content, "content", upstream=True)
    ext = {key: value for key, value in body.items() if key not in _RESPONSE_FIELDS}
    if carried:
        ext["_blocks"] = carried
    usage = body.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    usage_rest = {k: v for k, v in usage.items() if k not in _USAGE_FIELDS}
    if usage_rest:  # service_tier, server_tool_use, cache_creation breakdown...
        ext["_usage"] = usage_rest
    reason = str_or_none(body.get("stop_reason"))
    return ir.Response(
        id=str_or_none(body.get("id")) or "",
        model=str_or_none(body.get("model")) or "",
        parts=parts,
        stop_reason=STOP_REASON_TO_IR.get(reason, "end_turn") if reason else None,
        stop_sequence=str_or_none(body.get("stop_sequence")),
        usage=_decode_usage(usage),
        extensions={NAME: ext} if ext else {},
    )


def _encode_response_part(part: ir.Part) -> dict[str, Any] | None:
    if isinstance(part, ir.Text):
        return _with_extras({"type": "text", "text": part.text}, part.extras)
    if isinstance(part, ir.Thinking):
        signature = _signature_out(part.signature, part.origin)
        if part.redacted:
            return _with_extras({"type": "redacted_thinking", "data": signature}, part.extras) if signature else None
        return _with_extras({"type": "thinking", "thinking": part.text, "signature": signature}, part.extras)
    if isinstance(part, ir.ToolCall):
        block = {"type": "tool_use", "id": part.id or "toolu_" + uuid.uuid4().hex[:24], "name": part.name,
                 "input": _call_input(part)}
        return _with_extras(block, part.extras)
    return None  # images, files, tool results: an Anthropic reply has no such blocks


def _encode_response(response: ir.Response) -> dict[str, Any]:
    ext = response.extensions.get(NAME, {})
    content = [b for b in map(_encode_response_part, response.parts) if b is not None]
    content = _restore_blocks(content, ext.get("_blocks"))
    tool_called = any(isinstance(p, ir.ToolCall) for p in response.parts)
    reason = _stop_reason_out(response.stop_reason, tool_called)
    usage = _encode_usage(response.usage)
    if isinstance(ext.get("_usage"), dict):
        usage.update(ext["_usage"])
    body: dict[str, Any] = {
        "id": _message_id(response.id), "type": "message", "role": "assistant", "model": response.model,
        "content": content, "stop_reason": reason,
        "stop_sequence": response.stop_sequence if reason == "stop_sequence" else None, "usage": usage,
    }
    for key, value in ext.items():
        if not key.startswith("_") and key not in body:
            body[key] = value
    return body


# -- the dialect -------------------------------------------------------------------------------------------


class AnthropicDialect:
    """Anthropic Messages: ``POST /v1/messages`` requests, responses, SSE streams and errors."""

    name = NAME
    keepalive_frame = b'event: ping\ndata: {"type":"ping"}\n\n'
    #: Anthropic's SDKs send ``anthropic-version`` on every request, ``/v1/models`` included.
    marker_headers: tuple[str, ...] = ("anthropic-version",)
    model_in_body: bool = True
    # https://docs.anthropic.com/en/api/versioning and /en/api/beta-headers: the client's choice wins.
    forwarded_headers: tuple[str, ...] = ("anthropic-beta", "anthropic-version")
    prompt_fields: tuple[str, ...] = ("system", "messages", "tools")

    def claims_path(self, path: str) -> bool:
        """``/v1/messages`` and ``/v1/messages/count_tokens``."""
        return path.startswith("/v1/messages")

    def auth_headers(self, secret: str) -> dict[str, str]:
        """``x-api-key`` plus the API version every request must name (https://docs.anthropic.com/en/api/versioning)."""
        return {"x-api-key": secret, "anthropic-version": API_VERSION}

    def upstream_path(self, model: str, stream: bool) -> str:
        """``/v1/messages``: the model and the stream flag travel in the body."""
        return "/v1/messages"

    def passes_through(self, stream: bool, sse: bool) -> bool:
        """Always: Anthropic streams only SSE."""
        return True

    def shape_problem(self, data: dict[str, Any]) -> str | None:
        """``messages`` must be an array."""
        return content_field_problem(data, "messages", (list,))

    def frame_kind(self, event: SSEEvent) -> tuple[bool, bool]:
        """``message_stop`` ends a stream, ``error`` ends it failed."""
        return event.event in ("message_stop", "error"), event.event == "error"

    def passthrough_error_frame(self, error: ir.ErrorInfo) -> bytes:
        """``event: error`` with the error body, as the API sends mid-stream."""
        return json_error_frame(self, error, "error")

    def token_count_body(self, tokens: int) -> dict[str, Any]:
        """``/v1/messages/count_tokens``: ``{"input_tokens": n}``."""
        return {"input_tokens": tokens}

    def models_body(self, models: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """Anthropic's paged list (one page: ``has_more`` false)."""
        data = [self.model_entry(m, owner) for m, owner in models]
        return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}

    def model_entry(self, model: str, owner: str) -> dict[str, Any]:
        """One ``model`` object (no creation date is known: the epoch)."""
        return {"type": "model", "id": model, "display_name": model, "created_at": "1970-01-01T00:00:00Z"}

    def decode_request(self, body: Any) -> ir.Request:
        """Client JSON body → IR request; any fault is a :class:`DialectError` (400)."""
        if not isinstance(body, dict):
            raise DialectError("request body must be a JSON object")
        with reraise_as_dialect_error("malformed Anthropic request"):
            return _decode_request(body)

    def encode_request(self, request: ir.Request) -> dict[str, Any]:
        """IR request → body for an Anthropic upstream (``max_tokens`` always set)."""
        return _encode_request(request)

    def decode_response(self, body: Any) -> ir.Response:
        """Upstream Anthropic message JSON → IR response; faults are a :class:`DialectError` (502)."""
        # restate: the field readers raise 400s, but a bad upstream body is the upstream's fault (502).
        with reraise_as_dialect_error("malformed Anthropic response", status=502, restate=True):
            return _decode_response(body)

    def encode_response(self, response: ir.Response) -> dict[str, Any]:
        """IR response → Anthropic message JSON for a client."""
        return _encode_response(response)

    def stream_decoder(self) -> AnthropicStreamDecoder:
        """A fresh decoder for one upstream SSE stream."""
        return AnthropicStreamDecoder()

    def stream_encoder(self, request: ir.Request, *, sse: bool = True) -> AnthropicStreamEncoder:
        """A fresh encoder for one client stream (``sse`` is ignored: Anthropic only streams SSE)."""
        return AnthropicStreamEncoder(request)

    def decode_error(self, status: int, body: bytes) -> ir.ErrorInfo:
        """An upstream error body (any bytes, JSON or not) → canonical error."""
        text = body.decode("utf-8", errors="replace").strip() if isinstance(body, (bytes, bytearray)) else ""
        fallback = text[:500] or f"upstream error (HTTP {status})"
        try:
            payload = loads(text) if text else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return ir.ErrorInfo(status=status, message=fallback, retry_after=_retry_hint(text))
        return _error_info(payload, status, fallback)

    def error_body(self, error: ir.ErrorInfo) -> dict[str, Any]:
        """Canonical error → ``{"type":"error","error":{"type","message"}}``."""
        return {"type": "error", "error": _error_object(error)}


DIALECT = AnthropicDialect()
