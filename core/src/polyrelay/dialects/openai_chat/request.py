"""Chat Completions request bodies (messages and options) ↔ IR requests."""

from __future__ import annotations

from typing import Any

from polyrelay import ir
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.fields import ARRAY, BOOLEAN, NUMBER, OBJECT, STRING, field, thinking_budget, token_count
from polyrelay.dialects.openai_chat.content import (
    content_value,
    decode_content,
    encode_part,
    saved_extras,
    tag,
    unknown_keys,
    with_extras,
)
from polyrelay.dialects.openai_chat.tools import (
    decode_tool_call,
    decode_tool_choice,
    decode_tools,
    encode_tool_call,
    encode_tools,
)
from polyrelay.dialects.openai_chat.wire import EFFORT_TO_WIRE, MESSAGE_FIELDS, NAME, QWEN_THINKING, REQUEST_FIELDS


def _message_extras(message: dict[str, Any], role: str, aside: list[dict[str, Any]]) -> dict[str, Any]:
    saved: dict[str, Any] = {}
    fields = {k: v for k, v in message.items() if k not in MESSAGE_FIELDS[role]}
    if fields:
        saved["fields"] = fields
    if aside:
        saved["extra_parts"] = aside
    return tag(saved)


def _decode_messages(raw: list[Any], request: ir.Request) -> None:
    leading = True  # system/developer messages before any other go to request.system
    tool_group: ir.Message | None = None  # consecutive tool messages share one user message
    calls: dict[str, ir.ToolCall] = {}  # so results know their function's name (Gemini needs it)
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise DialectError(f"{where} must be an object")
        role = message.get("role")
        if role not in MESSAGE_FIELDS:
            raise DialectError(f"{where}.role must be one of system, developer, user, assistant, tool")
        if role != "assistant" and message.get("content") is None:
            raise DialectError(f"{where}.content is required for role {role}")
        parts, aside = decode_content(message.get("content"), where)
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
                call = decode_tool_call(raw_call, f"{where}.tool_calls[{j}]")
                calls[call.id] = call
                out.append(call)
        else:
            out.extend(parts)
        request.messages.append(ir.Message(role=role, parts=out, extras=_message_extras(message, role, aside)))


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
    if unknown_keys(raw, {"type", "json_schema"}, "json_schema", known_inner):
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


def decode_request_body(body: Any) -> ir.Request:
    if not isinstance(body, dict):
        raise DialectError("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise DialectError("model is required and must be a non-empty string")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise DialectError("messages is required and must be a non-empty array")
    extensions = {k: v for k, v in body.items() if k not in REQUEST_FIELDS}
    extensions.update({k: body[k] for k in QWEN_THINKING if body.get(k) is not None})
    request = ir.Request(model=model)
    _decode_messages(messages, request)
    if not request.messages and not request.system:
        raise DialectError("messages has no content")
    request.tools = decode_tools(body.get("tools"))
    request.tool_choice = decode_tool_choice(body, extensions)
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


def _text_message(role: str, texts: list[ir.Text], extras: dict[str, Any]) -> dict[str, Any]:
    fields, aside = saved_extras(extras)
    content = content_value([with_extras({"type": "text", "text": t.text}, t.extras) for t in texts], aside)
    return {"role": role, "content": content, **fields}


def _encode_assistant(message: ir.Message) -> dict[str, Any]:
    fields, aside = saved_extras(message.extras)
    texts = [with_extras({"type": "text", "text": p.text}, p.extras) for p in message.parts if isinstance(p, ir.Text)]
    content = content_value(texts, aside) if texts or aside else None
    wire: dict[str, Any] = {"role": "assistant", "content": content}
    # Thinking text needs no signature here, so foreign thinking is sent as text and its
    # signature dropped; redacted thinking is nothing but a signature, so it goes entirely.
    reasoning = [p.text for p in message.parts if isinstance(p, ir.Thinking) and not p.redacted and p.text]
    if reasoning:
        wire["reasoning_content"] = "\n\n".join(reasoning)
    calls = [encode_tool_call(p) for p in message.parts if isinstance(p, ir.ToolCall)]
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
            fields, aside = saved_extras(part.extras)
            texts = [with_extras({"type": "text", "text": p.text}, p.extras)
                     for p in part.content if isinstance(p, ir.Text)]
            content = content_value(texts, aside) if texts or aside else ""
            # is_error has no chat field (the text says it); images are not allowed in tool
            # messages on OpenAI, so they move to the user message that follows.
            out.append({"role": "tool", "tool_call_id": part.call_id, "content": content, **fields})
            rest.extend(w for p in part.content if not isinstance(p, ir.Text) and (w := encode_part(p)))
        else:
            wire = encode_part(part)
            if wire is not None:
                rest.append(wire)
    fields, aside = saved_extras(message.extras)
    has_results = bool(out)
    if rest or aside or not has_results:
        content = content_value(rest, aside) if rest or aside else ""
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


def encode_request_body(request: ir.Request) -> dict[str, Any]:
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
    tools = encode_tools(request)
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
        qwen_native = any(k in extensions for k in QWEN_THINKING)
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
