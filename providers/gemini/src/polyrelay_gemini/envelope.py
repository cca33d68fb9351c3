"""The Code Assist envelope: a Gemini request in, ``{model, project, request}`` out, and back (gemini-cli, CLIProxyAPI).

Code Assist serves the Vertex ``GenerateContentRequest`` inside an envelope
and is stricter than AI Studio about a few things Gemini clients (and our
own codec) send.  :func:`fix_request` applies every such quirk once, to the
request whether a Gemini client sent it as it is or a codec wrote it:

* snake_case top-level fields (``system_instruction``...) get their
  camelCase spelling;
* function declarations carry their schema as ``parametersJsonSchema``,
  cleaned (CLIProxyAPI's CleanJSONSchemaForGemini), whatever spelling the client used;
* roles are ``user`` or ``model``; parts without data are dropped (a lone
  ``thoughtSignature`` keeps its part as an empty text), then contents
  without parts ("required oneof field 'data' must have one initialized
  field");
* the function responses answering one model turn's N calls travel in one
  content, in call order, each named after its call;
* a ``functionCall`` without a ``thoughtSignature`` gets the documented
  bypass value, so history from another provider passes Gemini 3 (Google's thought-signature docs);
* Gemini CLI's default safety settings when the request has none;
* thinking budgets and levels fitted to the model (:mod:`.thinking`).

:func:`unwrap` takes ``response`` out of an answer; every other payload
(errors, ``countTokens``) passes unchanged.
"""

from __future__ import annotations

from typing import Any

from polyrelay import jsonutil
from polyrelay.dialects.gemini import SKIP_SIGNATURE, clean_schema
from polyrelay_gemini.thinking import fit_thinking

#: Top-level request fields and the spelling Code Assist gets.
_TOP_LEVEL = {
    "system_instruction": "systemInstruction", "generation_config": "generationConfig",
    "safety_settings": "safetySettings", "tool_config": "toolConfig", "cached_content": "cachedContent",
}
#: The fields of Code Assist's request; anything else (``model`` above all) stays out.
REQUEST_FIELDS = frozenset({"contents", "systemInstruction", "cachedContent", "tools", "toolConfig", "labels",
                            "safetySettings", "generationConfig", "session_id"})
_DATA_KEYS = ("text", "inlineData", "inline_data", "fileData", "file_data", "functionCall", "function_call",
              "functionResponse", "function_response", "executableCode", "executable_code",
              "codeExecutionResult", "code_execution_result")
_SCHEMA_SPELLINGS = ("parametersJsonSchema", "parameters_json_schema", "parameters")
#: Gemini CLI's defaults: nothing blocked.
DEFAULT_SAFETY = [
    {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "OFF"},
    {"category": "HARM_CATEGORY_CIVIC_INTEGRITY", "threshold": "BLOCK_NONE"},
]


def wrap(request: dict[str, Any], model: str, project: str) -> dict[str, Any]:
    """The generate envelope for ``request`` (a Gemini request; not modified)."""
    return {"model": model, "project": project, "request": fix_request(request, model)}


def fix_request(request: dict[str, Any], model: str) -> dict[str, Any]:
    """``request`` with every Code Assist quirk applied (a new dict)."""
    body = {_TOP_LEVEL.get(k, k): v for k, v in request.items()}
    body = {k: v for k, v in body.items() if k in REQUEST_FIELDS}
    contents = body.get("contents")
    if isinstance(contents, list):
        body["contents"] = _regroup(_non_empty([c for c in contents if isinstance(c, dict)]))
    tools = body.get("tools")
    if isinstance(tools, list):
        body["tools"] = [_fix_tool(t) if isinstance(t, dict) else t for t in tools]
    if not body.get("safetySettings"):
        body["safetySettings"] = [dict(s) for s in DEFAULT_SAFETY]
    config = body.get("generationConfig")
    if isinstance(config, dict):
        body["generationConfig"] = fit_thinking(config, model)
    return body


def unwrap(payload: bytes) -> bytes:
    """The Gemini answer inside a Code Assist one (``{"response": ..., "traceId": ...}``)."""
    try:
        data = jsonutil.loads(payload)
    except ValueError:
        return payload
    inner = data.get("response") if isinstance(data, dict) else None
    if not isinstance(inner, dict):
        return payload
    if "responseId" not in inner and isinstance(data.get("traceId"), str):
        inner["responseId"] = data["traceId"]
    return jsonutil.dumps(inner)


# -- tools -------------------------------------------------------------------------


def _fix_tool(tool: dict[str, Any]) -> dict[str, Any]:
    declarations = tool.get("functionDeclarations", tool.get("function_declarations"))
    if not isinstance(declarations, list):
        return tool
    rest = {k: v for k, v in tool.items() if k not in ("functionDeclarations", "function_declarations")}
    return {**rest, "functionDeclarations": [_fix_declaration(d) if isinstance(d, dict) else d
                                             for d in declarations]}


def _fix_declaration(declaration: dict[str, Any]) -> dict[str, Any]:
    schema = next((declaration[k] for k in _SCHEMA_SPELLINGS if isinstance(declaration.get(k), dict)), None)
    out = {k: v for k, v in declaration.items() if k not in _SCHEMA_SPELLINGS}
    if schema is not None:
        out["parametersJsonSchema"] = clean_schema(schema)
    return out


# -- contents -----------------------------------------------------------------------


def _field(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


def _call(part: dict[str, Any]) -> dict[str, Any] | None:
    value = _field(part, "functionCall", "function_call")
    return value if isinstance(value, dict) else None


def _response(part: dict[str, Any]) -> dict[str, Any] | None:
    value = _field(part, "functionResponse", "function_response")
    return value if isinstance(value, dict) else None


def _fix_part(part: Any) -> dict[str, Any] | None:
    """The part as Code Assist takes it, or None when it holds nothing."""
    if not isinstance(part, dict):
        return None
    if any(k in part for k in _DATA_KEYS):
        if _call(part) is not None and not _field(part, "thoughtSignature", "thought_signature"):
            return {**part, "thoughtSignature": SKIP_SIGNATURE}
        return part
    if _field(part, "thoughtSignature", "thought_signature"):
        return {"text": "", **part}  # a signature is never thrown away
    return None


def _non_empty(contents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for content in contents:
        parts = [p for p in (_fix_part(p) for p in content.get("parts") or []) if p is not None]
        if parts:
            role = "model" if content.get("role") in ("model", "assistant") else "user"
            out.append({**content, "role": role, "parts": parts})
    return out


def _regroup(contents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each model turn's calls answered by one following content, responses in call order."""
    out: list[dict[str, Any]] = []
    i = 0
    while i < len(contents):
        content = contents[i]
        out.append(content)
        i += 1
        calls = [c for p in content["parts"] if (c := _call(p)) is not None] if content["role"] == "model" else []
        if not calls:
            continue
        answers: list[dict[str, Any]] = []
        others: list[dict[str, Any]] = []
        while i < len(contents) and contents[i]["role"] == "user" and len(answers) < len(calls):
            parts = contents[i]["parts"]
            found = [p for p in parts if _response(p) is not None]
            if not found:
                break
            answers.extend(found)
            others.extend(p for p in parts if _response(p) is None)
            i += 1
        if answers:
            out.append({"role": "user", "parts": [*_in_call_order(answers, calls), *others]})
    return out


def _in_call_order(answers: list[dict[str, Any]], calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Responses sorted by the call they answer (id, else name), missing names back-filled."""
    by_id = {c.get("id"): n for n, c in enumerate(calls) if c.get("id")}
    free = list(range(len(calls)))
    ranked: list[tuple[int, dict[str, Any]]] = []
    for position, part in enumerate(answers):
        response = _response(part) or {}
        slot = by_id.get(response.get("id"))
        if slot is None:
            slot = next((n for n in free if calls[n].get("name") == response.get("name")),
                        free[0] if free and not response.get("name") else None)
        if slot is not None and slot in free:
            free.remove(slot)
        if slot is not None and not response.get("name") and calls[slot].get("name"):
            key = "functionResponse" if "functionResponse" in part else "function_response"
            part = {**part, key: {**response, "name": calls[slot]["name"]}}
        ranked.append((slot if slot is not None else len(calls) + position, part))
    return [part for _, part in sorted(ranked, key=lambda r: r[0])]
