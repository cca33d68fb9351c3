"""The codex provider against its OpenAI Responses simulator, through the real gateway on loopback."""

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
from polyrelay.testing.clients import READ_SCHEMA, ask, tool_round_trip
from polyrelay.testing.conformance import ProviderConformance
from polyrelay.testing.fixtures import api_key_config
from polyrelay_codex import MODELS
from polyrelay_codex.simulator import (
    ResponsesSimulator,
    encrypted_content,
    function_call_reply,
    insufficient_quota_reply,
    rate_limit_reply,
)

KEYS = ["sk-proj-alpha-00000000000000000000", "sk-proj-bravo-11111111111111111111"]
MODEL = "gpt-5"


codex_config = partial(api_key_config, "codex-api-key")



@pytest_asyncio.fixture
async def openai() -> AsyncIterator[ResponsesSimulator]:
    """A simulator accepting both test keys and serving the provider's models."""
    async with ResponsesSimulator(keys=KEYS, models=MODELS) as simulator:
        yield simulator


class TestCodexProvider(ProviderConformance):
    """Every client dialect, streamed or not, and rotation on OpenAI's own 429."""

    provider_name = "codex"
    distribution = "polyrelay-codex"
    model = MODEL
    expected_text = "Hello from the Responses simulator."

    simulator_fixture = "openai"

    def config_text(self, simulator: ResponsesSimulator) -> str:
        return codex_config(*((key, simulator.api_base) for key in KEYS))

    def rate_limit_reply(self) -> Reply:
        return rate_limit_reply(seconds=2.5, model=MODEL)

    def tool_call_reply(self, name: str, arguments: dict[str, Any], stream: bool) -> Reply:
        return function_call_reply(name, arguments, stream, model=MODEL)


# -- the simulator validates what OpenAI validates ---------------------------------------------------

GOOD = {"model": MODEL, "input": "hi"}


@pytest.mark.parametrize(("headers", "body", "status", "code", "words"), [
    ({}, GOOD, 401, None, "You didn't provide an API key"),
    ({"authorization": "Bearer sk-proj-wrong-2222222222"}, GOOD, 401, "invalid_api_key", "sk-*"),
    ({"authorization": f"Bearer {KEYS[0]}"}, {"input": "hi"}, 400, "missing_required_parameter", "'model'"),
    ({"authorization": f"Bearer {KEYS[0]}"}, {**GOOD, "model": "gpt-9"}, 400, "model_not_found", "gpt-9"),
    ({"authorization": f"Bearer {KEYS[0]}"}, {**GOOD, "messages": []}, 400, "unknown_parameter", "'messages'"),
    ({"authorization": f"Bearer {KEYS[0]}"}, {**GOOD, "input": {"text": "hi"}}, 400, "invalid_type", "'input'"),
    ({"authorization": f"Bearer {KEYS[0]}"}, {**GOOD, "temperature": 0.2}, 400, "unsupported_value",
     "'temperature'"),
    ({"authorization": f"Bearer {KEYS[0]}"}, {**GOOD, "model": "gpt-5-codex", "reasoning": {"effort": "minimal"}},
     400, "unsupported_value", "'reasoning.effort' does not support 'minimal'"),
    ({"authorization": f"Bearer {KEYS[0]}"}, {**GOOD, "input": [
        {"type": "function_call_output", "call_id": "call_9", "output": "x"}]}, 400, None,
     "No tool call found for function call output with call_id call_9"),
    ({"authorization": f"Bearer {KEYS[0]}"}, {**GOOD, "tools": [{"type": "function", "name": "default_api.read",
                                                               "parameters": READ_SCHEMA}]}, 400, "invalid_value",
     "'tools[0].name': string does not match pattern"),
], ids=["no-key", "wrong-key", "no-model", "unknown-model", "unknown-parameter", "bad-input", "temperature",
        "effort-not-supported", "orphan-call-output", "bad-tool-name"])
async def test_simulator_rejects_what_openai_rejects(
    openai: ResponsesSimulator, polyrelay_http: aiohttp.ClientSession, headers: dict[str, str], body: dict[str, Any],
    status: int, code: str | None, words: str,
) -> None:
    async with polyrelay_http.post(f"{openai.api_base}/responses", json=body, headers=headers) as response:
        answer = await response.json()
        assert response.headers["x-request-id"].startswith("req_")
    assert response.status == status
    assert answer["error"]["code"] == code and answer["error"]["type"] == "invalid_request_error"
    assert words in answer["error"]["message"]
    assert KEYS[0] not in answer["error"]["message"]


async def test_simulator_streams_the_full_event_sequence(openai, polyrelay_http):
    body = {**GOOD, "stream": True, "reasoning": {"effort": "low", "summary": "auto"},
            "include": ["reasoning.encrypted_content"]}
    async with polyrelay_http.post(f"{openai.api_base}/responses", json=body,
                         headers={"authorization": f"Bearer {KEYS[1]}"}) as response:
        events = SSEParser().feed(await response.read())
    payloads = [jsonutil.loads(e.data) for e in events]
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    assert all(p["type"] == e.event for p, e in zip(payloads, events, strict=True))
    assert [e.event for e in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added",
        *["response.output_text.delta"] * len(openai.reply_text.split(" ")),
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed",
    ]
    final = payloads[-1]["response"]
    assert final["status"] == "completed" and final["usage"]["output_tokens_details"]["reasoning_tokens"] > 0
    assert final["output"][0]["encrypted_content"] == encrypted_content(openai.reasoning_text)


# -- through the gateway -----------------------------------------------------------------------------


async def test_responses_clients_get_the_upstream_events_unchanged(openai, polyrelay_http):
    """Pass-through (Codex CLI's case): sequence numbers, reasoning and encrypted content survive."""
    body = {**GOOD, "stream": True, "store": False, "reasoning": {"effort": "high", "summary": "detailed"},
            "include": ["reasoning.encrypted_content"]}
    async with run_gateway(codex_config((KEYS[0], openai.api_base))) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1/responses", json=body) as response:
        raw = await response.read()
    assert response.status == 200
    payloads = [jsonutil.loads(e.data) for e in SSEParser().feed(raw)]
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    assert encrypted_content(openai.reasoning_text).encode() in raw
    (sent,) = openai.requests
    assert sent.headers["authorization"] == f"Bearer {KEYS[0]}" and sent.path == "/v1/responses"
    assert jsonutil.loads(sent.body) == body


async def test_anthropic_thinking_gets_the_reasoning_summary(openai, polyrelay_http):
    body = {"model": MODEL, "max_tokens": 4096, "stream": True, "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [{"role": "user", "content": "Say hello."}]}
    async with run_gateway(codex_config((KEYS[0], openai.api_base))) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1/messages", json=body,
                    headers={"anthropic-version": "2023-06-01"}) as r:
        raw = await r.read()
    assert r.status == 200, raw
    sent = openai.requests[0].json()
    assert sent["reasoning"]["effort"] in ("low", "medium")
    # OpenAI only returns reasoning text when asked for a summary; an Anthropic client that enables
    # thinking expects to see it (the Gemini encoder asks for includeThoughts in the same case).
    assert sent["reasoning"].get("summary"), f"no reasoning summary requested: {sent['reasoning']}"
    events = [jsonutil.loads(e.data) for e in SSEParser().feed(raw)]
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert "".join(d.get("thinking", "") for d in deltas) == openai.reasoning_text
    assert "".join(d.get("text", "") for d in deltas) == openai.reply_text


async def test_try_again_in_message_sets_a_short_cooldown_then_429(openai, polyrelay_http):
    config = codex_config(*((key, openai.api_base) for key in KEYS), extra="request-retry: 0")
    async with run_gateway(config) as gateway:
        openai.push(rate_limit_reply(seconds=2.5), rate_limit_reply(seconds=2.5))
        answer = await ask(polyrelay_http, gateway.url, ir.OPENAI_RESPONSES, MODEL)
        pool = gateway.gateway.pool
        left = [pool.cooling_until(c, MODEL) - time.time() for c in pool]
        again = await ask(polyrelay_http, gateway.url, ir.ANTHROPIC, MODEL)
    assert answer.status == 429 and 2 <= int(answer.headers["retry-after"]) <= 3
    assert answer.body["error"]["code"] == "rate_limit_exceeded"
    assert all(0 < s <= 2.5 for s in left), left
    assert again.status == 429 and again.body["error"]["type"] == "rate_limit_error"
    assert len(openai.requests) == 2, "while every key cools the gateway answers without asking OpenAI"


async def test_retry_after_header_wins_over_the_message(openai, polyrelay_http):
    config = codex_config(*((key, openai.api_base) for key in KEYS), extra="request-retry: 0")
    async with run_gateway(config) as gateway:
        openai.push(rate_limit_reply(seconds=1, retry_after=20))
        answer = await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL)
        pool = gateway.gateway.pool
        left = sorted(pool.cooling_until(c, MODEL) - time.time() for c in pool)
    assert answer.status == 200
    assert left[0] <= 0 and 18 < left[1] <= 20


async def test_short_hints_are_waited_out_when_retries_are_allowed(openai, polyrelay_http):
    config = codex_config(*((key, openai.api_base) for key in KEYS), extra="request-retry: 1")
    async with run_gateway(config) as gateway:
        openai.push(rate_limit_reply(seconds=0.3), rate_limit_reply(seconds=0.3))
        started = time.monotonic()
        answer = await ask(polyrelay_http, gateway.url, ir.OPENAI_RESPONSES, MODEL, stream=True)
    assert answer.status == 200 and answer.terminal
    assert len(openai.requests) == 3 and time.monotonic() - started >= 0.2


async def test_insufficient_quota_retires_the_key_for_every_model(openai, polyrelay_http):
    config = codex_config(*((key, openai.api_base) for key in KEYS), extra="routing:\n  strategy: fill-first")
    async with run_gateway(config) as gateway:
        openai.push(insufficient_quota_reply())
        first = await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL)
        second = await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, "gpt-5-codex")
        spent = gateway.gateway.pool.get("codex#0")
        other_model_wait = gateway.gateway.pool.cooling_until(spent, "gpt-5-mini") - time.time()
    assert first.status == second.status == 200
    assert [r.headers["authorization"][7:] for r in openai.requests] == [KEYS[0], KEYS[1], KEYS[1]]
    assert other_model_wait > 600, "a spent account is spent for every model"


async def test_each_key_uses_its_own_base_url(polyrelay_http):
    async with ResponsesSimulator(keys={KEYS[0]}) as one, ResponsesSimulator(keys={KEYS[1]}) as two:
        config = codex_config((KEYS[0], one.api_base), (KEYS[1], two.api_base))
        async with run_gateway(config) as gateway:
            answers = [await ask(polyrelay_http, gateway.url, ir.GEMINI, MODEL, stream=s) for s in (False, True) * 2]
    assert [a.status for a in answers] == [200] * 4
    assert len(one.requests) == len(two.requests) == 2


@pytest.mark.parametrize("dialect", [ir.ANTHROPIC, ir.OPENAI_CHAT, ir.GEMINI])
async def test_tool_history_from_any_dialect_is_valid_responses_input(openai, polyrelay_http, dialect):
    """Each call becomes a function_call item and its result an output with the same call_id (made up for Gemini)."""
    path, headers, body = tool_round_trip(dialect, MODEL)
    async with run_gateway(codex_config((KEYS[0], openai.api_base))) as gateway, \
            polyrelay_http.post(gateway.url + path, json=body, headers=headers) as response:
        answer = await response.json()
    assert response.status == 200, answer
    items = [i for i in openai.requests[0].json()["input"] if i.get("type") in ("function_call",
                                                                               "function_call_output")]
    assert [i["type"] for i in items] == ["function_call", "function_call_output"]
    assert items[0]["call_id"] == items[1]["call_id"] and items[0]["name"] == "read_file"
    assert jsonutil.loads(items[0]["arguments"]) == {"path": "/etc/hosts"}
