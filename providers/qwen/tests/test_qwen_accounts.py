"""Qwen OAuth accounts (tokens people still hold) against the simulator's portal and OAuth side, over loopback."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from polyrelay import ir
from polyrelay.accounts import rfc3339
from polyrelay.testing import run_gateway
from polyrelay.testing.clients import ask
from polyrelay.testing.gateway import free_port
from polyrelay_qwen import MODELS
from polyrelay_qwen.accounts import CLIENT_ID, api_base
from polyrelay_qwen.simulator import DashScopeSimulator

MODEL = "qwen3-coder-plus"
CAPTURES = Path(__file__).resolve().parents[3] / "core" / "tests" / "fixtures" / "captures"


@pytest.fixture
async def qwen() -> AsyncIterator[DashScopeSimulator]:
    async with DashScopeSimulator(models=set(MODELS)) as simulator:
        yield simulator


def urls_config(simulator: DashScopeSimulator, auth_dir: Path, extra: str = "") -> str:
    base = simulator.base_url
    return (f"auth-dir: {auth_dir}\n"
            "upstream-urls:\n  qwen:\n"
            f"    portal: {simulator.portal_base}\n"
            f"    oauth-device: {base}/api/v1/oauth2/device/code\n    oauth-token: {base}/api/v1/oauth2/token\n"
            f"{extra}\n")


def seed(simulator: DashScopeSimulator, directory: Path, name: str, access: str | None = None,
         **extra: Any) -> Path:
    """A CLIProxyAPI-shaped ``qwen-<name>.json`` holding tokens the simulator issued."""
    live_access, refresh = simulator.oauth.seed(name)
    path = directory / f"qwen-{name}.json"
    path.write_text(json.dumps({
        "access_token": access or live_access, "refresh_token": refresh, "last_refresh": rfc3339(time.time()),
        "resource_url": simulator.resource_url, "email": name, "type": "qwen",
        "expired": rfc3339(time.time() + 6 * 3600), **extra}))
    return path


def portal_requests(simulator: DashScopeSimulator) -> list[Any]:
    return [r for r in simulator.requests if r.path == "/v1/chat/completions"]


def test_resource_url_is_normalised_to_an_api_base() -> None:
    assert api_base("portal.qwen.ai") == "https://portal.qwen.ai/v1"
    assert api_base("127.0.0.1:8443") == "https://127.0.0.1:8443/v1"
    assert api_base("https://portal.qwen.ai/v1/") == "https://portal.qwen.ai/v1"
    assert api_base("http://127.0.0.1:9/portal") == "http://127.0.0.1:9/portal/v1"
    assert api_base("") is None and api_base(None) is None


async def test_an_account_file_is_served_from_its_resource_url_with_qwen_codes_headers(
    qwen: DashScopeSimulator, tmp_path: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    seed(qwen, tmp_path, "dev@example.com")
    # The configured portal is a dead address: the file's own resource_url must be what is used.
    config = urls_config(qwen, tmp_path).replace(qwen.portal_base, "http://127.0.0.1:9/v1")
    async with run_gateway(config) as gw:
        for dialect in (ir.OPENAI_CHAT, ir.ANTHROPIC, ir.OPENAI_RESPONSES, ir.GEMINI):
            answer = await ask(polyrelay_http, gw.url, dialect, MODEL, stream=dialect != ir.GEMINI)
            assert answer.status == 200 and answer.text == qwen.reply_text, (dialect, answer.body)
    sent = portal_requests(qwen)
    assert len(sent) == 4
    assert all(r.headers["x-dashscope-authtype"] == "qwen-oauth" for r in sent)
    assert all(r.headers["user-agent"].startswith("QwenCode/") for r in sent)


async def test_an_account_without_resource_url_uses_the_portal_address(
    qwen: DashScopeSimulator, tmp_path: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    seed(qwen, tmp_path, "dev", resource_url="")
    async with run_gateway(urls_config(qwen, tmp_path)) as gw:
        assert (await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, MODEL)).status == 200
    assert len(portal_requests(qwen)) == 1


async def test_200_concurrent_requests_on_an_expired_token_refresh_once(tmp_path: Path) -> None:
    async with DashScopeSimulator(models=set(MODELS)) as qwen:
        qwen.oauth.token_delay = 0.1
        path = seed(qwen, tmp_path, "dev", access="expired-token-000", note={"kept": True})
        old_refresh = json.loads(path.read_text())["refresh_token"]
        unlimited = "client-limits:\n  concurrent-requests: 0\n"
        async with run_gateway(urls_config(qwen, tmp_path, unlimited)) as gw:
            client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0)
            replies = await asyncio.gather(*[client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "hi"}]) for _ in range(200)])
        assert all(r.choices[0].message.content == qwen.reply_text for r in replies)
        assert qwen.oauth.refresh_count == 1
        grant = qwen.oauth.token_requests[0]
        assert grant == {"grant_type": "refresh_token", "refresh_token": old_refresh, "client_id": CLIENT_ID}
        saved = json.loads(path.read_text())
        assert saved["note"] == {"kept": True} and saved["refresh_token"] != old_refresh
        assert saved["access_token"] in qwen.oauth.access_tokens
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_a_new_resource_url_in_a_refresh_answer_moves_the_account(tmp_path: Path) -> None:
    async with DashScopeSimulator(models=set(MODELS)) as qwen:
        # Due for refresh, and its recorded host is gone: the refresh answer names where it lives now.
        path = seed(qwen, tmp_path, "dev", resource_url="http://127.0.0.1:9/dead", expired=rfc3339(time.time() - 60))
        async with run_gateway(urls_config(qwen, tmp_path)) as gw, aiohttp.ClientSession() as http:
            await gw.gateway.accounts.refresh_due()  # (the gateway's own first pass may already have run)
            assert qwen.oauth.refresh_count == 1
            assert (await ask(http, gw.url, ir.OPENAI_CHAT, MODEL)).status == 200
        assert json.loads(path.read_text())["resource_url"] == qwen.resource_url
        assert len(portal_requests(qwen)) == 1


async def test_the_discontinuation_answer_disables_the_account(
    qwen: DashScopeSimulator, tmp_path: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    from polyrelay_qwen.simulator import error_reply

    path = seed(qwen, tmp_path, "old")
    qwen.push(error_reply(403, "The Qwen OAuth free tier was discontinued on 2026-04-15.", "access_denied",
                          "access_denied"))
    async with run_gateway(urls_config(qwen, tmp_path)) as gw:
        answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, MODEL)
        row = gw.gateway.pool.describe(next(iter(gw.gateway.pool)))
    assert answer.status == 403
    assert row["disabled"] and "2026-04-15" in row["disabled_reason"]
    assert json.loads(path.read_text())["disabled"] is True


async def test_captured_qwen_code_request_replayed_through_an_account(
    qwen: DashScopeSimulator, tmp_path: Path, polyrelay_http: aiohttp.ClientSession
) -> None:
    capture = json.loads((CAPTURES / "qwen-code.json").read_text())
    seed(qwen, tmp_path, "dev")
    qwen.models = None  # the capture names the model Qwen Code was pointed at
    async with run_gateway(urls_config(qwen, tmp_path)) as gw:
        body = dict(capture["body"], model=MODEL)
        async with polyrelay_http.post(f"{gw.url}/v1/chat/completions", json=body) as response:
            raw = await response.read()
    assert response.status == 200, raw
    assert raw.rstrip().endswith(b"data: [DONE]")
    sent = portal_requests(qwen)[0].json()
    assert sent["messages"] == capture["body"]["messages"] and sent["tools"] == capture["body"]["tools"]
    assert sent["stream_options"]["include_usage"] is True


# -- polyrelay login qwen ------------------------------------------------------------------------------


async def start_login(qwen: DashScopeSimulator, tmp_path: Path, *extra: str) -> asyncio.subprocess.Process:
    config = tmp_path / "config.yaml"
    config.write_text(urls_config(qwen, tmp_path / "auth"))
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "polyrelay.cli", "login", "qwen", "--no-browser", "--config", str(config),
        "--timeout", "20", *extra,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "POLYRELAY_CONFIG": ""})


async def user_code(process: asyncio.subprocess.Process) -> tuple[str, list[str]]:
    """The user code the login printed, and every line up to it."""
    assert process.stdout is not None
    lines: list[str] = []
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert line, f"the login ended before printing a code: {lines}"
        lines.append(line)
        if "enter the code" in line:
            return line.rsplit(" ", 1)[-1].strip(), lines


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode(), err.decode()


@pytest.mark.parametrize("action", ["approve", "deny", "expire"])
async def test_device_login_end_to_end(qwen: DashScopeSimulator, tmp_path: Path, action: str) -> None:
    process = await start_login(qwen, tmp_path, "--name", "dev@example.com")
    code, lines = await user_code(process)
    assert "2026-04-15" in lines[0] and "Coding Plan" in lines[0], "the end of the free tier is said up front"
    await asyncio.sleep(0.2)  # a few pending polls first
    getattr(qwen.oauth, action)(code)
    status, out, err = await finish(process)
    path = tmp_path / "auth" / "qwen-dev@example.com.json"
    if action != "approve":
        assert status != 0 and not path.exists()
        assert ("denied" if action == "deny" else "expired") in err and len(err.strip().splitlines()) == 1
        return
    assert status == 0, err
    assert Path(out.strip().splitlines()[-1]) == path
    saved = json.loads(path.read_text())
    assert set(saved) >= {"access_token", "refresh_token", "resource_url", "email", "last_refresh", "expired", "type"}
    assert saved["type"] == "qwen" and saved["email"] == "dev@example.com"
    assert saved["resource_url"] == qwen.resource_url and saved["access_token"] in qwen.oauth.access_tokens
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    polls = [r for r in qwen.oauth.token_requests if r.get("grant_type", "").endswith("device_code")]
    assert polls and all(r["code_verifier"] and r["client_id"] == CLIENT_ID for r in polls)


async def test_device_login_slows_down_when_told(qwen: DashScopeSimulator, tmp_path: Path) -> None:
    qwen.oauth.device_interval = 0.2
    qwen.oauth.slow_down = 1
    process = await start_login(qwen, tmp_path, "--name", "dev")
    code, _ = await user_code(process)
    await asyncio.sleep(1.5)
    qwen.oauth.approve(code)
    status, _, err = await finish(process)
    assert status == 0, err
    grant = next(iter(qwen.oauth.devices.values()))
    gaps = [b - a for a, b in zip(grant.polls, grant.polls[1:], strict=False)]
    assert gaps and min(gaps) >= 0.2 * 0.9, "never faster than the server's interval"


# -- an account whose resource_url is a bare host:port (served over HTTPS, as the real portal is) -----------


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (openssl, as on every Debian machine)."""
    cert, key = directory / "portal.pem", directory / "portal.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


async def test_an_account_whose_resource_url_is_a_bare_host_and_port_is_served(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    simulator = DashScopeSimulator(models=set(MODELS))
    simulator.ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    simulator.ssl_context.load_cert_chain(cert, key)
    async with simulator:
        host_port = simulator.base_url.removeprefix("https://")
        seed(simulator, tmp_path, "dev", resource_url=host_port)  # "127.0.0.1:PORT": scheme and /v1 are ours to add
        port = free_port()
        config = tmp_path / "config.yaml"
        config.write_text(f"host: 127.0.0.1\nport: {port}\nauth-dir: {tmp_path}\n"
                          "upstream-urls:\n  qwen:\n    portal: http://127.0.0.1:9/v1\n")
        # The gateway trusts this certificate as it would a real CA's: through the standard variable.
        gateway = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "polyrelay.cli", "serve", "--config", str(config),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "SSL_CERT_FILE": str(cert), "POLYRELAY_CONFIG": ""})
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(300):
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.05)
                answer = await ask(http, f"http://127.0.0.1:{port}", ir.OPENAI_CHAT, MODEL)
        finally:
            gateway.terminate()
            await gateway.wait()
    assert answer.status == 200 and answer.text == simulator.reply_text
    assert len(portal_requests(simulator)) == 1
