"""Google's hour-long tokens: one refresh per login however many ask, written back the way CLIProxyAPI
reads it; a refresh token Google refuses disables the login with the reason."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from polyrelay import ir
from polyrelay.accounts.oauth import parse_time
from polyrelay.testing import run_gateway
from polyrelay.testing.clients import ask
from polyrelay_gemini.simulator import CodeAssistSimulator

AuthFile = Callable[..., Path]
MODEL = "gemini-2.5-flash"


async def _many(polyrelay_http: aiohttp.ClientSession, url: str, n: int) -> list[int]:
    answers = await asyncio.gather(*(ask(polyrelay_http, url, ir.OPENAI_CHAT, MODEL) for _ in range(n)))
    return [a.status for a in answers]


@pytest.mark.parametrize("how", ["expired", "refused"])
async def test_200_concurrent_requests_cause_exactly_one_refresh(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession, how: str
) -> None:
    """An expired token (the file says so) or one Code Assist refuses (401): 200 requests at once, one refresh.

    The login lists two projects, so the single flight must hold across the
    projects of one account too.  The file keeps its unknown fields and
    gets the new token nested and in CLIProxyAPI's top-level mirror.
    """
    lifetime = -60.0 if how == "expired" else 3000.0
    path = auth_file("ada@example.com", ["p1", "p2"], lifetime=lifetime, live=False, note="kept")
    old = json.loads(path.read_text())
    google.google.oauth.token_delay = 0.2  # let the 401s pile up behind the one refresh
    unlimited = "client-limits:\n  concurrent-requests: 0"  # 200 at once from one client is the point here
    async with run_gateway(google.config_text(auth_dir, unlimited)) as gateway:
        statuses = await _many(polyrelay_http, gateway.url, 200)
    assert statuses == [200] * 200
    assert google.google.refreshes == 1
    saved = json.loads(path.read_text())
    token = saved["token"]
    assert token["access_token"] != old["token"]["access_token"]
    assert google.google.oauth.valid(token["access_token"])
    assert token["refresh_token"] == old["token"]["refresh_token"], "Google keeps its refresh token"
    assert (parse_time(token["expiry"]) or 0) > time.time() + 3000
    assert saved["access_token"] == token["access_token"] and saved["expiry"] == token["expiry"]
    assert saved["refresh_token"] == token["refresh_token"] and saved["token_type"] == "Bearer"
    assert parse_time(saved["expiry"]) == parse_time(token["expiry"])
    assert saved["note"] == "kept" and saved["project_id"] == "p1,p2"
    assert token["client_id"] == old["token"]["client_id"] and token["scopes"] == old["token"]["scopes"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert {json.loads(r.body)["project"] for r in google.served} == {"p1", "p2"}


async def test_refreshed_before_expiry_without_a_request(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    """A token inside the refresh lead is renewed in the background; requests never see the old one fail."""
    path = auth_file("ada@example.com", ["p1"], lifetime=120.0)
    async with run_gateway(google.config_text(auth_dir)) as gateway:
        for _ in range(50):
            if google.google.refreshes:
                break
            await asyncio.sleep(0.05)
        assert (await ask(polyrelay_http, gateway.url, ir.ANTHROPIC, MODEL)).status == 200
    assert google.google.refreshes == 1
    assert google.served[-1].headers["authorization"] == f"Bearer {json.loads(path.read_text())['access_token']}"


async def test_invalid_grant_disables_the_login_and_the_other_account_serves(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    """A revoked login stops serving (every project of it) with the reason; nothing loops; the other serves."""
    dead = auth_file("ada@example.com", ["p1", "p2"], lifetime=3000.0, live=False)
    auth_file("bob@example.com", ["p3"])
    google.google.revoke("ada@example.com")
    async with run_gateway(google.config_text(auth_dir)) as gateway:
        statuses = await _many(polyrelay_http, gateway.url, 10)
        states = [gateway.gateway.pool.describe(c) for c in gateway.gateway.pool]
    assert statuses == [200] * 10
    assert {json.loads(r.body)["project"] for r in google.served} == {"p3"}
    ada = [s for s in states if s["label"].startswith("ada@")]
    assert len(ada) == 2 and all(s["disabled"] and "invalid_grant" in s["disabled_reason"] for s in ada)
    assert len(google.google.oauth.token_requests) == 1, "a dead grant is tried once, never in a loop"
    saved = json.loads(dead.read_text())
    assert saved["disabled"] is True and "invalid_grant" in saved["disabled_reason"]


class ForwardingProxy:
    """A plain HTTP forward proxy on loopback that records every absolute URI it forwards."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> ForwardingProxy:
        app = web.Application()
        app.add_routes([web.route("*", "/{tail:.*}", self.forward)])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def forward(self, request: web.Request) -> web.Response:
        self.targets.append(str(request.url))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "proxy-connection")}
        async with aiohttp.ClientSession(auto_decompress=False) as session, session.request(
                request.method, str(request.url), data=await request.read(), headers=headers) as answer:
            body = await answer.read()
            keep = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "content-encoding")}
            return web.Response(status=answer.status, body=body, headers=keep)


async def test_refresh_and_requests_go_through_the_accounts_proxy(
    google: CodeAssistSimulator, auth_file: AuthFile, auth_dir: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    """A file's ``proxy_url`` carries its token refresh as well as its Code Assist calls."""
    async with ForwardingProxy() as proxy:
        auth_file("ada@example.com", ["p1"], lifetime=3000.0, live=False, proxy_url=proxy.url)
        async with run_gateway(google.config_text(auth_dir)) as gateway:
            answer = await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, MODEL)
    assert answer.status == 200, answer.body
    assert google.google.refreshes == 1
    base = google.base_url
    assert proxy.targets == [f"{base}/v1internal:generateContent", f"{base}/token",
                             f"{base}/v1internal:generateContent"], "the 401, the refresh, the retry: all proxied"
