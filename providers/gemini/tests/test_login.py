"""``polyrelay login gemini`` as a user runs it, with the test playing the browser.

The command runs in a subprocess against the Code Assist simulator (every
address moved there by the config file): the test reads the printed
consent address, follows Google's redirect to the loopback callback, and
answers the project question on standard input when one is asked.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from polyrelay.accounts import pkce_challenge
from polyrelay.testing.gateway import free_port
from polyrelay_gemini.accounts import CLIENT_ID, SCOPES
from polyrelay_gemini.simulator import CodeAssistSimulator

VALIDATION_URL = "https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=sim"


class Login:
    """One ``polyrelay login gemini`` process and what it printed."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.printed: list[str] = []

    async def line_with(self, words: str) -> str:
        """Read standard output until a line containing ``words``."""
        assert self.process.stdout is not None
        while True:
            line = (await asyncio.wait_for(self.process.stdout.readline(), 30)).decode()
            assert line, f"the login ended before printing {words!r}: {self.printed}"
            self.printed.append(line)
            if words in line:
                return line.strip()

    async def play_browser(self, forge_state: bool = False) -> dict[str, list[str]]:
        """Open the printed address as the browser would and follow Google's redirect; the address's query."""
        url = await self.line_with("response_type=code")
        async with aiohttp.ClientSession() as http:
            async with http.get(url, allow_redirects=False) as consent:
                assert consent.status == 302, await consent.text()
                location = consent.headers["location"]
            if forge_state:
                location = location.replace("state=", "state=forged")
            async with http.get(location) as page:
                assert page.status == 200
        return parse_qs(urlsplit(url).query)

    async def answer(self, text: str | None) -> None:
        """Type a line (None: end standard input, as when there is no terminal)."""
        assert self.process.stdin is not None
        if text is None:
            self.process.stdin.close()
            return
        self.process.stdin.write(f"{text}\n".encode())
        await self.process.stdin.drain()

    async def finish(self) -> tuple[int, str, str]:
        out, err = await asyncio.wait_for(self.process.communicate(), 60)
        return self.process.returncode or 0, "".join(self.printed) + out.decode(), err.decode()


async def start(google: CodeAssistSimulator, tmp_path: Path, *options: str) -> Login:
    config = tmp_path / "config.yaml"
    config.write_text(google.config_text(tmp_path / "auth"))
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "polyrelay.cli", "login", "gemini", "--no-browser", "--port", str(port),
        "--config", str(config), "--timeout", "30", *options,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "POLYRELAY_CONFIG": ""})
    return Login(process, port)


def setup_calls(google: CodeAssistSimulator, method: str) -> list[dict[str, Any]]:
    return [r.json() for r in google.requests if r.path.endswith(f":{method}")]


async def test_login_onboards_a_new_free_tier_account(google: CodeAssistSimulator, tmp_path: Path) -> None:
    """Consent with Gemini CLI's client and PKCE, then loadCodeAssist and onboardUser polled until done."""
    google.google.add("ada@example.com", onboarded=False)
    login = await start(google, tmp_path)
    query = await login.play_browser()
    code, out, err = await login.finish()
    assert code == 0, err
    assert query["client_id"] == [CLIENT_ID] and set(query["scope"][0].split(" ")) == set(SCOPES)
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
    assert query["redirect_uri"] == [f"http://localhost:{login.port}/oauth2callback"]
    assert query["code_challenge_method"] == ["S256"] and query["state"][0]
    exchange = google.google.oauth.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code" and exchange["client_secret"]
    assert pkce_challenge(exchange["code_verifier"]) == query["code_challenge"][0]

    project = google.google.accounts["ada@example.com"].project
    path = Path(out.strip().splitlines()[-1])
    assert path == tmp_path / "auth" / f"gemini-ada@example.com-{project}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["type"] == "gemini" and saved["email"] == "ada@example.com" and saved["project_id"] == project
    assert saved["auto"] is True and saved["checked"] is True
    token = saved["token"]
    assert {"access_token", "refresh_token", "expiry", "token_uri", "client_id", "client_secret",
            "scopes"} <= set(token)
    assert google.google.oauth.valid(token["access_token"]) and token["scopes"] == list(SCOPES)
    (load,) = setup_calls(google, "loadCodeAssist")
    assert load["metadata"]["pluginType"] == "GEMINI"
    (onboard,) = setup_calls(google, "onboardUser")
    assert onboard["tierId"] == "free-tier" and "cloudaicompanionProject" not in onboard, "free tier sends no project"
    assert any(r.method == "GET" and "/operations/" in r.path for r in google.requests), "the operation was polled"


async def test_login_keeps_an_onboarded_accounts_project(google: CodeAssistSimulator, tmp_path: Path) -> None:
    """An account Code Assist already knows is not onboarded again; its project is stored."""
    account = google.google.add("bob@example.com", projects=["bobs-project"], tier="standard-tier")
    login = await start(google, tmp_path)
    await login.play_browser()
    code, out, err = await login.finish()
    assert code == 0, err
    saved = json.loads(Path(out.strip().splitlines()[-1]).read_text())
    assert saved["project_id"] == account.project == "bobs-project"
    assert not setup_calls(google, "onboardUser")


async def test_login_with_project_id_onboards_into_that_project(google: CodeAssistSimulator, tmp_path: Path) -> None:
    """``--project-id`` is sent to loadCodeAssist and onboardUser; the operation's project is stored."""
    google.google.add("cy@example.com", projects=["p1", "p2"], tier="standard-tier", onboarded=False)
    login = await start(google, tmp_path, "--project-id", "p2")
    await login.play_browser()
    code, out, err = await login.finish()
    assert code == 0, err
    path = Path(out.strip().splitlines()[-1])
    assert path.name == "gemini-cy@example.com-p2.json"
    saved = json.loads(path.read_text())
    assert saved["project_id"] == "p2" and saved["auto"] is False
    assert setup_calls(google, "loadCodeAssist")[0]["cloudaicompanionProject"] == "p2"
    assert setup_calls(google, "onboardUser")[0] == {"tierId": "standard-tier", "metadata": {
        "ideType": "IDE_UNSPECIFIED", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"},
        "cloudaicompanionProject": "p2"}


async def test_login_lets_the_user_pick_among_several_projects(google: CodeAssistSimulator, tmp_path: Path) -> None:
    """Several Cloud projects and none chosen: they are listed and the answer picks one."""
    google.google.add("dee@example.com", projects=["alpha", "beta", "gamma"], tier="standard-tier", onboarded=False)
    login = await start(google, tmp_path)
    await login.play_browser()
    await login.line_with("Which one")
    await login.answer("2")
    code, out, err = await login.finish()
    assert code == 0, err
    assert "1. alpha" in out and "3. gamma" in out
    assert json.loads(Path(out.strip().splitlines()[-1]).read_text())["project_id"] == "beta"


async def test_login_without_a_terminal_asks_for_project_id_instead_of_waiting(
    google: CodeAssistSimulator, tmp_path: Path
) -> None:
    """No one to answer the project question: a clear failure naming --project-id, no file, no hang."""
    google.google.add("eve@example.com", projects=["alpha", "beta"], tier="standard-tier", onboarded=False)
    login = await start(google, tmp_path)
    await login.play_browser()
    await login.line_with("Which one")
    await login.answer(None)
    code, _, err = await login.finish()
    assert code == 1
    assert "--project-id" in err and "alpha" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "auth").exists()


async def test_ineligible_account_fails_with_googles_reason_and_link(
    google: CodeAssistSimulator, tmp_path: Path
) -> None:
    """``ineligibleTiers`` with VALIDATION_REQUIRED: non-zero exit, Google's message and the link, no file."""
    google.google.add("fay@example.com", onboarded=False, ineligible={
        "reasonCode": "VALIDATION_REQUIRED", "reasonMessage": "Verify your account to continue.",
        "tierId": "free-tier", "tierName": "Gemini Code Assist for individuals", "validationUrl": VALIDATION_URL})
    login = await start(google, tmp_path)
    await login.play_browser()
    code, _, err = await login.finish()
    assert code == 1
    assert "VALIDATION_REQUIRED" in err and "Verify your account to continue." in err and VALIDATION_URL in err
    assert not (tmp_path / "auth").exists()


async def test_wrong_state_is_refused(google: CodeAssistSimulator, tmp_path: Path) -> None:
    """An answer whose ``state`` is not this login's: no token exchange, non-zero exit, no file."""
    google.google.add("gus@example.com")
    login = await start(google, tmp_path)
    await login.play_browser(forge_state=True)
    code, _, err = await login.finish()
    assert code == 1 and "state mismatch" in err
    assert not google.google.oauth.token_requests
    assert not (tmp_path / "auth").exists()


async def test_login_takes_the_pasted_redirect_address(google: CodeAssistSimulator, tmp_path: Path) -> None:
    """With the browser on another machine, pasting the address Google redirected to finishes the login."""
    google.google.add("hal@example.com")
    login = await start(google, tmp_path)
    url = await login.line_with("response_type=code")
    await login.line_with("paste")
    async with aiohttp.ClientSession() as http, http.get(url, allow_redirects=False) as consent:
        location = consent.headers["location"]
    assert location.startswith(f"http://localhost:{login.port}/oauth2callback?")
    await login.answer(location)
    code, out, err = await login.finish()
    assert code == 0, err
    assert json.loads(Path(out.strip().splitlines()[-1]).read_text())["email"] == "hal@example.com"
