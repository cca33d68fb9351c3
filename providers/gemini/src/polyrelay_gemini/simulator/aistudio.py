"""A fake of the Gemini API as an AI Studio key holder meets it.

Sources: https://ai.google.dev/api/generate-content, https://ai.google.dev/gemini-api/docs/rate-limits,
https://ai.google.dev/gemini-api/docs/thought-signatures,
https://ai.google.dev/gemini-api/docs/troubleshooting; the refused schema keywords are CLIProxyAPI's
``CleanJSONSchemaForGemini`` list (router-for-me/CLIProxyAPI internal/util/gemini_schema.go).

``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent`` on loopback.  Like Google, it checks the key first
(``x-goog-api-key`` header or ``?key=``: none is 403 ``PERMISSION_DENIED``,
a wrong one 400 ``INVALID_ARGUMENT`` with ``ErrorInfo.reason
API_KEY_INVALID``), then the body: unknown top-level fields, empty
``contents`` or ``parts``, invalid roles, function responses that do not
match the calls, Gemini 3 tool turns without a ``thoughtSignature``,
and function declaration ``parameters`` that hold JSON-schema keywords
Gemini refuses (``Unknown name "additionalProperties" ... Cannot find
field.``).  The refused set is CLIProxyAPI's list, a little stricter than Google
for the few keywords (``format``, ``default``, ``title``...) its Schema
proto knows: the gateway's cleanup must remove them all.
``parametersJsonSchema`` takes full JSON Schema and is not checked.

Answers are ``GenerateContentResponse`` objects.  Streams carry incremental
parts with ``usageMetadata`` on every chunk and ``finishReason`` on the last;
``alt=sse`` gives ``data:`` events (``\\n\\n``, or ``\\r\\n\\r\\n`` as real
servers send with ``crlf=True``), no ``alt`` one streamed JSON array.  With
``thinkingConfig.includeThoughts`` a thought part comes first and the first
answer part carries a ``thoughtSignature``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Collection, Iterable
from typing import Any

from aiohttp import web

from polyrelay import jsonutil
from polyrelay.testing.simulator import Recorded, Reply, Simulator

_RPC = "type.googleapis.com/google.rpc."
#: GenerateContentRequest fields (proto JSON accepts both spellings).
REQUEST_FIELDS = frozenset({
    "model", "contents", "systemInstruction", "system_instruction", "tools", "toolConfig", "tool_config",
    "safetySettings", "safety_settings", "generationConfig", "generation_config", "cachedContent", "cached_content",
})
#: Keywords Gemini's ``parameters`` refuses (CLIProxyAPI's list); every ``x-*`` extension too.
REFUSED_SCHEMA_KEYWORDS = frozenset({
    "$schema", "$defs", "definitions", "$ref", "$id", "$comment", "const", "additionalProperties", "propertyNames",
    "patternProperties", "if", "then", "else", "minLength", "maxLength", "exclusiveMinimum", "exclusiveMaximum",
    "pattern", "minItems", "maxItems", "uniqueItems", "format", "default", "examples", "enumDescriptions",
    "enumTitles", "prefill", "deprecated", "encrypted", "nullable", "title", "allOf", "oneOf", "not",
})
#: What the Schema proto knows and CLIProxyAPI's cleanup keeps (``multipleOf`` among them).
SCHEMA_FIELDS = frozenset({
    "type", "description", "enum", "properties", "required", "items", "minimum", "maximum", "multipleOf", "anyOf",
    "propertyOrdering", "minProperties", "maxProperties", "example", "any_of", "property_ordering",
    "min_properties", "max_properties", "multiple_of",
})
SCHEMA_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
PROMPT_TOKENS = 8

_ids = itertools.count(1)


def status_body(code: int, status: str, message: str, details: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """A google.rpc.Status error body."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details := list(details):
        error["details"] = details
    return {"error": error}


def status_reply(code: int, status: str, message: str, details: Iterable[dict[str, Any]] = (),
                 **headers: str) -> Reply:
    """A google.rpc.Status error answer."""
    return Reply(status=code, body=status_body(code, status, message, details), headers=dict(headers))


def invalid_argument(message: str) -> Reply:
    """400 ``INVALID_ARGUMENT``, Google's answer to a malformed request."""
    return status_reply(400, "INVALID_ARGUMENT", message)


def rate_limit_reply(retry_delay: int = 56, model: str = "gemini-2.5-pro", daily: bool = False) -> Reply:
    """429 ``RESOURCE_EXHAUSTED`` of the free tier, with QuotaFailure, Help and RetryInfo (rate-limits page).

    ``daily`` names the per-day quota, which only resets at midnight Pacific
    time even though Google's ``RetryInfo`` still says seconds.
    """
    metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
    period = "Day" if daily else "Minute"
    limit = "250" if daily else "2"
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more information on "
        "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"
        f"* Quota exceeded for metric: {metric}, limit: {limit}, model: {model}\nPlease retry in {retry_delay}s."
    )
    return status_reply(429, "RESOURCE_EXHAUSTED", message, [
        {"@type": _RPC + "QuotaFailure", "violations": [{
            "quotaMetric": metric, "quotaId": f"GenerateRequestsPer{period}PerProjectPerModel-FreeTier",
            "quotaDimensions": {"location": "global", "model": model}, "quotaValue": limit}]},
        {"@type": _RPC + "Help", "links": [{"description": "Learn more about Gemini API quotas",
                                            "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
        {"@type": _RPC + "RetryInfo", "retryDelay": f"{retry_delay}s"},
    ])


def overloaded_reply() -> Reply:
    """503 ``UNAVAILABLE``: the model is overloaded (troubleshooting page)."""
    return status_reply(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")


def _api_key_invalid() -> Reply:
    return status_reply(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
        {"@type": _RPC + "ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
         "metadata": {"service": "generativelanguage.googleapis.com"}},
        {"@type": _RPC + "LocalizedMessage", "locale": "en-US",
         "message": "API key not valid. Please pass a valid API key."},
    ])


def _field(obj: dict[str, Any], camel: str) -> Any:
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return obj.get(camel, obj.get(snake))


def schema_problem(schema: Any, where: str) -> str | None:
    """Google's complaint about a ``parameters`` / ``responseSchema`` Schema, or None."""
    if not isinstance(schema, dict):
        return f"Invalid value at '{where}': expected a Schema object."
    for key in schema:
        if key not in SCHEMA_FIELDS:  # every refused keyword and x-* extension falls here
            return f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
    kind = schema.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.lower() not in SCHEMA_TYPES):
        return f"Invalid value at '{where}.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type)"
    if isinstance(kind, str) and kind.lower() == "array" and "items" not in schema:
        return f"* GenerateContentRequest.{where}.items: missing field."
    if "enum" in schema and not (isinstance(schema["enum"], list) and all(isinstance(v, str) for v in schema["enum"])):
        return f"Invalid value at '{where}.enum': enum values must be strings."
    properties = schema.get("properties") or {}
    if not isinstance(properties, dict):
        return f"Invalid value at '{where}.properties': expected a map of Schema objects."
    children = [(f"{where}.properties[{name}].value", s) for name, s in properties.items()]
    if "items" in schema:
        children.append((f"{where}.items", schema["items"]))
    children += [(f"{where}.any_of[{i}]", s) for i, s in enumerate(schema.get("anyOf") or [])]
    return next((p for path, child in children if (p := schema_problem(child, path))), None)


def _calls(content: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The parts of ``content`` holding a ``functionCall`` / ``functionResponse`` (either spelling)."""
    return [p for p in content.get("parts") or [] if isinstance(p, dict) and _field(p, kind) is not None]


def tool_turn_problem(contents: list[dict[str, Any]], model: str) -> str | None:
    """As many function responses as calls; on Gemini 3 a ``thoughtSignature`` on each turn's first call.

    Google checks signatures only in the current turn: the contents after
    the last user message that holds text rather than function responses.
    """
    for i, content in enumerate(contents[:-1]):
        calls, answers = _calls(content, "functionCall"), _calls(contents[i + 1], "functionResponse")
        if calls and answers and len(calls) != len(answers):
            return ("Please ensure that the number of function response parts is equal to the number of function "
                    "call parts of the function call turn.")
    if not model.startswith("gemini-3"):
        return None
    turn = max((i for i, c in enumerate(contents) if c.get("role", "user") == "user"
                and any("text" in p for p in c.get("parts") or [] if isinstance(p, dict))), default=0)
    for i, content in enumerate(contents[turn:], turn):
        calls = _calls(content, "functionCall") if content.get("role") == "model" else []
        if calls and not _field(calls[0], "thoughtSignature"):
            name = _field(calls[0], "functionCall").get("name")
            return ("Function call is missing a thought_signature in functionCall parts. This is required for tools "
                    "to work correctly, and missing thought_signature may lead to degraded model performance. "
                    f"Additional data, function call `default_api:{name}` , position {i + 1}. Please refer to "
                    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.")
    return None


def request_problem(body: Any, model: str = "") -> str | None:
    """Google's complaint about a GenerateContentRequest body for ``model``, or None."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received. Expected an object."
    for name in body:
        if name not in REQUEST_FIELDS:
            return f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, content in enumerate(contents):
        if not isinstance(content, dict) or content.get("role", "user") not in ("user", "model"):
            return "Please use a valid role: user, model."
        if not content.get("parts"):
            return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
    if problem := tool_turn_problem(contents, model):
        return problem
    for i, tool in enumerate(body.get("tools") or []):
        for j, declaration in enumerate(_field(tool, "functionDeclarations") or []):
            parameters = declaration.get("parameters")
            if parameters is not None and (p := schema_problem(parameters, f"tools[{i}].function_declarations"
                                                                           f"[{j}].parameters")):
                return p
    config = _field(body, "generationConfig") or {}
    schema = _field(config, "responseSchema")
    return schema_problem(schema, "generation_config.response_schema") if schema is not None else None


def thought_signature(text: str) -> str:
    """A stable, opaque-looking ``thoughtSignature``."""
    return base64.b64encode(b"sim-thought:" + hashlib.sha256(text.encode()).digest()).decode()


def usage(candidates: int, thoughts: int = 0) -> dict[str, Any]:
    """``usageMetadata`` (cumulative, as on every streamed chunk)."""
    meta: dict[str, Any] = {"promptTokenCount": PROMPT_TOKENS, "candidatesTokenCount": candidates,
                            "totalTokenCount": PROMPT_TOKENS + candidates + thoughts,
                            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": PROMPT_TOKENS}]}
    if thoughts:
        meta["thoughtsTokenCount"] = thoughts
    return meta


def response_chunk(model: str, parts: list[dict[str, Any]], meta: dict[str, Any], response_id: str,
                   finish: str | None = None) -> dict[str, Any]:
    """One ``GenerateContentResponse`` (a whole answer, or one streamed chunk)."""
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": meta, "modelVersion": model, "responseId": response_id}


def answer_chunks(model: str, pieces: list[str], thought: str | None = None) -> list[dict[str, Any]]:
    """A streamed answer: an optional thought chunk, one chunk per text piece, STOP on the last."""
    response_id = f"sim-{next(_ids)}"
    thoughts = 5 if thought is not None else 0
    chunks = []
    if thought is not None:
        chunks.append(response_chunk(model, [{"text": thought, "thought": True}], usage(0, thoughts), response_id))
    for n, piece in enumerate(pieces, 1):
        part: dict[str, Any] = {"text": piece}
        if thought is not None and n == 1:
            part["thoughtSignature"] = thought_signature(thought)
        finish = "STOP" if n == len(pieces) else None
        chunks.append(response_chunk(model, [part], usage(n, thoughts), response_id, finish))
    return chunks


def text_pieces(text: str) -> list[str]:
    """``text`` as streamed pieces: one word per chunk, spaces kept."""
    return [w if i == 0 else f" {w}" for i, w in enumerate(text.split(" "))]


def sse_frames(chunks: list[dict[str, Any]], crlf: bool = False) -> list[bytes]:
    """``alt=sse`` framing: ``data:`` lines only, no terminator."""
    end = b"\r\n\r\n" if crlf else b"\n\n"
    return [b"data: " + jsonutil.dumps(c) + end for c in chunks]


def json_array_frames(chunks: list[dict[str, Any]]) -> list[bytes]:
    """Streaming without ``alt``: one JSON array written element by element."""
    frames = [(b"[" if i == 0 else b",\r\n") + jsonutil.dumps(c) for i, c in enumerate(chunks)]
    return [*frames, b"]"]


def function_call_reply(model: str, name: str, args: dict[str, Any], stream: bool, sse: bool = True,
                        text: str = "Let me check.") -> Reply:
    """An answer that says ``text`` then calls ``name`` (whole, in one part; signed on Gemini 3).

    The turn ends with ``STOP``: Gemini has no tool-call finish reason.
    """
    call: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
    if model.startswith("gemini-3"):
        call["thoughtSignature"] = thought_signature(name)
    response_id = f"sim-{next(_ids)}"
    if not stream:
        return Reply.json(response_chunk(model, [{"text": text}, call], usage(9), response_id, "STOP"))
    chunks = [response_chunk(model, [{"text": text}], usage(3), response_id),
              response_chunk(model, [call], usage(9), response_id, "STOP")]
    if sse:
        return Reply.sse(sse_frames(chunks))
    return Reply(chunks=json_array_frames(chunks), headers={"content-type": "application/json; charset=UTF-8"})


class GeminiSimulator(Simulator):
    """``/v1beta/models/{model}:{generateContent|streamGenerateContent}``."""

    key_header = "x-goog-api-key"

    def __init__(self, keys: Collection[str] | None = None, models: Collection[str] | None = None,
                 reply_text: str = "Hello from the Gemini simulator.",
                 thought_text: str = "The user would like a greeting.", crlf: bool = False) -> None:
        super().__init__(keys, models)
        self.reply_text = reply_text
        self.thought_text = thought_text
        self.crlf = crlf

    @property
    def api_base(self) -> str:
        """What a ``gemini-api-key`` entry's ``base-url`` is set to."""
        return f"{self.base_url}/v1beta"

    def routes(self) -> list[web.RouteDef]:
        """The two generate methods, model in the path."""
        return [web.post("/v1beta/models/{target}", self.handle)]

    def presented_key(self, recorded: Recorded) -> str:
        """Google takes the key in ``x-goog-api-key`` or the ``key`` query parameter."""
        return super().presented_key(recorded) or recorded.query.get("key", "")

    def check(self, recorded: Recorded) -> Reply | None:
        """Key, method, model and body, in Google's order and words."""
        refused = self.key_problem(recorded)
        if refused == "missing":
            return status_reply(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers "
                                "without established identity). Please use API Key or other form of API consumer "
                                "identity to call this API.")
        if refused == "unknown":
            return _api_key_invalid()
        model, _, action = recorded.path.rsplit("/", 1)[-1].partition(":")
        if action not in ("generateContent", "streamGenerateContent"):
            return status_reply(404, "NOT_FOUND", f"Method not found: {action or model}")
        if not self.serves(model):
            return status_reply(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta, or is not "
                                "supported for generateContent. Call ListModels to see the list of available "
                                "models and their supported methods.")
        try:
            body = recorded.json()
        except ValueError:
            return invalid_argument("Invalid JSON payload received. Unexpected token.")
        problem = request_problem(body, model)
        return invalid_argument(problem) if problem else None

    def default_reply(self, recorded: Recorded) -> Reply:
        """Answer with :attr:`reply_text` (after a thought when thoughts are asked for)."""
        body = recorded.json()
        model = recorded.path.rsplit("/", 1)[-1].partition(":")[0]
        thinking = _field(_field(body, "generationConfig") or {}, "thinkingConfig") or {}
        thought = self.thought_text if _field(thinking, "includeThoughts") else None
        if not recorded.path.endswith(":streamGenerateContent"):
            parts: list[dict[str, Any]] = [{"text": self.reply_text}]
            if thought is not None:
                parts = [{"text": thought, "thought": True},
                         {"text": self.reply_text, "thoughtSignature": thought_signature(thought)}]
            count = len(self.reply_text.split(" "))
            return Reply.json(response_chunk(model, parts, usage(count, 5 if thought else 0), f"sim-{next(_ids)}",
                                             "STOP"))
        chunks = answer_chunks(model, text_pieces(self.reply_text), thought)
        if recorded.query.get("alt") == "sse":
            return Reply.sse(sse_frames(chunks, self.crlf))
        return Reply(chunks=json_array_frames(chunks), headers={"content-type": "application/json; charset=UTF-8"})
