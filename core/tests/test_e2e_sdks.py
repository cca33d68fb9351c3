"""End to end over loopback: official SDKs → gateway → OpenAI-compatible simulator.

Every test starts the real gateway (hypercorn) and a simulator speaking the
real Chat Completions wire protocol.
"""

from __future__ import annotations

import anthropic
import openai
import pytest

from polyrelay.testing import Reply, run_gateway
from polyrelay.testing.fixtures import compat_config
from polyrelay.testing.openai_chat import chunk_frames, error_body


def openai_client(url: str, key: str = "client-key") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def anthropic_client(url: str, key: str = "client-key") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0)


HELLO = [{"role": "user", "content": "Say hello."}]


async def test_openai_sdk_non_stream_and_stream(polyrelay_chat_upstream):
    async with run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a"])) as gw:
        client = openai_client(gw.url)
        reply = await client.chat.completions.create(model="sim", messages=HELLO)
        assert reply.choices[0].message.content == "Hello from the simulator."
        assert reply.model == "sim", "the response echoes the model the client asked for"
        assert reply.usage.prompt_tokens == 11

        stream = await client.chat.completions.create(
            model="sim", messages=HELLO, stream=True, stream_options={"include_usage": True})
        text, usage = "", None
        async for chunk in stream:
            assert chunk.model == "sim"
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            usage = chunk.usage or usage
        assert text == "Hello from the simulator."
        assert usage is not None and usage.completion_tokens == 7
    sent = polyrelay_chat_upstream.requests[-1].json()
    assert sent["model"] == "sim-model", "the upstream receives its own model name"
    assert polyrelay_chat_upstream.requests[-1].headers["authorization"] == "Bearer sk-test-a"


async def test_anthropic_sdk_translated_to_chat_upstream(polyrelay_chat_upstream):
    async with run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a"])) as gw:
        client = anthropic_client(gw.url)
        message = await client.messages.create(
            model="sim", max_tokens=128, system="Be brief.", messages=HELLO)
        assert [b.text for b in message.content if b.type == "text"] == ["Hello from the simulator."]
        assert message.stop_reason == "end_turn"
        assert message.model == "sim"

        async with client.messages.stream(model="sim", max_tokens=128, messages=HELLO) as stream:
            events = [event.type async for event in stream]
            final = await stream.get_final_message()
        assert final.content[0].text == "Hello from the simulator."
        assert events[0] == "message_start" and events[-1] == "message_stop"
    upstream = polyrelay_chat_upstream.requests[0].json()
    assert upstream["messages"][0] == {"role": "system", "content": "Be brief."}
    assert upstream["messages"][1]["role"] == "user"


async def test_anthropic_tool_call_round_trip_through_chat_upstream(polyrelay_chat_upstream):
    tools = [{"name": "read_file", "description": "Read a file",
              "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}]
    polyrelay_chat_upstream.push(Reply.sse(chunk_frames(
        "sim-model", ["Reading."], tool_calls=[("call_1", "read_file", ['{"pa', 'th": "a.py"}'])])))
    async with run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a"])) as gw:
        client = anthropic_client(gw.url)
        async with client.messages.stream(model="sim", max_tokens=128, messages=HELLO, tools=tools) as stream:
            final = await stream.get_final_message()
        call = next(b for b in final.content if b.type == "tool_use")
        assert (call.id, call.name, call.input) == ("call_1", "read_file", {"path": "a.py"})
        assert final.stop_reason == "tool_use"

        followup = [*HELLO, {"role": "assistant", "content": [b.model_dump() for b in final.content]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1",
                                                   "content": "print('hi')"}]}]
        await client.messages.create(model="sim", max_tokens=128, messages=followup, tools=tools)
    sent = polyrelay_chat_upstream.requests[-1].json()
    assert sent["tools"][0]["function"]["name"] == "read_file"
    assistant = next(m for m in sent["messages"] if m["role"] == "assistant")
    assert assistant["tool_calls"][0]["id"] == "call_1"
    tool = next(m for m in sent["messages"] if m["role"] == "tool")
    assert tool["tool_call_id"] == "call_1" and "print('hi')" in str(tool["content"])


async def test_rotation_on_429_is_invisible_to_the_client(polyrelay_chat_upstream):
    polyrelay_chat_upstream.push(Reply.json(error_body("Rate limit reached. Please try again in 20s.", "requests",
                                             "rate_limit_exceeded"), status=429))
    async with run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a", "sk-test-b"])) as gw:
        reply = await openai_client(gw.url).chat.completions.create(model="sim", messages=HELLO)
        assert reply.choices[0].message.content == "Hello from the simulator."
        first, second = (r.headers["authorization"] for r in polyrelay_chat_upstream.requests)
        assert first != second
        cooling = [gw.gateway.pool.describe(c) for c in gw.gateway.pool]
        cooled = [row for row in cooling if row["model_cooldowns"]]
        assert len(cooled) == 1 and 15 < cooled[0]["model_cooldowns"]["sim-model"]["seconds_left"] <= 20


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_all_credentials_cooling_gives_429_with_retry_after(polyrelay_chat_upstream, sdk):
    polyrelay_chat_upstream.push(Reply.json(error_body("slow down", "requests", "rate_limit_exceeded"), status=429,
                                  retry_after="30"))
    config = compat_config(polyrelay_chat_upstream, ["sk-test-a"], extra="request-retry: 0")
    async with run_gateway(config) as gw:
        for attempt in range(2):  # the second request must not even reach the upstream
            if sdk == "openai":
                with pytest.raises(openai.RateLimitError) as caught:
                    await openai_client(gw.url).chat.completions.create(model="sim", messages=HELLO)
                assert caught.value.body["code"] == "model_cooldown" or attempt == 0
            else:
                with pytest.raises(anthropic.RateLimitError) as caught:
                    await anthropic_client(gw.url).messages.create(model="sim", max_tokens=10, messages=HELLO)
                assert caught.value.body["error"]["type"] == "rate_limit_error"
            retry_after = int(caught.value.response.headers["retry-after"])
            assert 25 <= retry_after <= 30
    assert len(polyrelay_chat_upstream.requests) == 1


async def test_failover_before_first_byte(polyrelay_chat_upstream):
    # Key A: the stream opens and dies before any frame; key B: a 500.  Key C answers.
    polyrelay_chat_upstream.keys = {"sk-a", "sk-b", "sk-c"}
    polyrelay_chat_upstream.push(Reply.sse(chunk_frames("sim-model", ["x"]), cut_after=0),
                       Reply.json(error_body("boom", "server_error", None), status=500))
    config = compat_config(polyrelay_chat_upstream, ["sk-a", "sk-b", "sk-c"], extra="routing: {strategy: fill-first}")
    async with run_gateway(config) as gw:
        stream = await openai_client(gw.url).chat.completions.create(model="sim", messages=HELLO, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello from the simulator."
    assert [r.headers["authorization"][7:] for r in polyrelay_chat_upstream.requests] == ["sk-a", "sk-b", "sk-c"]


async def test_mid_stream_cut_ends_with_terminal_error(polyrelay_chat_upstream):
    polyrelay_chat_upstream.push(Reply.sse(chunk_frames("sim-model", ["one", " two", " three", " four"]), cut_after=3))
    async with run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a"])) as gw:
        client = anthropic_client(gw.url)
        with pytest.raises(anthropic.APIStatusError) as caught:
            async with client.messages.stream(model="sim", max_tokens=50, messages=HELLO) as stream:
                async for _ in stream:
                    pass
        assert "ended early" in str(caught.value)

        polyrelay_chat_upstream.push(Reply.sse(chunk_frames("sim-model", ["one", " two", " three", " four"]),
                cut_after=3))
        with pytest.raises(openai.APIError):
            stream = await openai_client(gw.url).chat.completions.create(model="sim", messages=HELLO, stream=True)
            async for _ in stream:
                pass


async def test_unknown_model_is_400_model_not_found(polyrelay_chat_upstream):
    async with run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a"])) as gw:
        with pytest.raises(openai.BadRequestError) as caught:
            await openai_client(gw.url).chat.completions.create(model="no-such-model", messages=HELLO)
        assert caught.value.body["code"] == "model_not_found"
        assert "/v1/models" in caught.value.body["message"]
        with pytest.raises(anthropic.BadRequestError) as caught_a:
            await anthropic_client(gw.url).messages.create(model="no-such-model", max_tokens=5, messages=HELLO)
        assert caught_a.value.body["error"]["type"] == "invalid_request_error"
    assert polyrelay_chat_upstream.requests == []


async def test_client_auth_rejection_is_401(polyrelay_chat_upstream):
    config = compat_config(polyrelay_chat_upstream, ["sk-test-a"], extra="api-keys: [client-secret-1]")
    async with run_gateway(config) as gw:
        with pytest.raises(openai.AuthenticationError):
            await openai_client(gw.url, key="wrong").chat.completions.create(model="sim", messages=HELLO)
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await anthropic_client(gw.url, key="wrong").messages.create(model="sim", max_tokens=5, messages=HELLO)
        assert caught.value.body["error"]["type"] == "authentication_error"
        ok = await openai_client(gw.url, key="client-secret-1").chat.completions.create(model="sim", messages=HELLO)
        assert ok.choices[0].message.content
        # The anthropic SDK sends x-api-key; it must be accepted as well.
        message = await anthropic_client(gw.url, key="client-secret-1").messages.create(
            model="sim", max_tokens=5, messages=HELLO)
        assert message.content
    assert len(polyrelay_chat_upstream.requests) == 2
