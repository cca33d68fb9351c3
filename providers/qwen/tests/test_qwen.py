"""The qwen provider against its DashScope simulator, through the real gateway on loopback."""

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
from polyrelay_qwen import MODELS
from polyrelay_qwen.simulator import DashScopeSimulator, quota_reply, rate_limit_reply, tool_call_reply

KEYS = ["sk-dashscope-alpha-000000000000", "sk-dashscope-bravo-111111111111"]
MODEL = "qwen3-coder-plus"
THINKER = "qwen-plus"


qwen_config = partial(api_key_config, "qwen-api-key")



@pytest_asyncio.fixture
async def dashscope() -> AsyncIterator[DashScopeSimulator]:
    """A simulator accepting both test keys and serving the provider's models."""
    async with DashScopeSimulator(keys=KEYS, models=MODELS) as simulator:
        yield simulator


class TestQwenProvider(ProviderConformance):
    """Every client dialect, streamed or not, and rotation on DashScope's own 429."""

    provider_name = "qwen"
    distribution = "polyrelay-qwen"
    model = MODEL
    expected_text = "Hello from the DashScope simulator."

    simulator_fixture = "dashscope"

    def config_text(self, simulator: DashScopeSimulator) -> str:
        return qwen_config(*((key, simulator.api_base) for key in KEYS))

    def rate_limit_reply(self) -> Reply:
        return rate_limit_reply(retry_after=20)

    def tool_call_reply(self, name: str, arguments: dict[str, Any], stream: bool) -> Reply:
        return tool_call_reply(MODEL, name, arguments, stream)


# -- the simulator validates what DashScope validates -------------------------------------------------

GOOD = {"model": THINKER, "messages": [{"role": "user", "content": "hi"}]}
AUTH = {"authorization": f"Bearer {KEYS[0]}"}


@pytest.mark.parametrize(("headers", "body", "status", "code", "words"), [
    ({}, GOOD, 401, "invalid_api_key", "Incorrect API key"),
    ({"authorization": "Bearer sk-wrong"}, GOOD, 401, "invalid_api_key", "Incorrect API key"),
    (AUTH, {**GOOD, "model": "qwen-9"}, 404, "model_not_found", "`qwen-9` does not exist"),
    (AUTH, {**GOOD, "messages": []}, 400, "invalid_parameter_error", "non-empty list"),
    (AUTH, {**GOOD, "messages": [{"role": "model", "content": "x"}]}, 400, "invalid_parameter_error", "Role"),
    (AUTH, {**GOOD, "enable_thinking": True}, 400, "invalid_parameter_error",
     "enable_thinking must be set to false for non-streaming calls"),
    (AUTH, {**GOOD, "stream": True, "enable_thinking": True, "thinking_budget": 100, "reasoning_effort": "low"}, 400,
     "invalid_parameter_error", "reasoning_effort"),
    (AUTH, {**GOOD, "messages": [{"role": "tool", "tool_call_id": "call_9", "content": "x"}]}, 400,
     "invalid_parameter_error", "must be a response to a preceeding message with 'tool_calls'"),
    (AUTH, {**GOOD, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "user", "content": "and?"}]}, 400, "invalid_parameter_error",
     "did not have response messages: call_1"),
], ids=["no-key", "wrong-key", "unknown-model", "no-messages", "bad-role", "non-stream-thinking", "effort-and-budget",
        "stray-tool-message", "unanswered-tool-calls"])
async def test_simulator_rejects_what_dashscope_rejects(
    dashscope: DashScopeSimulator, polyrelay_http: aiohttp.ClientSession, headers: dict[str, str], body: dict[str, Any],
    status: int, code: str, words: str,
) -> None:
    async with polyrelay_http.post(f"{dashscope.api_base}/chat/completions", json=body, headers=headers) as response:
        answer = await response.json()
    assert response.status == status
    assert answer["error"]["code"] == code and words in answer["error"]["message"]
    assert answer["request_id"]


# -- through the gateway -----------------------------------------------------------------------------


async def test_chat_clients_get_reasoning_usage_and_done_unchanged(dashscope, polyrelay_http):
    """Pass-through: a Qwen Code style request keeps its own switches; the stream comes back as sent."""
    body = {**GOOD, "stream": True, "stream_options": {"include_usage": True}, "enable_thinking": True,
            "thinking_budget": 512}
    async with run_gateway(qwen_config((KEYS[0], dashscope.api_base))) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1/chat/completions", json=body) as response:
        raw = await response.read()
    assert response.status == 200
    assert jsonutil.loads(dashscope.requests[0].body) == body
    events = SSEParser().feed(raw)
    assert events[-1].data == "[DONE]"
    chunks = [jsonutil.loads(e.data) for e in events[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    kinds = [("r" if d.get("reasoning_content") else "c") for d in deltas if d.get("reasoning_content")
             or d.get("content")]
    assert kinds == sorted(kinds, reverse=True), "reasoning comes before content"
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == dashscope.reasoning_text
    assert "".join(d.get("content") or "" for d in deltas) == dashscope.reply_text
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_anthropic_thinking_switches_dashscope_thinking_on(dashscope, polyrelay_http, stream):
    """Anthropic's budget becomes enable_thinking + thinking_budget; a non-stream client is served from a stream."""
    body = {"model": THINKER, "max_tokens": 4096, "stream": stream, "thinking": {"type": "enabled",
            "budget_tokens": 2048}, "messages": [{"role": "user", "content": "Say hello."}]}
    async with run_gateway(qwen_config((KEYS[0], dashscope.api_base))) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1/messages", json=body,
                    headers={"anthropic-version": "2023-06-01"}) as r:
        raw = await r.read()
    assert r.status == 200, raw
    sent = dashscope.requests[0].json()
    assert sent["enable_thinking"] is True and sent["thinking_budget"] == 2048 and "reasoning_effort" not in sent
    assert sent["stream"] is True
    if stream:
        events = [jsonutil.loads(e.data) for e in SSEParser().feed(raw)]
        starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
        deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
        thinking = "".join(d.get("thinking", "") for d in deltas)
        text = "".join(d.get("text", "") for d in deltas)
    else:
        message = jsonutil.loads(raw)
        starts = [b["type"] for b in message["content"]]
        thinking = "".join(b.get("thinking", "") for b in message["content"])
        text = "".join(b.get("text", "") for b in message["content"])
    assert starts == ["thinking", "text"]
    assert thinking == dashscope.reasoning_text and text == dashscope.reply_text


@pytest.mark.parametrize(("thinking", "expected"), [
    ({"reasoning": {"effort": "high"}}, True),
    ({"reasoning": {"effort": "none"}}, False),
], ids=["effort-high", "effort-none"])
async def test_responses_reasoning_effort_becomes_the_thinking_switch(dashscope, polyrelay_http, thinking, expected):
    body = {"model": THINKER, "input": "Say hello.", **thinking}
    async with run_gateway(qwen_config((KEYS[0], dashscope.api_base))) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1/responses", json=body) as response:
        answer = await response.json()
    assert response.status == 200, answer
    sent = dashscope.requests[0].json()
    assert sent["enable_thinking"] is expected and "reasoning_effort" not in sent and "thinking_budget" not in sent
    assert sent.get("stream", False) is expected


async def test_without_thinking_the_default_request_is_untouched(dashscope, polyrelay_http):
    async with run_gateway(qwen_config((KEYS[0], dashscope.api_base))) as gateway:
        answer = await ask(polyrelay_http, gateway.url, ir.ANTHROPIC, THINKER)
    assert answer.status == 200
    sent = dashscope.requests[0].json()
    assert "enable_thinking" not in sent and not sent.get("stream")


async def test_retry_after_cools_both_keys_then_429_with_retry_after(dashscope, polyrelay_http):
    config = qwen_config(*((key, dashscope.api_base) for key in KEYS), extra="request-retry: 0")
    async with run_gateway(config) as gateway:
        dashscope.push(rate_limit_reply(retry_after=25), rate_limit_reply(retry_after=25))
        first = await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL, stream=True)
        second = await ask(polyrelay_http, gateway.url, ir.GEMINI, MODEL)
    assert len(dashscope.requests) == 2
    assert first.status == 429 and 23 <= int(first.headers["retry-after"]) <= 25
    assert first.body["error"]["code"] == "limit_requests"
    assert second.status == 429 and 23 <= int(second.headers["retry-after"]) <= 25
    assert second.body["error"]["status"] == "RESOURCE_EXHAUSTED"


@pytest.mark.parametrize("status", [429, 403])
async def test_insufficient_quota_retires_the_key_for_every_model(dashscope, polyrelay_http, status):
    config = qwen_config(*((key, dashscope.api_base) for key in KEYS), extra="routing:\n  strategy: fill-first")
    async with run_gateway(config) as gateway:
        dashscope.push(quota_reply(status))
        first = await ask(polyrelay_http, gateway.url, ir.OPENAI_RESPONSES, MODEL)
        second = await ask(polyrelay_http, gateway.url, ir.OPENAI_RESPONSES, "qwen3-max")
        spent = gateway.gateway.pool.get("qwen#0")
        wait = gateway.gateway.pool.cooling_until(spent, "qwen-plus") - time.time()
    assert first.status == second.status == 200
    assert [r.headers["authorization"][7:] for r in dashscope.requests] == [KEYS[0], KEYS[1], KEYS[1]]
    assert wait > 600


async def test_each_key_uses_its_own_regional_base_url(polyrelay_http):
    async with DashScopeSimulator(keys={KEYS[0]}) as beijing, DashScopeSimulator(keys={KEYS[1]}) as singapore:
        config = qwen_config((KEYS[0], beijing.api_base), (KEYS[1], singapore.api_base))
        async with run_gateway(config) as gateway:
            answers = [await ask(polyrelay_http, gateway.url, ir.ANTHROPIC, MODEL, stream=True) for _ in range(4)]
    assert [a.status for a in answers] == [200] * 4
    assert len(beijing.requests) == len(singapore.requests) == 2


@pytest.mark.parametrize("dialect", [ir.ANTHROPIC, ir.OPENAI_RESPONSES, ir.GEMINI])
async def test_tool_history_from_any_dialect_is_valid_chat(dashscope, polyrelay_http, dialect):
    """Each call becomes an assistant tool_calls entry answered by a tool message with its id (made up for Gemini)."""
    path, headers, body = tool_round_trip(dialect, MODEL)
    async with run_gateway(qwen_config((KEYS[0], dashscope.api_base))) as gateway, \
            polyrelay_http.post(gateway.url + path, json=body, headers=headers) as response:
        answer = await response.json()
    assert response.status == 200, answer
    messages = dashscope.requests[0].json()["messages"]
    (call,) = [c for m in messages for c in m.get("tool_calls") or []]
    (result,) = [m for m in messages if m["role"] == "tool"]
    assert result["tool_call_id"] == call["id"] and call["function"]["name"] == "read_file"
    assert jsonutil.loads(call["function"]["arguments"]) == {"path": "/etc/hosts"}
