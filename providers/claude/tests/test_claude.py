"""The claude provider against its Anthropic simulator, through the real gateway on loopback."""

from __future__ import annotations

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
from polyrelay_claude.simulator import (
    AnthropicSimulator,
    overloaded_reply,
    rate_limit_reply,
    signature_for,
    stream_frames,
    tool_use_reply,
)

KEYS = ["sk-ant-api03-alpha-000000000000", "sk-ant-api03-bravo-111111111111"]
MODEL = "claude-sonnet-4-5"


claude_config = partial(api_key_config, "claude-api-key")



@pytest_asyncio.fixture
async def anthropic() -> AsyncIterator[AnthropicSimulator]:
    """A simulator accepting both test keys."""
    async with AnthropicSimulator(keys=KEYS) as simulator:
        yield simulator


class TestClaudeProvider(ProviderConformance):
    """Every client dialect, streamed or not, and rotation on Anthropic's own 429."""

    provider_name = "claude"
    distribution = "polyrelay-claude"
    model = MODEL
    expected_text = "Hello from the Claude simulator."

    simulator_fixture = "anthropic"

    def config_text(self, simulator: AnthropicSimulator) -> str:
        return claude_config(*((key, simulator.api_base) for key in KEYS))

    def rate_limit_reply(self) -> Reply:
        return rate_limit_reply(retry_after=30)

    def tool_call_reply(self, name: str, arguments: dict[str, Any], stream: bool) -> Reply:
        return tool_use_reply(MODEL, name, arguments, stream)


# -- the simulator validates what Anthropic validates ---------------------------------------------

GOOD = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
VERSION = {"anthropic-version": "2023-06-01"}


@pytest.mark.parametrize(("headers", "body", "status", "kind", "words"), [
    ({**VERSION}, GOOD, 401, "authentication_error", "x-api-key header is required"),
    ({**VERSION, "x-api-key": "sk-ant-wrong"}, GOOD, 401, "authentication_error", "invalid x-api-key"),
    ({"x-api-key": KEYS[0]}, GOOD, 400, "invalid_request_error", "anthropic-version"),
    ({**VERSION, "x-api-key": KEYS[0]}, {**GOOD, "reasoning_effort": "high"}, 400, "invalid_request_error",
     "reasoning_effort: Extra inputs are not permitted"),
    ({**VERSION, "x-api-key": KEYS[0]}, {k: v for k, v in GOOD.items() if k != "max_tokens"}, 400,
     "invalid_request_error", "max_tokens: Field required"),
    ({**VERSION, "x-api-key": KEYS[0]}, {**GOOD, "messages": [{"role": "system", "content": "x"}]}, 400,
     "invalid_request_error", "Input should be 'user' or 'assistant'"),
    ({**VERSION, "x-api-key": KEYS[0]}, {**GOOD, "messages": [{"role": "user", "content": [{"type": "text",
     "text": ""}]}]}, 400, "invalid_request_error", "text content blocks must be non-empty"),
    ({**VERSION, "x-api-key": KEYS[0]}, {**GOOD, "thinking": {"type": "enabled", "budget_tokens": 2048}}, 400,
     "invalid_request_error", "`max_tokens` must be greater than `thinking.budget_tokens`"),
    ({**VERSION, "x-api-key": KEYS[0]}, {**GOOD, "max_tokens": 4096, "temperature": 0.2,
     "thinking": {"type": "enabled", "budget_tokens": 2048}}, 400, "invalid_request_error", "`temperature`"),
    ({**VERSION, "x-api-key": KEYS[0]}, {**GOOD, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
        {"role": "user", "content": "and?"}]}, 400, "invalid_request_error",
     "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"),
    ({**VERSION, "x-api-key": KEYS[0]}, {**GOOD, "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]}]}, 400,
     "invalid_request_error", "unexpected `tool_use_id` found in `tool_result` blocks: toolu_9"),
    ({**VERSION, "x-api-key": KEYS[0]}, {**GOOD, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "functions.f:0", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "functions.f:0", "content": "x"}]}]},
     400, "invalid_request_error", "tool_use.id: String should match pattern"),
], ids=["no-key", "wrong-key", "no-version", "extra-field", "no-max-tokens", "system-role", "empty-text",
        "budget-over-max", "temperature-with-thinking", "unanswered-tool-use", "stray-tool-result", "bad-tool-id"])
async def test_simulator_rejects_what_anthropic_rejects(
    anthropic: AnthropicSimulator, polyrelay_http: aiohttp.ClientSession, headers: dict[str, str], body: dict[str, Any],
    status: int, kind: str, words: str,
) -> None:
    async with polyrelay_http.post(f"{anthropic.api_base}/v1/messages", json=body, headers=headers) as response:
        answer = await response.json()
        assert response.headers.get("request-id", "").startswith("req_")
    assert response.status == status
    assert answer["type"] == "error" and answer["error"]["type"] == kind
    assert words in answer["error"]["message"]
    assert answer["request_id"].startswith("req_")


async def test_simulator_streams_the_documented_event_sequence(anthropic, polyrelay_http):
    body = {**GOOD, "max_tokens": 4096, "stream": True, "thinking": {"type": "enabled", "budget_tokens": 1024}}
    headers = {**VERSION, "x-api-key": KEYS[1]}
    async with polyrelay_http.post(f"{anthropic.api_base}/v1/messages", json=body, headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = SSEParser().feed(await response.read())
    names = [e.event for e in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    payloads = [jsonutil.loads(e.data) for e in events]
    assert all(p["type"] == e.event for p, e in zip(payloads, events, strict=True))
    deltas = [p["delta"]["type"] for p in payloads if p["type"] == "content_block_delta"]
    # The signature arrives once, right before the thinking block stops; text follows in block 1.
    assert deltas.index("signature_delta") == deltas.index("text_delta") - 1
    assert payloads[1]["content_block"]["type"] == "thinking"


# -- through the gateway --------------------------------------------------------------------------


async def test_anthropic_clients_get_the_upstream_stream_byte_for_byte(anthropic, polyrelay_http):
    """Pass-through: thinking, its signature and the ping reach Claude Code untouched, betas included."""
    body = {**GOOD, "max_tokens": 4096, "stream": True, "thinking": {"type": "enabled", "budget_tokens": 2048}}
    headers = {**VERSION, "anthropic-beta": "interleaved-thinking-2025-05-14"}
    async with run_gateway(claude_config((KEYS[0], anthropic.api_base))) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1/messages", json=body, headers=headers) as response:
        raw = await response.read()
    assert response.status == 200
    thinking = [anthropic.thinking_text[:10], anthropic.thinking_text[10:]]
    words = anthropic.reply_text.split(" ")
    expected = stream_frames(MODEL, [w if i == 0 else f" {w}" for i, w in enumerate(words)], thinking)
    received = [e.raw for e in SSEParser().feed(raw)]
    # Message ids differ per answer; everything else is the upstream's bytes.
    assert [f.split(b"data: ")[0] for f in received] == [f.split(b"data: ")[0] for f in expected]
    assert received[2:] == expected[2:]
    assert signature_for(anthropic.thinking_text).encode() in raw
    (sent,) = anthropic.requests
    assert sent.headers["x-api-key"] == KEYS[0] and sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert jsonutil.loads(sent.body) == body


async def test_openai_reasoning_becomes_valid_anthropic_thinking(anthropic, polyrelay_http):
    """The codec must send max_tokens above the thinking budget, or Anthropic answers 400."""
    body = {"model": MODEL, "reasoning_effort": "high", "stream": True,
            "messages": [{"role": "user", "content": "Say hello."}]}
    async with run_gateway(claude_config((KEYS[0], anthropic.api_base))) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1/chat/completions", json=body) as response:
        raw = await response.read()
    assert response.status == 200, raw
    sent = anthropic.requests[-1].json()
    assert sent["thinking"]["type"] in ("enabled", "adaptive")
    chunks = [jsonutil.loads(e.data) for e in SSEParser().feed(raw) if e.data != "[DONE]"]
    deltas = [c["choices"][0]["delta"] for c in chunks if c.get("choices")]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == anthropic.thinking_text
    assert "".join(d.get("content") or "" for d in deltas) == anthropic.reply_text


async def test_retry_after_cools_both_keys_then_429_with_retry_after(anthropic, polyrelay_http):
    config = claude_config(*((key, anthropic.api_base) for key in KEYS), extra="request-retry: 0")
    async with run_gateway(config) as gateway:
        anthropic.push(rate_limit_reply(retry_after=42), rate_limit_reply(retry_after=42))
        first = await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL)
        assert len(anthropic.requests) == 2
        second = await ask(polyrelay_http, gateway.url, ir.ANTHROPIC, MODEL)
        pool = gateway.gateway.pool
        waits = [pool.cooling_until(c, MODEL) for c in pool]
    assert first.status == 429 and 40 <= int(first.headers["retry-after"]) <= 42
    assert first.body["error"]["message"].startswith("This request would exceed the rate limit")
    # Every key is cooling: the gateway answers at once, in the client's dialect, without asking upstream.
    assert len(anthropic.requests) == 2
    assert second.status == 429 and 40 <= int(second.headers["retry-after"]) <= 42
    assert second.body["type"] == "error" and second.body["error"]["type"] == "rate_limit_error"
    assert len(waits) == 2 and all(w > 0 for w in waits)


async def test_overloaded_529_moves_to_the_other_key(anthropic, polyrelay_http):
    async with run_gateway(claude_config(*((key, anthropic.api_base) for key in KEYS))) as gateway:
        anthropic.push(overloaded_reply())
        answer = await ask(polyrelay_http, gateway.url, ir.ANTHROPIC, MODEL, stream=True)
    assert answer.status == 200 and answer.terminal
    assert [r.headers["x-api-key"] for r in anthropic.requests] in (KEYS, KEYS[::-1])


async def test_each_key_uses_its_own_base_url(polyrelay_http):
    async with AnthropicSimulator(keys={KEYS[0]}) as one, AnthropicSimulator(keys={KEYS[1]}) as two:
        config = claude_config((KEYS[0], one.api_base), (KEYS[1], two.api_base))
        async with run_gateway(config) as gateway:
            answers = [await ask(polyrelay_http, gateway.url, ir.OPENAI_RESPONSES, MODEL) for _ in range(4)]
    assert [a.status for a in answers] == [200] * 4
    assert len(one.requests) == len(two.requests) == 2


async def test_no_keys_means_no_claude_models(polyrelay_http):
    """A provider without credentials would only list models it cannot serve."""
    async with run_gateway("claude-api-key: []\n") as gateway, \
            polyrelay_http.get(f"{gateway.url}/v1/models") as response:
        ids = [m["id"] for m in (await response.json())["data"]]
    assert MODEL not in ids


@pytest.mark.parametrize("dialect", [ir.OPENAI_CHAT, ir.OPENAI_RESPONSES, ir.GEMINI])
async def test_tool_history_from_any_dialect_is_valid_anthropic(anthropic, polyrelay_http, dialect):
    """Call ids are rewritten to Anthropic's pattern (or made up, for Gemini) and results stay paired."""
    path, headers, body = tool_round_trip(dialect, MODEL)
    async with run_gateway(claude_config((KEYS[0], anthropic.api_base))) as gateway, \
            polyrelay_http.post(gateway.url + path, json=body, headers=headers) as response:
        answer = await response.json()
    assert response.status == 200, answer
    sent = anthropic.requests[0].json()["messages"]
    (call,) = [b for b in sent[1]["content"] if b["type"] == "tool_use"]
    (result,) = [b for b in sent[2]["content"] if b["type"] == "tool_result"]
    assert call["name"] == "read_file" and call["input"] == {"path": "/etc/hosts"}
    assert result["tool_use_id"] == call["id"]
