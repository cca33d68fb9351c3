"""Rotation on Google's quota answers: across accounts and across the projects of one account.

Each ``RESOURCE_EXHAUSTED`` flavour cools what it names for as long as it
says; the simulator counts every request that reaches a limited project
before the limit lifts (``Limit.early``), so "the delay is honoured" is
measured, and no client ever sees the 429.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from polyrelay import ir
from polyrelay.testing import run_gateway
from polyrelay.testing.clients import ask
from polyrelay_gemini.accounts import ProjectCredential
from polyrelay_gemini.simulator import CodeAssistSimulator

AuthFile = Callable[..., Path]
MODEL = "gemini-2.5-flash"
OTHER = "gemini-2.5-pro"


async def _served_by(polyrelay_http: aiohttp.ClientSession, url: str, google: CodeAssistSimulator, n: int,
                     model: str = MODEL) -> list[str]:
    """Send ``n`` requests one after another; the project that answered each (all must succeed)."""
    projects = []
    for _ in range(n):
        before = len(google.served)
        answer = await ask(polyrelay_http, url, ir.OPENAI_CHAT, model)
        assert answer.status == 200, answer.body
        assert len(google.served) == before + 1
        projects.append(google.served[-1].json()["project"])
    return projects


@pytest.mark.parametrize("layout", ["projects", "accounts"])
@pytest.mark.parametrize("kind", ["rate", "quota"])
async def test_model_limit_rotates_and_lifts_on_time(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession,
    kind: str, layout: str,
) -> None:
    """RATE_LIMIT_EXCEEDED / QUOTA_EXHAUSTED cool that model on that project only, for the delay Google names."""
    if layout == "projects":
        auth_file("ada@example.com", ["p1", "p2"])
    else:
        auth_file("ada@example.com", ["p1"])
        auth_file("bob@example.com", ["p2"])
    async with run_gateway(google.config_text(auth_dir, "request-retry: 0")) as gateway:
        held = google.limit("p1", MODEL, kind, 1.5)
        during = await _served_by(polyrelay_http, gateway.url, google, 6)
        other_model = await _served_by(polyrelay_http, gateway.url, google, 2, OTHER)
        await asyncio.sleep(max(0.0, held.until - time.time()) + 0.1)
        after = await _served_by(polyrelay_http, gateway.url, google, 4)
    assert set(during) == {"p2"}, "while p1 is limited, p2 serves"
    assert held.early == 1, "p1 was asked once (its 429), then left alone until the delay passed"
    assert "p1" in other_model, "the limit was on one model: p1 still serves another"
    assert "p1" in after, "after the delay p1 serves again"


async def test_quota_reset_time_stamp_wins_over_a_short_retry_info(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    """QUOTA_EXHAUSTED holds until ``quotaResetTimeStamp`` even when ``RetryInfo`` says less."""
    auth_file("ada@example.com", ["p1", "p2"])
    async with run_gateway(google.config_text(auth_dir)) as gateway:
        held = google.limit("p1", MODEL, "quota", 1.5, retry_delay=0.05)
        for _ in range(4):
            assert set(await _served_by(polyrelay_http, gateway.url, google, 2)) == {"p2"}
            await asyncio.sleep(0.2)
    assert held.early == 1


async def test_every_project_limited_waits_for_the_first_to_lift(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    """With every project rate-limited, the request waits for the soonest reset instead of failing."""
    auth_file("ada@example.com", ["p1", "p2"])
    async with run_gateway(google.config_text(auth_dir)) as gateway:
        first, second = google.limit("p1", MODEL, "rate", 1.0), google.limit("p2", MODEL, "rate", 3.0)
        started = time.monotonic()
        answer = await ask(polyrelay_http, gateway.url, ir.ANTHROPIC, MODEL)
        waited = time.monotonic() - started
    assert answer.status == 200, answer.body
    assert waited >= 0.9, "the gateway waited for p1's delay"
    assert waited < 2.9, "and no longer than it needed"
    assert (first.early, second.early) == (1, 1)
    assert google.served[-1].json()["project"] == "p1"


async def test_credits_balance_cools_the_whole_project(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    """INSUFFICIENT_G1_CREDITS_BALANCE takes the project out for every model."""
    auth_file("ada@example.com", ["p1", "p2"])
    async with run_gateway(google.config_text(auth_dir)) as gateway:
        held = google.limit("p1", "*", "credits", 60)
        assert set(await _served_by(polyrelay_http, gateway.url, google, 4)) == {"p2"}
        assert set(await _served_by(polyrelay_http, gateway.url, google, 3, OTHER)) == {"p2"}
        (p1,) = [c for c in gateway.gateway.pool if getattr(c, "project", "") == "p1"]
        state = gateway.gateway.pool.describe(p1)
    assert held.early == 1
    assert state["cooldown"] is not None and state["cooldown"]["seconds_left"] > 1000


@pytest.mark.parametrize("kind", ["validation", "disabled"])
async def test_project_needing_the_user_is_disabled_with_googles_reason(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession, kind: str
) -> None:
    """403 VALIDATION_REQUIRED / SERVICE_DISABLED disable that project only, with Google's reason and link,
    in the file too: after a restart it stays out and the login's other project serves."""
    path = auth_file("ada@example.com", ["p1", "p2"])
    reason_code = "VALIDATION_REQUIRED" if kind == "validation" else "SERVICE_DISABLED"
    link = "accounts.google.com/signin/continue" if kind == "validation" else "console.developers.google.com"
    google.limit("p1", "*", kind, 3600)
    async with run_gateway(google.config_text(auth_dir)) as gateway:
        assert set(await _served_by(polyrelay_http, gateway.url, google, 4)) == {"p2"}
    saved = json.loads(path.read_text())
    assert "disabled" not in saved, "the login itself is fine"
    assert reason_code in saved["disabled_projects"]["p1"] and link in saved["disabled_projects"]["p1"]
    async with run_gateway(google.config_text(auth_dir)) as gateway:
        described = {c.project: gateway.gateway.pool.describe(c) for c in gateway.gateway.pool
                     if isinstance(c, ProjectCredential)}
        assert set(await _served_by(polyrelay_http, gateway.url, google, 2)) == {"p2"}
    assert described["p1"]["disabled"] and reason_code in described["p1"]["disabled_reason"]
    assert link in described["p1"]["disabled_reason"]
    assert not described["p2"]["disabled"]
    assert google.limits[("p1", "*")].early == 1, "a disabled project is never asked again"
