"""OpenAI Chat Completions codec (``/v1/chat/completions``; Qwen and DashScope too).

Wire facts are in the protocol notes §2.2 (and §3.5/§3.6 for the Qwen
additions: ``reasoning_content``, ``enable_thinking``, ``thinking_budget``).

Conventions of this module:

* Whatever the chat wire has and the IR cannot say is kept under the key
  ``"openai-chat"``: top-level fields in ``Request.extensions``/``Response.extensions``,
  part and message leftovers in ``extras["openai-chat"]``.  Only this codec reads
  them back, so they never reach another dialect's upstream.
* For parts, ``extras["openai-chat"]`` holds wire keys to merge back into the
  encoded part; a dict value merges into the part's inner object
  (``image_url``, ``file``, ``function``).
* For messages and tool results it holds ``{"fields": {...}, "extra_parts": [...]}``:
  unknown message keys, and content parts the IR has no type for
  (``input_audio``, ``refusal``...) with their original position.
* Chat has no place for thinking signatures; they are dropped both ways.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from polyrelay import ir
from polyrelay.dialects import openai_errors
from polyrelay.dialects.base import (
    DialectError,
    bearer_auth,
    content_field_problem,
    json_error_frame,
    merge_usage,
    openai_model_entry,
    openai_models_body,
    reraise_as_dialect_error,
)
from polyrelay.dialects.fields import (
    ARRAY,
    BOOLEAN,
    NUMBER,
    OBJECT,
    STRING,
    field,
    is_int,
    thinking_budget,
    token_count,
    usage_count,
)
from polyrelay.dialects.hints import retry_hint_in_text
from polyrelay.dialects.media import data_url, parse_data_url
from polyrelay.jsonutil import dumps, loads
from polyrelay.sse import SSEEvent, SSEParser, frame

NAME = ir.OPENAI_CHAT

# -- mapping tables -----------------------------------------------------------

#: finish_reason → IR stop reason (§4.8).  Unknown values fall back to end_turn.
FINISH_TO_STOP: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",  # legacy functions API
    "content_filter": "refusal",
}

#: IR stop reason → finish_reason (§4.8).  Chat has no stop_sequence or pause.
STOP_TO_FINISH: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "context_window_exceeded": "length",
}

# Qwen reports an exhausted quota as 403 or 429; CPA treats both as rate limits (§3.5).
_QUOTA_CODES = frozenset({"insufficient_quota", "quota_exceeded"})

#: IR effort levels chat cannot say, and what to send instead (None = omit, let the model decide).
EFFORT_TO_WIRE: dict[str, str | None] = {"auto": None, "max": "xhigh"}

# Top-level request fields this codec interprets; everything else goes to extensions.
_REQUEST_FIELDS = frozenset({
    "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "max_tokens",
    "max_completion_tokens", "stop", "temperature", "top_p", "reasoning_effort",
    "response_format", "stream", "stream_options", "user", "enable_thinking", "thinking_budget",
})
# Qwen's own thinking switches are also kept verbatim so a Qwen upstream gets them back.
_QWEN_THINKING = ("enable_thinking", "thinking_budget")

_MESSAGE_FIELDS = {
    "system": {"role", "content"},
    "developer": {"role", "content"},
    "user": {"role", "content"},
    "assistant": {"role", "content", "tool_calls", "reasoning_content"},
    "tool": {"role", "content", "tool_call_id"},
}


# -- small helpers ------------------------------------------------------------


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _chat_id(upstream_id: str | None) -> str:
    """A ``chatcmpl-`` id; a foreign upstream id is kept inside it for tracing."""
    if upstream_id and upstream_id.startswith("chatcmpl-"):
        return upstream_id
    return "chatcmpl-" + (upstream_id or uuid.uuid4().hex[:24])


def _leftovers(obj: dict[str, Any], known: set[str] | frozenset[str], inner: str | None = None,
               inner_known: set[str] | None = None) -> dict[str, Any]:
    """Keys of a part the IR has no field for (and of its inner object, nested)."""
    extra = {k: v for k, v in obj.items() if k not in known}
    if inner is not None and isinstance(obj.get(inner), dict):
        rest = {k: v for k, v in obj[inner].items() if k not in (inner_known or set())}
        if rest:
            extra[inner] = rest
    return extra


def _mine(extras: dict[str, Any]) -> dict[str, Any]:
    """This dialect's slice of an extras dict (other dialects' extras are not ours to send)."""
    value = extras.get(NAME)
    return value if isinstance(value, dict) else {}


def _with_extras(wire: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
    """Merge a part's saved leftovers back, one level deep for inner objects."""
    for key, value in _mine(extras).items():
        if isinstance(value, dict) and isinstance(wire.get(key), dict):
            wire[key] = {**wire[key], **value}
        else:
            wire.setdefault(key, value)
    return wire


def _tag(extra: dict[str, Any]) -> dict[str, Any]:
    return {NAME: extra} if extra else {}


def _args_text(value: Any, where: str) -> str:
    """Tool-call arguments as JSON text; some clients send an object instead of a string."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return dumps(value).decode()
    raise DialectError(f"{where} must be a JSON string")


# -- usage --------------------------------------------------------------------


def decode_usage(usage: Any) -> ir.Usage:
    """Chat ``usage`` → IR usage (§4.9: prompt includes cached, completion includes reasoning)."""
    if not isinstance(usage, dict):
        return ir.Usage()
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    prompt_details = prompt_details if isinstance(prompt_details, dict) else {}
    completion_details = completion_details if isinstance(completion_details, dict) else {}
    return ir.Usage(
        input_tokens=usage_count(usage.get("prompt_tokens")),
        output_tokens=usage_count(usage.get("completion_tokens")),
        # DeepSeek-style servers report cache hits at the top level instead.
        cached_tokens=(usage_count(prompt_details.get("cached_tokens"))
                       or usage_count(usage.get("prompt_cache_hit_tokens"))),
        reasoning_tokens=usage_count(completion_details.get("reasoning_tokens")),
    )


def encode_usage(usage: ir.Usage) -> dict[str, Any]:
    """IR usage → chat ``usage``; cache writes are already inside prompt_tokens."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


# -- request: decode ----------------------------------------------------------


def _decode_part(part: dict[str, Any], where: str) -> ir.Text | ir.Image | ir.File | None:
    """One content part; None for types the IR cannot hold (kept aside by the caller)."""
    kind = part["type"]
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise DialectError(f"{where}.text must be a string")
        return ir.Text(text=text, extras=_tag(_leftovers(part, {"type", "text"})))
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image  # a bare string is common enough
        if not isinstance(url, str):
            raise DialectError(f"{where}.image_url.url must be a string")
        extras = _tag(_leftovers(part, {"type", "image_url"}, "image_url", {"url"}))
        inline = parse_data_url(url)
        if inline is not None:
            return ir.Image(media_type=inline.media_type, data=inline.data, extras=extras)
        return ir.Image(url=url, extras=extras)
    if kind == "file":
        file = part.get("file")
        if not isinstance(file, dict):
            raise DialectError(f"{where}.file must be an object")
        data = field(file, "file_data", STRING, f"{where}.file.")
        result = ir.File(
            file_id=field(file, "file_id", STRING, f"{where}.file."),
            filename=field(file, "filename", STRING, f"{where}.file."),
            extras=_tag(_leftovers(part, {"type", "file"}, "file", {"file_data", "file_id", "filename"})),
        )
        if data is not None:
            inline = parse_data_url(data)
            result.media_type, result.data = (inline.media_type, inline.data) if inline is not None else (None, data)
        return result
    return None


def _decode_content(content: Any, where: str) -> tuple[list[ir.Text | ir.Image | ir.File], list[dict[str, Any]]]:
    """Message content → (IR parts, parts set aside with their position)."""
    if content is None:
        return [], []
    if isinstance(content, str):
        return [ir.Text(text=content)], []
    if not isinstance(content, list):
        raise DialectError(f"{where}.content must be a string, an array of parts or null")
    parts: list[ir.Text | ir.Image | ir.File] = []
    aside: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise DialectError(f"{where}.content[{j}] must be an object with a string type")
        decoded = _decode_part(part, f"{where}.content[{j}]")
        if decoded is None:
            aside.append({"at": j, "part": part})
        else:
            parts.append(decoded)
    return parts, aside


def _message_extras(message: dict[str, Any], role: str, aside: list[dict[str, Any]]) -> dict[str, Any]:
    saved: dict[str, Any] = {}
    fields = {k: v for k, v in message.items() if k not in _MESSAGE_FIELDS[role]}
    if fields:
        saved["fields"] = fields
    if aside:
        saved["extra_parts"] = aside
    return _tag(saved)


def _decode_tool_call(call: Any, where: str) -> ir.ToolCall:
    if not isinstance(call, dict):
        raise DialectError(f"{where} must be an object")
    call_id = call.get("id")
    if not isinstance(call_id, str):
        raise DialectError(f"{where}.id must be a string")
    if call.get("type") == "custom":
        body = call.get("custom")
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise DialectError(f"{where}.custom.name must be a string")
        return ir.ToolCall(
            id=call_id, name=body["name"], arguments=_args_text(body.get("input"), f"{where}.custom.input"),
            kind="custom", extras=_tag(_leftovers(call, {"id", "type", "custom"}, "custom", {"name", "input"})),
        )
    body = call.get("function")
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise DialectError(f"{where}.function.name must be a string")
    return ir.ToolCall(
        id=call_id, name=body["name"], arguments=_args_text(body.get("arguments"), f"{where}.function.arguments"),
        extras=_tag(_leftovers(call, {"id", "type", "function"}, "function", {"name", "arguments"})),
    )


def _decode_messages(raw: list[Any], request: ir.Request) -> None:
    leading = True  # system/developer messages before any other go to request.system
    tool_group: ir.Message | None = None  # consecutive tool messages share one user message
    calls: dict[str, ir.ToolCall] = {}  # so results know their function's name (Gemini needs it)
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise DialectError(f"{where} must be an object")
        role = message.get("role")
        if role not in _MESSAGE_FIELDS:
            raise DialectError(f"{where}.role must be one of system, developer, user, assistant, tool")
        if role != "assistant" and message.get("content") is None:
            raise DialectError(f"{where}.content is required for role {role}")
        parts, aside = _decode_content(message.get("content"), where)
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                raise DialectError(f"{where}.tool_call_id must be a string")
            call = calls.get(call_id)
            result = ir.ToolResult(call_id=call_id, content=parts, name=call.name if call else None,
                                   kind=call.kind if call else "function",
                                   extras=_message_extras(message, role, aside))
            if tool_group is None:
                tool_group = ir.Message(role="user")
                request.messages.append(tool_group)
            tool_group.parts.append(result)
            leading = False
            continue
        tool_group = None
        if role in ("system", "developer"):
            if leading:
                # Leading system text has no message to hang leftovers on: non-text parts are dropped.
                request.system.extend(p for p in parts if isinstance(p, ir.Text))
                continue
            request.messages.append(ir.Message(role="system", parts=list(parts),
                                               extras=_message_extras(message, role, aside)))
            continue
        leading = False
        out: list[ir.Part] = []
        if role == "assistant":
            reasoning = field(message, "reasoning_content", STRING, f"{where}.")
            if reasoning:
                # No signature exists on this wire, so the origin is unknown (None).
                out.append(ir.Thinking(text=reasoning))
            # "" next to tool calls (or alone) is no text at all; an empty text part would
            # be rejected by Anthropic upstreams.
            out.extend(p for p in parts if not (isinstance(p, ir.Text) and not p.text and not p.extras))
            for j, raw_call in enumerate(field(message, "tool_calls", ARRAY, f"{where}.") or []):
                call = _decode_tool_call(raw_call, f"{where}.tool_calls[{j}]")
                calls[call.id] = call
                out.append(call)
        else:
            out.extend(parts)
        request.messages.append(ir.Message(role=role, parts=out, extras=_message_extras(message, role, aside)))


def _decode_tools(raw: Any) -> list[ir.Tool]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise DialectError("tools must be an array")
    tools: list[ir.Tool] = []
    for i, tool in enumerate(raw):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise DialectError(f"{where} must be an object")
        kind = tool.get("type", "function")
        if not isinstance(kind, str):
            raise DialectError(f"{where}.type must be a string")
        if kind == "function":
            fn = tool.get("function")
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise DialectError(f"{where}.function.name must be a string")
            tools.append(ir.Tool(
                name=fn["name"],
                description=field(fn, "description", STRING, f"{where}.function."),
                parameters=field(fn, "parameters", OBJECT, f"{where}.function."),
                strict=field(fn, "strict", BOOLEAN, f"{where}.function."),
                extras=_tag(_leftovers(tool, {"type", "function"}, "function",
                                       {"name", "description", "parameters", "strict"})),
            ))
        elif kind == "custom":
            body = tool.get("custom")
            if not isinstance(body, dict) or not isinstance(body.get("name"), str):
                raise DialectError(f"{where}.custom.name must be a string")
            description = body.get("description")
            tools.append(ir.Tool(name=body["name"], description=description if isinstance(description, str) else None,
                                 kind="custom", raw=tool))
        else:
            # Built-in or future tool types: same-dialect only (marked so our encoder knows the raw is chat's).
            name = tool.get("name") if isinstance(tool.get("name"), str) else kind
            tools.append(ir.Tool(name=name, kind=kind, raw=tool, extras={NAME: {"builtin": True}}))
    return tools


def _decode_tool_choice(body: dict[str, Any], extensions: dict[str, Any]) -> ir.ToolChoice | None:
    raw = body.get("tool_choice")
    choice: ir.ToolChoice | None = None
    if isinstance(raw, str):
        if raw not in ("auto", "none", "required"):
            raise DialectError("tool_choice must be 'auto', 'none', 'required' or an object")
        choice = ir.ToolChoice(mode=raw)  # type: ignore[arg-type]
    elif isinstance(raw, dict):
        kind = raw.get("type")
        inner = raw.get(kind) if isinstance(kind, str) else None
        if kind in ("function", "custom") and isinstance(inner, dict) and isinstance(inner.get("name"), str):
            choice = ir.ToolChoice(mode="tool", name=inner["name"])
        else:
            extensions["tool_choice"] = raw  # e.g. allowed_tools: same-dialect only
    elif raw is not None:
        raise DialectError("tool_choice must be a string or an object")
    parallel = field(body, "parallel_tool_calls", BOOLEAN)
    if parallel is not None:
        choice = choice or ir.ToolChoice(mode="auto")
        choice.parallel = parallel
    return choice


def _decode_response_format(raw: Any, extensions: dict[str, Any]) -> ir.ResponseFormat | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise DialectError("response_format must be an object")
    kind = raw.get("type")
    if kind in ("text", "json_object"):
        result = ir.ResponseFormat(type=kind)
        known_inner: set[str] = set()
    elif kind == "json_schema":
        spec = raw.get("json_schema")
        if not isinstance(spec, dict):
            raise DialectError("response_format.json_schema must be an object")
        result = ir.ResponseFormat(
            type="json_schema",
            schema=field(spec, "schema", OBJECT, "response_format.json_schema."),
            name=field(spec, "name", STRING, "response_format.json_schema."),
            strict=field(spec, "strict", BOOLEAN, "response_format.json_schema."),
        )
        known_inner = {"name", "schema", "strict"}
    else:
        extensions["response_format"] = raw  # unknown type: only a chat upstream can take it
        return None
    if _leftovers(raw, {"type", "json_schema"}, "json_schema", known_inner):
        extensions["response_format"] = raw  # e.g. a description: resend the original to chat
    return result


def _decode_thinking(body: dict[str, Any]) -> ir.ThinkingConfig | None:
    effort = field(body, "reasoning_effort", STRING)
    enable = field(body, "enable_thinking", BOOLEAN)
    budget = thinking_budget(body.get("thinking_budget"), "thinking_budget")
    if effort is None and enable is None and budget is None:
        return None
    enabled = effort != "none"
    if enable is not None:
        enabled = enable
    return ir.ThinkingConfig(enabled=enabled, effort=effort, budget=budget)


def _decode_request(body: Any) -> ir.Request:
    if not isinstance(body, dict):
        raise DialectError("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise DialectError("model is required and must be a non-empty string")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise DialectError("messages is required and must be a non-empty array")
    extensions = {k: v for k, v in body.items() if k not in _REQUEST_FIELDS}
    extensions.update({k: body[k] for k in _QWEN_THINKING if body.get(k) is not None})
    request = ir.Request(model=model)
    _decode_messages(messages, request)
    if not request.messages and not request.system:
        raise DialectError("messages has no content")
    request.tools = _decode_tools(body.get("tools"))
    request.tool_choice = _decode_tool_choice(body, extensions)
    max_completion = token_count(body.get("max_completion_tokens"), "max_completion_tokens")
    request.max_tokens = (max_completion if max_completion is not None
                          else token_count(body.get("max_tokens"), "max_tokens"))
    for key in ("temperature", "top_p"):
        value = field(body, key, NUMBER)
        setattr(request, key, None if value is None else float(value))
    stop = body.get("stop")
    if isinstance(stop, str):
        request.stop = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        request.stop = list(stop)
    elif stop is not None:
        raise DialectError("stop must be a string or an array of strings")
    request.stream = bool(field(body, "stream", BOOLEAN))
    options = field(body, "stream_options", OBJECT)
    if options is not None:
        request.include_usage = bool(field(options, "include_usage", BOOLEAN, "stream_options."))
        rest = {k: v for k, v in options.items() if k != "include_usage"}
        if rest:
            extensions["stream_options"] = rest
    request.thinking = _decode_thinking(body)
    request.response_format = _decode_response_format(body.get("response_format"), extensions)
    user = field(body, "user", STRING)
    if user is not None:
        request.metadata["user_id"] = user
    if extensions:
        request.extensions[NAME] = extensions
    return request


# -- request: encode ----------------------------------------------------------


def _encode_part(part: ir.Part) -> dict[str, Any] | None:
    """IR part → user-content part; None for what chat user content cannot carry."""
    if isinstance(part, ir.Text):
        return _with_extras({"type": "text", "text": part.text}, part.extras)
    if isinstance(part, ir.Image):
        if part.data is not None:
            url = data_url(part.media_type, part.data, "image/png")
        elif part.url is not None:
            url = part.url
        else:
            return None
        return _with_extras({"type": "image_url", "image_url": {"url": url}}, part.extras)
    if isinstance(part, ir.File):
        file: dict[str, Any] = {}
        if part.data is not None:
            # Our own decoder keeps a raw (non data-URL) file_data as media_type None: send it back raw.
            file["file_data"] = part.data if part.media_type is None else data_url(part.media_type, part.data, "")
        elif part.file_id is not None:
            file["file_id"] = part.file_id
        else:
            return None  # a URL-only document: the chat file part has no URL field
        if part.filename is not None:
            file["filename"] = part.filename
        return _with_extras({"type": "file", "file": file}, part.extras)
    return None  # thinking / tool parts never sit in user content


def _content(wire: list[dict[str, Any]], aside: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A lone plain text part becomes a string; otherwise parts with set-aside ones put back in place."""
    if not aside and len(wire) == 1 and wire[0].keys() == {"type", "text"}:
        return wire[0]["text"]
    if not wire and not aside:
        return ""
    for item in aside:
        wire.insert(min(item.get("at", len(wire)), len(wire)), item["part"])
    return wire


def _saved(extras: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    mine = _mine(extras)
    return mine.get("fields") or {}, mine.get("extra_parts") or []


def _text_message(role: str, texts: list[ir.Text], extras: dict[str, Any]) -> dict[str, Any]:
    fields, aside = _saved(extras)
    content = _content([_with_extras({"type": "text", "text": t.text}, t.extras) for t in texts], aside)
    return {"role": role, "content": content, **fields}


def _encode_tool_call(call: ir.ToolCall) -> dict[str, Any]:
    # A Gemini thought signature on the call has no chat field: dropped.
    if call.kind == "custom":
        wire = {"id": call.id, "type": "custom", "custom": {"name": call.name, "input": call.arguments}}
    else:
        wire = {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
    return _with_extras(wire, call.extras)


def _encode_assistant(message: ir.Message) -> dict[str, Any]:
    fields, aside = _saved(message.extras)
    texts = [_with_extras({"type": "text", "text": p.text}, p.extras) for p in message.parts if isinstance(p, ir.Text)]
    content = _content(texts, aside) if texts or aside else None
    wire: dict[str, Any] = {"role": "assistant", "content": content}
    # Thinking text needs no signature here, so foreign thinking is sent as text and its
    # signature dropped; redacted thinking is nothing but a signature, so it goes entirely.
    reasoning = [p.text for p in message.parts if isinstance(p, ir.Thinking) and not p.redacted and p.text]
    if reasoning:
        wire["reasoning_content"] = "\n\n".join(reasoning)
    calls = [_encode_tool_call(p) for p in message.parts if isinstance(p, ir.ToolCall)]
    if calls:
        wire["tool_calls"] = calls
    elif content is None:
        wire["content"] = ""  # an assistant message needs content or tool calls
    wire.update(fields)
    return wire


def _encode_user(message: ir.Message) -> list[dict[str, Any]]:
    """Tool results become ``tool`` messages first; the rest follows as one ``user`` message."""
    out: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ir.ToolResult):
            fields, aside = _saved(part.extras)
            texts = [_with_extras({"type": "text", "text": p.text}, p.extras)
                     for p in part.content if isinstance(p, ir.Text)]
            content = _content(texts, aside) if texts or aside else ""
            # is_error has no chat field (the text says it); images are not allowed in tool
            # messages on OpenAI, so they move to the user message that follows.
            out.append({"role": "tool", "tool_call_id": part.call_id, "content": content, **fields})
            rest.extend(w for p in part.content if not isinstance(p, ir.Text) and (w := _encode_part(p)))
        else:
            wire = _encode_part(part)
            if wire is not None:
                rest.append(wire)
    fields, aside = _saved(message.extras)
    has_results = bool(out)
    if rest or aside or not has_results:
        content = _content(rest, aside) if rest or aside else ""
        out.append({"role": "user", "content": content, **fields})
    return out


def _wire_effort(thinking: ir.ThinkingConfig) -> str | None:
    if not thinking.enabled:
        return "none"
    if thinking.effort is not None:
        effort = thinking.effort
    elif thinking.budget is not None:
        effort = ir.effort_for_budget(thinking.budget)
    else:
        return None
    return EFFORT_TO_WIRE.get(effort, effort)


def _encode_tools(request: ir.Request) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for tool in request.tools:
        if tool.kind == "function":
            fn: dict[str, Any] = {"name": tool.name}
            if tool.description is not None:
                fn["description"] = tool.description
            if tool.parameters is not None:
                fn["parameters"] = tool.parameters
            if tool.strict is not None:
                fn["strict"] = tool.strict
            tools.append(_with_extras({"type": "function", "function": fn}, tool.extras))
        elif tool.kind == "custom":
            raw = tool.raw or {}
            if isinstance(raw.get("custom"), dict):
                tools.append(raw)  # already chat-shaped
            else:
                # Responses puts name/description/format at the top; chat nests them under "custom".
                custom: dict[str, Any] = {"name": tool.name}
                if tool.description is not None:
                    custom["description"] = tool.description
                if "format" in raw:
                    custom["format"] = raw["format"]
                tools.append({"type": "custom", "custom": custom})
        elif _mine(tool.extras).get("builtin") and tool.raw is not None:
            tools.append(tool.raw)
        # Other built-in tools (web_search...) belong to their own dialect: dropped.
    return tools


def _encode_request(request: ir.Request) -> dict[str, Any]:
    extensions = dict(request.extensions.get(NAME) or {})
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append(_text_message("system", request.system, {}))
    for message in request.messages:
        if message.role == "system":
            messages.append(_text_message("system", [p for p in message.parts if isinstance(p, ir.Text)],
                                          message.extras))
        elif message.role == "assistant":
            messages.append(_encode_assistant(message))
        else:
            messages.extend(_encode_user(message))
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    tools = _encode_tools(request)
    # OpenAI rejects tool_choice / parallel_tool_calls without tools.
    if tools:
        body["tools"] = tools
        choice = request.tool_choice
        if choice is not None:
            if choice.mode == "tool":
                kind = next((t.kind for t in request.tools if t.name == choice.name), "function")
                kind = "custom" if kind == "custom" else "function"
                body["tool_choice"] = {"type": kind, kind: {"name": choice.name}}
            else:
                body["tool_choice"] = choice.mode
            if choice.parallel is not None:
                body["parallel_tool_calls"] = choice.parallel
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens  # max_completion_tokens is OpenAI-only; Qwen wants max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = list(request.stop)
    if request.thinking is not None:
        # A Qwen client's own enable_thinking/thinking_budget travel in extensions; Qwen
        # refuses reasoning_effort next to thinking_budget, so add it only if the client did.
        qwen_native = any(k in extensions for k in _QWEN_THINKING)
        effort = _wire_effort(request.thinking)
        if effort is not None and (not qwen_native or request.thinking.effort is not None):
            body["reasoning_effort"] = effort
    fmt = request.response_format
    if fmt is not None:
        if fmt.type == "json_schema":
            spec: dict[str, Any] = {"name": fmt.name or "response", "schema": fmt.schema or {}}
            if fmt.strict is not None:
                spec["strict"] = fmt.strict
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
        else:
            body["response_format"] = {"type": fmt.type}
    user = request.metadata.get("user_id")
    if isinstance(user, str):
        body["user"] = user
    options = extensions.pop("stream_options", None)
    if request.stream:
        # Always ask for usage: the gateway needs it even when the client did not.
        body["stream"] = True
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    # What the IR could not say came from a chat client: it goes back as sent.
    body.update(extensions)
    return body


# -- response -----------------------------------------------------------------


def _pick_choice(choices: Any) -> dict[str, Any] | None:
    """Choice 0 (n > 1 is not translated)."""
    if not isinstance(choices, list):
        return None
    candidates = [c for c in choices if isinstance(c, dict)]
    return next((c for c in candidates if c.get("index", 0) == 0), candidates[0] if candidates else None)


def _stop_reason(finish: Any, has_calls: bool) -> str:
    stop = FINISH_TO_STOP.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
    # Some servers say "stop" after emitting tool calls; the calls are what matters.
    return "tool_use" if has_calls and stop == "end_turn" else stop


def _decode_response(body: Any) -> ir.Response:
    if not isinstance(body, dict):
        raise DialectError("upstream response is not a JSON object", status=502)
    if body.get("error") is not None and "choices" not in body:
        raise DialectError(f"upstream returned an error: {_error_fields(body)[0] or 'unknown'}", status=502)
    choice = _pick_choice(body.get("choices")) or {}
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    parts: list[ir.Part] = []
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.append(ir.Thinking(text=reasoning, origin=NAME))
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append(ir.Text(text=content))
    elif isinstance(content, list):
        parts.extend(ir.Text(text=p["text"]) for p in content
                     if isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"])
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(ir.Text(text=refusal, extras={NAME: {"refusal": True}}))
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        if not isinstance(call, dict):
            continue
        custom = call.get("type") == "custom"
        fn = call.get("custom" if custom else "function")
        fn = fn if isinstance(fn, dict) else {}
        name = fn.get("name")
        args = fn.get("input" if custom else "arguments")
        parts.append(ir.ToolCall(
            id=call.get("id") if isinstance(call.get("id"), str) else _new_id("call_"),
            name=name if isinstance(name, str) else "",
            arguments=args if isinstance(args, str) else (dumps(args).decode() if isinstance(args, dict) else ""),
            kind="custom" if custom else "function",
        ))
    has_calls = any(isinstance(p, ir.ToolCall) for p in parts)
    extensions = {k: v for k, v in body.items() if k not in ("id", "object", "model", "choices", "usage")}
    choice_rest = {k: v for k, v in choice.items()
                   if k not in ("index", "message", "finish_reason", "delta") and v is not None}
    message_rest = {k: v for k, v in message.items()
                    if k not in ("role", "content", "reasoning_content", "refusal", "tool_calls") and v is not None}
    if choice_rest:
        extensions["choice"] = choice_rest
    if message_rest:
        extensions["message"] = message_rest
    return ir.Response(
        id=body.get("id") if isinstance(body.get("id"), str) else "",
        model=body.get("model") if isinstance(body.get("model"), str) else "",
        parts=parts,
        stop_reason=_stop_reason(choice.get("finish_reason"), has_calls),
        usage=decode_usage(body.get("usage")),
        extensions={NAME: extensions} if extensions else {},
    )


def _encode_response(response: ir.Response) -> dict[str, Any]:
    extensions = dict(response.extensions.get(NAME) or {})
    texts = [p for p in response.parts if isinstance(p, ir.Text)]
    answer = [p.text for p in texts if not _mine(p.extras).get("refusal")]
    refusal = [p.text for p in texts if _mine(p.extras).get("refusal")]
    calls = [_encode_tool_call(p) for p in response.parts if isinstance(p, ir.ToolCall)]
    message: dict[str, Any] = {
        "role": "assistant",
        # null next to tool calls, as OpenAI does; "" otherwise because clients call .strip() on it.
        "content": "".join(answer) if answer or not calls else None,
        "refusal": "".join(refusal) if refusal else None,
    }
    # Chat has no signature field: thinking signatures (any origin) cannot be returned.
    reasoning = "".join(p.text for p in response.parts if isinstance(p, ir.Thinking) and not p.redacted)
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = calls
    finish = "tool_calls" if calls else STOP_TO_FINISH.get(response.stop_reason or "end_turn", "stop")
    choice: dict[str, Any] = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    for key, target in (("message", message), ("choice", choice)):
        saved = extensions.pop(key, None)
        if isinstance(saved, dict):
            for k, v in saved.items():
                target.setdefault(k, v)
    created = extensions.pop("created", None)
    body: dict[str, Any] = {
        "id": _chat_id(response.id),
        "object": "chat.completion",
        "created": created if is_int(created) else int(time.time()),
        "model": response.model,
        "choices": [choice],
        "usage": encode_usage(response.usage),
    }
    for key, value in extensions.items():
        body.setdefault(key, value)
    return body


# -- errors -------------------------------------------------------------------


def _error_fields(body: Any) -> tuple[str | None, str | None, str | None]:
    """(message, code, type) from any of the error shapes chat-like servers send."""
    if isinstance(body, list) and body:  # some proxies wrap the error object in an array
        body = body[0]
    return openai_errors.error_fields(body)


def _error_info(status: int, message: str | None, code: str | None, type_: str | None) -> ir.ErrorInfo:
    kind = ir.error_kind_for_status(status)
    # Qwen's exhausted quota (403 or 429) is a rate limit; CPA's own 403 body also says
    # insufficient_quota but with type permission_error, and stays a permission fault.
    if type_ in _QUOTA_CODES or (code in _QUOTA_CODES and type_ is None):
        kind = "rate_limit"
    text = message or f"upstream returned HTTP {status}"
    return ir.ErrorInfo(status=status, message=text, kind=kind, code=code,
                        retry_after=retry_hint_in_text(text))


def _stream_error(payload: dict[str, Any]) -> ir.ErrorInfo:
    """An in-stream ``{"error":{...}}``: no HTTP status, so infer one from its code/type."""
    message, code, type_ = _error_fields(payload)
    err = payload.get("error")
    numeric = err.get("code") if isinstance(err, dict) else None
    # vLLM puts the HTTP status in error.code; otherwise the code/type names one.
    status = numeric if is_int(numeric) and 400 <= numeric <= 599 else openai_errors.status_for_code(code, type_, 500)
    return _error_info(status, message or "upstream stream error", code, type_)


# -- streams ------------------------------------------------------------------


class ChatStreamDecoder:
    """Chat completion chunks (SSE, ``[DONE]``-terminated) → IR events."""

    def __init__(self) -> None:
        self.finished = False
        self._parser = SSEParser()
        self._started = False
        self._next_index = 0
        self._open_kind: str | None = None  # "text" | "thinking" block currently open
        self._open_index = -1
        self._tools: dict[Any, int] = {}  # upstream tool-call key → IR block index
        self._tool_ids: dict[int, str] = {}
        self._open_tools: list[int] = []
        self._stop: str | None = None
        self._usage: ir.Usage | None = None

    def feed(self, data: bytes) -> list[ir.Event]:
        """Consume bytes split anywhere; return the events they complete."""
        events: list[ir.Event] = []
        if self.finished:
            return events
        for sse in self._parser.feed(data):
            self._handle(sse.data, events)
            if self.finished:
                break
        return events

    def close(self) -> list[ir.Event]:
        """EOF: flush; a stream that had its finish_reason but no ``[DONE]`` still ends normally."""
        events: list[ir.Event] = []
        if not self.finished:
            for sse in self._parser.close():
                self._handle(sse.data, events, at_eof=True)
        if not self.finished and self._stop is not None:
            self._finish(events)
        return events

    def _handle(self, data: str, events: list[ir.Event], at_eof: bool = False) -> None:
        payload = data.strip()
        if not payload or self.finished:
            return
        if payload == "[DONE]":
            self._finish(events)
            return
        try:
            chunk = loads(payload)
        except ValueError:
            if at_eof:
                return  # the body broke off mid-frame: a cut, which the core reports itself
            # A chunk we cannot read may have held content: fail loudly rather than lose it.
            events.append(ir.StreamError(ir.ErrorInfo(status=502, message="upstream sent a malformed stream chunk")))
            self.finished = True
            return
        if not isinstance(chunk, dict):
            return
        if chunk.get("error") is not None:
            events.append(ir.StreamError(_stream_error(chunk)))
            self.finished = True
            return
        choice = _pick_choice(chunk.get("choices"))
        usage = chunk.get("usage")
        if choice is None and not isinstance(usage, dict):
            return
        self._start(chunk, events)
        if isinstance(usage, dict):
            self._usage = decode_usage(usage)  # cumulative: the latest figure wins
        if choice is None:
            return
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._delta(delta, events)
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish:
            # Usage may still follow, so the message ends at [DONE]; the blocks end now.
            self._stop = _stop_reason(finish, bool(self._tool_ids))
            self._close_all(events)

    def _start(self, chunk: dict[str, Any], events: list[ir.Event]) -> None:
        if not self._started:
            self._started = True
            cid, model = chunk.get("id"), chunk.get("model")
            events.append(ir.MessageStart(id=cid if isinstance(cid, str) else "",
                                          model=model if isinstance(model, str) else ""))

    def _delta(self, delta: dict[str, Any], events: list[ir.Event]) -> None:
        reasoning = delta.get("reasoning_content")
        if not isinstance(reasoning, str):
            reasoning = delta.get("reasoning")  # vLLM / OpenRouter spelling
        if isinstance(reasoning, str) and reasoning:
            self._text("thinking", reasoning, events)
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._text("text", content, events)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                if isinstance(call, dict):
                    self._tool(call, position, events)

    def _text(self, kind: str, text: str, events: list[ir.Event]) -> None:
        if self._open_kind != kind:
            self._close_text(events)
            self._open_kind, self._open_index = kind, self._new_block()
            events.append(ir.BlockStart(self._open_index, kind))  # type: ignore[arg-type]
        events.append(ir.BlockDelta(self._open_index, kind, text))  # type: ignore[arg-type]

    def _tool(self, call: dict[str, Any], position: int, events: list[ir.Event]) -> None:
        custom = call.get("type") == "custom" or isinstance(call.get("custom"), dict)
        body = call.get("custom" if custom else "function")
        body = body if isinstance(body, dict) else {}
        call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
        key: Any = call.get("index") if is_int(call.get("index")) else ("pos", position)
        index = self._tools.get(key)
        if index is not None and call_id is not None and call_id != self._tool_ids[index]:
            # Some servers reuse index 0 for every parallel call; a new id means a new call
            # (and id-less fragments after it belong to the newest one).
            index = None
        if index is None:
            self._close_text(events)
            index = self._new_block()
            self._tools[key] = index
            self._tool_ids[index] = call_id or _new_id("call_")
            self._open_tools.append(index)
            name = body.get("name")
            events.append(ir.BlockStart(index, "tool_call", id=self._tool_ids[index],
                                        name=name if isinstance(name, str) else "",
                                        tool_kind="custom" if custom else "function"))
        fragment = body.get("input" if custom else "arguments")
        if isinstance(fragment, (dict, list)):
            fragment = dumps(fragment).decode()  # some servers send the final arguments as an object
        if isinstance(fragment, str) and fragment:
            events.append(ir.BlockDelta(index, "arguments", fragment))

    def _new_block(self) -> int:
        index, self._next_index = self._next_index, self._next_index + 1
        return index

    def _close_text(self, events: list[ir.Event]) -> None:
        if self._open_kind is not None:
            events.append(ir.BlockStop(self._open_index))
            self._open_kind = None

    def _close_all(self, events: list[ir.Event]) -> None:
        self._close_text(events)
        events.extend(ir.BlockStop(i) for i in self._open_tools)
        self._open_tools.clear()

    def _finish(self, events: list[ir.Event]) -> None:
        self._start({}, events)
        self._close_all(events)
        stop = self._stop or _stop_reason(None, bool(self._tool_ids))
        events.append(ir.MessageDelta(stop_reason=stop, usage=self._usage))
        events.append(ir.MessageStop())
        self.finished = True


class ChatStreamEncoder:
    """IR events → chat completion chunks (SSE with ``[DONE]``, or one JSON object per line)."""

    def __init__(self, request: ir.Request, *, sse: bool = True) -> None:
        self._model = request.model
        self._include_usage = request.include_usage
        self._sse = sse
        self._id = ""
        self._created = int(time.time())
        self._started = False
        self._done = False
        self._finish_sent = False
        self._calls: dict[int, int] = {}  # IR block index → position among tool calls
        self._stop: str | None = None
        self._usage = ir.Usage()

    def encode(self, event: ir.Event) -> bytes:
        """Frames for one event."""
        if self._done:
            return b""
        out: list[dict[str, Any]] = []
        if isinstance(event, ir.StreamError):
            self._done = True
            return self._write([{"error": openai_errors.error_object(event.error, with_param=False)}])
        if not self._started:
            self._started = True
            self._id = _chat_id(event.id if isinstance(event, ir.MessageStart) else None)
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if isinstance(event, ir.MessageStart):
            if event.usage is not None:
                self._usage = merge_usage(self._usage, event.usage)
        elif isinstance(event, ir.BlockStart):
            if event.kind == "tool_call":
                out.append(self._call_start(event.index, event.id, event.name, event.tool_kind))
        elif isinstance(event, ir.BlockDelta):
            out.extend(self._delta(event))
        elif isinstance(event, ir.MessageDelta):
            if event.usage is not None:
                self._usage = merge_usage(self._usage, event.usage)
            if event.stop_reason is not None:
                self._stop = event.stop_reason
                out.extend(self._finish_chunk())
        elif isinstance(event, ir.MessageStop):
            out.extend(self._finish_chunk())
            if self._include_usage:
                out.append({"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                            "model": self._model, "choices": [], "usage": encode_usage(self._usage)})
            self._done = True
            return self._write(out) + (b"data: [DONE]\n\n" if self._sse else b"")
        return self._write(out)

    def finish(self) -> bytes:
        """Chat framing needs nothing after the terminal frame."""
        return b""

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self._include_usage:
            chunk["usage"] = None  # §2.2: every chunk but the usage one says null
        return chunk

    def _call_start(self, index: int, call_id: str | None, name: str | None, kind: str) -> dict[str, Any]:
        position = self._calls[index] = len(self._calls)
        call: dict[str, Any] = {"index": position, "id": call_id or _new_id("call_")}
        if kind == "custom":
            call.update(type="custom", custom={"name": name or "", "input": ""})
        else:
            call.update(type="function", function={"name": name or "", "arguments": ""})
        return self._chunk({"tool_calls": [call]})

    def _delta(self, event: ir.BlockDelta) -> list[dict[str, Any]]:
        if not event.text or event.kind == "signature":
            return []  # chat has no place for signatures
        if event.kind == "text":
            return [self._chunk({"content": event.text})]
        if event.kind == "thinking":
            return [self._chunk({"reasoning_content": event.text})]
        out = []
        if event.index not in self._calls:  # arguments without a start: announce the call first
            out.append(self._call_start(event.index, None, None, "function"))
        out.append(self._chunk({"tool_calls": [{"index": self._calls[event.index],
                                                "function": {"arguments": event.text}}]}))
        return out

    def _finish_chunk(self) -> list[dict[str, Any]]:
        if self._finish_sent:
            return []
        self._finish_sent = True
        finish = "tool_calls" if self._calls else STOP_TO_FINISH.get(self._stop or "end_turn", "stop")
        return [self._chunk({}, finish)]

    def _write(self, objects: list[dict[str, Any]]) -> bytes:
        if self._sse:
            return b"".join(frame(dumps(o)) for o in objects)
        return b"".join(dumps(o) + b"\n" for o in objects)


# -- the dialect --------------------------------------------------------------


class OpenAIChatDialect:
    """OpenAI Chat Completions, both directions (see the module docstring)."""

    name = NAME
    keepalive_frame = b": keep-alive\n\n"
    marker_headers: tuple[str, ...] = ()
    model_in_body: bool = True
    forwarded_headers: tuple[str, ...] = ()
    prompt_fields: tuple[str, ...] = ("messages", "tools")

    def claims_path(self, path: str) -> bool:
        """``/v1/chat/completions``."""
        return path.startswith("/v1/chat")

    def auth_headers(self, secret: str) -> dict[str, str]:
        """``Authorization: Bearer`` (https://platform.openai.com/docs/api-reference/authentication)."""
        return bearer_auth(secret)

    def upstream_path(self, model: str, stream: bool) -> str:
        """``/chat/completions`` under the ``/v1`` base: model and stream flag travel in the body."""
        return "/chat/completions"

    def passes_through(self, stream: bool, sse: bool) -> bool:
        """Always: Chat Completions streams only SSE."""
        return True

    def shape_problem(self, data: dict[str, Any]) -> str | None:
        """``messages`` must be an array."""
        return content_field_problem(data, "messages", (list,))

    def frame_kind(self, event: SSEEvent) -> tuple[bool, bool]:
        """``data: [DONE]`` ends a stream; a chunk that is an ``{"error": ...}`` object ends it failed."""
        if event.data == "[DONE]":
            return True, False
        is_error = event.data.startswith('{"error"')
        return is_error, is_error

    def passthrough_error_frame(self, error: ir.ErrorInfo) -> bytes:
        """An unnamed ``data:`` frame holding the error body, as OpenAI sends mid-stream."""
        return json_error_frame(self, error)

    def token_count_body(self, tokens: int) -> dict[str, Any]:
        """Chat has no token-count endpoint of its own: ``{"input_tokens": n}`` like its siblings."""
        return {"input_tokens": tokens}

    def models_body(self, models: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """OpenAI's ``{"object": "list", "data": [...]}``."""
        return openai_models_body(models)

    def model_entry(self, model: str, owner: str) -> dict[str, Any]:
        """One OpenAI ``model`` object."""
        return openai_model_entry(model, owner)

    def decode_request(self, body: Any) -> ir.Request:
        """Client body → IR request; any fault is a :class:`DialectError`."""
        with reraise_as_dialect_error("invalid chat completions request"):
            return _decode_request(body)

    def encode_request(self, request: ir.Request) -> dict[str, Any]:
        """IR request → upstream chat completions body."""
        return _encode_request(request)

    def decode_response(self, body: Any) -> ir.Response:
        """Upstream chat completion → IR response; unreadable bodies are a 502 DialectError."""
        with reraise_as_dialect_error("unreadable chat completions response", status=502):
            return _decode_response(body)

    def encode_response(self, response: ir.Response) -> dict[str, Any]:
        """IR response → ``chat.completion`` body."""
        return _encode_response(response)

    def stream_decoder(self) -> ChatStreamDecoder:
        """A fresh decoder for one upstream stream."""
        return ChatStreamDecoder()

    def stream_encoder(self, request: ir.Request, *, sse: bool = True) -> ChatStreamEncoder:
        """A fresh encoder for one client stream."""
        return ChatStreamEncoder(request, sse=sse)

    def decode_error(self, status: int, body: bytes) -> ir.ErrorInfo:
        """Upstream error body (OpenAI, DashScope, vLLM shapes, or garbage) → canonical error."""
        if isinstance(body, (bytes, bytearray, memoryview)):
            raw = bytes(body)
        else:
            raw = body.encode() if isinstance(body, str) else b""
        try:
            parsed = loads(raw) if raw.strip() else None
        except ValueError:
            parsed = None
        message, code, type_ = _error_fields(parsed)
        if message is None:
            message = raw.decode("utf-8", errors="replace").strip()[:1000] or None
        return _error_info(status, message, code, type_)

    def error_body(self, error: ir.ErrorInfo) -> dict[str, Any]:
        """Canonical error → ``{"error":{"message","type","param","code"}}``."""
        return {"error": openai_errors.error_object(error)}


DIALECT = OpenAIChatDialect()
