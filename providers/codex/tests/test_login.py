"""`polyrelay login codex`, run as the real command against the simulated auth.openai.com.

The test plays the user: it reads what the command prints, opens the
authorization address like a browser (which redirects to the command's
loopback callback) or approves the device code, and checks the file the
command leaves behind.
"""

from __future__ import annotations

import asyncio
import json
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest

from polyrelay.accounts import pkce_challenge
from polyrelay.testing import run_gateway
from polyrelay.testing.clients import ask
from polyrelay.testing.gateway import free_port
from polyrelay_codex.account import CLIENT_ID
from polyrelay_codex.simulator import ChatGPTSimulator
from polyrelay_codex.simulator.oauth import Identity

TIMEOUT = 60


@pytest.fixture
async def backend() -> AsyncIterator[ChatGPTSimulator]:
    async with ChatGPTSimulator() as simulator:
        yield simulator


class Command:
    """``polyrelay login codex …`` as a child process, its output read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    @classmethod
    async def start(cls, config: Path, *argv: str) -> Command:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "polyrelay.cli", "login", "codex", "--config", str(config), *argv,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(process)

    async def line_with(self, needle: str) -> str:
        """The next printed line containing ``needle``."""
        assert self.process.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.process.stdout.readline(), TIMEOUT)
            if not raw:
                raise AssertionError(f"the command ended without printing {needle!r}: {self.lines}")
            line = raw.decode().strip()
            self.lines.append(line)
            if needle in line:
                return line

    async def finish(self) -> tuple[int, str, str]:
        out, err = await asyncio.wait_for(self.process.communicate(), TIMEOUT)
        return self.process.returncode or 0, "\n".join([*self.lines, out.decode()]), err.decode()


def write_config(tmp_path: Path, backend: ChatGPTSimulator) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(backend.config(tmp_path / "auth"))
    return path


def stored(tmp_path: Path) -> list[Path]:
    """Every file in the auth dir (temporary ones included)."""
    auth = tmp_path / "auth"
    return sorted(auth.iterdir()) if auth.exists() else []


async def open_in_browser(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as polyrelay_http, polyrelay_http.get(url) as response:
        return response.status, await response.text()


async def test_browser_login_end_to_end(backend, tmp_path, polyrelay_http):
    backend.auth.next_identity = Identity("ada@example.com", "acct-ada", "pro")
    port = free_port()
    command = await Command.start(write_config(tmp_path, backend), "--no-browser", "--port", str(port))
    url = await command.line_with("response_type=code")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{backend.base_url}/oauth/authorize?")
    assert query["client_id"] == CLIENT_ID and query["scope"] == "openid email profile offline_access"
    assert query["redirect_uri"] == f"http://localhost:{port}/auth/callback"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43 and query["state"]
    assert (query["prompt"], query["id_token_add_organizations"], query["codex_cli_simplified_flow"]) == \
        ("login", "true", "true")
    status, _ = await open_in_browser(url)
    code, out, err = await command.finish()
    assert status == 200 and code == 0, err
    path = tmp_path / "auth" / "codex-ada@example.com-pro.json"
    assert str(path) in out
    saved = json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert {"id_token", "access_token", "refresh_token", "account_id", "email", "last_refresh", "expired",
            "type"} <= set(saved)
    assert (saved["type"], saved["email"], saved["account_id"]) == ("codex", "ada@example.com", "acct-ada")
    exchange = backend.auth.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code" and exchange["redirect_uri"] == query["redirect_uri"]
    assert pkce_challenge(exchange["code_verifier"]) == query["code_challenge"]
    # The new file serves at once.
    async with run_gateway(backend.config(tmp_path / "auth")) as gateway:
        answer = await ask(polyrelay_http, gateway.url, "openai-chat", "gpt-5")
    assert answer.status == 200 and backend.requests[-1].headers["chatgpt-account-id"] == "acct-ada"


async def test_wrong_state_fails_and_writes_nothing(backend, tmp_path):
    port = free_port()
    command = await Command.start(write_config(tmp_path, backend), "--no-browser", "--port", str(port))
    url = await command.line_with("response_type=code")
    redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
    forged = f"{redirect}?{urlencode({'code': 'code-forged', 'state': 'not-the-state'})}"
    await open_in_browser(forged)
    code, _, err = await command.finish()
    assert code != 0 and "state" in err
    assert stored(tmp_path) == []
    assert not any(r.get("grant_type") == "authorization_code" for r in backend.auth.token_requests)


async def test_denial_fails_and_writes_nothing(backend, tmp_path):
    backend.auth.deny_next = True
    command = await Command.start(write_config(tmp_path, backend), "--no-browser", "--port", str(free_port()))
    url = await command.line_with("response_type=code")
    await open_in_browser(url)
    code, _, err = await command.finish()
    assert code != 0 and "denied" in err.lower()
    assert stored(tmp_path) == []


async def test_device_login_end_to_end(backend, tmp_path):
    backend.auth.next_identity = Identity("bob@example.com", "acct-bob", "plus")
    command = await Command.start(write_config(tmp_path, backend), "--device", "--no-browser")
    shown = await command.line_with("enter the code")
    assert "https://auth.openai.com/codex/device" in shown
    user_code = shown.rsplit(" ", 1)[1]
    await asyncio.sleep(0.3)  # a few "not yet" polls first
    backend.auth.approve_device(user_code)
    code, out, err = await command.finish()
    assert code == 0, err
    path = tmp_path / "auth" / "codex-bob@example.com-plus.json"
    assert str(path) in out and json.loads(path.read_text())["account_id"] == "acct-bob"
    exchange = backend.auth.token_requests[-1]
    assert exchange["redirect_uri"] == "https://auth.openai.com/deviceauth/callback"


async def test_device_login_gives_up_at_its_time_limit(backend, tmp_path):
    command = await Command.start(write_config(tmp_path, backend), "--device", "--no-browser", "--timeout", "1")
    await command.line_with("enter the code")
    code, _, err = await command.finish()
    assert code != 0 and ("expired" in err or "timed out" in err)
    assert stored(tmp_path) == []
    assert backend.auth.device_logins, "never approved"


async def test_pasted_redirect_when_the_callback_cannot_reach_the_command(backend, tmp_path):
    """A browser on another machine: the user pastes the address it ended on."""
    backend.auth.next_identity = Identity("cy@example.com", "acct-cy", "team")
    command = await Command.start(write_config(tmp_path, backend), "--no-browser", "--port", str(free_port()))
    url = await command.line_with("response_type=code")
    async with aiohttp.ClientSession() as polyrelay_http, polyrelay_http.get(url, allow_redirects=False) as response:
        landed = response.headers["location"]
    assert command.process.stdin is not None
    command.process.stdin.write(f"{landed}\n".encode())
    await command.process.stdin.drain()
    code, out, err = await command.finish()
    assert code == 0, err
    assert str(tmp_path / "auth" / "codex-cy@example.com-team.json") in out
    assert json.loads((tmp_path / "auth" / "codex-cy@example.com-team.json").read_text())["account_id"] == "acct-cy"
