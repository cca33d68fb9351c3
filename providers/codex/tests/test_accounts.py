"""ChatGPT accounts served by the ChatGPT backend simulator, through the real gateway on loopback."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from polyrelay import ir
from polyrelay.sse import SSEParser
from polyrelay.testing import Reply, run_gateway
from polyrelay.testing.clients import ask
from polyrelay.testing.conformance import ProviderConformance
from polyrelay_codex import chatgpt, names
from polyrelay_codex.simulator import (
    ChatGPTSimulator,
    ResponsesSimulator,
    failed_stream_reply,
    overloaded_reply,
    usage_limit_reply,
    usage_not_included_reply,
)
from polyrelay_codex.simulator.chatgpt import backend_events, function_call_reply
from polyrelay_codex.simulator.responses import sse_frames

MODEL = "gpt-5"
CAPTURES = Path(__file__).parents[3] / "core/tests/fixtures/captures"
HELLO = [{"role": "user", "content": "Say hello."}]
READ_TOOL = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}


@pytest.fixture
async def backend() -> AsyncIterator[ChatGPTSimulator]:
    async with ChatGPTSimulator() as simulator:
        yield simulator


@pytest.fixture
def auth_dir(tmp_path: Path) -> Path:
    path = tmp_path / "auth"
    path.mkdir()
    return path


class TestCodexAccounts(ProviderConformance):
    """The provider contract, served by two ChatGPT accounts instead of keys."""

    provider_name = "codex"
    distribution = "polyrelay-codex"
    model = MODEL
    expected_text = "Hello from the ChatGPT simulator."

    @pytest.fixture
    async def simulator(self, tmp_path: Path) -> AsyncIterator[ChatGPTSimulator]:
        async with ChatGPTSimulator() as simulator:
            simulator.auth_dir = tmp_path  # type: ignore[attr-defined]
            simulator.write_account(tmp_path, "ada@example.com")
            simulator.write_account(tmp_path, "bob@example.com", plan="pro")
            yield simulator

    def config_text(self, simulator: ChatGPTSimulator) -> str:  # type: ignore[override]
        return simulator.config(simulator.auth_dir)  # type: ignore[attr-defined]

    def rate_limit_reply(self) -> Reply:
        return usage_limit_reply(resets_in=1800)

    def tool_call_reply(self, name: str, arguments: dict[str, Any], stream: bool) -> Reply:
        return function_call_reply(name, arguments, model=MODEL)


def _openai(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="client-key", max_retries=0)


# -- what an account's request looks like --------------------------------------------------------------


async def test_account_request_has_the_backend_headers_and_body_rules(backend, auth_dir, polyrelay_http):
    path = backend.write_account(auth_dir, "ada@example.com")
    stored = json.loads(path.read_text())
    body = {"model": MODEL, "input": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            "max_output_tokens": 100, "temperature": 1, "top_p": 1, "truncation": "auto", "user": "u1",
            "service_tier": "flex", "store": True, "safety_identifier": "s", "prompt_cache_retention": "24h"}
    async with run_gateway(backend.config(auth_dir)) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1/responses", json=body) as response:
        answer = await response.json()
    assert response.status == 200, answer
    assert answer["output"][-1]["content"][0]["text"] == backend.reply_text
    (sent,) = backend.requests
    assert sent.path == "/backend-api/codex/responses"
    assert sent.headers["authorization"] == f"Bearer {stored['access_token']}"
    assert sent.headers["chatgpt-account-id"] == stored["account_id"]
    assert sent.headers["originator"] == chatgpt.ORIGINATOR
    assert sent.headers["user-agent"].startswith("codex_cli_rs/")
    assert sent.headers["session-id"]
    upstream = sent.json()
    assert upstream["stream"] is True and upstream["store"] is False
    assert not set(chatgpt.UNSUPPORTED) & set(upstream) and "service_tier" not in upstream
    assert "instructions" not in upstream, "Codex CLI sends none, and nor did this client"
    assert [i["role"] for i in upstream["input"]] == ["developer", "user"]


async def test_keys_get_none_of_the_account_headers(backend, auth_dir, polyrelay_http):
    async with ResponsesSimulator() as public:
        config = backend.config(auth_dir, extra=f"codex-api-key:\n  - api-key: sk-proj-k1\n    base-url: "
                                                f"{public.api_base}\n")
        async with run_gateway(config) as gateway:
            answer = await ask(polyrelay_http, gateway.url, ir.OPENAI_RESPONSES, MODEL)
    assert answer.status == 200
    (sent,) = public.requests
    assert sent.headers["authorization"] == "Bearer sk-proj-k1"
    assert not {"chatgpt-account-id", "originator", "session-id"} & set(sent.headers)


@pytest.mark.parametrize("rule", ["stream", "store", "max_output_tokens", "model"])
async def test_simulator_refuses_each_broken_rule_like_the_backend(backend, auth_dir, polyrelay_http, rule):
    path = backend.write_account(auth_dir, "ada@example.com")
    stored = json.loads(path.read_text())
    body: dict[str, Any] = {"model": MODEL, "input": "hi", "stream": True, "store": False}
    words = {"stream": "Stream must be set to true", "store": "Store must be set to false",
             "max_output_tokens": "Unsupported parameter: max_output_tokens",
             "model": "The 'gpt-4o' model is not supported when using Codex with a ChatGPT account."}[rule]
    body.update({"stream": {"stream": False}, "store": {"store": True}, "max_output_tokens": {"max_output_tokens": 5},
                 "model": {"model": "gpt-4o"}}[rule])
    headers = {"authorization": f"Bearer {stored['access_token']}", "chatgpt-account-id": stored["account_id"]}
    async with polyrelay_http.post(f"{backend.chatgpt_base}/responses", json=body, headers=headers) as response:
        assert response.status == 400
        assert await response.json() == {"detail": words}


async def test_completed_with_empty_output_still_aggregates_the_items(backend, auth_dir, polyrelay_http):
    backend.write_account(auth_dir, "ada@example.com")
    async with run_gateway(backend.config(auth_dir)) as gateway:
        client = _openai(gateway.url)
        reply = await client.responses.create(model=MODEL, input="Say hello.")
    assert reply.output_text == backend.reply_text
    raw = backend.requests[0]
    assert raw.json()["stream"] is True, "a non-stream client is served from the backend's stream"


# -- tool names and call ids over 64 characters ----------------------------------------------------------

LONG_TOOL = "mcp__" + "very_long_server_name_" * 3 + "__read_file_from_the_workspace"


@pytest.mark.parametrize("stream", [False, True])
async def test_long_tool_names_are_shortened_up_and_restored_down(backend, auth_dir, stream):
    backend.write_account(auth_dir, "ada@example.com")
    short = names.stand_in(LONG_TOOL)
    backend.push(function_call_reply(short, {"path": "a.py"}))
    tools = [{"type": "function", "function": {"name": LONG_TOOL, "parameters": READ_TOOL}}]
    async with run_gateway(backend.config(auth_dir)) as gateway:
        client = _openai(gateway.url)
        if stream:
            chunks = [c async for c in await client.chat.completions.create(
                model=MODEL, messages=HELLO, tools=tools, stream=True)]
            called = "".join(tc.function.name or "" for c in chunks if c.choices
                             for tc in c.choices[0].delta.tool_calls or [])
        else:
            reply = await client.chat.completions.create(model=MODEL, messages=HELLO, tools=tools)
            called = reply.choices[0].message.tool_calls[0].function.name
    assert len(LONG_TOOL) > 64 and len(short) <= 64
    assert backend.requests[0].json()["tools"][0]["name"] == short
    assert called == LONG_TOOL


async def test_long_call_ids_in_history_fit_the_backend(backend, auth_dir, polyrelay_http):
    backend.write_account(auth_dir, "ada@example.com")
    call_id = "call_" + "x" * 90
    body = {"model": MODEL, "stream": True, "store": False,
            "tools": [{"type": "function", "name": "read_file", "parameters": READ_TOOL}],
            "input": [{"role": "user", "content": "Read a.py"},
                      {"type": "function_call", "call_id": call_id, "name": "read_file", "arguments": "{}"},
                      {"type": "function_call_output", "call_id": call_id, "output": "print(1)"}]}
    async with run_gateway(backend.config(auth_dir)) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1/responses", json=body) as response:
        await response.read()
    assert response.status == 200
    sent = [i["call_id"] for i in backend.requests[0].json()["input"] if "call_id" in i]
    assert sent == [names.stand_in(call_id)] * 2 and len(sent[0]) <= 64


# -- the SDKs, served by an account ---------------------------------------------------------------------


async def test_openai_sdk_responses_and_chat_stream_and_not(backend, auth_dir):
    backend.write_account(auth_dir, "ada@example.com")
    async with run_gateway(backend.config(auth_dir)) as gateway:
        client = _openai(gateway.url)
        reply = await client.responses.create(model=MODEL, input="Say hello.", instructions="Be brief.")
        assert reply.output_text == backend.reply_text and reply.model == MODEL
        async with client.responses.stream(model=MODEL, input="Say hello.") as stream:
            final = await stream.get_final_response()
        assert final.output_text == backend.reply_text
        chat = await client.chat.completions.create(model=MODEL, messages=HELLO)
        assert chat.choices[0].message.content == backend.reply_text
        text = "".join([c.choices[0].delta.content or "" async for c in await client.chat.completions.create(
            model=MODEL, messages=HELLO, stream=True) if c.choices])
        assert text == backend.reply_text
    assert backend.requests[0].json()["instructions"] == "Be brief."


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_sdk_tools_through_an_account(backend, auth_dir, stream):
    backend.write_account(auth_dir, "ada@example.com")
    backend.push(function_call_reply("read_file", {"path": "a.py"}))
    tools = [{"type": "function", "name": "read_file", "parameters": READ_TOOL}]
    async with run_gateway(backend.config(auth_dir)) as gateway:
        client = _openai(gateway.url)
        if stream:
            async with client.responses.stream(model=MODEL, input="Read a.py", tools=tools) as events:
                reply = await events.get_final_response()
        else:
            reply = await client.responses.create(model=MODEL, input="Read a.py", tools=tools)
    calls = [i for i in reply.output if i.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("read_file", {"path": "a.py"})]


async def test_anthropic_sdk_tools_and_thinking_through_an_account(backend, auth_dir):
    backend.write_account(auth_dir, "ada@example.com")
    backend.push(function_call_reply("read_file", {"path": "a.py"}))
    tools = [{"name": "read_file", "description": "Read a file", "input_schema": READ_TOOL}]
    async with run_gateway(backend.config(auth_dir)) as gateway:
        client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key="client-key", max_retries=0)
        message = await client.messages.create(model=MODEL, max_tokens=512, messages=HELLO, tools=tools,
                                               system="Be brief.")
        async with client.messages.stream(model=MODEL, max_tokens=4096, messages=HELLO,
                                          thinking={"type": "enabled", "budget_tokens": 2048}) as stream:
            final = await stream.get_final_message()
    call = next(b for b in message.content if b.type == "tool_use")
    assert (call.name, call.input, message.stop_reason) == ("read_file", {"path": "a.py"}, "tool_use")
    thinking = [b for b in final.content if b.type == "thinking"]
    assert thinking and thinking[0].thinking == backend.reasoning_text and thinking[0].signature
    assert [b.text for b in final.content if b.type == "text"] == [backend.reply_text]
    first, second = (r.json() for r in backend.requests)
    assert first["instructions"] == "Be brief." and second["reasoning"].get("summary")


async def test_codex_cli_capture_passes_through(backend, auth_dir, polyrelay_http):
    """Codex CLI's own request already meets every rule: its bytes go up unchanged, the events come back."""
    backend.write_account(auth_dir, "ada@example.com")
    capture = json.loads((CAPTURES / "codex-tool-result.json").read_text())
    raw = json.dumps(capture["body"]).encode()
    headers = {name: value for name, value in capture["headers"]
               if name not in ("authorization", "host", "content-length")}
    async with run_gateway(backend.config(auth_dir)) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1/responses", data=raw, headers=headers) as response:
        streamed = await response.read()
    assert response.status == 200, streamed
    (sent,) = backend.requests
    assert sent.body == raw
    assert sent.headers["originator"] == "codex_exec" and sent.headers["user-agent"].startswith("codex_exec/")
    assert sent.headers["session-id"] == dict(capture["headers"])["session-id"]
    assert sent.headers["x-codex-turn-metadata"] == dict(capture["headers"])["x-codex-turn-metadata"]
    kinds = [e.event for e in SSEParser().feed(streamed)]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert b"sequence_number" not in streamed, "the backend's own frames, not re-encoded ones"


# -- limits ---------------------------------------------------------------------------------------------


async def test_usage_limit_cools_the_whole_account_until_its_reset(backend, auth_dir, polyrelay_http):
    for email in ("ada@example.com", "bob@example.com", "cy@example.com"):
        backend.write_account(auth_dir, email)
    resets_at = time.time() + 2 * 3600
    async with run_gateway(backend.config(auth_dir, extra="routing:\n  strategy: fill-first")) as gateway:
        backend.push(usage_limit_reply(resets_at=resets_at))
        answers = [await ask(polyrelay_http, gateway.url, d, m, stream=s) for d in ir.DIALECTS
                   for m in (MODEL, "gpt-5-codex") for s in (False, True)]
        pool = gateway.gateway.pool
        limited = next(c for c in pool if c.label == "ada@example.com")
        waits = {m: pool.cooling_until(limited, m) - resets_at for m in ("gpt-5", "gpt-5-codex", "gpt-5-mini")}
        shown = pool.describe(limited)["cooldown"]
    assert [a.status for a in answers] == [200] * len(answers) and all(a.terminal for a in answers)
    assert not any(a.stream_error for a in answers)
    assert all(abs(w) < 5 for w in waits.values()), waits
    assert "usage_limit_reached" in shown["reason"] and "plus" in shown["reason"]
    tokens = [r.headers["authorization"] for r in backend.requests]
    assert tokens.count(tokens[0]) == 1, "the limited account is not asked again before its reset"


async def test_usage_not_included_disables_the_account_with_the_reason(backend, auth_dir, polyrelay_http):
    path = backend.write_account(auth_dir, "ada@example.com", plan="free")
    backend.write_account(auth_dir, "bob@example.com")
    async with run_gateway(backend.config(auth_dir, extra="routing:\n  strategy: fill-first")) as gateway:
        backend.push(usage_not_included_reply())
        models = ("gpt-5-codex", "gpt-5", "gpt-5-codex")
        answers = [await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, m) for m in models]
        free = next(c for c in gateway.gateway.pool if c.label == "ada@example.com")
        shown = gateway.gateway.pool.describe(free)
    assert [a.status for a in answers] == [200] * 3
    assert shown["disabled"] and "usage_not_included" in shown["disabled_reason"] and "free" in shown["disabled_reason"]
    assert json.loads(path.read_text())["disabled"] is True
    assert len(backend.requests) == 4, "the free account was asked once, then never again"


async def test_a_model_the_plan_lacks_moves_on_and_stays_off_that_account(backend, auth_dir, polyrelay_http):
    backend.write_account(auth_dir, "ada@example.com")
    backend.write_account(auth_dir, "bob@example.com")
    refusal = Reply.json({"detail": "The 'gpt-5-codex' model is not supported when using Codex with a ChatGPT "
                                    "account."}, status=400)
    async with run_gateway(backend.config(auth_dir, extra="routing:\n  strategy: fill-first")) as gateway:
        backend.push(refusal)
        answer = await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, "gpt-5-codex")
        pool = gateway.gateway.pool
        ada = next(c for c in pool if c.label == "ada@example.com")
        waits = {m: pool.cooling_until(ada, m) - time.time() for m in ("gpt-5-codex", "gpt-5")}
    assert answer.status == 200
    assert waits["gpt-5-codex"] > 3600 and waits["gpt-5"] <= 0


async def test_overload_moves_on_with_a_short_cooldown(backend, auth_dir, polyrelay_http):
    backend.write_account(auth_dir, "ada@example.com")
    backend.write_account(auth_dir, "bob@example.com")
    async with run_gateway(backend.config(auth_dir, extra="routing:\n  strategy: fill-first")) as gateway:
        backend.push(overloaded_reply())
        answer = await ask(polyrelay_http, gateway.url, ir.ANTHROPIC, MODEL)
        pool = gateway.gateway.pool
        waits = sorted(pool.cooling_until(c, MODEL) - time.time() for c in pool)
    assert answer.status == 200
    assert waits[0] <= 0 < waits[1] <= 15


async def test_usage_headers_are_kept_per_account_and_90_percent_warns_once(backend, auth_dir, polyrelay_http, caplog):
    path = backend.write_account(auth_dir, "ada@example.com")
    token = json.loads(path.read_text())["access_token"]
    backend.tokens[token].used = (95.0, 20.0)
    with caplog.at_level(logging.WARNING, logger="polyrelay.codex"):
        async with run_gateway(backend.config(auth_dir)) as gateway:
            for stream in (False, True, False):
                assert (await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL, stream=stream)).status == 200
            (account,) = list(gateway.gateway.pool)
            quota = gateway.gateway.pool.describe(account)["quota"]
    assert quota["primary"]["used_percent"] == 95 and quota["primary"]["window_minutes"] == 300
    assert quota["secondary"]["used_percent"] == 20 and quota["secondary"]["resets_at"] > time.time()
    warnings = [r.getMessage() for r in caplog.records if "ada@example.com" in r.getMessage()]
    assert len(warnings) == 1 and "95%" in warnings[0]


@pytest.mark.parametrize("cut", [False, True], ids=["eof-without-final-event", "connection-dropped"])
async def test_a_stream_ending_before_its_terminal_event_is_an_error_not_an_answer(
        backend, auth_dir, polyrelay_http, cut):
    """A non-stream client gets an error, never the half an answer that arrived (and the next account is tried)."""
    backend.write_account(auth_dir, "ada@example.com")
    frames = sse_frames(backend_events({"model": MODEL}, ["Hello", " there"], ["Thinking."])[:-1])
    backend.push(Reply.sse(frames, cut_after=len(frames) - 1) if cut else Reply.sse(frames))
    async with run_gateway(backend.config(auth_dir, extra="request-retry: 0")) as gateway:
        answer = await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL)
    assert answer.status == 502 and "Hello" not in json.dumps(answer.body), answer.body


@pytest.mark.parametrize("dialect", [ir.OPENAI_RESPONSES, ir.ANTHROPIC])
@pytest.mark.parametrize("stream", [False, True])
async def test_failed_first_event_inside_a_200_fails_over_silently(backend, auth_dir, polyrelay_http, dialect, stream):
    backend.write_account(auth_dir, "ada@example.com")
    backend.write_account(auth_dir, "bob@example.com")
    async with run_gateway(backend.config(auth_dir, extra="routing:\n  strategy: fill-first")) as gateway:
        backend.push(failed_stream_reply("server_is_overloaded"))
        answer = await ask(polyrelay_http, gateway.url, dialect, MODEL, stream=stream)
    assert answer.status == 200 and answer.terminal and not answer.stream_error, answer.body
    assert answer.text == backend.reply_text
    assert len({r.headers["authorization"] for r in backend.requests}) == 2


async def test_a_usage_limit_as_the_first_event_cools_the_account_until_its_reset(backend, auth_dir, polyrelay_http):
    backend.write_account(auth_dir, "ada@example.com")
    backend.write_account(auth_dir, "bob@example.com")
    async with run_gateway(backend.config(auth_dir, extra="routing:\n  strategy: fill-first")) as gateway:
        backend.push(failed_stream_reply("usage_limit_reached", message="The usage limit has been reached",
                                         resets_in_seconds=5400))
        answer = await ask(polyrelay_http, gateway.url, ir.OPENAI_RESPONSES, MODEL, stream=True)
        pool = gateway.gateway.pool
        ada = next(c for c in pool if c.label == "ada@example.com")
        wait = pool.cooling_until(ada, "gpt-5-mini") - time.time()
    assert answer.status == 200 and answer.terminal and not answer.stream_error
    assert 5300 < wait <= 5400, "the whole account, for the reset the failure named"


async def test_priority_spends_subscriptions_before_keys(backend, auth_dir, polyrelay_http):
    """Keys at priority -1 serve only while every account rests; accounts and keys are one pool."""
    backend.write_account(auth_dir, "ada@example.com")
    async with ResponsesSimulator(keys={"sk-proj-fallback"}) as public:
        keys = f"codex-api-key:\n  - api-key: sk-proj-fallback\n    base-url: {public.api_base}\n    priority: -1\n"
        async with run_gateway(backend.config(auth_dir, extra=keys)) as gateway:
            first = [await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL) for _ in range(3)]
            backend.push(usage_limit_reply(resets_in=3600))
            after = [await ask(polyrelay_http, gateway.url, ir.ANTHROPIC, MODEL, stream=True) for _ in range(2)]
    assert [a.status for a in first + after] == [200] * 5 and all(a.terminal for a in after)
    assert len(backend.requests) == 4, "three answers and the usage limit from the account"
    assert len(public.requests) == 2, "the key took over only when the account was spent"


async def test_simulator_refuses_names_over_64_characters(backend, auth_dir, polyrelay_http):
    stored = json.loads(backend.write_account(auth_dir, "ada@example.com").read_text())
    headers = {"authorization": f"Bearer {stored['access_token']}", "chatgpt-account-id": stored["account_id"]}
    body = {"model": MODEL, "stream": True, "store": False, "input": "hi",
            "tools": [{"type": "function", "name": "t" * 65, "parameters": READ_TOOL}]}
    async with polyrelay_http.post(f"{backend.chatgpt_base}/responses", json=body, headers=headers) as response:
        answer = await response.json()
    assert response.status == 400 and answer["error"]["param"] == "tools[0].name"
    assert "string too long" in answer["error"]["message"]


async def test_codex_cli_first_turn_capture_through_a_model_alias(backend, auth_dir, polyrelay_http):
    """Codex CLI's first turn (custom grammar tool, tool_search, web_search) as sent; only the model is renamed."""
    backend.write_account(auth_dir, "ada@example.com")
    capture = json.loads((CAPTURES / "codex.json").read_text())
    raw = json.dumps(capture["body"]).encode()
    headers = {name: value for name, value in capture["headers"]
               if name not in ("authorization", "host", "content-length")}
    config = backend.config(auth_dir, extra="model-aliases:\n  gpt-5.5: gpt-5.1-codex\n")
    async with run_gateway(config) as gateway, \
            polyrelay_http.post(f"{gateway.url}/v1/responses", data=raw, headers=headers) as response:
        streamed = await response.read()
    assert response.status == 200, streamed
    (sent,) = backend.requests
    assert sent.body == raw.replace(b'"model": "gpt-5.5"', b'"model": "gpt-5.1-codex"')
    final = [json.loads(e.data) for e in SSEParser().feed(streamed)][-1]
    assert final["type"] == "response.completed" and final["response"]["model"] == "gpt-5.5"
    assert final["response"]["output"], "the final response carries the items the backend left out"
