"""``quota-exceeded.switch-preview-model``: a model whose every credential is rate-limited is served by the
preview sibling its provider declares, over the same credentials, and only then.

A keyed OpenAI-compatible provider in front of the chat simulator stands in for any provider; the
Gemini provider's own tests (providers/gemini/tests/test_preview_model.py) run Code Assist accounts.
"""

from __future__ import annotations

import logging

import pytest

from polyrelay import ir
from polyrelay.config import ConfigError, load_config
from polyrelay.testing import run_gateway
from polyrelay.testing.clients import ask, is_error_shape
from polyrelay.testing.keyed import key_config, keyed_provider
from polyrelay.testing.openai_chat import OpenAIChatSimulator, error_body
from polyrelay.testing.simulator import Reply

MODEL, PREVIEW = "base-1", "base-1-preview-0601"
SWITCH_ON = "quota-exceeded:\n  switch-preview-model: true\n"


def rate_limited(seconds: int = 3600) -> Reply:
    """The upstream's 429 with a hint longer than ``max-retry-interval``: the key is spent for a while."""
    return Reply.json(error_body("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
                      status=429, retry_after=str(seconds))


def gateway(upstream: OpenAIChatSimulator, keys: list[str], extra: str = ""):
    """The gateway with provider ``kp`` (model ``base-1``, preview ``base-1-preview-0601``) on ``keys``."""
    plugin = keyed_provider("kp", ir.OPENAI_CHAT, [MODEL, "plain-1"], previews={MODEL: (PREVIEW,)})
    return run_gateway(key_config("kp", upstream.api_base, keys) + extra, extra_plugins=[plugin])


def models_asked(upstream: OpenAIChatSimulator) -> list[str]:
    return [r.json()["model"] for r in upstream.requests]


# -- the config key ------------------------------------------------------------------------------------


def test_quota_exceeded_keys_load_with_cliproxyapis_defaults():
    assert load_config(None).quota_exceeded.switch_preview_model is False
    assert load_config(None).quota_exceeded.switch_project is True
    config = load_config(text="quota-exceeded:\n  switch-project: true\n  switch-preview-model: true\n")
    assert (config.quota_exceeded.switch_project, config.quota_exceeded.switch_preview_model) == (True, True)
    assert config.unknown_keys == []


@pytest.mark.parametrize("value", ['"yes"', "1", "[true]", "{on: true}"])
def test_a_switch_that_is_not_a_bool_stops_the_start_naming_the_key(value):
    with pytest.raises(ConfigError) as caught:
        load_config(text=f"quota-exceeded:\n  switch-preview-model: {value}\n")
    message = str(caught.value)
    assert "quota-exceeded.switch-preview-model" in message
    assert "expected true or false" in message


def test_switch_project_false_is_read_and_warned_about(caplog):
    caplog.set_level(logging.WARNING, logger="polyrelay.config")
    config = load_config(text="quota-exceeded: {switch-project: false}")
    assert config.quota_exceeded.switch_project is False
    assert any("switch-project: false has no effect" in r.getMessage() for r in caplog.records)


# -- the fallback --------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("dialect", [ir.ANTHROPIC, ir.OPENAI_CHAT])
async def test_every_key_rate_limited_is_served_by_the_preview_under_its_own_name(
    polyrelay_chat_upstream, polyrelay_http, caplog, dialect, stream
):
    upstream = polyrelay_chat_upstream
    upstream.push(rate_limited(), rate_limited())
    caplog.set_level(logging.INFO, logger="polyrelay.gateway")
    async with gateway(upstream, ["sk-test-a", "sk-test-b"], SWITCH_ON) as gw:
        first = await ask(polyrelay_http, gw.url, dialect, MODEL, stream=stream)
        again = await ask(polyrelay_http, gw.url, dialect, MODEL, stream=stream)
    for answer in (first, again):
        assert answer.status == 200, answer.body
        assert answer.text == upstream.reply_text and answer.terminal
    assert models_asked(upstream) == [MODEL, MODEL, PREVIEW, PREVIEW], "the cooling keys are not asked again"
    keys = {r.headers["authorization"] for r in upstream.requests}
    assert len(keys) == 2, "the preview is served by the keys that serve the model"
    if stream:
        named = [p["model"] for _, p in first.events if isinstance(p, dict) and "model" in p]
        named += [p["message"]["model"] for _, p in first.events if isinstance(p, dict) and "message" in p]
        assert named and set(named) == {PREVIEW}
    else:
        assert first.body["model"] == PREVIEW, "the answer names the model that served it"
    switched = [r.getMessage() for r in caplog.records if "switch-preview-model" in r.getMessage()]
    assert len(switched) == 2 and PREVIEW in switched[0] and MODEL in switched[0]
    assert "sk-test-a" not in caplog.text and "sk-test-b" not in caplog.text


@pytest.mark.parametrize("dialect", [ir.ANTHROPIC, ir.OPENAI_CHAT])
async def test_with_the_setting_off_the_client_gets_the_429_as_before(polyrelay_chat_upstream, polyrelay_http,
                                                                      dialect):
    upstream = polyrelay_chat_upstream
    upstream.push(rate_limited(), rate_limited())
    async with gateway(upstream, ["sk-test-a", "sk-test-b"]) as gw:
        answer = await ask(polyrelay_http, gw.url, dialect, MODEL)
    assert answer.status == 429 and is_error_shape(dialect, 429, answer.body), answer.body
    assert 3590 <= int(answer.headers["retry-after"]) <= 3600
    assert models_asked(upstream) == [MODEL, MODEL]


async def test_preview_also_rate_limited_gives_the_429_with_the_soonest_recovery(polyrelay_chat_upstream,
                                                                                 polyrelay_http):
    upstream = polyrelay_chat_upstream
    upstream.push(rate_limited(3600), rate_limited(3600), rate_limited(900), rate_limited(1800))
    async with gateway(upstream, ["sk-test-a", "sk-test-b"], SWITCH_ON) as gw:
        answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, MODEL)
        again = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, MODEL)
    assert models_asked(upstream) == [MODEL, MODEL, PREVIEW, PREVIEW], "nothing cooling is asked twice"
    for reply in (answer, again):
        assert reply.status == 429 and is_error_shape(ir.OPENAI_CHAT, 429, reply.body), reply.body
        assert 890 <= int(reply.headers["retry-after"]) <= 900, "the preview recovers first: retry then"
    assert PREVIEW not in str(answer.body), "the error is about the model the client asked for"


async def test_a_model_without_a_preview_keeps_its_429(polyrelay_chat_upstream, polyrelay_http):
    upstream = polyrelay_chat_upstream
    upstream.push(rate_limited(), rate_limited())
    async with gateway(upstream, ["sk-test-a", "sk-test-b"], SWITCH_ON) as gw:
        answer = await ask(polyrelay_http, gw.url, ir.ANTHROPIC, "plain-1")
    assert answer.status == 429 and is_error_shape(ir.ANTHROPIC, 429, answer.body), answer.body
    assert models_asked(upstream) == ["plain-1", "plain-1"]


async def test_a_key_refused_for_auth_is_not_a_spent_quota(polyrelay_chat_upstream, polyrelay_http):
    """One key rejected (401), the other rate-limited: the model is not exhausted on every key, no preview."""
    upstream = polyrelay_chat_upstream
    upstream.push(rate_limited())
    async with gateway(upstream, ["sk-test-a", "sk-revoked"], SWITCH_ON) as gw:
        answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, MODEL)
    assert answer.status in (401, 429), answer.body
    assert PREVIEW not in models_asked(upstream)


async def test_a_request_fault_is_returned_and_never_retried_on_the_preview(polyrelay_chat_upstream,
                                                                            polyrelay_http):
    upstream = polyrelay_chat_upstream
    upstream.push(Reply.json(error_body("'messages' is too long", "invalid_request_error", None), status=400))
    async with gateway(upstream, ["sk-test-a", "sk-test-b"], SWITCH_ON) as gw:
        answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, MODEL)
    assert answer.status == 400, answer.body
    assert models_asked(upstream) == [MODEL]
