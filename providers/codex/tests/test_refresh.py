"""Access-token refresh for ChatGPT accounts: single flight, rotation written back, dead tokens disable."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from polyrelay import ir
from polyrelay.testing import run_gateway
from polyrelay.testing.clients import ask
from polyrelay_codex.simulator import ChatGPTSimulator

MODEL = "gpt-5"


@pytest.fixture
async def backend() -> AsyncIterator[ChatGPTSimulator]:
    async with ChatGPTSimulator() as simulator:
        yield simulator


async def test_200_concurrent_requests_on_an_expired_token_refresh_once(backend, tmp_path, polyrelay_http):
    path = backend.write_account(tmp_path, "ada@example.com", workspace_note="kept")
    before = json.loads(path.read_text())
    backend.auth.expire_all_access()
    backend.auth.token_delay = 0.3  # the refresh takes a while: every request piles onto it
    connector = aiohttp.TCPConnector(limit=0)
    config = backend.config(tmp_path, extra="client-limits:\n  concurrent-requests: 256")
    async with run_gateway(config) as gateway, aiohttp.ClientSession(connector=connector) as many:
        answers = await asyncio.gather(*(ask(many, gateway.url, ir.OPENAI_CHAT, MODEL) for _ in range(200)))
    assert [a.status for a in answers] == [200] * 200
    assert backend.auth.refresh_count == 1
    refresh = next(r for r in backend.auth.token_requests if r["grant_type"] == "refresh_token")
    assert refresh["refresh_token"] == before["refresh_token"] and refresh["scope"] == "openid profile email"
    after = json.loads(path.read_text())
    assert after["refresh_token"] != before["refresh_token"], "the rotated refresh token is written back"
    assert after["access_token"] in backend.auth.access_tokens and after["workspace_note"] == "kept"
    assert after["account_id"] == before["account_id"] and after["type"] == "codex"


async def test_a_reused_refresh_token_disables_the_account_and_the_other_serves(backend, tmp_path, polyrelay_http):
    dead = backend.write_account(tmp_path, "ada@example.com")
    stale = json.loads(dead.read_text())["refresh_token"]
    async with polyrelay_http.post(f"{backend.base_url}/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": stale, "client_id": backend.auth.client_id}) as r:
        assert r.status == 200  # someone else used it: the file's refresh token is now spent
    backend.auth.expire_all_access()
    live = backend.write_account(tmp_path, "bob@example.com")
    async with run_gateway(backend.config(tmp_path, extra="routing:\n  strategy: fill-first")) as gateway:
        answers = [await ask(polyrelay_http, gateway.url, ir.ANTHROPIC, MODEL) for _ in range(3)]
        pool = gateway.gateway.pool
        ada = next(c for c in pool if c.label == "ada@example.com")
    assert [a.status for a in answers] == [200] * 3
    assert ada.disabled and "refresh_token_reused" in ada.disabled_reason
    saved = json.loads(dead.read_text())
    assert saved["disabled"] is True and "refresh_token_reused" in saved["disabled_reason"]
    refreshes = [r for r in backend.auth.token_requests if r.get("grant_type") == "refresh_token"]
    assert sum(r["refresh_token"] == stale for r in refreshes) == 2, "one refresh by the gateway, never a loop"
    assert backend.requests[-1].headers["authorization"] == f"Bearer {json.loads(live.read_text())['access_token']}"


async def test_a_token_about_to_expire_is_refreshed_before_use(backend, tmp_path, polyrelay_http):
    path = backend.write_account(tmp_path, "ada@example.com", expires_in=30)
    async with run_gateway(backend.config(tmp_path)) as gateway:
        for _ in range(100):
            if backend.auth.refresh_count:
                break
            await asyncio.sleep(0.05)
        answer = await ask(polyrelay_http, gateway.url, ir.OPENAI_RESPONSES, MODEL)
    assert backend.auth.refresh_count == 1 and answer.status == 200
    saved = json.loads(path.read_text())
    assert saved["expired"] > time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
