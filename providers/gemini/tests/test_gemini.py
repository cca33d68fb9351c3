"""The gemini provider against its AI Studio simulator, through the real gateway on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from polyrelay import ir, jsonutil
from polyrelay.sse import SSEParser
from polyrelay.testing import Reply, run_gateway
from polyrelay.testing.clients import ask, tool_round_trip
from polyrelay.testing.conformance import ProviderConformance
from polyrelay.testing.fixtures import api_key_config
from polyrelay_gemini import MODELS
from polyrelay_gemini.simulator import (
    REFUSED_SCHEMA_KEYWORDS,
    GeminiSimulator,
    function_call_reply,
    overloaded_reply,
    rate_limit_reply,
    schema_problem,
)

KEYS = ["AIzaSyAlpha-0000000000000000000000000", "AIzaSyBravo-1111111111111111111111111"]
MODEL = "gemini-2.5-flash"


gemini_config = partial(api_key_config, "gemini-api-key")



@pytest_asyncio.fixture
async def google() -> AsyncIterator[GeminiSimulator]:
    """A simulator accepting both test keys and serving the provider's models."""
    async with GeminiSimulator(keys=KEYS, models=MODELS) as simulator:
        yield simulator


class TestGeminiProvider(ProviderConformance):
    """Every client dialect, streamed or not, and rotation on Google's own 429."""

    provider_name = "gemini"
    distribution = "polyrelay-gemini"
    model = MODEL
    expected_text = "Hello from the Gemini simulator."

    simulator_fixture = "google"

    def config_text(self, simulator: GeminiSimulator) -> str:
        return gemini_config(*((key, simulator.api_base) for key in KEYS))

    def rate_limit_reply(self) -> Reply:
        return rate_limit_reply(retry_delay=56, model=MODEL)

    def tool_call_reply(self, name: str, arguments: dict[str, Any], stream: bool) -> Reply:
        return function_call_reply(MODEL, name, arguments, stream)


# -- the simulator validates what Google validates ---------------------------------------------------

GOOD = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
GENERATE = f"/v1beta/models/{MODEL}:generateContent"


def _tool(parameters: dict[str, Any]) -> dict[str, Any]:
    return {**GOOD, "tools": [{"functionDeclarations": [{"name": "f", "parameters": parameters}]}]}


@pytest.mark.parametrize(("path", "headers", "body", "status", "rpc", "words"), [
    (GENERATE, {}, GOOD, 403, "PERMISSION_DENIED", "unregistered callers"),
    (GENERATE, {"x-goog-api-key": "AIzaSyWrong"}, GOOD, 400, "INVALID_ARGUMENT", "API key not valid"),
    (GENERATE, {"authorization": f"Bearer {KEYS[0]}"}, GOOD, 403, "PERMISSION_DENIED", "unregistered callers"),
    ("/v1beta/models/gemini-9-ultra:generateContent", {"x-goog-api-key": KEYS[0]}, GOOD, 404, "NOT_FOUND",
     "models/gemini-9-ultra is not found"),
    (GENERATE, {"x-goog-api-key": KEYS[0]}, {**GOOD, "model": "x", "messages": []}, 400, "INVALID_ARGUMENT",
     'Unknown name "messages"'),
    (GENERATE, {"x-goog-api-key": KEYS[0]}, {"contents": []}, 400, "INVALID_ARGUMENT", "contents is not specified"),
    (GENERATE, {"x-goog-api-key": KEYS[0]}, {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, 400,
     "INVALID_ARGUMENT", "valid role"),
    (GENERATE, {"x-goog-api-key": KEYS[0]},
     _tool({"type": "object", "additionalProperties": False, "properties": {}}), 400, "INVALID_ARGUMENT",
     "Unknown name \"additionalProperties\" at 'tools[0].function_declarations[0].parameters'"),
    (GENERATE, {"x-goog-api-key": KEYS[0]},
     _tool({"type": "object", "properties": {"a": {"type": "string", "x-google-enum": ["a"]}}}), 400,
     "INVALID_ARGUMENT", 'Unknown name "x-google-enum"'),
    (GENERATE, {"x-goog-api-key": KEYS[0]}, _tool({"type": "object", "properties": {"a": {"type": "array"}}}), 400,
     "INVALID_ARGUMENT", "items: missing field"),
    ("/v1beta/models/gemini-3-pro-preview:generateContent", {"x-goog-api-key": KEYS[0]},
     tool_round_trip(ir.GEMINI, "gemini-3-pro-preview")[2], 400, "INVALID_ARGUMENT",
     "Function call is missing a thought_signature"),
    (GENERATE, {"x-goog-api-key": KEYS[0]}, {"contents": [
        {"role": "user", "parts": [{"text": "x"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}, {"functionCall": {"name": "g"}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]}, 400, "INVALID_ARGUMENT",
     "number of function response parts is equal to the number of function call parts"),
], ids=["no-key", "wrong-key", "bearer-is-not-a-key", "unknown-model", "unknown-field", "no-contents", "bad-role",
        "additional-properties", "x-extension", "array-without-items", "gemini-3-unsigned-call", "response-count"])
async def test_simulator_rejects_what_google_rejects(
    google: GeminiSimulator, polyrelay_http: aiohttp.ClientSession, path: str, headers: dict[str,
            str], body: dict[str, Any],
    status: int, rpc: str, words: str,
) -> None:
    async with polyrelay_http.post(google.base_url + path, json=body, headers=headers) as response:
        answer = await response.json()
    assert response.status == status
    assert answer["error"]["code"] == status and answer["error"]["status"] == rpc
    assert words in answer["error"]["message"]
    if words == "API key not valid":
        assert answer["error"]["details"][0]["reason"] == "API_KEY_INVALID"


async def test_simulator_takes_the_key_from_the_query_and_streams_a_json_array(google, polyrelay_http):
    url = f"{google.base_url}/v1beta/models/{MODEL}:streamGenerateContent?key={KEYS[0]}"
    async with polyrelay_http.post(url, json=GOOD) as response:
        chunks = jsonutil.loads(await response.read())
    assert response.status == 200
    assert all("usageMetadata" in c for c in chunks)
    assert [c["candidates"][0].get("finishReason") for c in chunks][-2:] == [None, "STOP"]
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == google.reply_text


# -- through the gateway -----------------------------------------------------------------------------

NASTY_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "title": "ReadFile",
    "additionalProperties": False,
    "$defs": {"Mode": {"type": "string", "enum": ["r", "rb"], "description": "open mode"}},
    "properties": {
        "path": {"type": "string", "minLength": 1, "pattern": "^/", "format": "uri-reference", "x-order": 1},
        "mode": {"$ref": "#/$defs/Mode"},
        "limit": {"type": ["integer", "null"], "exclusiveMinimum": 0, "default": 100},
        "kind": {"const": "file"},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "maxItems": 5},
        "opts": {"anyOf": [{"type": "null"}, {"type": "object", "additionalProperties": False,
                                              "properties": {"follow": {"type": "boolean"}}}]},
        "pattern": {"type": "string", "description": "a property named like a keyword"},
        "title": {"type": "string"},
    },
    "required": ["path", "ghost"],
}


def _tool_request(dialect: str) -> tuple[str, dict[str, Any]]:
    prompt = [{"role": "user", "content": "Read /etc/hosts."}]
    if dialect == ir.OPENAI_CHAT:
        return "/v1/chat/completions", {"model": MODEL, "messages": prompt, "tools": [{"type": "function", "function": {
            "name": "read_file", "description": "Read a file", "parameters": NASTY_SCHEMA}}]}
    if dialect == ir.ANTHROPIC:
        return "/v1/messages", {"model": MODEL, "max_tokens": 256, "messages": prompt, "tools": [
            {"name": "read_file", "description": "Read a file", "input_schema": NASTY_SCHEMA}]}
    return "/v1/responses", {"model": MODEL, "input": "Read /etc/hosts.", "tools": [
        {"type": "function", "name": "read_file", "description": "Read a file", "parameters": NASTY_SCHEMA}]}


def _schema_keys(schema: dict[str, Any]) -> set[str]:
    """Every keyword used at a schema position (property names excluded)."""
    keys = set(schema)
    for child in (schema.get("properties") or {}).values():
        keys |= _schema_keys(child)
    if isinstance(schema.get("items"), dict):
        keys |= _schema_keys(schema["items"])
    return keys


@pytest.mark.parametrize("dialect", [ir.OPENAI_CHAT, ir.ANTHROPIC, ir.OPENAI_RESPONSES])
async def test_tool_schemas_reach_gemini_cleaned(google, polyrelay_http, dialect):
    """Gemini refuses these keywords with a 400; the codec's cleanup must remove them, not the properties."""
    path, body = _tool_request(dialect)
    async with run_gateway(gemini_config((KEYS[0], google.api_base))) as gateway, \
            polyrelay_http.post(gateway.url + path, json=body, headers={"anthropic-version": "2023-06-01"}) as response:
        answer = await response.json()
    assert response.status == 200, answer
    (declaration,) = google.requests[-1].json()["tools"][0]["functionDeclarations"]
    parameters = declaration["parameters"]
    assert schema_problem(parameters, "parameters") is None
    assert not _schema_keys(parameters) & REFUSED_SCHEMA_KEYWORDS
    assert set(parameters["properties"]) == {"path", "mode", "limit", "kind", "tags", "opts", "pattern", "title"}
    assert parameters["properties"]["mode"]["enum"] == ["r", "rb"]
    assert parameters["properties"]["limit"]["type"].lower() == "integer"
    assert parameters["required"] == ["path"]


async def test_gemini_clients_own_bodies_pass_through_and_a_refusal_cools_nothing(google, polyrelay_http):
    """Same dialect is byte-exact: Google's 400 reaches the client, and a request fault is no key's fault."""
    body = _tool({"type": "object", "additionalProperties": False, "properties": {}})
    config = gemini_config(*((key, google.api_base) for key in KEYS))
    async with run_gateway(config) as gateway:
        async with polyrelay_http.post(f"{gateway.url}{GENERATE}", json=body) as response:
            answer = await response.json()
        assert all(not gateway.gateway.pool.cooling_until(c, MODEL) for c in gateway.gateway.pool)
    assert response.status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT"
    assert len(google.requests) == 1 and jsonutil.loads(google.requests[0].body) == body


async def test_retry_delay_cools_both_keys_then_429_with_retry_after(google, polyrelay_http):
    config = gemini_config(*((key, google.api_base) for key in KEYS), extra="request-retry: 0")
    async with run_gateway(config) as gateway:
        google.push(rate_limit_reply(retry_delay=37, model=MODEL), rate_limit_reply(retry_delay=37, model=MODEL))
        first = await ask(polyrelay_http, gateway.url, ir.GEMINI, MODEL)
        second = await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL, stream=True)
    assert len(google.requests) == 2, "the second request must not reach Google: every key is cooling"
    assert first.status == 429 and 35 <= int(first.headers["retry-after"]) <= 37
    assert first.body["error"]["status"] == "RESOURCE_EXHAUSTED"
    delays = [d["retryDelay"] for d in first.body["error"].get("details", []) if "retryDelay" in d]
    assert delays and 35 <= float(delays[0].rstrip("s")) <= 37
    assert second.status == 429 and 35 <= int(second.headers["retry-after"]) <= 37
    assert second.body["error"]["type"] == "rate_limit_error"


async def test_daily_quota_cools_the_model_until_pacific_midnight(google, polyrelay_http):
    config = gemini_config(*((key, google.api_base) for key in KEYS), extra="routing:\n  strategy: fill-first")
    async with run_gateway(config) as gateway:
        google.push(rate_limit_reply(retry_delay=20, model=MODEL, daily=True))
        answer = await ask(polyrelay_http, gateway.url, ir.ANTHROPIC, MODEL)
        pool = gateway.gateway.pool
        first, second = sorted(pool, key=lambda c: c.id)
        left = pool.cooling_until(first, MODEL) - time.time()
        other_model = pool.cooling_until(first, "gemini-2.5-pro")
        second_cooling = pool.cooling_until(second, MODEL)
    assert answer.status == 200, answer.body
    assert 20 < left <= 25 * 3600, "a per-day quota outlives Google's RetryInfo"
    assert other_model == 0 and second_cooling == 0, "only that key's use of that model is spent"


async def test_an_invalid_key_is_retired_not_reported_as_a_bad_request(polyrelay_http):
    async with GeminiSimulator(keys={KEYS[1]}) as google:
        config = gemini_config(*((key, google.api_base) for key in KEYS), extra="routing:\n  strategy: fill-first")
        async with run_gateway(config) as gateway:
            answers = [await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL) for _ in range(2)]
            bad = gateway.gateway.pool.describe(gateway.gateway.pool.get("gemini#0"))
    assert [a.status for a in answers] == [200, 200]
    assert [r.headers["x-goog-api-key"] for r in google.requests] == [KEYS[0], KEYS[1], KEYS[1]]
    assert bad["cooldown"] is not None


async def test_overloaded_503_moves_to_the_other_key(google, polyrelay_http):
    async with run_gateway(gemini_config(*((key, google.api_base) for key in KEYS))) as gateway:
        google.push(overloaded_reply())
        answer = await ask(polyrelay_http, gateway.url, ir.OPENAI_RESPONSES, MODEL, stream=True)
    assert answer.status == 200 and answer.terminal and answer.text == google.reply_text
    assert len({r.headers["x-goog-api-key"] for r in google.requests}) == 2


async def test_each_key_uses_its_own_base_url_in_either_spelling(polyrelay_http):
    """``.../v1beta`` (polyrelay's form) and the bare host (CLIProxyAPI's form) both work."""
    async with GeminiSimulator(keys={KEYS[0]}) as one, GeminiSimulator(keys={KEYS[1]}) as two:
        config = gemini_config((KEYS[0], one.api_base), (KEYS[1], two.base_url + "/"))
        async with run_gateway(config) as gateway:
            answers = [await ask(polyrelay_http, gateway.url, ir.ANTHROPIC, MODEL, stream=True) for _ in range(4)]
    assert [a.status for a in answers] == [200] * 4 and all(a.text == one.reply_text for a in answers)
    assert len(one.requests) == len(two.requests) == 2
    assert {r.path for r in one.requests + two.requests} == {f"/v1beta/models/{MODEL}:streamGenerateContent"}


@pytest.mark.parametrize("dialect", list(ir.DIALECTS))
async def test_crlf_framed_events_are_read(polyrelay_http, dialect):
    """Real Google servers end SSE events with CRLF blank lines (the SSE format allows CR LF line ends)."""
    async with GeminiSimulator(keys={KEYS[0]}, crlf=True) as google:
        config = gemini_config((KEYS[0], google.api_base))
        async with run_gateway(config) as gateway:
            answer = await ask(polyrelay_http, gateway.url, dialect, MODEL, stream=True)
    assert answer.status == 200 and answer.terminal and not answer.stream_error
    assert answer.text == google.reply_text


async def test_gemini_json_array_clients_are_served_from_the_sse_upstream(google, polyrelay_http):
    async with run_gateway(gemini_config((KEYS[0], google.api_base))) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1beta/models/{MODEL}:streamGenerateContent", json=GOOD) as response:
        chunks = jsonutil.loads(await response.read())
    assert response.status == 200 and isinstance(chunks, list)
    assert google.requests[0].query == {"alt": "sse"}
    text = "".join(p.get("text", "") for c in chunks for cand in c.get("candidates", [])
                   for p in cand["content"].get("parts", []))
    assert text == google.reply_text
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_anthropic_thinking_asks_for_thoughts_and_gets_a_thinking_block(google, polyrelay_http):
    body = {"model": MODEL, "max_tokens": 4096, "stream": True, "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [{"role": "user", "content": "Say hello."}]}
    async with run_gateway(gemini_config((KEYS[0], google.api_base))) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1/messages", json=body,
                    headers={"anthropic-version": "2023-06-01"}) as r:
        raw = await r.read()
    assert r.status == 200, raw
    config = google.requests[0].json()["generationConfig"]["thinkingConfig"]
    assert config["includeThoughts"] is True and config["thinkingBudget"] == 2048
    events = [jsonutil.loads(e.data) for e in SSEParser().feed(raw)]
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["thinking", "text"]
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert "".join(d.get("thinking", "") for d in deltas) == google.thought_text
    assert "".join(d.get("text", "") for d in deltas) == google.reply_text
    assert any(d["type"] == "signature_delta" for d in deltas)


@pytest.mark.parametrize("dialect", [ir.ANTHROPIC, ir.OPENAI_CHAT, ir.OPENAI_RESPONSES])
async def test_foreign_tool_history_reaches_gemini_3_signed_and_named(google, polyrelay_http, dialect):
    """Calls from another dialect carry no Gemini signature: the codec must mark them, and name each response."""
    path, headers, body = tool_round_trip(dialect, "gemini-3-pro-preview")
    async with run_gateway(gemini_config((KEYS[0], google.api_base))) as gateway, \
            polyrelay_http.post(gateway.url + path, json=body, headers=headers) as response:
        answer = await response.json()
    assert response.status == 200, answer
    contents = google.requests[0].json()["contents"]
    (call,) = [p for c in contents for p in c["parts"] if "functionCall" in p]
    (result,) = [p for c in contents for p in c["parts"] if "functionResponse" in p]
    assert call["thoughtSignature"] and call["functionCall"]["args"] == {"path": "/etc/hosts"}
    assert result["functionResponse"]["name"] == "read_file"
