"""Gemini ``GenerateContentRequest`` bodies ↔ IR requests."""

from __future__ import annotations

from typing import Any

from polyrelay import ir
from polyrelay.dialects import fields
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.fields import BOOLEAN, STRING, checked
from polyrelay.dialects.gemini.content import decode_part, encode_parts, is_response
from polyrelay.dialects.gemini.protojson import camel, field_of, has_field, merge_missing, snake, unknown_keys
from polyrelay.dialects.gemini.schema import clean_schema
from polyrelay.dialects.gemini.wire import (
    GENERATION_KEYS,
    LEVEL_FOR_EFFORT,
    REQUEST_KEYS,
    ROLE_FROM_IR,
    ROLE_TO_IR,
    TOOL_MODE_FROM_IR,
    TOOL_MODE_TO_IR,
)


def decode_request_body(body: Any) -> ir.Request:
    if not isinstance(body, dict):
        raise DialectError("request body must be a JSON object")
    inner = field_of(body, "generateContentRequest")
    if inner is not None:  # countTokens wraps a whole generate request
        return decode_request_body(fields.obj(inner, "generateContentRequest", required=True))
    if not has_field(body, "contents"):
        raise DialectError("contents is required")
    request = ir.Request(model="")
    request.messages = _decode_contents(field_of(body, "contents"))
    request.system = _decode_system(field_of(body, "systemInstruction"))
    request.tools = _decode_tools(field_of(body, "tools"))
    ext = unknown_keys(body, REQUEST_KEYS)
    request.tool_choice = _decode_tool_config(field_of(body, "toolConfig"), ext)
    _decode_generation(request, fields.obj(field_of(body, "generationConfig"), "generationConfig"), ext)
    if ext:
        request.extensions[ir.GEMINI] = ext
    return request


def _decode_contents(value: Any) -> list[ir.Message]:
    if not isinstance(value, list):
        raise DialectError("contents must be an array")
    pending: list[tuple[str, str]] = []  # (id, name) of calls not answered yet, oldest first
    messages = []
    for ci, raw in enumerate(value):
        where = f"contents[{ci}]"
        content = fields.obj(raw, where, required=True)
        role = checked(content.get("role"), STRING, f"{where}.role") or "user"
        message = ir.Message(role=ROLE_TO_IR.get(role, "user"))  # type: ignore[arg-type]
        if role not in ("user", "model"):
            message.extras["gemini_role"] = role
        extra = unknown_keys(content, ("role", "parts"))
        if extra:
            message.extras["gemini"] = extra
        for pi, raw_part in enumerate(fields.arr(content.get("parts"), f"{where}.parts")):
            part = decode_part(raw_part, f"{where}.parts[{pi}]", f"{ci}_{pi}", pending)
            if part is None:  # executableCode etc.: kept raw, in place, for Gemini only
                message.extras.setdefault("gemini_parts", []).append([len(message.parts), raw_part])
            else:
                message.parts.append(part)
        messages.append(message)
    return messages


def _decode_system(value: Any) -> list[ir.Text]:
    if value is None:
        return []
    if isinstance(value, str):
        return [ir.Text(value)]
    system = fields.obj(value, "systemInstruction")
    texts = []
    for i, raw in enumerate(fields.arr(system.get("parts"), "systemInstruction.parts")):
        part = fields.obj(raw, f"systemInstruction.parts[{i}]", required=True)
        text = fields.field(part, "text", STRING, f"systemInstruction.parts[{i}]")
        if text is not None:  # non-text system parts have no IR meaning
            texts.append(ir.Text(text))
    return texts


def _decode_tools(value: Any) -> list[ir.Tool]:
    tools = []
    for i, raw in enumerate(fields.arr(value, "tools")):
        for key, body in fields.obj(raw, f"tools[{i}]", required=True).items():
            if camel(key) != "functionDeclarations":
                # googleSearch, codeExecution, urlContext...: built-ins, same-dialect only.
                kind = camel(key)
                tools.append(ir.Tool(name=kind, kind=kind, raw={kind: body}, extras={"gemini_builtin": True}))
                continue
            for j, decl in enumerate(fields.arr(body, f"tools[{i}].functionDeclarations")):
                where = f"tools[{i}].functionDeclarations[{j}]"
                decl = fields.obj(decl, where, required=True)
                name = checked(decl.get("name"), STRING, f"{where}.name")
                if not name:
                    raise DialectError(f"{where}.name is required")
                schema = field_of(decl, "parametersJsonSchema")
                if schema is None:
                    schema = decl.get("parameters")
                tool = ir.Tool(name=name, description=checked(decl.get("description"), STRING, f"{where}.description"),
                               parameters=fields.obj(schema, f"{where}.parameters") if schema is not None else None)
                extra = unknown_keys(decl, ("name", "description", "parameters", "parametersJsonSchema"))
                if extra:
                    tool.extras["gemini"] = extra
                tools.append(tool)
    return tools


def _decode_tool_config(value: Any, ext: dict[str, Any]) -> ir.ToolChoice | None:
    config = fields.obj(value, "toolConfig")
    if not config:
        return None
    calling = fields.obj(field_of(config, "functionCallingConfig"), "toolConfig.functionCallingConfig")
    mode = (checked(calling.get("mode"), STRING, "toolConfig.functionCallingConfig.mode") or "AUTO").upper()
    where = "toolConfig.functionCallingConfig"
    names = fields.arr(field_of(calling, "allowedFunctionNames"), f"{where}.allowedFunctionNames")
    if mode == "ANY" and len(names) == 1 and isinstance(names[0], str):
        choice = ir.ToolChoice(mode="tool", name=names[0])
    else:
        choice = ir.ToolChoice(mode=TOOL_MODE_TO_IR.get(mode, "auto"))  # type: ignore[arg-type]
    exact = (mode in ("AUTO", "NONE") and not names) or (mode == "ANY" and len(names) <= 1)
    exact = exact and not unknown_keys(config, ("functionCallingConfig",))
    if not exact or unknown_keys(calling, ("mode", "allowedFunctionNames")):
        ext["toolConfig"] = config  # VALIDATED, several names, retrievalConfig...: replayed to Gemini as sent
    return choice


def _decode_generation(request: ir.Request, config: dict[str, Any], ext: dict[str, Any]) -> None:
    where = "generationConfig"
    request.temperature = fields.number(config.get("temperature"), f"{where}.temperature")
    request.top_p = fields.number(field_of(config, "topP"), f"{where}.topP")
    request.top_k = fields.integer(field_of(config, "topK"), f"{where}.topK")
    request.max_tokens = fields.token_count(field_of(config, "maxOutputTokens"), f"{where}.maxOutputTokens")
    stops = fields.arr(field_of(config, "stopSequences"), f"{where}.stopSequences")
    request.stop = [s for s in stops if checked(s, STRING, f"{where}.stopSequences[]") is not None]
    leftovers = unknown_keys(config, GENERATION_KEYS)

    mime = checked(field_of(config, "responseMimeType"), STRING, f"{where}.responseMimeType")
    schema = field_of(config, "responseJsonSchema")
    if schema is None:
        schema = field_of(config, "responseSchema")
    schema = fields.obj(schema, f"{where}.responseSchema") if schema is not None else None
    if mime == "application/json":
        request.response_format = ir.ResponseFormat(type="json_schema" if schema else "json_object", schema=schema)
    elif mime == "text/plain" and schema is None:
        request.response_format = ir.ResponseFormat(type="text")
    elif mime is not None or schema is not None:  # text/x.enum and friends: Gemini only
        for key in ("responseMimeType", "responseSchema", "responseJsonSchema"):
            for spelling in (key, snake(key)):
                if spelling in config:
                    leftovers[spelling] = config[spelling]

    thinking = field_of(config, "thinkingConfig")
    if thinking is not None:
        thinking = fields.obj(thinking, f"{where}.thinkingConfig")
        budget = fields.thinking_budget(field_of(thinking, "thinkingBudget"), f"{where}.thinkingConfig.thinkingBudget")
        level = checked(field_of(thinking, "thinkingLevel"), STRING, f"{where}.thinkingConfig.thinkingLevel")
        request.thinking = ir.ThinkingConfig(
            enabled=budget != 0,
            budget=budget if budget else None,
            effort=level.lower() if level else None,
            include_thoughts=checked(field_of(thinking, "includeThoughts"), BOOLEAN,
                                     f"{where}.thinkingConfig.includeThoughts"),
        )
        extra = unknown_keys(thinking, ("thinkingBudget", "thinkingLevel", "includeThoughts"))
        if extra:
            leftovers["thinkingConfig"] = extra
    if leftovers:
        ext["generationConfig"] = leftovers


def encode_request_body(request: ir.Request) -> dict[str, Any]:
    ext = dict(request.extensions.get(ir.GEMINI, {}))
    generation_extra = ext.pop("generationConfig", None)
    tool_config = ext.pop("toolConfig", None)
    body: dict[str, Any] = {"contents": _encode_contents(request.messages)}
    if request.system:
        body["systemInstruction"] = {"parts": [{"text": t.text} for t in request.system]}
    tools = _encode_tools(request.tools)
    if tools:
        body["tools"] = tools
    if isinstance(tool_config, dict):
        body["toolConfig"] = tool_config
    elif request.tool_choice is not None:
        calling: dict[str, Any] = {"mode": TOOL_MODE_FROM_IR[request.tool_choice.mode]}
        if request.tool_choice.mode == "tool" and request.tool_choice.name:
            calling["allowedFunctionNames"] = [request.tool_choice.name]
        body["toolConfig"] = {"functionCallingConfig": calling}
    generation = _encode_generation(request)
    if isinstance(generation_extra, dict):
        merge_missing(generation, generation_extra)
    if generation:
        body["generationConfig"] = generation
    merge_missing(body, ext)
    return body


def _encode_generation(request: ir.Request) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.top_k is not None:
        config["topK"] = request.top_k
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.stop:
        config["stopSequences"] = list(request.stop)
    fmt = request.response_format
    if fmt is not None:
        config["responseMimeType"] = "text/plain" if fmt.type == "text" else "application/json"
        if fmt.type == "json_schema" and fmt.schema:
            config["responseSchema"] = clean_schema(fmt.schema)
    if request.thinking is not None:
        config["thinkingConfig"] = _encode_thinking(request.thinking)
    return config


def _encode_thinking(thinking: ir.ThinkingConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    effort = thinking.effort
    if not thinking.enabled or effort == "none":
        out["thinkingBudget"] = 0
        if thinking.include_thoughts is not None:
            out["includeThoughts"] = thinking.include_thoughts
        return out
    # Gemini 3 rejects a budget and a level together, so the explicit budget wins.
    if thinking.budget is not None:
        out["thinkingBudget"] = thinking.budget
    elif effort == "auto":
        out["thinkingBudget"] = -1
    elif effort:
        out["thinkingLevel"] = LEVEL_FOR_EFFORT.get(effort, effort.upper())
    out["includeThoughts"] = True if thinking.include_thoughts is None else thinking.include_thoughts
    return out


def _encode_tools(tools: list[ir.Tool]) -> list[dict[str, Any]]:
    declarations = []
    builtins = []
    for tool in tools:
        if tool.kind in ("function", "custom"):
            decl: dict[str, Any] = {"name": tool.name}
            if tool.description:
                decl["description"] = tool.description
            if tool.kind == "custom":  # free-form input: one string argument
                decl["parameters"] = {"type": "object", "properties": {"input": {"type": "string"}},
                                      "required": ["input"]}
            elif tool.parameters is not None:
                decl["parameters"] = clean_schema(tool.parameters)
            merge_missing(decl, tool.extras.get("gemini", {}))
            declarations.append(decl)
        elif tool.extras.get("gemini_builtin") and tool.raw:
            builtins.append(tool.raw)
        # Other dialects' built-ins (web_search, image_generation...) have no Gemini twin: dropped.
    return ([{"functionDeclarations": declarations}] if declarations else []) + builtins


def _encode_contents(messages: list[ir.Message]) -> list[dict[str, Any]]:
    names: dict[str, str] = {}  # call id → function name: functionResponse.name comes from the call
    order: dict[str, int] = {}  # call id → position: responses go back in call order
    for message in messages:
        for part in message.parts:
            if isinstance(part, ir.ToolCall):
                names.setdefault(part.id, part.name)
                order.setdefault(part.id, len(order))
    contents: list[dict[str, Any]] = []
    for message in messages:
        parts = encode_parts(message, names)
        if not parts:
            continue  # Gemini rejects a content without parts
        role = message.extras.get("gemini_role") or ROLE_FROM_IR.get(message.role, "user")
        last = contents[-1] if contents else None
        if last is not None and last["role"] == role and is_response(last["parts"][0]) and is_response(parts[0]):
            last["parts"].extend(parts)  # one turn's responses stay in one content
            continue
        content = {"role": role, "parts": parts}
        merge_missing(content, message.extras.get("gemini", {}))
        contents.append(content)
    for content in contents:
        if any(is_response(p) for p in content["parts"]):
            responses = [p for p in content["parts"] if is_response(p)]
            responses.sort(key=lambda p: order.get(p["functionResponse"].get("id", ""), len(order)))
            content["parts"] = responses + [p for p in content["parts"] if not is_response(p)]
    return contents
