"""`polyrelay login`'s shared flows against the shared OAuth simulator, over loopback.

The provider is a small plugin declaring a :class:`LoginFlow` the way a
provider package does; the test plays the browser (it follows the printed
address, which redirects to the loopback callback) or pastes the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import stat
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web

from polyrelay.accounts import AccountFile, BrowserLogin, DeviceLogin, InputLines, LoginContext, LoginError, LoginFlow
from polyrelay.accounts.login import flow_parser, run_login, safe_file_name
from polyrelay.config import load_config
from polyrelay.testing.gateway import free_port
from polyrelay.testing.oauth import OAuthServer
from polyrelay.testing.simulator import Simulator

CLIENT_ID = "acme-cli-client"


class AuthSimulator(Simulator):
    """Only the OAuth side."""

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.oauth = OAuthServer(CLIENT_ID, **options)

    def routes(self) -> list[web.RouteDef]:
        return self.oauth.routes()


async def acme_account(ctx: LoginContext, tokens: Mapping[str, Any]) -> AccountFile:
    email = tokens["account"]["email"]
    return AccountFile(f"acme-{email}.json", {"type": "acme", "email": email, "access_token": tokens["access_token"],
                                              "refresh_token": tokens["refresh_token"]})


def acme_flow(server: AuthSimulator, port: int) -> LoginFlow:
    return LoginFlow(
        provider="acme", client_id=CLIENT_ID, scopes=["user:inference", "user:profile"],
        urls={"oauth-authorize": "https://auth.acme.invalid/authorize", "oauth-token": "https://auth.acme.invalid/t",
              "oauth-device": "https://auth.acme.invalid/device"},
        account=acme_account, token_style="json",
        browser=BrowserLogin(port=port, authorize_params={"code": "true"}, send_state=True),
        device=DeviceLogin(style="json", slow_down_step=0.2),
    )


def simulator_config(server: AuthSimulator, tmp_path: Path) -> Any:
    """A config whose upstream-urls point every OAuth address at the simulator."""
    base = server.base_url
    return load_config(text=(
        f"auth-dir: {tmp_path / 'auth'}\n"
        "upstream-urls:\n  acme:\n"
        f"    oauth-authorize: {base}/oauth/authorize\n"
        f"    oauth-token: {base}/oauth/token\n"
        f"    oauth-device: {base}/oauth/device/code\n"))


def account_answer(kind: str, grant: dict[str, Any]) -> dict[str, Any]:
    return {"account": {"uuid": "u-1", "email": "dev@example.com"}}


@pytest.fixture
async def server() -> AsyncIterator[AuthSimulator]:
    simulator = AuthSimulator(style="json", required_params={"code": "true"}, require_state_in_exchange=True,
                              answer_fields=account_answer)
    async with simulator:
        yield simulator


class Terminal:
    """What the user sees, and a line they can paste."""

    def __init__(self) -> None:
        self.shown: list[str] = []
        self.url: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.pasted = InputLines()

    def say(self, text: str) -> None:
        self.shown.append(text)
        if "://" in text and "response_type=code" in text and not self.url.done():
            self.url.set_result(text.strip())


async def login(flow: LoginFlow, config: Any, terminal: Terminal, *argv: str) -> Path:
    options = flow_parser(flow).parse_args(["--no-browser", *argv])
    return await run_login(flow, options, config, lines=terminal.pasted, stdin=False, say=terminal.say)


async def follow(url: str) -> tuple[int, str]:
    """The browser: open the address, follow the redirect to the callback."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


async def redirect_of(url: str) -> str:
    """The address the authorization server sends the browser to, without going there."""
    async with aiohttp.ClientSession() as http, http.get(url, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        return response.headers["location"]


async def test_browser_login_end_to_end_writes_a_0600_file(server, tmp_path):
    port = free_port()
    flow = acme_flow(server, port)
    terminal = Terminal()
    task = asyncio.ensure_future(login(flow, simulator_config(server, tmp_path), terminal))
    url = await asyncio.wait_for(terminal.url, 10)
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{server.base_url}/oauth/authorize?"), "upstream-urls redirects the authorize address"
    assert query["redirect_uri"] == [f"http://localhost:{port}/callback"]
    assert query["code_challenge_method"] == ["S256"] and query["code"] == ["true"]
    assert query["scope"] == ["user:inference user:profile"]
    status, page = await follow(url)
    assert status == 200 and "close this tab" in page
    path = await asyncio.wait_for(task, 10)
    assert path == tmp_path / "auth" / "acme-dev@example.com.json"
    saved = json.loads(path.read_text())
    assert saved["type"] == "acme" and saved["access_token"] in server.oauth.access_tokens
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, "the auth dir the login created is private"
    exchange = server.oauth.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code" and exchange["state"] == query["state"][0]
    assert "code_verifier" in exchange, "the PKCE verifier travels in the JSON body"


async def test_pasted_redirect_url_and_code_hash_state_both_work(server, tmp_path):
    for paste in ("url", "code#state"):
        flow = acme_flow(server, free_port())
        terminal = Terminal()
        task = asyncio.ensure_future(login(flow, simulator_config(server, tmp_path), terminal))
        location = await redirect_of(await asyncio.wait_for(terminal.url, 10))
        answer = parse_qs(urlsplit(location).query)
        terminal.pasted.feed("not an answer\n")
        terminal.pasted.feed(location if paste == "url" else f"{answer['code'][0]}#{answer['state'][0]}\n")
        path = await asyncio.wait_for(task, 10)
        assert path.exists(), paste
        assert any("neither the redirect URL" in line for line in terminal.shown), "a bad paste is explained"


async def test_wrong_state_is_refused_and_nothing_is_written(server, tmp_path):
    flow = acme_flow(server, free_port())
    terminal = Terminal()
    task = asyncio.ensure_future(login(flow, simulator_config(server, tmp_path), terminal))
    location = await redirect_of(await asyncio.wait_for(terminal.url, 10))
    forged = location.replace("state=", "state=x")
    await follow(forged)
    with pytest.raises(LoginError, match="state mismatch"):
        await asyncio.wait_for(task, 10)
    assert not (tmp_path / "auth").exists()
    assert not any(r.get("grant_type") == "authorization_code" for r in server.oauth.token_requests), \
        "a forged answer never reaches the token endpoint"


async def test_denial_token_error_and_timeout_each_end_with_one_reason(server, tmp_path):
    config = simulator_config(server, tmp_path)
    server.oauth.deny_next = True
    terminal = Terminal()
    task = asyncio.ensure_future(login(acme_flow(server, free_port()), config, terminal))
    _, page = await follow(await asyncio.wait_for(terminal.url, 10))
    assert "Login failed" in page
    with pytest.raises(LoginError, match=r"denied \(access_denied"):
        await asyncio.wait_for(task, 10)

    server.oauth.failures.append((400, {"error": "invalid_grant", "error_description": "code expired"}))
    terminal = Terminal()
    task = asyncio.ensure_future(login(acme_flow(server, free_port()), config, terminal))
    await follow(await asyncio.wait_for(terminal.url, 10))
    with pytest.raises(LoginError, match=r"refused the code \(invalid_grant: code expired"):
        await asyncio.wait_for(task, 10)

    with pytest.raises(LoginError, match="timed out"):
        await login(acme_flow(server, free_port()), config, Terminal(), "--timeout", "0.3")
    assert not (tmp_path / "auth").exists()


async def test_a_busy_callback_port_is_named_with_the_way_out(server, tmp_path):
    port = free_port()
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
    try:
        with pytest.raises(LoginError, match=f"port {port} is in use; pass --port"):
            await login(acme_flow(server, port), simulator_config(server, tmp_path), Terminal())
    finally:
        blocker.close()


async def test_port_option_moves_listener_and_redirect_uri(server, tmp_path):
    port = free_port()
    terminal = Terminal()
    task = asyncio.ensure_future(login(acme_flow(server, 1), simulator_config(server, tmp_path), terminal,
                                       "--port", str(port)))
    url = await asyncio.wait_for(terminal.url, 10)
    assert parse_qs(urlsplit(url).query)["redirect_uri"] == [f"http://localhost:{port}/callback"]
    await follow(url)
    assert (await asyncio.wait_for(task, 10)).exists()


async def device_login(server: AuthSimulator, tmp_path: Path, action: str) -> tuple[asyncio.Task[Path], str]:
    flow = acme_flow(server, free_port())
    terminal = Terminal()
    task = asyncio.ensure_future(login(flow, simulator_config(server, tmp_path), terminal, "--device"))
    for _ in range(200):
        shown = [line for line in terminal.shown if "enter the code" in line]
        if shown:
            break
        await asyncio.sleep(0.01)
    user_code = shown[0].rsplit(" ", 1)[1]
    await asyncio.sleep(0.2)  # a few pending polls first
    getattr(server.oauth, action)(user_code)
    return task, user_code


async def test_device_login_approve_deny_expire(server, tmp_path):
    task, _ = await device_login(server, tmp_path, "approve")
    path = await asyncio.wait_for(task, 10)
    assert json.loads(path.read_text())["access_token"] in server.oauth.access_tokens
    polls = [r for r in server.oauth.token_requests if r.get("grant_type", "").endswith("device_code")]
    assert len(polls) >= 3, "pending answers were polled through"
    assert all("code_verifier" in r for r in polls), "PKCE on the device grant"

    task, _ = await device_login(server, tmp_path, "deny")
    with pytest.raises(LoginError, match="denied"):
        await asyncio.wait_for(task, 10)
    task, _ = await device_login(server, tmp_path, "expire")
    with pytest.raises(LoginError, match="expired"):
        await asyncio.wait_for(task, 10)


async def test_device_login_polls_slower_after_slow_down(server, tmp_path):
    server.oauth.slow_down = 2
    task, user_code = await device_login(server, tmp_path, "approve")
    await asyncio.wait_for(task, 10)
    grant = next(g for g in server.oauth.devices.values() if g.user_code == user_code)
    gaps = [b - a for a, b in zip(grant.polls, grant.polls[1:], strict=False)]
    # The server's interval is 0.05 s; each slow_down adds the flow's 0.2 s step to it.
    assert gaps[0] >= 0.24 and gaps[1] >= 0.44, f"each slow_down lengthens the interval: {gaps}"


def test_file_names_stay_inside_the_auth_dir():
    assert safe_file_name("claude-../../etc/passwd.json") == "claude-.._.._etc_passwd.json"
    assert safe_file_name("../x") == "_x.json"
    assert safe_file_name("a b@c.com") == "a_b@c.com.json"


def test_flow_parser_offers_only_what_the_flow_has():
    async def account(ctx: LoginContext, tokens: Mapping[str, Any]) -> AccountFile:
        raise AssertionError

    device_only = LoginFlow(provider="q", client_id="c", scopes=[], urls={}, account=account, device=DeviceLogin())
    parser = flow_parser(device_only)
    with pytest.raises(SystemExit):
        parser.parse_args(["--port", "1"])
    assert isinstance(parser.parse_args([]), argparse.Namespace)


async def test_the_account_step_can_still_ask_after_the_browser_answered(server, tmp_path):
    async def asking_account(ctx: LoginContext, tokens: Mapping[str, Any]) -> AccountFile:
        project = await ctx.ask("Pick a project:")
        return AccountFile(f"acme-{project}.json", {"type": "acme", "project": project})

    flow = acme_flow(server, free_port())
    flow.account = asking_account
    terminal = Terminal()
    task = asyncio.ensure_future(login(flow, simulator_config(server, tmp_path), terminal))
    await follow(await asyncio.wait_for(terminal.url, 10))
    await asyncio.sleep(0.2)  # the paste listener has stopped; the question is next
    terminal.pasted.feed("proj-2\n")
    path = await asyncio.wait_for(task, 10)
    assert json.loads(path.read_text())["project"] == "proj-2"
    assert "Pick a project:" in terminal.shown


async def test_a_provider_device_protocol_runs_under_device_with_the_shared_poll(server, tmp_path):
    from polyrelay.accounts import poll

    calls: list[float] = []

    async def deviceauth(flow: LoginFlow, ctx: LoginContext, open_browser: bool) -> dict[str, Any]:
        ctx.say("Open https://auth.example/codex/device and enter ABCD-1234")

        async def attempt() -> dict[str, Any] | None:
            calls.append(time.monotonic())
            return None if len(calls) < 3 else {"access_token": "at", "refresh_token": "rt",
                                                 "account": {"email": "dev@example.com"}}

        return await poll(attempt, 0.05, time.monotonic() + 5, 0.1)

    flow = acme_flow(server, free_port())
    flow.device = DeviceLogin(run=deviceauth)
    terminal = Terminal()
    path = await login(flow, simulator_config(server, tmp_path), terminal, "--device")
    assert json.loads(path.read_text())["access_token"] == "at"
    assert len(calls) == 3 and "ABCD-1234" in terminal.shown[0]
