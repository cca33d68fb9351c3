"""Anthropic ``POST /v1/messages`` request bodies ↔ IR requests."""

from __future__ import annotations

from typing import Any

from polyrelay import ir
from polyrelay.dialects.anthropic.content import (
    _extras,
    decode_block,
    decode_blocks,
    encode_request_part,
    is_plain_text,
    restore_blocks,
    with_extras,
)
from polyrelay.dialects.anthropic.wire import (
    BLOCKS_KEY,
    DEFAULT_MAX_TOKENS,
    EFFORT_FROM_IR,
    MIN_THINKING_BUDGET,
    NAME,
    REQUEST_FIELDS,
    TOOL_CHOICE_FROM_IR,
    TOOL_CHOICE_TO_IR,
)
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.fields import (
    ARRAY,
    BOOLEAN,
    NUMBER,
    OBJECT,
    STRING,
    checked,
    field,
    integer,
    str_or_none,
    thinking_budget,
    token_count,
)


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
        parts, carried = decode_blocks(content, f"{path}.content")
        if carried:
            extras[BLOCKS_KEY] = carried
    else:
        raise DialectError(f"{path}.content is required and must be a string or an array of content blocks")
    return ir.Message(role=role, parts=parts, extras=extras)


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
        part = decode_block(block, f"system[{i}]")
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


def decode_request_body(body: dict[str, Any]) -> ir.Request:
    model = field(body, "model", STRING, required=True)
    messages = field(body, "messages", ARRAY, required=True)
    ext = {key: item for key, item in body.items() if key not in REQUEST_FIELDS}
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


def _encode_message(message: ir.Message) -> dict[str, Any] | None:
    carried = message.extras.get(BLOCKS_KEY)
    content: str | list[dict[str, Any]]
    if not carried and len(message.parts) == 1 and is_plain_text(message.parts[0]):
        content = message.parts[0].text  # type: ignore[union-attr]
    else:
        content = restore_blocks([b for b in map(encode_request_part, message.parts) if b is not None], carried)
        if not content:
            return None  # nothing Anthropic can take (e.g. only foreign reasoning): drop the turn
    out: dict[str, Any] = {"role": message.role, "content": content}
    own = message.extras.get(NAME)
    if isinstance(own, dict):
        out.update(own)
    return out


def _encode_system(system: list[ir.Text], carried: Any) -> str | list[dict[str, Any]] | None:
    if not carried and len(system) == 1 and is_plain_text(system[0]):
        return system[0].text
    blocks = restore_blocks([b for b in map(encode_request_part, system) if b is not None], carried)
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
    return with_extras(out, tool.extras)


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


def encode_request_body(request: ir.Request) -> dict[str, Any]:
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
        if not key.startswith("_") and key not in REQUEST_FIELDS and key not in body:
            body[key] = value
    return body
