"""Gemini generateContent codec (``ir.GEMINI``).

The wire format is Google's ``GenerateContentRequest`` / ``GenerateContentResponse``
(wire notes §2.4).  Things worth knowing before reading on:

* The body carries no model (it is in the URL path), so decoded requests have
  ``model=""`` and encoded requests never write one.
* Google accepts camelCase and snake_case keys alike (proto JSON); we read
  both and always write camelCase.
* Function calls have no reliable ids and function responses are matched by
  *name*, so ids are synthesized on the way in and names are looked up (never
  parsed out of ids) on the way out.
* Streams come as SSE ``data:`` frames (``alt=sse``) or as one JSON array that
  is streamed element by element; the decoder accepts both, and also unwraps
  the Code Assist envelope ``{"response": {...}, "traceId": ...}``.
* What the IR cannot say is kept under the ``"gemini"`` key: unknown request
  fields in ``request.extensions["gemini"]``, unknown part keys in
  ``part.extras["gemini"]`` / ``["gemini_inner"]``, parts with no IR meaning
  (``executableCode``...) in ``message.extras["gemini_parts"]``.

The field-by-field table is ``docs/_translation/gemini.md``.
"""

from __future__ import annotations

import json
import mimetypes
import re
import urllib.parse
import uuid
from collections.abc import Sequence
from functools import cache
from typing import Any

from polyrelay import ir
from polyrelay.aggregate import collect
from polyrelay.dialects.base import (
    DialectError,
    content_field_problem,
    json_error_frame,
    merge_usage,
    reraise_as_dialect_error,
)
from polyrelay.dialects.hints import parse_duration, retry_hint_in_text
from polyrelay.dialects.media import parse_data_url
from polyrelay.jsonutil import dumps, loads
from polyrelay.sse import KEEPALIVE_COMMENT, SSEEvent, SSEParser, frame

# -- mapping tables -----------------------------------------------------------

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
# signature did not come from Gemini (§4.7).
SKIP_SIGNATURE = "skip_thought_signature_validator"

_PART_KEYS = ("text", "thought", "thoughtSignature", "inlineData", "fileData", "functionCall", "functionResponse")
_REQUEST_KEYS = ("contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model")
_GENERATION_KEYS = (
    "temperature", "topP", "topK", "maxOutputTokens", "stopSequences",
    "responseMimeType", "responseSchema", "responseJsonSchema", "thinkingConfig",
)


# -- small readers for untrusted JSON ----------------------------------------


@cache
def _snake(name: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), name)


@cache
def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


@cache
def _spellings(known: tuple[str, ...]) -> frozenset[str]:
    return frozenset(known) | {_snake(k) for k in known}


def _field(obj: dict[str, Any], name: str) -> Any:
    """``obj[name]`` under its camelCase or snake_case spelling."""
    if name in obj:
        return obj[name]
    return obj.get(_snake(name))


def _has(obj: dict[str, Any], name: str) -> bool:
    return name in obj or _snake(name) in obj


def _leftovers(obj: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    names = _spellings(known)
    return {k: v for k, v in obj.items() if k not in names}


def _obj(value: Any, where: str, required: bool = False) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise DialectError(f"{where} must be an object")
    return value


def _arr(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DialectError(f"{where} must be an array")
    return value


def _str(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise DialectError(f"{where} must be a string")


def _num(value: Any, where: str) -> float | None:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise DialectError(f"{where} must be a number")


def _int(value: Any, where: str) -> int | None:
    number = _num(value, where)
    if number is None:
        return None
    if isinstance(number, float) and not number.is_integer():
        raise DialectError(f"{where} must be an integer")
    return int(number)


def _bool(value: Any, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise DialectError(f"{where} must be a boolean")


def _count(meta: dict[str, Any], name: str) -> int:
    """A usage counter; upstream junk counts as zero rather than failing a stream."""
    value = _field(meta, name)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _merge(target: dict[str, Any], extra: dict[str, Any]) -> None:
    """Merge carried-over fields in without overriding what was computed."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target.setdefault(key, value)


def _json(value: Any) -> str:
    """Compact JSON text; the stdlib takes over for what orjson refuses (integers past 64 bits)."""
    try:
        return dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


# -- signatures ------------------------------------------------------------------


def _upstream_signature(value: str | None, origin: str | None) -> str | None:
    """A signature we may send to Gemini: only Gemini's own (or unlabelled)."""
    return value if value and origin in (ir.GEMINI, None) else None


def _client_signature(value: str, origin: str | None) -> str:
    """A signature for a Gemini client: foreign ones are labelled to come back safely."""
    return value if origin in (ir.GEMINI, None) else ir.wrap_signature(origin, value)


# -- JSON schema cleanup (§4.4) ----------------------------------------------------

# Constraints Gemini rejects but the model should still hear about: moved into description.
_SCHEMA_HINTS = (
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems", "format", "default",
    "exclusiveMinimum", "exclusiveMaximum",
)
# Besides type/properties/items/required/enum, the only keywords kept (Gemini answers
# "Unknown name" for anything else, so an allow-list beats a deny-list).
_SCHEMA_SCALARS = {"description": str, "minimum": (int, float), "maximum": (int, float), "multipleOf": (int, float)}
# Keywords that mark a dict as a schema rather than a bare property map.
_SCHEMA_WORDS = frozenset({
    *_SCHEMA_HINTS, *_SCHEMA_SCALARS, "type", "properties", "items", "required", "enum", "const", "anyOf", "oneOf",
    "allOf", "$ref", "$schema", "$id", "$defs", "definitions", "additionalProperties", "patternProperties",
    "propertyNames", "title", "nullable", "examples", "if", "then", "else", "not",
})
_MAX_REF_DEPTH = 8  # a self-referencing definition must not expand forever
_BRANCH_RANK = {"object": 5, "array": 4, "string": 3, "number": 2, "integer": 2, "boolean": 1}
_PLACEHOLDER_REASON = "Brief explanation of why you are calling this tool"


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a JSON schema into the subset Gemini's ``parameters`` accepts.

    Drops unsupported keywords (keeping constraints as description hints),
    inlines local ``$ref``s, merges ``allOf``, picks the strongest
    ``anyOf``/``oneOf`` branch, collapses type arrays, stringifies enums,
    promotes ``required: true``, prunes ``required`` and removes placeholder
    properties.  Property *names* are never mistaken for keywords.  The input
    is not modified.
    """
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    defs: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        if isinstance(schema.get(key), dict):
            defs.update(schema[key])
    if schema and "type" not in schema and all(
        isinstance(v, dict) and k not in _SCHEMA_WORDS for k, v in schema.items()
    ):
        schema = {"type": "object", "properties": schema}  # a bare property map (seen from MCP tools)
    cleaned = _clean_node(schema, defs, 0)
    if "type" not in cleaned:
        cleaned["type"] = "object"
    if str(cleaned["type"]).lower() == "object":
        cleaned.setdefault("properties", {})
    return cleaned


def _resolve(node: Any, defs: dict[str, Any], depth: int) -> tuple[dict[str, Any], int]:
    """Inline a local ``$ref`` (siblings win), or leave a description hint."""
    if not isinstance(node, dict):
        return {}, depth  # boolean schemas: "anything", which Gemini expresses as no constraint
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node, depth
    rest = {k: v for k, v in node.items() if k != "$ref"}
    name = ref.rsplit("/", 1)[-1]
    target = defs.get(name) if ref.startswith("#/") else None
    if isinstance(target, dict) and depth < _MAX_REF_DEPTH:
        return _resolve({**target, **rest}, defs, depth + 1)
    rest["description"] = _hinted(rest.get("description"), [f"See: {name}"])
    rest.setdefault("type", "object")
    return rest, depth


def _hinted(description: Any, hints: list[str]) -> str:
    text = description if isinstance(description, str) else ""
    if not hints:
        return text
    return f"{text} ({', '.join(hints)})" if text else ", ".join(hints)


def _type_name(node: dict[str, Any]) -> str:
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if isinstance(k, str) and k.lower() != "null"), "null")
    return kind.lower() if isinstance(kind, str) else ""


def _merge_branch(node: dict[str, Any], branch: dict[str, Any]) -> None:
    for key, value in branch.items():
        if key == "properties" and isinstance(value, dict):
            node.setdefault("properties", {})
            if isinstance(node["properties"], dict):
                node["properties"] = {**value, **node["properties"]}
        elif key == "required" and isinstance(value, list):
            have = node.get("required") if isinstance(node.get("required"), list) else []
            node["required"] = have + [r for r in value if r not in have]
        else:
            node.setdefault(key, value)


def _branches(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _clean_node(raw: Any, defs: dict[str, Any], depth: int) -> dict[str, Any]:
    node, depth = _resolve(raw, defs, depth)
    node = dict(node)
    if "const" in node:
        node.setdefault("enum", [node["const"]])
    for branch in _branches(node.pop("allOf", None)):
        _merge_branch(node, _resolve(branch, defs, depth)[0])
    for key in ("then", "else"):  # conditional branches: keep their properties, lose the condition
        branch = node.get(key)
        if isinstance(branch, dict) and isinstance(branch.get("properties"), dict):
            node["properties"] = {**branch["properties"], **(node.get("properties") or {})}
    for key in ("anyOf", "oneOf"):
        branches = [_resolve(b, defs, depth)[0] for b in _branches(node.pop(key, None))]
        branches = [b for b in branches if _type_name(b) != "null" or "properties" in b]
        if branches:
            best = max(branches, key=lambda b: _BRANCH_RANK.get(_type_name(b), 0))
            _merge_branch(node, best)

    out: dict[str, Any] = {}
    hints: list[str] = []
    promoted: list[str] = []
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            props = {}
            for name, prop in value.items():
                if isinstance(prop, dict) and prop.get("required") is True:
                    promoted.append(name)
                props[name] = _clean_node(prop, defs, depth)
            out["properties"] = props
        elif key == "items" and isinstance(value, (dict, list)) and value:
            # A tuple form ([schema, ...]) has no Gemini twin: its first member stands for all.
            items = _clean_node(value[0] if isinstance(value, list) else value, defs, depth)
            if items:
                out["items"] = items
        elif key == "type":
            out["type"] = value if isinstance(value, str) else (_type_name(node) or "string")
        elif key == "enum" and isinstance(value, list):
            values = [v for v in value if v is not None]
            if values and not all(isinstance(v, bool) for v in values):
                out["enum"] = [v if isinstance(v, str) else _json(v) for v in values]
        elif key in _SCHEMA_HINTS:
            hints.append(f"{key}: {_json(value)}")
        elif key == "additionalProperties" and value is False:
            hints.append("no additional properties")
        elif key == "required" and isinstance(value, list):
            out["required"] = [r for r in value if isinstance(r, str)]
        elif key in _SCHEMA_SCALARS and isinstance(value, _SCHEMA_SCALARS[key]) and not isinstance(value, bool):
            out[key] = value
        # Everything else ($schema, title, nullable, x-*, const/anyOf/$ref once applied...) is dropped.
    if "enum" in out:
        out["type"] = "string"  # Gemini enums are strings only
    if hints:
        out["description"] = _hinted(out.get("description"), hints)
    if _type_name(out) == "array" and "items" not in out:
        out["items"] = {"type": "string"}  # Gemini rejects arrays without items
    props = out.get("properties")
    if isinstance(props, dict):
        props.pop("_", None)
        reason = props.get("reason")
        if len(props) == 1 and isinstance(reason, dict) and reason.get("description") == _PLACEHOLDER_REASON:
            props.clear()
    required = list(dict.fromkeys([*(out.get("required") or []), *promoted]))
    required = [r for r in required if isinstance(props, dict) and r in props]
    if required:
        out["required"] = required
    else:
        out.pop("required", None)
    return out


# -- request decoding --------------------------------------------------------------


def _decode_request(body: Any) -> ir.Request:
    if not isinstance(body, dict):
        raise DialectError("request body must be a JSON object")
    inner = _field(body, "generateContentRequest")
    if inner is not None:  # countTokens wraps a whole generate request
        return _decode_request(_obj(inner, "generateContentRequest", required=True))
    if not _has(body, "contents"):
        raise DialectError("contents is required")
    request = ir.Request(model="")
    request.messages = _decode_contents(_field(body, "contents"))
    request.system = _decode_system(_field(body, "systemInstruction"))
    request.tools = _decode_tools(_field(body, "tools"))
    ext = _leftovers(body, _REQUEST_KEYS)
    request.tool_choice = _decode_tool_config(_field(body, "toolConfig"), ext)
    _decode_generation(request, _obj(_field(body, "generationConfig"), "generationConfig"), ext)
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
        content = _obj(raw, where, required=True)
        role = _str(content.get("role"), f"{where}.role") or "user"
        message = ir.Message(role=ROLE_TO_IR.get(role, "user"))  # type: ignore[arg-type]
        if role not in ("user", "model"):
            message.extras["gemini_role"] = role
        extra = _leftovers(content, ("role", "parts"))
        if extra:
            message.extras["gemini"] = extra
        for pi, raw_part in enumerate(_arr(content.get("parts"), f"{where}.parts")):
            part = _decode_part(raw_part, f"{where}.parts[{pi}]", f"{ci}_{pi}", pending)
            if part is None:  # executableCode etc.: kept raw, in place, for Gemini only
                message.extras.setdefault("gemini_parts", []).append([len(message.parts), raw_part])
            else:
                message.parts.append(part)
        messages.append(message)
    return messages


def _decode_part(raw: Any, where: str, slot: str, pending: list[tuple[str, str]]) -> ir.Part | None:
    part = _obj(raw, where, required=True)
    sig_value = _str(_field(part, "thoughtSignature"), f"{where}.thoughtSignature")
    origin, sig = ir.unwrap_signature(sig_value, ir.GEMINI) if sig_value else (None, None)
    result: ir.Part
    if _has(part, "text") or part.get("thought") is True:
        text = _str(part.get("text"), f"{where}.text") or ""
        if _bool(part.get("thought"), f"{where}.thought"):
            result = ir.Thinking(text=text, signature=sig, origin=origin or ir.GEMINI)
        else:
            result = ir.Text(text=text)
    elif _has(part, "functionCall"):
        result = _decode_call(_obj(_field(part, "functionCall"), f"{where}.functionCall", True), where, slot, pending)
        result.signature, result.signature_origin = sig, origin
    elif _has(part, "functionResponse"):
        data = _obj(_field(part, "functionResponse"), f"{where}.functionResponse", True)
        result = _decode_result(data, where, slot, pending)
    elif _has(part, "inlineData") or _has(part, "fileData"):
        result = _decode_media(part, where)
    else:
        return None
    if sig and not isinstance(result, (ir.Thinking, ir.ToolCall)):
        result.extras["thought_signature"] = {"origin": origin, "value": sig}
    extra = _leftovers(part, _PART_KEYS)
    if extra:
        result.extras["gemini"] = extra
    return result


def _decode_call(data: dict[str, Any], where: str, slot: str, pending: list[tuple[str, str]]) -> ir.ToolCall:
    name = _str(data.get("name"), f"{where}.functionCall.name")
    if not name:
        raise DialectError(f"{where}.functionCall.name is required")
    args = data.get("args")
    if args is not None and not isinstance(args, dict):
        raise DialectError(f"{where}.functionCall.args must be an object")
    call_id = _str(data.get("id"), f"{where}.functionCall.id") or f"call_{slot}"
    pending.append((call_id, name))
    call = ir.ToolCall(id=call_id, name=name, arguments=_json(args or {}))
    inner = _leftovers(data, ("name", "args", "id"))
    if inner:
        call.extras["gemini_inner"] = inner
    return call


def _decode_result(data: dict[str, Any], where: str, slot: str, pending: list[tuple[str, str]]) -> ir.ToolResult:
    name = _str(data.get("name"), f"{where}.functionResponse.name")
    given = _str(data.get("id"), f"{where}.functionResponse.id")
    # Pair with the call: by id when given, else the oldest unanswered call of that name.
    match = next((c for c in pending if c[0] == given), None) if given else None
    if match is None and not given:
        match = next((c for c in pending if name is None or c[1] == name), None)
    if match is not None:
        pending.remove(match)
    call_id = given or (match[0] if match else f"call_{slot}")
    text, is_error = _result_text(data.get("response"))
    result = ir.ToolResult(call_id=call_id, content=[ir.Text(text)], is_error=is_error,
                           name=name or (match[1] if match else None))
    inner = _leftovers(data, ("name", "response", "id"))
    if inner:
        result.extras["gemini_inner"] = inner
    return result


def _result_text(response: Any) -> tuple[str, bool]:
    """``{"output"|"result": str}`` → the string; ``{"error": x}`` → an error result; else the JSON."""
    if isinstance(response, dict) and len(response) == 1:
        key, value = next(iter(response.items()))
        if key == "error":
            return (value if isinstance(value, str) else _json(value)), True
        if key in ("output", "result") and isinstance(value, str):
            return value, False
    return _json(response if response is not None else {}), False


def _decode_media(part: dict[str, Any], where: str) -> ir.Image | ir.File:
    inline = _has(part, "inlineData")
    key = "inlineData" if inline else "fileData"
    data = _obj(_field(part, key), f"{where}.{key}", required=True)
    mime = _str(_field(data, "mimeType"), f"{where}.{key}.mimeType")
    payload = _str(data.get("data"), f"{where}.{key}.data") if inline else None
    url = None if inline else _str(_field(data, "fileUri"), f"{where}.{key}.fileUri")
    media: ir.Image | ir.File
    if mime and mime.startswith("image/"):
        media = ir.Image(media_type=mime, data=payload, url=url)
    else:
        media = ir.File(media_type=mime, data=payload, url=url)
    inner = _leftovers(data, ("mimeType", "data", "fileUri"))
    if inner:
        media.extras["gemini_inner"] = inner
    return media


def _decode_system(value: Any) -> list[ir.Text]:
    if value is None:
        return []
    if isinstance(value, str):
        return [ir.Text(value)]
    system = _obj(value, "systemInstruction")
    texts = []
    for i, raw in enumerate(_arr(system.get("parts"), "systemInstruction.parts")):
        text = _str(_obj(raw, f"systemInstruction.parts[{i}]", True).get("text"), f"systemInstruction.parts[{i}].text")
        if text is not None:  # non-text system parts have no IR meaning
            texts.append(ir.Text(text))
    return texts


def _decode_tools(value: Any) -> list[ir.Tool]:
    tools = []
    for i, raw in enumerate(_arr(value, "tools")):
        for key, body in _obj(raw, f"tools[{i}]", required=True).items():
            if _camel(key) != "functionDeclarations":
                # googleSearch, codeExecution, urlContext...: built-ins, same-dialect only.
                kind = _camel(key)
                tools.append(ir.Tool(name=kind, kind=kind, raw={kind: body}, extras={"gemini_builtin": True}))
                continue
            for j, decl in enumerate(_arr(body, f"tools[{i}].functionDeclarations")):
                where = f"tools[{i}].functionDeclarations[{j}]"
                decl = _obj(decl, where, required=True)
                name = _str(decl.get("name"), f"{where}.name")
                if not name:
                    raise DialectError(f"{where}.name is required")
                schema = _field(decl, "parametersJsonSchema")
                if schema is None:
                    schema = decl.get("parameters")
                tool = ir.Tool(name=name, description=_str(decl.get("description"), f"{where}.description"),
                               parameters=_obj(schema, f"{where}.parameters") if schema is not None else None)
                extra = _leftovers(decl, ("name", "description", "parameters", "parametersJsonSchema"))
                if extra:
                    tool.extras["gemini"] = extra
                tools.append(tool)
    return tools


def _decode_tool_config(value: Any, ext: dict[str, Any]) -> ir.ToolChoice | None:
    config = _obj(value, "toolConfig")
    if not config:
        return None
    calling = _obj(_field(config, "functionCallingConfig"), "toolConfig.functionCallingConfig")
    mode = (_str(calling.get("mode"), "toolConfig.functionCallingConfig.mode") or "AUTO").upper()
    names = _arr(_field(calling, "allowedFunctionNames"), "toolConfig.functionCallingConfig.allowedFunctionNames")
    if mode == "ANY" and len(names) == 1 and isinstance(names[0], str):
        choice = ir.ToolChoice(mode="tool", name=names[0])
    else:
        choice = ir.ToolChoice(mode=TOOL_MODE_TO_IR.get(mode, "auto"))  # type: ignore[arg-type]
    exact = (mode in ("AUTO", "NONE") and not names) or (mode == "ANY" and len(names) <= 1)
    exact = exact and not _leftovers(config, ("functionCallingConfig",))
    if not exact or _leftovers(calling, ("mode", "allowedFunctionNames")):
        ext["toolConfig"] = config  # VALIDATED, several names, retrievalConfig...: replayed to Gemini as sent
    return choice


def _decode_generation(request: ir.Request, config: dict[str, Any], ext: dict[str, Any]) -> None:
    where = "generationConfig"
    request.temperature = _num(config.get("temperature"), f"{where}.temperature")
    request.top_p = _num(_field(config, "topP"), f"{where}.topP")
    request.top_k = _int(_field(config, "topK"), f"{where}.topK")
    request.max_tokens = _int(_field(config, "maxOutputTokens"), f"{where}.maxOutputTokens")
    stops = _arr(_field(config, "stopSequences"), f"{where}.stopSequences")
    request.stop = [s for s in stops if _str(s, f"{where}.stopSequences[]") is not None]
    leftovers = _leftovers(config, _GENERATION_KEYS)

    mime = _str(_field(config, "responseMimeType"), f"{where}.responseMimeType")
    schema = _field(config, "responseJsonSchema")
    if schema is None:
        schema = _field(config, "responseSchema")
    schema = _obj(schema, f"{where}.responseSchema") if schema is not None else None
    if mime == "application/json":
        request.response_format = ir.ResponseFormat(type="json_schema" if schema else "json_object", schema=schema)
    elif mime == "text/plain" and schema is None:
        request.response_format = ir.ResponseFormat(type="text")
    elif mime is not None or schema is not None:  # text/x.enum and friends: Gemini only
        for key in ("responseMimeType", "responseSchema", "responseJsonSchema"):
            for spelling in (key, _snake(key)):
                if spelling in config:
                    leftovers[spelling] = config[spelling]

    thinking = _field(config, "thinkingConfig")
    if thinking is not None:
        thinking = _obj(thinking, f"{where}.thinkingConfig")
        budget = _int(_field(thinking, "thinkingBudget"), f"{where}.thinkingConfig.thinkingBudget")
        level = _str(_field(thinking, "thinkingLevel"), f"{where}.thinkingConfig.thinkingLevel")
        request.thinking = ir.ThinkingConfig(
            enabled=budget != 0,
            budget=budget if budget else None,
            effort=level.lower() if level else None,
            include_thoughts=_bool(_field(thinking, "includeThoughts"), f"{where}.thinkingConfig.includeThoughts"),
        )
        extra = _leftovers(thinking, ("thinkingBudget", "thinkingLevel", "includeThoughts"))
        if extra:
            leftovers["thinkingConfig"] = extra
    if leftovers:
        ext["generationConfig"] = leftovers


# -- request encoding ------------------------------------------------------------------


def _encode_request(request: ir.Request) -> dict[str, Any]:
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
        _merge(generation, generation_extra)
    if generation:
        body["generationConfig"] = generation
    _merge(body, ext)
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
            _merge(decl, tool.extras.get("gemini", {}))
            declarations.append(decl)
        elif tool.extras.get("gemini_builtin") and tool.raw:
            builtins.append(tool.raw)
        # Other dialects' built-ins (web_search, image_generation...) have no Gemini twin: dropped.
    return ([{"functionDeclarations": declarations}] if declarations else []) + builtins


def _args_object(arguments: str) -> dict[str, Any]:
    """Call arguments as the object Gemini requires (invalid JSON → ``{}``)."""
    try:
        value = loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _result_response(result: ir.ToolResult) -> dict[str, Any]:
    """``functionResponse.response`` must be an object: JSON objects pass, else ``{"result": text}``."""
    text = "".join(p.text for p in result.content if isinstance(p, ir.Text))
    try:
        value = loads(text) if text.strip().startswith("{") else None
    except ValueError:
        value = None
    if result.is_error:
        return {"error": value if isinstance(value, dict) else text}
    if isinstance(value, dict) and list(value) != ["error"]:  # a lone "error" key would read back as a failure
        return value
    return {"result": text}


def _media_part(part: ir.Image | ir.File) -> dict[str, Any] | None:
    default = "image/png" if isinstance(part, ir.Image) else "application/octet-stream"
    if part.data:
        return {"inlineData": {"mimeType": part.media_type or default, "data": part.data}}
    url = part.url
    if not url:
        return None  # a provider file id (OpenAI file-…) means nothing to Google
    inline = parse_data_url(url)
    if inline:
        return {"inlineData": {"mimeType": inline.media_type or part.media_type or default, "data": inline.data}}
    mime = part.media_type or mimetypes.guess_type(url)[0] or default
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _with_extras(out: dict[str, Any], part: ir.Part, inner: str | None = None) -> dict[str, Any]:
    if inner and part.extras.get("gemini_inner"):
        _merge(out[inner], part.extras["gemini_inner"])
    _merge(out, part.extras.get("gemini", {}))
    return out


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
        parts = _encode_parts(message, names)
        if not parts:
            continue  # Gemini rejects a content without parts
        role = message.extras.get("gemini_role") or ROLE_FROM_IR.get(message.role, "user")
        last = contents[-1] if contents else None
        if last is not None and last["role"] == role and _is_response(last["parts"][0]) and _is_response(parts[0]):
            last["parts"].extend(parts)  # one turn's responses stay in one content
            continue
        content = {"role": role, "parts": parts}
        _merge(content, message.extras.get("gemini", {}))
        contents.append(content)
    for content in contents:
        if any(_is_response(p) for p in content["parts"]):
            responses = [p for p in content["parts"] if _is_response(p)]
            responses.sort(key=lambda p: order.get(p["functionResponse"].get("id", ""), len(order)))
            content["parts"] = responses + [p for p in content["parts"] if not _is_response(p)]
    return contents


def _is_response(part: dict[str, Any]) -> bool:
    return "functionResponse" in part


def _encode_parts(message: ir.Message, names: dict[str, str]) -> list[dict[str, Any]]:
    raw_parts: dict[int, list[Any]] = {}
    for index, raw in message.extras.get("gemini_parts", []):
        raw_parts.setdefault(index, []).append(raw)
    out: list[dict[str, Any]] = []
    carried: str | None = None  # a text-less Gemini thought's signature, re-attached to the next part
    for index, part in enumerate(message.parts):
        out.extend(raw_parts.pop(index, []))
        encoded, signature = _encode_part(part, names)
        if isinstance(part, ir.Thinking) and encoded is None and signature:
            if carried:
                out.append({"text": "", "thought": True, "thoughtSignature": carried})
            carried = signature
            continue
        if encoded is None:
            continue
        if carried and not signature:
            signature, carried = carried, None
        elif carried:
            out.append({"text": "", "thought": True, "thoughtSignature": carried})
            carried = None
        if isinstance(part, ir.ToolCall) and not signature:
            signature = SKIP_SIGNATURE  # history from elsewhere: Gemini 3 would reject the call otherwise
        if signature:
            encoded["thoughtSignature"] = signature
        out.append(encoded)
        if isinstance(part, ir.ToolResult):  # images inside a result follow it as inline parts
            out.extend(m for m in (_media_part(c) for c in part.content if not isinstance(c, ir.Text)) if m)
    for rest in raw_parts.values():
        out.extend(rest)
    if carried:
        out.append({"text": "", "thought": True, "thoughtSignature": carried})
    return out


def _encode_part(part: ir.Part, names: dict[str, str]) -> tuple[dict[str, Any] | None, str | None]:
    """One IR part → (Gemini part without signature, the signature Gemini may see)."""
    extra_sig = part.extras.get("thought_signature")
    signature = None
    if isinstance(extra_sig, dict):
        signature = _upstream_signature(extra_sig.get("value"), extra_sig.get("origin"))
    if isinstance(part, ir.Text):
        return _with_extras({"text": part.text}, part), signature
    if isinstance(part, ir.Thinking):
        # Another provider's reasoning cannot be verified by Gemini and would pass
        # for Gemini's own; redacted blocks are Anthropic-only ciphertext.
        own = part.origin == ir.GEMINI or (part.origin is None and part.signature)
        if part.redacted or not own:
            return None, None
        signature = _upstream_signature(part.signature, part.origin)
        if not part.text:
            return None, signature
        return _with_extras({"text": part.text, "thought": True}, part), signature
    if isinstance(part, ir.ToolCall):
        args = {"input": part.arguments} if part.kind == "custom" else _args_object(part.arguments)
        call: dict[str, Any] = {"functionCall": {"name": part.name, "args": args, "id": part.id}}
        if not part.id:
            del call["functionCall"]["id"]  # an empty id is worse than none
        return _with_extras(call, part, "functionCall"), _upstream_signature(part.signature, part.signature_origin)
    if isinstance(part, ir.ToolResult):
        # The name must be the function's: from the result, else the call it answers.
        name = part.name or names.get(part.call_id) or "unknown_function"
        response = {"functionResponse": {"name": name, "response": _result_response(part), "id": part.call_id}}
        return _with_extras(response, part, "functionResponse"), signature
    media = _media_part(part)
    if media is None:
        return None, None
    return _with_extras(media, part, next(iter(media))), signature


# -- responses and stream decoding -------------------------------------------------------


def _usage(meta: Any) -> ir.Usage | None:
    if not isinstance(meta, dict):
        return None
    thoughts = _count(meta, "thoughtsTokenCount")
    usage = ir.Usage(
        input_tokens=_count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount"),
        output_tokens=_count(meta, "candidatesTokenCount") + thoughts,
        cached_tokens=_count(meta, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )
    # Code Assist sends {"trafficType": ...} alone on early chunks: no figures yet.
    return usage if usage.input_tokens or usage.output_tokens else None


def _encode_usage(usage: ir.Usage) -> dict[str, Any]:
    meta = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(usage.output_tokens - usage.reasoning_tokens, 0),
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    }
    if usage.cached_tokens:
        meta["cachedContentTokenCount"] = usage.cached_tokens
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    return meta


class _ChunkReader:
    """Turns Gemini response chunks into IR events (shared by streams and whole bodies)."""

    def __init__(self, keep_extras: bool = False) -> None:
        self.finished = False
        self.started = False
        self.usage: ir.Usage | None = None
        self.calls = 0
        self.raw_parts: list[list[Any]] = []  # parts the IR cannot carry, with the block index they precede
        self.extras: dict[str, Any] = {}  # unknown response fields (decode_response only)
        self._keep_extras = keep_extras
        self._open: tuple[int, str] | None = None
        self._next = 0
        self._id = ""
        self._seed = uuid.uuid4().hex[:12]  # call ids when the upstream gives no responseId

    def read(self, chunk: Any) -> list[ir.Event]:
        """Events for one parsed chunk (an object, or a list of them)."""
        out: list[ir.Event] = []
        if isinstance(chunk, list):
            for item in chunk:
                out.extend(self.read(item))
            return out
        if self.finished or not isinstance(chunk, dict):
            return out
        if "candidates" not in chunk and isinstance(chunk.get("response"), dict):
            chunk = chunk["response"]  # Code Assist envelope
        if "error" in chunk and "candidates" not in chunk:
            return self.fail(_error_from_object(chunk["error"], 0))
        usage = _usage(_field(chunk, "usageMetadata"))
        if usage is not None:
            self.usage = usage
        self._id = self._id or str(_field(chunk, "responseId") or "")
        if not self.started:
            self.started = True
            start_usage = None
            if usage is not None:  # the input side is known up front; output comes with the stop
                start_usage = ir.Usage(input_tokens=usage.input_tokens, cached_tokens=usage.cached_tokens)
            out.append(ir.MessageStart(id=self._id, model=str(_field(chunk, "modelVersion") or ""), usage=start_usage))
        if self._keep_extras:
            _merge(self.extras, _leftovers(chunk, ("candidates", "usageMetadata", "modelVersion", "responseId")))
        candidates = chunk.get("candidates")
        candidate = candidates[0] if isinstance(candidates, list) and candidates else {}
        if not isinstance(candidate, dict):
            candidate = {}
        if self._keep_extras:
            extra = _leftovers(candidate, ("content", "finishReason", "index"))
            if extra:
                _merge(self.extras.setdefault("candidate", {}), extra)
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict):
                self._part(part, out)
        finish = _field(candidate, "finishReason")
        feedback = _field(chunk, "promptFeedback")
        blocked = not candidates and isinstance(feedback, dict) and _field(feedback, "blockReason")
        if finish or blocked:
            stop = FINISH_TO_STOP.get(finish, "end_turn") if finish else "refusal"
            out.extend(self.end(stop))
        return out

    def end(self, stop: str | None) -> list[ir.Event]:
        """Close the message: its stop reason (any call makes it tool_use) and usage."""
        out = self._close()
        stop = "tool_use" if self.calls else (stop or "end_turn")
        out += [ir.MessageDelta(stop_reason=stop, usage=self.usage or ir.Usage()), ir.MessageStop()]
        self.finished = True
        return out

    def fail(self, error: ir.ErrorInfo) -> list[ir.Event]:
        """An in-stream error: close what is open and report it."""
        out = self._close()
        if not self.started:  # even an error-only stream opens with a MessageStart
            self.started = True
            out.append(ir.MessageStart(id="", model=""))
        out.append(ir.StreamError(error))
        self.finished = True
        return out

    def close(self) -> list[ir.Event]:
        """The body ended: blocks are closed, but no stop is invented."""
        return [] if self.finished else self._close()

    def _part(self, part: dict[str, Any], out: list[ir.Event]) -> None:
        signature = _field(part, "thoughtSignature")
        signature = signature if isinstance(signature, str) and signature else None
        text = part.get("text")
        if part.get("thought") is True:
            index = self._block("thinking", out)
            if isinstance(text, str) and text:
                out.append(ir.BlockDelta(index, "thinking", text))
            if signature:  # a signature seals the thought it rides on
                out.append(ir.BlockDelta(index, "signature", signature, origin=ir.GEMINI))
                out.extend(self._close())
        elif isinstance(text, str):
            if signature:
                # Gemini 3 signs a text part; the IR only carries signatures on
                # thinking, so it seals the open thought or gets one of its own.
                index = self._open[0] if self._open and self._open[1] == "thinking" else self._block("thinking", out)
                out.append(ir.BlockDelta(index, "signature", signature, origin=ir.GEMINI))
                out.extend(self._close())
            if text:
                out.append(ir.BlockDelta(self._block("text", out), "text", text))
        elif isinstance(_field(part, "functionCall"), dict):
            call = _field(part, "functionCall")
            out.extend(self._close())
            self.calls += 1
            token = re.sub(r"[^A-Za-z0-9_-]", "", self._id) or self._seed
            call_id = call.get("id") if isinstance(call.get("id"), str) and call["id"] else f"call_{token}_{self.calls}"
            args = call.get("args") if isinstance(call.get("args"), dict) else {}
            index = self._next
            self._next += 1
            out.append(ir.BlockStart(index, "tool_call", id=call_id, name=str(call.get("name") or "")))
            out.append(ir.BlockDelta(index, "arguments", _json(args)))
            if signature:
                out.append(ir.BlockDelta(index, "signature", signature, origin=ir.GEMINI))
            out.append(ir.BlockStop(index))
        elif self._keep_extras:
            # executableCode, codeExecutionResult, inline images...: no IR block.
            self.raw_parts.append([self._next, part])

    def _block(self, kind: str, out: list[ir.Event]) -> int:
        if self._open and self._open[1] == kind:
            return self._open[0]
        out.extend(self._close())
        index = self._next
        self._next += 1
        self._open = (index, kind)
        out.append(ir.BlockStart(index, kind))  # type: ignore[arg-type]
        return index

    def _close(self) -> list[ir.Event]:
        if self._open is None:
            return []
        index, self._open = self._open[0], None
        return [ir.BlockStop(index)]


class _ArraySplitter:
    """Cuts a streamed JSON array ``[{...},\\r\\n{...}]`` into its elements as they complete.

    Works on bytes: every structural character is ASCII and never part of a
    multi-byte UTF-8 sequence, so a split inside a character is harmless.
    """

    _OUTSIDE = re.compile(rb'[\[\]{}"]')
    _INSIDE = re.compile(rb'["\\]')

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # next byte to scan
        self._depth = -1  # -1 before the outer '[', 0 between elements, >0 inside one
        self._start = 0  # where the current element begins
        self._in_string = False

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the elements now complete (raw JSON text)."""
        buf = self._buf
        buf += data
        elements = []
        while self._pos < len(buf):
            if self._in_string:
                match = self._INSIDE.search(buf, self._pos)
                if match is None:
                    self._pos = len(buf)
                    break
                # A backslash skips the next byte, even if it has not arrived yet.
                self._pos = match.end() + (1 if match.group() == b"\\" else 0)
                self._in_string = match.group() != b'"'
                continue
            match = self._OUTSIDE.search(buf, self._pos)
            if match is None:
                self._pos = len(buf)
                break
            char, self._pos = match.group(), match.end()
            if char == b'"':
                self._in_string = True
            elif char in b"[{":
                if self._depth == -1:
                    self._depth = 0 if char == b"[" else 1  # tolerate a bare object body
                    self._start = match.start()
                elif self._depth == 0:
                    self._depth, self._start = 1, match.start()
                else:
                    self._depth += 1
            elif self._depth > 0:
                self._depth -= 1
                if self._depth == 0:
                    elements.append(bytes(buf[self._start : self._pos]))
        # Forget what is consumed: everything before the element in progress.
        keep = self._start if self._depth > 0 else min(self._pos, len(buf))
        del buf[:keep]
        self._pos -= keep
        self._start = 0
        return elements


class GeminiStreamDecoder:
    """Upstream Gemini stream (SSE or streamed JSON array) → IR events."""

    def __init__(self) -> None:
        self.finished = False
        self._reader = _ChunkReader()
        self._mode: str | None = None  # "sse" or "array", from the first non-blank byte
        self._head = b""
        self._sse = SSEParser()
        self._array = _ArraySplitter()

    def feed(self, data: bytes) -> list[ir.Event]:
        """Consume bytes split anywhere; return the events they complete."""
        if self._mode is None:
            self._head += data
            stripped = self._head.lstrip()
            if not stripped:
                return []
            self._mode = "array" if stripped[:1] == b"[" else "sse"
            data, self._head = self._head, b""
        if self._mode == "array":
            payloads: list[bytes | str] = list(self._array.feed(data))
        else:
            payloads = [event.data for event in self._sse.feed(data)]
        return self._payloads(payloads)

    def close(self) -> list[ir.Event]:
        """The upstream body ended: flush; no MessageStop unless a finishReason came."""
        payloads: list[bytes | str] = [e.data for e in self._sse.close()] if self._mode == "sse" else []
        events = self._payloads(payloads)
        return events + self._reader.close()

    def _payloads(self, payloads: list[bytes | str]) -> list[ir.Event]:
        events: list[ir.Event] = []
        for payload in payloads:
            if self._reader.finished:
                break
            if not payload.strip() or payload.strip() in ("[DONE]", b"[DONE]"):
                continue
            try:
                chunk = loads(payload)
            except ValueError:
                error = ir.ErrorInfo(status=502, message="malformed chunk in the upstream Gemini stream")
                events.extend(self._reader.fail(error))
                continue
            events.extend(self._reader.read(chunk))
        self.finished = self._reader.finished
        return events


# -- stream encoding ---------------------------------------------------------------


class GeminiStreamEncoder:
    """IR events → Gemini chunks, as SSE frames or as one streamed JSON array."""

    def __init__(self, request: ir.Request, sse: bool = True) -> None:
        self._model = request.model
        self._sse = sse
        self._id = ""
        self._written = 0
        self._done = False
        self._closed = False
        self._usage: ir.Usage | None = None
        self._stop: str | None = None
        self._kinds: dict[int, str] = {}
        # Gemini sends a call whole, so its fragments wait here for BlockStop.
        self._calls: dict[int, dict[str, Any]] = {}
        self._called = False

    def encode(self, event: ir.Event) -> bytes:
        """Frames for one event (often ``b""``: Gemini has no start/stop frames)."""
        if self._done:
            return b""
        if isinstance(event, ir.MessageStart):
            self._id = self._id or event.id
            self._usage = event.usage or self._usage
        elif isinstance(event, ir.BlockStart):
            self._kinds[event.index] = event.kind
            if event.kind == "tool_call":
                self._calls[event.index] = {"id": event.id, "name": event.name, "kind": event.tool_kind, "args": []}
        elif isinstance(event, ir.BlockDelta):
            return self._delta(event)
        elif isinstance(event, ir.BlockStop):
            call = self._calls.pop(event.index, None)
            return self._call(call) if call is not None else b""
        elif isinstance(event, ir.MessageDelta):
            self._stop = event.stop_reason or self._stop
            if event.usage is not None:
                self._usage = merge_usage(self._usage, event.usage)
        elif isinstance(event, ir.MessageStop):
            return self._finish_message()
        elif isinstance(event, ir.StreamError):
            self._done = True
            return self._emit(dumps(DIALECT.error_body(event.error)))
        return b""

    def finish(self) -> bytes:
        """Close the JSON array (``[]`` if nothing was written); SSE needs nothing."""
        if self._sse or self._closed:
            return b""
        self._closed = True
        return b"]" if self._written else b"[]"

    def _delta(self, event: ir.BlockDelta) -> bytes:
        kind = self._kinds.setdefault(event.index, {"arguments": "tool_call"}.get(event.kind, event.kind))
        if kind == "tool_call":
            call = self._calls.setdefault(event.index, {"id": None, "name": None, "kind": "function", "args": []})
            if event.kind == "arguments":
                call["args"].append(event.text)
            elif event.kind == "signature":
                call["signature"] = _client_signature(event.text, event.origin)
            return b""
        if event.kind == "signature" and kind == "thinking" and event.text:
            return self._chunk([{"text": "", "thought": True,
                                 "thoughtSignature": _client_signature(event.text, event.origin)}])
        if event.kind in ("text", "thinking") and event.text:
            part: dict[str, Any] = {"text": event.text}
            if event.kind == "thinking":
                part["thought"] = True
            return self._chunk([part])
        return b""

    def _call(self, call: dict[str, Any]) -> bytes:
        self._called = True
        arguments = "".join(call["args"])
        args = {"input": arguments} if call["kind"] == "custom" else _args_object(arguments)
        body: dict[str, Any] = {"name": call["name"] or "", "args": args}
        if call["id"]:
            body["id"] = call["id"]
        part: dict[str, Any] = {"functionCall": body}
        if call.get("signature"):
            part["thoughtSignature"] = call["signature"]
        return self._chunk([part])

    def _finish_message(self) -> bytes:
        out = b"".join(self._call(self._calls.pop(i)) for i in sorted(self._calls))
        self._done = True
        finish = "STOP" if self._called else STOP_TO_FINISH.get(self._stop or "end_turn", "STOP")
        # Gemini CLI retries a stream whose last chunk lacks finishReason.
        return out + self._chunk([{"text": ""}], finish)

    def _chunk(self, parts: list[dict[str, Any]], finish: str | None = None) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        body: dict[str, Any] = {"candidates": [candidate]}
        if self._usage is not None:
            body["usageMetadata"] = _encode_usage(self._usage)
        if not self._id:
            self._id = uuid.uuid4().hex[:24]
        body["modelVersion"] = self._model
        body["responseId"] = self._id
        return self._emit(dumps(body))

    def _emit(self, payload: bytes) -> bytes:
        if self._sse:
            return frame(payload)
        prefix = b"[" if not self._written else b",\r\n"
        self._written += 1
        return prefix + payload


# -- errors ------------------------------------------------------------------------

def _format_duration(seconds: float) -> str:
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds:.3f}".rstrip("0") + "s"


def _retry_after(details: list[Any], message: str) -> float | None:
    """Google's retry hints, in CPA's order: RetryInfo, quotaResetDelay, the message text."""
    infos = [d for d in details if isinstance(d, dict)]
    for detail in infos:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = parse_duration(_field(detail, "retryDelay"))
            if delay is not None:
                return delay
    for detail in infos:
        metadata = detail.get("metadata")
        if str(detail.get("@type", "")).endswith("google.rpc.ErrorInfo") and isinstance(metadata, dict):
            delay = parse_duration(metadata.get("quotaResetDelay"))
            if delay is not None:
                return delay
    return retry_hint_in_text(message)


def _error_from_object(error: Any, status: int) -> ir.ErrorInfo:
    """A google.rpc.Status object → canonical error (``status`` 0: take it from the body)."""
    if not isinstance(error, dict):
        message = error if isinstance(error, str) and error else "upstream error"
        return ir.ErrorInfo(status=status if status >= 400 else 500, message=message)
    code = error.get("code")
    name = error.get("status") if isinstance(error.get("status"), str) else None
    if status < 400:  # in-stream errors arrive on a 200 response
        status = code if isinstance(code, int) and code >= 400 else HTTP_BY_STATUS.get(name or "", 500)
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    details = error.get("details") if isinstance(error.get("details"), list) else []
    reason = next((d.get("reason") for d in details if isinstance(d, dict)
                   and str(d.get("@type", "")).endswith("google.rpc.ErrorInfo") and isinstance(d.get("reason"), str)),
                  None)
    return ir.ErrorInfo(status=status, message=message or name or f"upstream returned HTTP {status}",
                        code=reason or name, retry_after=_retry_after(details, message))


# -- the dialect -------------------------------------------------------------------


class GeminiDialect:
    """The Gemini generateContent codec (see the module docstring)."""

    name = ir.GEMINI
    keepalive_frame = KEEPALIVE_COMMENT
    marker_headers: tuple[str, ...] = ()
    model_in_body: bool = False
    forwarded_headers: tuple[str, ...] = ()
    prompt_fields: tuple[str, ...] = ("contents", "systemInstruction", "tools")

    def claims_path(self, path: str) -> bool:
        """``/v1beta/...``, and ``/v1/models/<model>:<method>`` (the ``:`` tells it from OpenAI's model GET)."""
        return path.startswith("/v1beta") or (path.startswith("/v1/models/") and ":" in path)

    def auth_headers(self, secret: str) -> dict[str, str]:
        """``x-goog-api-key`` (https://ai.google.dev/gemini-api/docs/api-key)."""
        return {"x-goog-api-key": secret}

    def upstream_path(self, model: str, stream: bool) -> str:
        """``/models/<model>:generateContent`` or ``:streamGenerateContent?alt=sse``.

        The model is one percent-encoded path segment, so a client's model name
        can never reach another path or a query.
        """
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/models/{urllib.parse.quote(model, safe='')}:{action}"

    def passes_through(self, stream: bool, sse: bool) -> bool:
        """Unless the client streams the JSON-array form: upstreams are always asked for SSE."""
        return sse or not stream

    def shape_problem(self, data: dict[str, Any]) -> str | None:
        """``contents`` must be an array; countTokens may wrap it in ``generateContentRequest``."""
        return content_field_problem(data, "contents", (list,), required="generateContentRequest" not in data)

    def frame_kind(self, event: SSEEvent) -> tuple[bool, bool]:
        """An ``{"error": ...}`` chunk ends a stream failed; the chunk carrying ``finishReason`` is the last."""
        if event.data.startswith('{"error"'):
            return True, True
        return '"finishReason"' in event.data, False

    def passthrough_error_frame(self, error: ir.ErrorInfo) -> bytes:
        """An unnamed ``data:`` frame holding the google.rpc.Status error body."""
        return json_error_frame(self, error)

    def token_count_body(self, tokens: int) -> dict[str, Any]:
        """``countTokens``: ``totalTokens`` and the per-modality breakdown (all text)."""
        return {"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}

    def models_body(self, models: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """``GET /v1beta/models``: ``{"models": [...]}``."""
        return {"models": [self.model_entry(m, owner) for m, owner in models]}

    def model_entry(self, model: str, owner: str) -> dict[str, Any]:
        """One ``Model`` resource (https://ai.google.dev/api/models#Model)."""
        return {"name": f"models/{model}", "displayName": model,
                "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]}

    def decode_request(self, body: Any) -> ir.Request:
        """Parsed generateContent (or countTokens) body → IR request with ``model=""``."""
        with reraise_as_dialect_error("invalid Gemini request"):
            return _decode_request(body)

    def encode_request(self, request: ir.Request) -> dict[str, Any]:
        """IR request → generateContent body (no model: it belongs in the URL)."""
        return _encode_request(request)

    def decode_response(self, body: Any) -> ir.Response:
        """A whole response (object, Code Assist envelope or collected array) → IR response."""
        with reraise_as_dialect_error("invalid Gemini response", status=502):
            if not isinstance(body, (dict, list)):
                raise DialectError("Gemini response must be a JSON object", status=502)
            reader = _ChunkReader(keep_extras=True)
            events = reader.read(body)
            if not reader.finished:
                events += reader.end(None)
        failure = next((e.error for e in events if isinstance(e, ir.StreamError)), None)
        if failure is not None:
            raise DialectError(failure.message, status=failure.status, code=failure.code)
        response = collect(events)
        extras = dict(reader.extras)
        if reader.raw_parts:
            extras["parts"] = reader.raw_parts
        if extras:
            response.extensions[ir.GEMINI] = extras
        return response

    def encode_response(self, response: ir.Response) -> dict[str, Any]:
        """IR response → GenerateContentResponse (``modelVersion`` = ``response.model``)."""
        ext = response.extensions.get(ir.GEMINI, {})
        raw_parts: dict[int, list[Any]] = {}
        for index, raw in ext.get("parts", []):
            raw_parts.setdefault(index, []).append(raw)
        parts: list[dict[str, Any]] = []
        for index, part in enumerate(response.parts):
            parts.extend(raw_parts.pop(index, []))
            parts.extend(_response_part(part))
        for rest in raw_parts.values():
            parts.extend(rest)
        called = any(isinstance(p, ir.ToolCall) for p in response.parts)
        candidate: dict[str, Any] = {}
        if parts:
            candidate["content"] = {"role": "model", "parts": parts}
        candidate["finishReason"] = "STOP" if called else STOP_TO_FINISH.get(response.stop_reason or "end_turn", "STOP")
        candidate["index"] = 0
        _merge(candidate, ext.get("candidate", {}))
        body = {"candidates": [candidate], "usageMetadata": _encode_usage(response.usage),
                "modelVersion": response.model, "responseId": response.id}
        _merge(body, {k: v for k, v in ext.items() if k not in ("candidate", "parts")})
        return body

    def stream_decoder(self) -> GeminiStreamDecoder:
        """A fresh decoder for one upstream stream (SSE or JSON array)."""
        return GeminiStreamDecoder()

    def stream_encoder(self, request: ir.Request, *, sse: bool = True) -> GeminiStreamEncoder:
        """A fresh encoder: SSE (``alt=sse``) or a streamed JSON array."""
        return GeminiStreamEncoder(request, sse=sse)

    def decode_error(self, status: int, body: bytes) -> ir.ErrorInfo:
        """Upstream error body (google.rpc.Status, maybe in a one-element array) → canonical error."""
        try:
            text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body)
            try:
                data = loads(text) if text.strip() else None
            except ValueError:
                data = None
            if isinstance(data, list) and data:
                data = data[0]
            if isinstance(data, dict) and isinstance(data.get("error"), dict):
                return _error_from_object(data["error"], status)
            message = text.strip()[:2000] or f"upstream returned HTTP {status}"
            return ir.ErrorInfo(status=status, message=message, retry_after=retry_hint_in_text(message))
        except Exception:  # a garbage body must never take the error path down with it
            return ir.ErrorInfo(status=status, message=f"upstream returned HTTP {status}")

    def error_body(self, error: ir.ErrorInfo) -> dict[str, Any]:
        """Canonical error → ``{"error": {code, message, status, details?}}``."""
        status = STATUS_BY_KIND.get(error.kind) or ("INTERNAL" if error.status >= 500 else "INVALID_ARGUMENT")
        body: dict[str, Any] = {"code": error.status, "message": error.message, "status": status}
        details = []
        if error.code and error.code != status:
            details.append({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": error.code,
                            "domain": "polyrelay"})
        if error.retry_after is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": _format_duration(error.retry_after)})
        if details:
            body["details"] = details
        return {"error": body}


def _response_part(part: ir.Part) -> list[dict[str, Any]]:
    """One IR response part → Gemini parts for a client (foreign signatures wrapped)."""
    if isinstance(part, ir.Text):
        out: dict[str, Any] = {"text": part.text}
        sig = part.extras.get("thought_signature")
        if isinstance(sig, dict) and sig.get("value"):
            out["thoughtSignature"] = _client_signature(sig["value"], sig.get("origin"))
        return [out]
    if isinstance(part, ir.Thinking):
        if part.redacted:
            return []  # Anthropic ciphertext with no text: nothing a Gemini client can show or replay
        out = {"text": part.text, "thought": True}
        if part.signature:
            out["thoughtSignature"] = _client_signature(part.signature, part.origin)
        return [out]
    if isinstance(part, ir.ToolCall):
        args = {"input": part.arguments} if part.kind == "custom" else _args_object(part.arguments)
        out = {"functionCall": {"name": part.name, "args": args, "id": part.id}}
        if part.signature:
            out["thoughtSignature"] = _client_signature(part.signature, part.signature_origin)
        return [out]
    if isinstance(part, (ir.Image, ir.File)):
        media = _media_part(part)
        return [media] if media else []
    return []


DIALECT = GeminiDialect()
