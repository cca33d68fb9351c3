"""Chat Completions tools, tool choice and assistant tool calls ↔ the IR."""

from __future__ import annotations

from typing import Any

from polyrelay import ir
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.calls import function_arguments
from polyrelay.dialects.fields import BOOLEAN, OBJECT, STRING, field, str_or_none
from polyrelay.dialects.openai_chat.content import args_text, own_extras, tag, unknown_keys, with_extras
from polyrelay.dialects.openai_chat.wire import NAME


def decode_tool_call(call: Any, where: str) -> ir.ToolCall:
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
            id=call_id, name=body["name"], arguments=args_text(body.get("input"), f"{where}.custom.input"),
            kind="custom", extras=tag(unknown_keys(call, {"id", "type", "custom"}, "custom", {"name", "input"})),
        )
    body = call.get("function")
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise DialectError(f"{where}.function.name must be a string")
    return ir.ToolCall(
        id=call_id, name=body["name"],
        arguments=function_arguments(args_text(body.get("arguments"), f"{where}.function.arguments")),
        extras=tag(unknown_keys(call, {"id", "type", "function"}, "function", {"name", "arguments"})),
    )


def decode_tools(raw: Any) -> list[ir.Tool]:
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
                extras=tag(unknown_keys(tool, {"type", "function"}, "function",
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
            name = str_or_none(tool.get("name")) or kind
            tools.append(ir.Tool(name=name, kind=kind, raw=tool, extras={NAME: {"builtin": True}}))
    return tools


def decode_tool_choice(body: dict[str, Any], extensions: dict[str, Any]) -> ir.ToolChoice | None:
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


def encode_tool_call(call: ir.ToolCall) -> dict[str, Any]:
    # A Gemini thought signature on the call has no chat field: dropped.
    if call.kind == "custom":
        wire = {"id": call.id, "type": "custom", "custom": {"name": call.name, "input": call.arguments}}
    else:
        wire = {"id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": function_arguments(call.arguments)}}
    return with_extras(wire, call.extras)


def encode_tools(request: ir.Request) -> list[dict[str, Any]]:
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
            tools.append(with_extras({"type": "function", "function": fn}, tool.extras))
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
        elif own_extras(tool.extras).get("builtin") and tool.raw is not None:
            tools.append(tool.raw)
        # Other built-in tools (web_search...) belong to their own dialect: dropped.
    return tools
