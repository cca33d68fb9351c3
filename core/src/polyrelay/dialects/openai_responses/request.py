"""Responses request bodies ↔ IR requests."""

from __future__ import annotations

from typing import Any

from polyrelay import ir
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.fields import ARRAY, BOOLEAN, NUMBER, OBJECT, STRING, dict_or_empty, field, token_count
from polyrelay.dialects.openai_responses.items import (
    InputReader,
    encode_content,
    merge_missing,
    message_item,
    own_extras,
    parts_to_items,
    read_extras,
    unknown_keys,
)
from polyrelay.dialects.openai_responses.wire import EFFORT_TO_WIRE, NAME, REQUEST_FIELDS


def _decode_tool(raw: Any, where: str) -> ir.Tool:
    if not isinstance(raw, dict):
        raise DialectError(f"{where} must be an object")
    kind = field(raw, "type", STRING, f"{where}.", required=True)
    if kind == "function":
        tool = ir.Tool(
            name=field(raw, "name", STRING, f"{where}.", required=True),
            description=field(raw, "description", STRING, f"{where}."),
            parameters=field(raw, "parameters", OBJECT, f"{where}."),
            strict=field(raw, "strict", BOOLEAN, f"{where}."),
        )
        rest = unknown_keys(raw, ("type", "name", "description", "parameters", "strict"))
        if rest:
            own_extras(tool)["tool"] = rest
        return tool
    # custom (grammar) tools and built-ins: kept whole, marked as ours so that
    # only this dialect's encoder re-emits the raw form.
    name = raw.get("name")
    description = raw.get("description")
    tool = ir.Tool(
        name=name if isinstance(name, str) else kind,
        description=description if isinstance(description, str) else None,
        kind=kind,
        raw=raw,
    )
    own_extras(tool)["native"] = True
    return tool


def _decode_tool_choice(body: dict[str, Any], ext: dict[str, Any]) -> ir.ToolChoice | None:
    raw = body.get("tool_choice")
    parallel = field(body, "parallel_tool_calls", BOOLEAN)
    choice: ir.ToolChoice | None = None
    if isinstance(raw, str):
        if raw not in ("auto", "none", "required"):
            raise DialectError("tool_choice must be auto, none, required or an object")
        choice = ir.ToolChoice(mode=raw)  # type: ignore[arg-type]
    elif isinstance(raw, dict):
        kind = field(raw, "type", STRING, "tool_choice.", required=True)
        if kind in ("function", "custom"):
            choice = ir.ToolChoice(mode="tool", name=field(raw, "name", STRING, "tool_choice.", required=True))
        else:  # hosted tool / allowed_tools: kept whole for a Responses upstream
            ext["tool_choice"] = raw
            choice = ir.ToolChoice(mode="auto" if raw.get("mode") == "auto" else "required")
    elif raw is not None:
        raise DialectError("tool_choice must be a string or an object")
    if parallel is not None:
        choice = choice or ir.ToolChoice()
        choice.parallel = parallel
    return choice


def decode_request_body(body: dict[str, Any]) -> ir.Request:
    model = field(body, "model", STRING, required=True)
    ext = unknown_keys(body, tuple(REQUEST_FIELDS))
    reader = InputReader()
    instructions = field(body, "instructions", STRING)
    if instructions:
        reader.system.append(ir.Text(instructions))
    source = body.get("input")
    if isinstance(source, str):
        source = [{"type": "message", "role": "user", "content": source}]
    if source is not None and not isinstance(source, list):
        raise DialectError("input must be a string or an array of items")
    reader.read(source or [])

    request = ir.Request(model=model, messages=reader.messages, system=reader.system)
    request.tools = [_decode_tool(t, f"tools[{i}]") for i, t in enumerate(field(body, "tools", ARRAY) or [])]
    request.tool_choice = _decode_tool_choice(body, ext)

    reasoning = field(body, "reasoning", OBJECT)
    if reasoning is not None:
        effort = field(reasoning, "effort", STRING, "reasoning.")
        summary = field(reasoning, "summary", STRING, "reasoning.")
        request.thinking = ir.ThinkingConfig(
            enabled=effort != "none",
            effort=effort,
            summary=summary,
            # No summary asked means no reasoning text wanted: say so, so that
            # other encoders do not read the silence as "show thoughts".
            include_thoughts=summary is not None and summary != "none",
        )
        if rest := unknown_keys(reasoning, ("effort", "summary")):
            ext["reasoning"] = rest

    text = field(body, "text", OBJECT)
    if text is not None:
        fmt = field(text, "format", OBJECT, "text.")
        rest = unknown_keys(text, ("format",))
        if fmt is not None:
            ftype = field(fmt, "type", STRING, "text.format.", required=True)
            if ftype in ("text", "json_object", "json_schema"):
                request.response_format = ir.ResponseFormat(
                    type=ftype,
                    name=field(fmt, "name", STRING, "text.format."),
                    schema=field(fmt, "schema", OBJECT, "text.format."),
                    strict=field(fmt, "strict", BOOLEAN, "text.format."),
                )
                fmt = unknown_keys(fmt, ("type", "name", "schema", "strict"))
            if fmt:
                rest["format"] = fmt
        if rest:
            ext["text"] = rest

    request.max_tokens = token_count(body.get("max_output_tokens"), "max_output_tokens")
    request.temperature = field(body, "temperature", NUMBER)
    request.top_p = field(body, "top_p", NUMBER)
    request.metadata = field(body, "metadata", OBJECT) or {}
    request.stream = bool(field(body, "stream", BOOLEAN))
    if ext:
        request.extensions[NAME] = ext
    return request


def _encode_tool(tool: ir.Tool) -> dict[str, Any] | None:
    x = read_extras(tool)
    if x.get("native") and isinstance(tool.raw, dict):
        return tool.raw
    if tool.kind == "function":
        out: dict[str, Any] = {"type": "function", "name": tool.name}
        if tool.description:
            out["description"] = tool.description
        out["parameters"] = tool.parameters or {"type": "object", "properties": {}}
        # Responses treats a missing strict as true, which rejects most schemas
        # written for other dialects; unknown means not strict.
        out["strict"] = bool(tool.strict)
        return merge_missing(out, dict_or_empty(x.get("tool")))
    if tool.kind == "custom":
        out = {"type": "custom", "name": tool.name}
        if tool.description:
            out["description"] = tool.description
        return out
    return None  # another dialect's built-in tool has no Responses equivalent


def _encode_reasoning(thinking: ir.ThinkingConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    effort = thinking.effort
    if not thinking.enabled:
        effort = "none"
    elif effort is None and thinking.budget is not None:
        effort = ir.effort_for_budget(thinking.budget)
    effort = EFFORT_TO_WIRE.get(effort, effort) if effort is not None else None
    if effort is not None:
        out["effort"] = effort
    # Unsaid (None) means a dialect that shows thoughts whenever thinking is
    # on (Anthropic, Gemini): ask for a summary, or the client gets no thinking.
    show = thinking.include_thoughts
    if show is None:
        show = thinking.enabled and effort != "none"
    summary = thinking.summary or ("auto" if show else None)
    if summary is not None:
        out["summary"] = summary
    return out


def encode_request_body(request: ir.Request) -> dict[str, Any]:
    ext = dict(request.extensions.get(NAME) or {})
    body: dict[str, Any] = {"model": request.model}
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for text in request.system:
        x = read_extras(text)
        if "item" in x:  # came from a developer/system input message: keep it one
            current = message_item(dict_or_empty(x["item"]), "developer", [])
            items.append(current)
        if current is None:
            instructions.append(text.text)
        else:
            current["content"].append(encode_content(text, "input_text"))
    for message in request.messages:
        items.extend(parts_to_items(message.parts, message.role, read_extras(message).get("items"), for_client=False))
    if instructions:
        body["instructions"] = "\n\n".join(instructions)
    body["input"] = items

    tools = [t for t in map(_encode_tool, request.tools) if t is not None]
    if tools:
        body["tools"] = tools
    hosted_choice = ext.pop("tool_choice", None)
    choice = request.tool_choice
    if choice is not None:
        if isinstance(hosted_choice, dict) and choice.mode in ("auto", "required"):
            body["tool_choice"] = hosted_choice
        elif choice.mode == "tool":
            custom = any(t.name == choice.name and t.kind == "custom" for t in request.tools)
            body["tool_choice"] = {"type": "custom" if custom else "function", "name": choice.name}
        else:
            body["tool_choice"] = choice.mode
        if choice.parallel is not None:
            body["parallel_tool_calls"] = choice.parallel
    if request.thinking is not None:
        body["reasoning"] = _encode_reasoning(request.thinking)
    for key, value in (("max_output_tokens", request.max_tokens), ("temperature", request.temperature),
                       ("top_p", request.top_p)):
        if value is not None:
            body[key] = value
    fmt = request.response_format
    if fmt is not None:
        wire: dict[str, Any] = {"type": fmt.type}
        if fmt.type == "json_schema":
            wire["name"] = fmt.name or "response"
            wire["schema"] = fmt.schema or {}
            if fmt.strict is not None:
                wire["strict"] = fmt.strict
        body["text"] = {"format": wire}
    if request.metadata:
        body["metadata"] = request.metadata
    body["stream"] = request.stream
    return merge_missing(body, ext)
