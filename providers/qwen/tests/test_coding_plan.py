"""Coding Plan subscriptions against the simulator's plan base, through the real gateway on loopback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import anthropic
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from polyrelay import ir, jsonutil
from polyrelay.testing import run_gateway
from polyrelay.testing.clients import ask
from polyrelay_qwen import MODELS
from polyrelay_qwen.plan import LONG_WINDOW_SECONDS, PLAN_MODELS, WINDOW_SECONDS
from polyrelay_qwen.simulator import (
    DashScopeSimulator,
    allocation_quota_reply,
    rate_quota_reply,
    tool_call_reply,
)

PLAN_KEYS = ["sk-sp-plan-alpha-0000000000", "sk-sp-plan-bravo-1111111111"]
GENERAL_KEY = "sk-dashscope-general-2222222222"
MODEL = "qwen3-coder-plus"  # served by the plan and by pay-as-you-go keys
GLM = "glm-5"  # served by the plan only


@pytest.fixture
async def modelstudio() -> AsyncIterator[DashScopeSimulator]:
    """Model Studio's general base and plan base, accepting the test keys."""
    async with DashScopeSimulator(keys={GENERAL_KEY}, models=set(MODELS), plan_keys=set(PLAN_KEYS),
                                  plan_models=set(PLAN_MODELS)) as simulator:
        yield simulator


def plan_config(simulator: DashScopeSimulator, keys: list[str] = PLAN_KEYS, extra: str = "") -> str:
    """``qwen-coding-plan`` entries, the plan base pointed at the simulator."""
    lines = ["qwen-coding-plan:"] + [f"  - api-key: {key}" for key in keys]
    lines += ["upstream-urls:", "  qwen:", f"    coding-plan: {simulator.plan_base}",
              f"    coding-plan-intl: {simulator.plan_base}", f"    api: {simulator.api_base}"]
    return "\n".join(lines) + "\n" + extra


def plan_requests(simulator: DashScopeSimulator) -> list[str]:
    """The bearer key of every request that reached the plan base, in order."""
    return [r.headers["authorization"][7:] for r in simulator.requests if r.path.startswith("/coding/")]


# -- SDKs served by a plan key ---------------------------------------------------------------------


async def test_openai_sdk_chat_stream_and_not_and_tools(modelstudio: DashScopeSimulator) -> None:
    async with run_gateway(plan_config(modelstudio, PLAN_KEYS[:1])) as gw:
        client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="unused", max_retries=0)
        reply = await client.chat.completions.create(model=GLM, messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == modelstudio.reply_text
        assert reply.model == GLM
        stream = await client.chat.completions.create(model=GLM, messages=[{"role": "user", "content": "hi"}],
                                                      stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == modelstudio.reply_text
        modelstudio.push(tool_call_reply(GLM, "read_file", {"path": "/etc/hosts"}, stream=False))
        reply = await client.chat.completions.create(
            model=GLM, messages=[{"role": "user", "content": "read it"}],
            tools=[{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}])
        call = reply.choices[0].message.tool_calls[0]
        assert call.function.name == "read_file" and jsonutil.loads(call.function.arguments) == {"path": "/etc/hosts"}
    assert plan_requests(modelstudio) == PLAN_KEYS[:1] * 3
    # The stream asked the plan for its usage chunk, as every Qwen stream does.
    streamed = [r.json() for r in modelstudio.requests if r.json().get("stream")]
    assert streamed and all(r["stream_options"]["include_usage"] is True for r in streamed)


async def test_anthropic_sdk_tools_and_thinking(modelstudio: DashScopeSimulator) -> None:
    async with run_gateway(plan_config(modelstudio, PLAN_KEYS[:1])) as gw:
        client = anthropic.AsyncAnthropic(base_url=gw.url, api_key="unused", max_retries=0)
        message = await client.messages.create(
            model=GLM, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048},
            messages=[{"role": "user", "content": "Say hello."}])
        kinds = [block.type for block in message.content]
        assert kinds == ["thinking", "text"]
        assert message.content[0].thinking == modelstudio.reasoning_text
        assert message.content[1].text == modelstudio.reply_text
        sent = modelstudio.requests[-1].json()
        assert sent["enable_thinking"] is True and sent["thinking_budget"] == 2048 and sent["stream"] is True
        modelstudio.push(tool_call_reply(GLM, "read_file", {"path": "/etc/hosts"}, stream=True))
        async with client.messages.stream(
            model=GLM, max_tokens=512, messages=[{"role": "user", "content": "read it"}],
            tools=[{"name": "read_file", "input_schema": {"type": "object"}}],
        ) as stream:
            final = await stream.get_final_message()
        assert final.stop_reason == "tool_use"
        assert [(b.name, b.input) for b in final.content if b.type == "tool_use"] == [
            ("read_file", {"path": "/etc/hosts"})]


async def test_google_genai_served_by_a_plan_key(modelstudio: DashScopeSimulator) -> None:
    async with run_gateway(plan_config(modelstudio, PLAN_KEYS[:1])) as gw:
        client = genai.Client(api_key="unused", http_options=genai_types.HttpOptions(base_url=gw.url))
        reply = await client.aio.models.generate_content(model=GLM, contents="Say hello.")
        assert reply.text == modelstudio.reply_text
        chunks = [c async for c in await client.aio.models.generate_content_stream(model=GLM, contents="hi")]
        assert "".join(c.text or "" for c in chunks) == modelstudio.reply_text
    assert plan_requests(modelstudio) == PLAN_KEYS[:1] * 2


# -- where a plan key is sent ----------------------------------------------------------------------


async def test_a_plan_key_in_qwen_api_key_goes_to_the_plan_base(
    modelstudio: DashScopeSimulator, polyrelay_http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    config = (f"qwen-api-key:\n  - api-key: {PLAN_KEYS[0]}\n"
              f"upstream-urls:\n  qwen:\n    coding-plan: {modelstudio.plan_base}\n    api: {modelstudio.api_base}\n")
    with caplog.at_level(logging.INFO, logger="polyrelay.qwen"):
        async with run_gateway(config) as gw:
            answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, GLM)
    assert answer.status == 200 and answer.text == modelstudio.reply_text
    assert [r.path for r in modelstudio.requests] == ["/coding/v1/chat/completions"]
    notices = [r.getMessage() for r in caplog.records if "Coding Plan key" in r.getMessage()]
    assert len(notices) == 1
    assert PLAN_KEYS[0] not in notices[0]


async def test_plan_models_are_listed_and_routable_under_their_own_and_prefixed_names(
    modelstudio: DashScopeSimulator, polyrelay_http: aiohttp.ClientSession
) -> None:
    async with run_gateway(plan_config(modelstudio, PLAN_KEYS[:1])) as gw:
        async with polyrelay_http.get(f"{gw.url}/v1/models") as response:
            listed = {m["id"] for m in (await response.json())["data"]}
        assert set(PLAN_MODELS) <= listed
        for model in ("kimi-k2.5", "qwen/kimi-k2.5", "MiniMax-M2.5", "qwen/glm-4.7"):
            answer = await ask(polyrelay_http, gw.url, ir.ANTHROPIC, model)
            assert answer.status == 200, (model, answer.body)
    assert [r.json()["model"] for r in modelstudio.requests] == ["kimi-k2.5", "kimi-k2.5", "MiniMax-M2.5", "glm-4.7"]


async def test_a_plan_key_and_a_dashscope_key_share_one_pool_and_priority_prefers_the_plan(
    modelstudio: DashScopeSimulator, polyrelay_http: aiohttp.ClientSession
) -> None:
    config = (f"qwen-coding-plan:\n  - api-key: {PLAN_KEYS[0]}\n    priority: 1\n"
              f"qwen-api-key:\n  - api-key: {GENERAL_KEY}\n    base-url: {modelstudio.api_base}\n"
              f"upstream-urls:\n  qwen:\n    coding-plan: {modelstudio.plan_base}\n")
    async with run_gateway(config) as gw:
        for _ in range(2):
            assert (await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, MODEL)).status == 200
        assert [r.path for r in modelstudio.requests] == ["/coding/v1/chat/completions"] * 2
        # The plan's window is spent: the same request moves to the pay-as-you-go key, unseen by the client.
        modelstudio.push(allocation_quota_reply())
        answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, MODEL)
        assert answer.status == 200 and answer.text == modelstudio.reply_text
    assert modelstudio.requests[-1].path == "/compatible-mode/v1/chat/completions"


# -- quotas and dead keys --------------------------------------------------------------------------


async def test_rotation_across_two_plan_keys_on_the_allocation_quota(
    modelstudio: DashScopeSimulator, polyrelay_http: aiohttp.ClientSession
) -> None:
    async with run_gateway(plan_config(modelstudio)) as gw:
        modelstudio.push(allocation_quota_reply())
        answers = [await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, GLM, stream=i % 2 == 1) for i in range(6)]
        assert [a.status for a in answers] == [200] * 6
        spent = plan_requests(modelstudio)[0]
        assert plan_requests(modelstudio)[1:] == [k for k in PLAN_KEYS if k != spent] * 6
        row = next(gw.gateway.pool.describe(c) for c in gw.gateway.pool if c.secret == spent)
    # The whole key waits for its 5-hour window, not one model for seconds.
    assert WINDOW_SECONDS - 60 < row["cooldown"]["seconds_left"] <= WINDOW_SECONDS


async def test_spent_again_right_after_the_window_reset_waits_for_the_longer_window(
    modelstudio: DashScopeSimulator, polyrelay_http: aiohttp.ClientSession
) -> None:
    # The gateway would wait out a short cooldown and retry; here the client is to see each refusal.
    async with run_gateway(plan_config(modelstudio, PLAN_KEYS[:1], extra="max-retry-interval: 0\n")) as gw:
        pool = gw.gateway.pool
        modelstudio.push(allocation_quota_reply(retry_after="30"))
        assert (await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, GLM)).status == 429
        credential = next(iter(pool))
        first = pool.describe(credential)["cooldown"]["seconds_left"]
        assert 25 < first <= 30  # the answer named its reset
        # The window resets; the very next request is refused again: the weekly window is the spent one.
        state = pool.store.state(credential.id)
        state.cooldown.until = pool.clock() - 1
        modelstudio.push(allocation_quota_reply())
        assert (await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, GLM)).status == 429
        second = pool.describe(credential)["cooldown"]["seconds_left"]
    assert second > WINDOW_SECONDS  # capped by the core's longest cooldown, far beyond the 5-hour window
    assert second <= LONG_WINDOW_SECONDS


async def test_the_rate_limit_is_a_short_back_off(modelstudio: DashScopeSimulator,
        polyrelay_http: aiohttp.ClientSession) -> None:
    async with run_gateway(plan_config(modelstudio)) as gw:
        modelstudio.push(rate_quota_reply())
        assert (await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, GLM)).status == 200
        limited = plan_requests(modelstudio)[0]
        row = next(gw.gateway.pool.describe(c) for c in gw.gateway.pool if c.secret == limited)
    assert 0 < row["cooldown"]["seconds_left"] <= 10


async def test_an_expired_plan_key_is_retired_with_its_reason_while_the_other_serves(
    modelstudio: DashScopeSimulator, polyrelay_http: aiohttp.ClientSession
) -> None:
    modelstudio.expired_keys.add(PLAN_KEYS[0])
    async with run_gateway(plan_config(modelstudio)) as gw:
        answers = [await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, GLM) for _ in range(4)]
        rows = {c.secret: gw.gateway.pool.describe(c) for c in gw.gateway.pool}
    assert [a.status for a in answers] == [200] * 4
    assert plan_requests(modelstudio).count(PLAN_KEYS[0]) == 1, "a dead key is not retried"
    dead = rows[PLAN_KEYS[0]]
    assert dead["disabled"] and dead["disabled_reason"] == "subscription expired or wrong key"
    assert rows[PLAN_KEYS[1]]["cooldown"] is None


async def test_a_model_outside_the_plan_is_excluded_for_that_key_only(
    modelstudio: DashScopeSimulator, polyrelay_http: aiohttp.ClientSession
) -> None:
    modelstudio.plan_models = set(PLAN_MODELS) - {"kimi-k2.5"}
    async with run_gateway(plan_config(modelstudio, PLAN_KEYS[:1])) as gw:
        refused = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, "kimi-k2.5")
        served = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, GLM)
        row = gw.gateway.pool.describe(next(iter(gw.gateway.pool)))
    assert refused.status == 400 and "is not supported" in str(refused.body)
    assert served.status == 200
    assert row["cooldown"] is None and not row["disabled"]  # the key itself is fine
    assert row["model_cooldowns"] == {"kimi-k2.5": {"seconds_left": pytest.approx(24 * 3600, abs=60),
                                                    "reason": "model not in this Coding Plan"}}
