"""``quota-exceeded.switch-preview-model`` with Google accounts: once a model's quota is exhausted on every
account, Code Assist is asked for the model's preview sibling (CLIProxyAPI's list, ``PREVIEWS``), and the
client never sees the 429.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from polyrelay import ir
from polyrelay.testing import run_gateway
from polyrelay.testing.clients import ask, is_error_shape
from polyrelay_gemini import PREVIEWS
from polyrelay_gemini.simulator import CodeAssistSimulator

AuthFile = Callable[..., Path]
MODEL = "gemini-2.5-pro"
FIRST, SECOND = PREVIEWS[MODEL]
SWITCH_ON = "quota-exceeded:\n  switch-preview-model: true\n"
DAY = 20 * 3600


def two_accounts(google: CodeAssistSimulator, auth_file: AuthFile, previews_exist: bool = True) -> None:
    """Ada (project p1) and Bob (p2), both out of quota for ``MODEL``; Code Assist serves the previews."""
    auth_file("ada@example.com", ["p1"])
    auth_file("bob@example.com", ["p2"])
    if previews_exist:
        assert google.models is not None
        google.models |= {FIRST, SECOND}
    for project in ("p1", "p2"):
        google.limit(project, MODEL, "quota", DAY)


def models_generated(google: CodeAssistSimulator) -> list[str]:
    return [r.json()["model"] for r in google.requests if ":generateContent" in r.path
            or ":streamGenerateContent" in r.path]


def model_named(dialect: str, answer) -> set[str]:
    """Every model name the client's answer carries."""
    field = "modelVersion" if dialect == ir.GEMINI else "model"
    payloads = [answer.body] if answer.body is not None else [p for _, p in answer.events if isinstance(p, dict)]
    return {p[field] for p in payloads if field in p}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("dialect", [ir.OPENAI_CHAT, ir.GEMINI])
async def test_quota_exhausted_on_every_account_is_served_by_the_preview(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture, dialect: str, stream: bool,
) -> None:
    two_accounts(google, auth_file)
    caplog.set_level(logging.INFO)
    async with run_gateway(google.config_text(auth_dir, SWITCH_ON)) as gateway:
        first = await ask(polyrelay_http, gateway.url, dialect, MODEL, stream=stream)
        again = await ask(polyrelay_http, gateway.url, dialect, MODEL, stream=stream)
    for answer in (first, again):
        assert answer.status == 200, answer.body
        assert answer.text == google.reply_text and answer.terminal and not answer.stream_error
        assert model_named(dialect, answer) == {FIRST}, "the answer names the model that served it"
    assert models_generated(google) == [MODEL, MODEL, FIRST, FIRST], "exhausted accounts are not asked again"
    assert {r.json()["project"] for r in google.generated()} == {"p1", "p2"}, "both accounts serve the preview"
    assert [held.early for held in google.limits.values()] == [1, 1]
    switched = [r for r in caplog.records if "switch-preview-model" in r.getMessage()]
    assert len(switched) == 2 and all(r.levelno == logging.INFO for r in switched)
    tokens = [json.loads(f.read_text())["token"]["access_token"] for f in auth_dir.glob("*.json")]
    assert len(tokens) == 2 and all(t not in caplog.text for t in tokens)


@pytest.mark.parametrize("dialect", [ir.OPENAI_CHAT, ir.GEMINI])
async def test_with_the_setting_off_the_client_gets_its_429(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession,
    dialect: str,
) -> None:
    two_accounts(google, auth_file)
    async with run_gateway(google.config_text(auth_dir)) as gateway:
        answer = await ask(polyrelay_http, gateway.url, dialect, MODEL)
    assert answer.status == 429 and is_error_shape(dialect, 429, answer.body), answer.body
    assert int(answer.headers["retry-after"]) > DAY - 60
    assert models_generated(google) == [MODEL, MODEL]


@pytest.mark.parametrize("dialect", [ir.OPENAI_CHAT, ir.GEMINI])
async def test_previews_exhausted_too_give_the_429_with_the_earliest_retry(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession,
    dialect: str,
) -> None:
    two_accounts(google, auth_file)
    for project in ("p1", "p2"):
        google.limit(project, FIRST, "quota", 2 * 3600)
        google.limit(project, SECOND, "quota", 3600)
    async with run_gateway(google.config_text(auth_dir, SWITCH_ON)) as gateway:
        answer = await ask(polyrelay_http, gateway.url, dialect, MODEL)
    assert answer.status == 429 and is_error_shape(dialect, 429, answer.body), answer.body
    assert 3500 <= int(answer.headers["retry-after"]) <= 3600, "the second preview is the first to recover"
    assert sorted(models_generated(google)) == sorted([MODEL, MODEL, FIRST, FIRST, SECOND, SECOND])
    assert FIRST not in str(answer.body) and SECOND not in str(answer.body)


async def test_a_retired_preview_leaves_the_client_the_429_of_its_model(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession,
) -> None:
    """Google answers the dated previews with a 404 today: the client gets its model's 429, not that 404."""
    two_accounts(google, auth_file, previews_exist=False)
    async with run_gateway(google.config_text(auth_dir, SWITCH_ON)) as gateway:
        answer = await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL)
        again = await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL)
    for reply in (answer, again):
        assert reply.status == 429 and is_error_shape(ir.OPENAI_CHAT, 429, reply.body), reply.body
    assert len(models_generated(google)) == 6, "each 404 cools the preview: the second request sends nothing"


async def test_a_model_without_a_preview_keeps_its_429(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession,
) -> None:
    auth_file("ada@example.com", ["p1"])
    auth_file("bob@example.com", ["p2"])
    model = "gemini-3-pro-preview"
    assert model not in PREVIEWS
    for project in ("p1", "p2"):
        google.limit(project, model, "quota", DAY)
    async with run_gateway(google.config_text(auth_dir, SWITCH_ON)) as gateway:
        answer = await ask(polyrelay_http, gateway.url, ir.GEMINI, model)
    assert answer.status == 429 and is_error_shape(ir.GEMINI, 429, answer.body), answer.body
    assert models_generated(google) == [model, model]
