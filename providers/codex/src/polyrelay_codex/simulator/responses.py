"""A fake of OpenAI's Responses API as an API-key holder meets it.

Sources: https://platform.openai.com/docs/api-reference/responses (and its streaming events),
https://platform.openai.com/docs/guides/error-codes; the effort levels per model are CLIProxyAPI's
model registry (router-for-me/CLIProxyAPI).

``POST /v1/responses`` on loopback.  Like OpenAI it checks the bearer key
(401, "You didn't provide an API key" / ``invalid_api_key``), then the body:
``model`` present and known, ``input`` a string or an array, no parameter it
does not know (``unknown_parameter``), tool names of the allowed pattern,
every ``function_call_output`` answering a call in ``input`` (unless
``previous_response_id`` holds the calls), and for the reasoning models no
sampling temperature other than 1 and only the effort levels the model
supports (``unsupported_value``, per the model registry named above).

Answers are ``response`` objects echoing the request's parameters.  Streams
are the full documented event sequence with a ``sequence_number`` on every
event: ``response.created``, ``response.in_progress``, then per output item
``output_item.added`` ... ``output_item.done`` (a reasoning item first on
the reasoning models, with summary events when ``reasoning.summary`` asks
for them and ``encrypted_content`` when ``include`` does), then
``response.completed`` with usage.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import time
from collections.abc import Collection
from typing import Any

from aiohttp import web

from polyrelay import jsonutil
from polyrelay.sse import frame
from polyrelay.testing.simulator import Recorded, Reply, Simulator

#: Top-level Responses parameters; anything else is an ``unknown_parameter``.
#: (``client_metadata``: Codex CLI sends it on every request, captures/codex.json, and the API takes it.)
REQUEST_FIELDS = frozenset({
    "background", "client_metadata", "conversation", "include", "input", "instructions", "max_output_tokens",
    "max_tool_calls", "metadata", "model", "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key",
    "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier", "store", "stream", "stream_options",
    "temperature", "text", "tool_choice", "tools", "top_logprobs", "top_p", "truncation", "user",
})
#: Effort levels each model accepts (CLIProxyAPI's registry); these models also fix temperature and top_p at 1.
EFFORTS: dict[str, tuple[str, ...]] = {
    "gpt-5": ("minimal", "low", "medium", "high"),
    "gpt-5-mini": ("minimal", "low", "medium", "high"),
    "gpt-5-codex": ("low", "medium", "high"),
    "gpt-5.1": ("none", "low", "medium", "high"),
    "gpt-5.1-codex": ("low", "medium", "high"),
}
INPUT_TOKENS = 14
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
REASONING_TOKENS = 6

_ids = itertools.count(1)


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_reply(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                param: str | None = None, **headers: str) -> Reply:
    """An error answer with OpenAI's ``x-request-id`` header."""
    wire = {"x-request-id": f"req_sim{next(_ids):024x}", **{k.replace("_", "-"): v for k, v in headers.items()}}
    return Reply(status=status, body=error_body(message, type_, code, param), headers=wire)


def rate_limit_reply(seconds: float = 1.5, retry_after: int | None = None, model: str = "gpt-5") -> Reply:
    """429 ``rate_limit_exceeded`` saying "Please try again in {seconds}s", with the ``x-ratelimit-*`` headers.

    ``retry_after`` adds the ``retry-after`` header OpenAI sometimes sends.
    """
    headers = {"x_ratelimit_limit_tokens": "30000", "x_ratelimit_remaining_tokens": "0",
               "x_ratelimit_reset_tokens": f"{seconds:g}s", "x_ratelimit_limit_requests": "500",
               "x_ratelimit_remaining_requests": "499", "x_ratelimit_reset_requests": "120ms"}
    if retry_after is not None:
        headers["retry_after"] = str(retry_after)
    message = (f"Rate limit reached for {model} in organization org-sim on tokens per min (TPM): Limit 30000, "
               f"Used 29750, Requested 1200. Please try again in {seconds:g}s. Visit "
               "https://platform.openai.com/account/rate-limits to learn more.")
    return error_reply(429, message, "tokens", "rate_limit_exceeded", **headers)


def insufficient_quota_reply() -> Reply:
    """429 ``insufficient_quota``: the account's credit is spent (no retry hint: it does not come back)."""
    return error_reply(429, "You exceeded your current quota, please check your plan and billing details. For more "
                       "information on this error, read the docs: "
                       "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                       "insufficient_quota", "insufficient_quota")


def _redacted(key: str) -> str:
    """How OpenAI quotes a rejected key: ``sk-abc*****wxyz``."""
    return f"{key[:3]}{'*' * max(0, len(key) - 7)}{key[-4:]}" if len(key) > 7 else "*" * len(key)


def encrypted_content(text: str) -> str:
    """A stable, opaque-looking ``encrypted_content`` for a reasoning item."""
    return "gAAAAB" + base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).decode()


def output_items(body: dict[str, Any], text: str, reasoning: str,
                 call: tuple[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The finished output: a reasoning item on reasoning models, the message, then an optional function call."""
    items: list[dict[str, Any]] = []
    if body["model"] in EFFORTS:
        summary = [{"type": "summary_text", "text": reasoning}] if (body.get("reasoning") or {}).get("summary") else []
        item: dict[str, Any] = {"id": f"rs_sim{next(_ids):040x}", "type": "reasoning", "summary": summary}
        if "reasoning.encrypted_content" in (body.get("include") or []):
            item["encrypted_content"] = encrypted_content(reasoning)
        items.append(item)
    items.append({"id": f"msg_sim{next(_ids):040x}", "type": "message", "status": "completed", "role": "assistant",
                  "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}]})
    if call is not None:
        items.append({"id": f"fc_sim{next(_ids):040x}", "type": "function_call", "status": "completed",
                      "arguments": jsonutil.dumps(call[1]).decode(), "call_id": f"call_sim{next(_ids):020d}",
                      "name": call[0]})
    return items


def response_object(body: dict[str, Any], output: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    """A ``response`` object echoing the request's parameters, as OpenAI returns it."""
    reasoning = body["model"] in EFFORTS
    words = sum(len(part["text"].split()) for item in output if item["type"] == "message"
                for part in item["content"])
    return {
        "id": f"resp_sim{next(_ids):040x}", "object": "response", "created_at": int(time.time()), "status": status,
        "background": False, "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "model": body["model"], "output": output, "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort", "medium" if reasoning else None),
                      "summary": (body.get("reasoning") or {}).get("summary")},
        "service_tier": "default", "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0), "truncation": body.get("truncation", "disabled"),
        "usage": None if status != "completed" else {
            "input_tokens": INPUT_TOKENS, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": words + (REASONING_TOKENS if reasoning else 0),
            "output_tokens_details": {"reasoning_tokens": REASONING_TOKENS if reasoning else 0},
            "total_tokens": INPUT_TOKENS + words + (REASONING_TOKENS if reasoning else 0)},
        "user": body.get("user"), "metadata": body.get("metadata") or {},
    }


def stream_events(body: dict[str, Any], pieces: list[str], reasoning: list[str],
                  call: tuple[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The full documented event sequence for one answer, ``sequence_number`` from 0."""
    final = response_object(body, output_items(body, "".join(pieces), "".join(reasoning), call))
    skeleton = {**final, "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [{"type": "response.created", "response": skeleton},
                                    {"type": "response.in_progress", "response": skeleton}]
    for index, item in enumerate(final["output"]):
        at = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            events.append({"type": "response.output_item.added", "output_index": index,
                           "item": {"id": item["id"], "type": "reasoning", "summary": []}})
            if item["summary"]:
                part = {"type": "summary_text", "text": ""}
                events.append({"type": "response.reasoning_summary_part.added", **at, "summary_index": 0,
                               "part": part})
                events += [{"type": "response.reasoning_summary_text.delta", **at, "summary_index": 0, "delta": r}
                           for r in reasoning]
                events.append({"type": "response.reasoning_summary_text.done", **at, "summary_index": 0,
                               "text": "".join(reasoning)})
                events.append({"type": "response.reasoning_summary_part.done", **at, "summary_index": 0,
                               "part": item["summary"][0]})
        elif item["type"] == "function_call":
            events.append({"type": "response.output_item.added", "output_index": index,
                           "item": {**item, "status": "in_progress", "arguments": ""}})
            half = len(item["arguments"]) // 2
            events += [{"type": "response.function_call_arguments.delta", **at, "delta": d}
                       for d in (item["arguments"][:half], item["arguments"][half:])]
            events.append({"type": "response.function_call_arguments.done", **at, "arguments": item["arguments"],
                           "name": item["name"]})
        else:
            events.append({"type": "response.output_item.added", "output_index": index,
                           "item": {**item, "status": "in_progress", "content": []}})
            where = {**at, "content_index": 0}
            events.append({"type": "response.content_part.added", **where,
                           "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}})
            events += [{"type": "response.output_text.delta", **where, "delta": p, "logprobs": []} for p in pieces]
            events.append({"type": "response.output_text.done", **where, "text": "".join(pieces), "logprobs": []})
            events.append({"type": "response.content_part.done", **where, "part": item["content"][0]})
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    events.append({"type": "response.completed", "response": final})
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]


def function_call_reply(name: str, arguments: dict[str, Any], stream: bool, model: str = "gpt-5",
                        text: str = "Let me check.") -> Reply:
    """An answer that says ``text`` and calls function ``name`` (scripted, so it echoes a minimal request)."""
    body, call = {"model": model}, (name, arguments)
    if stream:
        return Reply.sse(sse_frames(stream_events(body, [text], ["Need the file."], call)))
    return Reply.json(response_object(body, output_items(body, text, "Need the file.", call)))


def sse_frames(events: list[dict[str, Any]]) -> list[bytes]:
    """``event:`` + ``data:`` frames (the data repeats the type)."""
    return [frame(jsonutil.dumps(e), event=e["type"]) for e in events]


def _tool_problem(body: dict[str, Any]) -> Reply | None:
    """Tool names OpenAI accepts, and every call output answering a call earlier in ``input``."""
    for index, tool in enumerate(body.get("tools") or []):
        name = tool.get("name") if isinstance(tool, dict) and tool.get("type") in ("function", "custom") else None
        if name is not None and not _TOOL_NAME.fullmatch(str(name)):
            return error_reply(400, f"Invalid 'tools[{index}].name': string does not match pattern. Expected a "
                               f"string that matches the pattern '{_TOOL_NAME.pattern}'.", code="invalid_value",
                               param=f"tools[{index}].name")
    calls: set[str] = set()
    given = body.get("input")
    history: list[Any] = given if isinstance(given, list) and not body.get("previous_response_id") else []
    for item in history:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind in ("function_call", "custom_tool_call"):
            calls.add(item.get("call_id"))
        elif kind in ("function_call_output", "custom_tool_call_output") and item.get("call_id") not in calls:
            return error_reply(400, f"No tool call found for function call output with call_id {item.get('call_id')}.",
                               param="input")
    return None


def body_problem(body: Any, models: Collection[str] | None) -> Reply | None:
    """OpenAI's 400 for an invalid Responses body, or None."""
    if not isinstance(body, dict):
        return error_reply(400, "We could not parse the JSON body of your request.")
    for name in body:
        if name not in REQUEST_FIELDS:
            return error_reply(400, f"Unknown parameter: '{name}'.", code="unknown_parameter", param=name)
    model = body.get("model")
    if not model:
        return error_reply(400, "Missing required parameter: 'model'.", code="missing_required_parameter",
                           param="model")
    if models is not None and model not in models:
        return error_reply(400, f"The requested model '{model}' does not exist.", code="model_not_found",
                           param="model")
    if not isinstance(body.get("input", ""), (str, list)):
        return error_reply(400, "Invalid type for 'input': expected one of a string or array of input items.",
                           code="invalid_type", param="input")
    if problem := _tool_problem(body):
        return problem
    if model in EFFORTS:
        for name in ("temperature", "top_p"):
            if body.get(name) not in (None, 1, 1.0):
                return error_reply(400, f"Unsupported value: '{name}' does not support {body[name]} with this "
                                   "model. Only the default (1) value is supported.", code="unsupported_value",
                                   param=name)
        effort = (body.get("reasoning") or {}).get("effort")
        if effort is not None and effort not in EFFORTS[model]:
            allowed = ", ".join(f"'{e}'" for e in EFFORTS[model])
            return error_reply(400, f"Unsupported value: 'reasoning.effort' does not support '{effort}' with this "
                               f"model. Supported values are: {allowed}.", code="unsupported_value",
                               param="reasoning.effort")
    return None


class ResponsesSimulator(Simulator):
    """``POST /v1/responses`` (API base ``{root}/v1``)."""

    def __init__(self, keys: Collection[str] | None = None, models: Collection[str] | None = None,
                 reply_text: str = "Hello from the Responses simulator.",
                 reasoning_text: str = "**Greeting** The user wants a hello.") -> None:
        super().__init__(keys, models)
        self.reply_text = reply_text
        self.reasoning_text = reasoning_text

    @property
    def api_base(self) -> str:
        """What a ``codex-api-key`` entry's ``base-url`` is set to."""
        return f"{self.base_url}/v1"

    def routes(self) -> list[web.RouteDef]:
        """The Responses endpoint."""
        return [web.post("/v1/responses", self.handle)]

    def check(self, recorded: Recorded) -> Reply | None:
        """The bearer key, then the body, in OpenAI's words."""
        refused = self.key_problem(recorded)
        if refused == "missing":
            return error_reply(401, "You didn't provide an API key. You need to provide your API key in an "
                               "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        if refused == "unknown":
            key = self.presented_key(recorded)
            return error_reply(401, f"Incorrect API key provided: {_redacted(key)}. You can find your API key at "
                               "https://platform.openai.com/account/api-keys.", code="invalid_api_key")
        try:
            body = recorded.json()
        except ValueError:
            return error_reply(400, "We could not parse the JSON body of your request.")
        return body_problem(body, self.models)

    def default_reply(self, recorded: Recorded) -> Reply:
        """Answer with :attr:`reply_text` (after reasoning on the reasoning models)."""
        body = recorded.json()
        if body.get("stream"):
            words = self.reply_text.split(" ")
            pieces = [w if i == 0 else f" {w}" for i, w in enumerate(words)]
            half = len(self.reasoning_text) // 2
            reasoning = [self.reasoning_text[:half], self.reasoning_text[half:]]
            return Reply.sse(sse_frames(stream_events(body, pieces, reasoning)))
        return Reply.json(response_object(body, output_items(body, self.reply_text, self.reasoning_text)))
