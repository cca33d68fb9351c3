"""Claude Pro/Max accounts against the simulator's OAuth side and API, through the real gateway on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import anthropic
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from polyrelay import ir
from polyrelay.accounts import rfc3339
from polyrelay.testing import Reply, run_gateway
from polyrelay.testing.clients import ask
from polyrelay.testing.conformance import ProviderConformance
from polyrelay.testing.gateway import free_port
from polyrelay_claude.request import IDENTITY, has_identity, merge_betas, with_identity
from polyrelay_claude.simulator import AnthropicSimulator, error_reply, tool_use_reply, unified_limit_reply

MODEL = "claude-sonnet-4-5"
CAPTURES = Path(__file__).parents[3] / "core/tests/fixtures/captures"


def urls_config(simulator: AnthropicSimulator, auth_dir: Path, extra: str = "") -> str:
    base = simulator.base_url
    return (f"auth-dir: {auth_dir}\n"
            "upstream-urls:\n  claude:\n"
            f"    api: {base}\n    oauth-authorize: {base}/oauth/authorize\n    oauth-token: {base}/v1/oauth/token\n"
            f"{extra}\n")


def seed(simulator: AnthropicSimulator, directory: Path, name: str, access: str | None = None,
         **extra: Any) -> Path:
    """A CLIProxyAPI-shaped ``claude-<email>.json`` holding tokens the simulator issued."""
    live_access, refresh = simulator.oauth.seed(name)
    path = directory / f"claude-{name}@example.com.json"
    path.write_text(json.dumps({
        "id_token": "", "access_token": access or live_access, "refresh_token": refresh,
        "last_refresh": rfc3339(time.time()), "email": f"{name}@example.com", "account_uuid": f"uuid-{name}",
        "organization_uuid": "org-1", "organization_name": "Dev Org", "claude_device_ids": ["dev-1"],
        "type": "claude", "expired": rfc3339(time.time() + 8 * 3600), **extra}))
    return path


def bearer_of(recorded: Any) -> str:
    return str(recorded.headers.get("authorization", ""))


def api_requests(simulator: AnthropicSimulator) -> list[Any]:
    return [r for r in simulator.requests if r.path == "/v1/messages"]


@pytest.fixture
async def claude() -> AsyncIterator[AnthropicSimulator]:
    async with AnthropicSimulator(keys=set()) as simulator:
        yield simulator


class TestClaudeAccountsConformance(ProviderConformance):
    """The whole provider contract, served by two subscription accounts instead of keys."""

    provider_name = "claude"
    distribution = "polyrelay-claude"
    model = MODEL
    expected_text = "Hello from the Claude simulator."

    @pytest.fixture
    async def simulator(self) -> AsyncIterator[AnthropicSimulator]:
        async with AnthropicSimulator(keys=set()) as simulator:
            simulator.auth_dir = Path(tempfile.mkdtemp(prefix="claude-accounts-"))  # type: ignore[attr-defined]
            seed(simulator, simulator.auth_dir, "alpha")  # type: ignore[attr-defined]
            seed(simulator, simulator.auth_dir, "bravo")  # type: ignore[attr-defined]
            yield simulator

    def config_text(self, simulator: AnthropicSimulator) -> str:  # type: ignore[override]
        return urls_config(simulator, simulator.auth_dir)  # type: ignore[attr-defined]

    def rate_limit_reply(self) -> Reply:
        return unified_limit_reply()

    def tool_call_reply(self, name: str, arguments: dict[str, Any], stream: bool) -> Reply:
        return tool_use_reply(MODEL, name, arguments, stream)


# -- what a subscription token needs ----------------------------------------------------------------

def test_identity_rule_leaves_claude_codes_own_system_alone():
    real = [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.123; cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK."},
            {"type": "text", "text": "You are an interactive agent."}]
    assert has_identity(real)
    assert not has_identity("Be brief.") and not has_identity(None)
    assert with_identity("Be brief.") == [{"type": "text", "text": IDENTITY}, {"type": "text", "text": "Be brief."}]
    billing_only = real[:1] + real[2:]
    assert with_identity(billing_only)[:2] == [real[0], {"type": "text", "text": IDENTITY}]


def test_betas_are_merged_never_duplicated():
    assert merge_betas(None, ("claude-code-20250219", "oauth-2025-04-20")) == "claude-code-20250219,oauth-2025-04-20"
    assert merge_betas("oauth-2025-04-20, effort-2025-11-24,effort-2025-11-24", ("claude-code-20250219",
                       "oauth-2025-04-20")) == "claude-code-20250219,oauth-2025-04-20,effort-2025-11-24"
    own = "claude-code-20250219,oauth-2025-04-20,context-1m-2025-08-07"
    assert merge_betas(own, ("claude-code-20250219", "oauth-2025-04-20")) == own, "a complete set is kept as sent"


async def test_sdks_served_by_an_account(claude, tmp_path):
    seed(claude, tmp_path, "alpha")
    async with run_gateway(urls_config(claude, tmp_path)) as gw:
        client = anthropic.AsyncAnthropic(base_url=gw.url, api_key="x", max_retries=0)
        message = await client.messages.create(
            model=MODEL, max_tokens=2048, system="Be brief.", messages=[{"role": "user", "content": "hi"}],
            thinking={"type": "enabled", "budget_tokens": 1024})
        assert [b.type for b in message.content] == ["thinking", "text"]
        claude.push(tool_use_reply(MODEL, "read_file", {"path": "a.txt"}, stream=True))
        async with client.messages.stream(
                model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "read a.txt"}],
                tools=[{"name": "read_file", "input_schema": {"type": "object", "properties": {}}}]) as stream:
            final = await stream.get_final_message()
        assert final.stop_reason == "tool_use" and final.content[-1].input == {"path": "a.txt"}

        oai = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0)
        chat = await oai.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert chat.choices[0].message.content == "Hello from the Claude simulator."
        response = await oai.responses.create(model=MODEL, input="hi")
        assert response.output_text == "Hello from the Claude simulator."

        google = genai.Client(api_key="x", http_options=genai_types.HttpOptions(base_url=gw.url,
                                                                                 api_version="v1beta"))
        answer = await google.aio.models.generate_content(model=MODEL, contents="hi")
        assert answer.text == "Hello from the Claude simulator."
    sent = api_requests(claude)
    assert len(sent) == 5 and all(bearer_of(r).startswith("Bearer sk-ant-oat01-sim-") for r in sent)
    assert all("x-api-key" not in r.headers for r in sent)
    assert all(r.query == {"beta": "true"} for r in sent)
    first = sent[0].json()["system"]
    assert first == [{"type": "text", "text": IDENTITY}, {"type": "text", "text": "Be brief."}]


async def test_captured_claude_code_request_arrives_byte_identical_except_auth(claude, tmp_path):
    capture = json.loads((CAPTURES / "claude-code.json").read_text())
    body = json.dumps(capture["body"]).encode()
    model = capture["body"]["model"]
    seed(claude, tmp_path, "alpha")
    skip = {"x-api-key", "host", "content-length", "connection", "accept-encoding"}
    headers = {k: v for k, v in capture["headers"] if k.lower() not in skip}
    config = urls_config(claude, tmp_path, extra=f"model-aliases:\n  {model}: claude/{model}\n")
    async with run_gateway(config) as gw, aiohttp.ClientSession() as http, \
            http.post(f"{gw.url}/v1/messages?beta=true", data=body, headers=headers) as response:
        raw = await response.read()
    assert response.status == 200, raw
    assert b"event: message_stop" in raw
    (sent,) = api_requests(claude)
    assert sent.body == body, "Claude Code's body goes up byte for byte"
    assert bearer_of(sent).startswith("Bearer sk-ant-oat01-sim-")
    client_betas = dict(capture["headers"])["anthropic-beta"].split(",")
    assert sent.headers["anthropic-beta"].split(",") == ["claude-code-20250219", "oauth-2025-04-20",
                                                         *client_betas[1:]]
    for name in ("user-agent", "x-app", "x-claude-code-session-id", "x-stainless-package-version"):
        assert sent.headers[name] == next(v for k, v in capture["headers"] if k.lower() == name)


async def test_count_tokens_is_the_upstream_count_with_the_estimate_as_fallback(claude, tmp_path):
    seed(claude, tmp_path, "alpha")
    body = {"model": MODEL, "messages": [{"role": "user", "content": "count me"}]}
    async with run_gateway(urls_config(claude, tmp_path)) as gw, aiohttp.ClientSession() as http:
        async with http.post(f"{gw.url}/v1/messages/count_tokens", json=body,
                             headers={"anthropic-version": "2023-06-01"}) as response:
            assert await response.json() == {"input_tokens": 4321}
        claude.push(error_reply(500, "api_error", "Internal server error"))
        async with http.post(f"{gw.url}/v1/messages/count_tokens", json=body,
                             headers={"anthropic-version": "2023-06-01"}) as response:
            estimate = (await response.json())["input_tokens"]
    assert 0 < estimate < 100, "the local estimate answers when the upstream cannot count"
    counted = [r for r in claude.requests if r.path.endswith("/count_tokens")]
    assert "token-counting-2024-11-01" in counted[0].headers["anthropic-beta"]
    assert "oauth-2025-04-20" in counted[0].headers["anthropic-beta"]


# -- refresh, quota, the auth dir ---------------------------------------------------------------------

async def test_200_concurrent_requests_on_an_expired_token_refresh_once(tmp_path):
    async with AnthropicSimulator(keys=set(), token_delay=0.1) as claude:
        path = seed(claude, tmp_path, "alpha", access="sk-ant-oat01-expired-000", note={"kept": True})
        old_refresh = json.loads(path.read_text())["refresh_token"]
        unlimited = "client-limits:\n  concurrent-requests: 0\n"  # one client, 200 at once
        async with run_gateway(urls_config(claude, tmp_path, unlimited)) as gw:
            client = anthropic.AsyncAnthropic(base_url=gw.url, api_key="x", max_retries=0)
            replies = await asyncio.gather(*[client.messages.create(
                model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]) for _ in range(200)])
        assert all(r.content[0].text == "Hello from the Claude simulator." for r in replies)
        assert claude.oauth.refresh_count == 1
        grant = claude.oauth.token_requests[0]
        assert grant["grant_type"] == "refresh_token" and grant["client_id"] == "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
        saved = json.loads(path.read_text())
        assert saved["note"] == {"kept": True} and saved["claude_device_ids"] == ["dev-1"]
        assert saved["access_token"] in claude.oauth.access_tokens and saved["refresh_token"] != old_refresh
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_unified_429_rotates_accounts_and_cools_the_limited_one_until_its_reset(claude, tmp_path):
    for name in ("alpha", "bravo", "charlie"):
        seed(claude, tmp_path, name)
    async with run_gateway(urls_config(claude, tmp_path)) as gw, aiohttp.ClientSession() as http:
        claude.push(unified_limit_reply(claim="five_hour", reset_in=3 * 3600))
        answers = [await ask(http, gw.url, ir.ANTHROPIC, MODEL, stream=i % 2 == 0) for i in range(9)]
        assert [a.status for a in answers] == [200] * 9, "no client sees the limit"
        limited = bearer_of(api_requests(claude)[0])
        assert bearer_of(api_requests(claude)[1]) != limited
        assert all(bearer_of(r) != limited for r in api_requests(claude)[1:]), "not retried before its reset"
        rows = [gw.gateway.pool.describe(c) for c in gw.gateway.pool]
        (cooling,) = [r for r in rows if r["cooldown"]]
        assert 3 * 3600 - 60 < cooling["cooldown"]["seconds_left"] <= 3 * 3600 + 5
        assert "5h limit" in cooling["cooldown"]["reason"]


async def test_per_model_weekly_window_cools_only_that_model(claude, tmp_path):
    seed(claude, tmp_path, "alpha")
    async with run_gateway(urls_config(claude, tmp_path, "request-retry: 0\n")) as gw, \
            aiohttp.ClientSession() as http:
        claude.push(unified_limit_reply(claim="seven_day_opus", window="7d_oi", reset_in=86400))
        assert (await ask(http, gw.url, ir.ANTHROPIC, MODEL)).status == 429
        (row,) = [gw.gateway.pool.describe(c) for c in gw.gateway.pool]
        assert row["cooldown"] is None and MODEL in row["model_cooldowns"]
        assert (await ask(http, gw.url, ir.ANTHROPIC, "claude-haiku-4-5")).status == 200


async def test_529_moves_on_without_cooling_and_403_cools_with_its_reason(claude, tmp_path):
    seed(claude, tmp_path, "alpha")
    seed(claude, tmp_path, "bravo")
    async with run_gateway(urls_config(claude, tmp_path)) as gw, aiohttp.ClientSession() as http:
        claude.push(error_reply(529, "overloaded_error", "Overloaded"))
        assert (await ask(http, gw.url, ir.OPENAI_CHAT, MODEL)).status == 200
        assert not any(gw.gateway.pool.describe(c)["cooldown"] or gw.gateway.pool.describe(c)["model_cooldowns"]
                       for c in gw.gateway.pool), "overload is Anthropic's, not the account's"
        claude.push(error_reply(403, "permission_error", "Your account does not have access to Claude Code."))
        assert (await ask(http, gw.url, ir.OPENAI_CHAT, MODEL)).status == 200
        (cooling,) = [r for r in (gw.gateway.pool.describe(c) for c in gw.gateway.pool) if r["cooldown"]]
        assert "does not have access to Claude Code" in cooling["cooldown"]["reason"]


async def test_dropped_file_serves_and_invalid_grant_disables_only_that_account(claude, tmp_path):
    async with run_gateway(urls_config(claude, tmp_path)) as gw, aiohttp.ClientSession() as http:
        seed(claude, tmp_path, "alpha")
        for _ in range(100):
            if len(gw.gateway.pool) == 1:
                break
            await asyncio.sleep(0.05)
        assert (await ask(http, gw.url, ir.ANTHROPIC, MODEL)).status == 200, "a file written while serving is used"
        dead = seed(claude, tmp_path, "dead", access="sk-ant-oat01-expired-1")
        data = json.loads(dead.read_text())
        data["refresh_token"] = "sk-ant-ort01-revoked"
        dead.write_text(json.dumps(data))
        for _ in range(100):
            if len(gw.gateway.pool) == 2:
                break
            await asyncio.sleep(0.05)
        answers = [await ask(http, gw.url, ir.ANTHROPIC, MODEL) for _ in range(4)]
        assert [a.status for a in answers] == [200] * 4
        rows = {r["label"]: r for r in (gw.gateway.pool.describe(c) for c in gw.gateway.pool)}
        assert rows["dead@example.com"]["disabled"] and "invalid_grant" in rows["dead@example.com"]["disabled_reason"]
        assert not rows["alpha@example.com"]["disabled"]
    assert json.loads(dead.read_text())["disabled"] is True


# -- polyrelay login claude, as a user runs it ----------------------------------------------------------

async def start_login(claude: AnthropicSimulator, tmp_path: Path, port: int) -> asyncio.subprocess.Process:
    config = tmp_path / "config.yaml"
    config.write_text(urls_config(claude, tmp_path / "auth"))
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "polyrelay.cli", "login", "claude", "--no-browser", "--port", str(port),
        "--config", str(config), "--timeout", "20",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "POLYRELAY_CONFIG": ""})


async def printed_url(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert line, "the login ended before printing the address"
        if line.startswith("http") and "response_type=code" in line:
            return line.strip()


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(process.communicate(), 20)
    return process.returncode or 0, out.decode(), err.decode()


async def test_login_end_to_end_with_the_test_as_browser(claude, tmp_path):
    port = free_port()
    process = await start_login(claude, tmp_path, port)
    url = await printed_url(process)
    query = parse_qs(urlsplit(url).query)
    assert query["code"] == ["true"] and query["client_id"] == ["9d1c250a-e61b-44d9-88ed-5944d1962f5e"]
    assert query["redirect_uri"] == [f"http://localhost:{port}/callback"]
    assert "user:inference" in query["scope"][0] and query["code_challenge_method"] == ["S256"]
    async with aiohttp.ClientSession() as http, http.get(url) as page:
        assert page.status == 200
    code, out, err = await finish(process)
    assert code == 0, err
    path = Path(out.strip().splitlines()[-1])
    assert path == tmp_path / "auth" / "claude-dev@example.com.json"
    saved = json.loads(path.read_text())
    assert {k for k in saved} >= {"access_token", "refresh_token", "email", "account_uuid", "organization_uuid",
                                  "organization_name", "last_refresh", "expired", "type"}
    assert saved["type"] == "claude" and saved["account_uuid"] == "acc-uuid-1"
    assert saved["organization_name"] == "Dev Org" and stat.S_IMODE(path.stat().st_mode) == 0o600
    exchange = claude.oauth.token_requests[-1]
    assert exchange["state"] == query["state"][0] and exchange["code_verifier"]


async def test_login_paste_fallback_accepts_code_hash_state(claude, tmp_path):
    process = await start_login(claude, tmp_path, free_port())
    url = await printed_url(process)
    async with aiohttp.ClientSession() as http, http.get(url, allow_redirects=False) as answer:
        answer_query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert process.stdin is not None
    process.stdin.write(f"{answer_query['code'][0]}#{answer_query['state'][0]}\n".encode())
    await process.stdin.drain()
    code, out, err = await finish(process)
    assert code == 0, err
    assert Path(out.strip().splitlines()[-1]).exists()


@pytest.mark.parametrize("failure", ["wrong-state", "denied"])
async def test_login_failures_exit_non_zero_with_one_line_and_no_file(claude, tmp_path, failure):
    claude.oauth.deny_next = failure == "denied"
    process = await start_login(claude, tmp_path, free_port())
    url = await printed_url(process)
    async with aiohttp.ClientSession() as http:
        if failure == "wrong-state":
            async with http.get(url, allow_redirects=False) as answer:
                location = answer.headers["location"].replace("state=", "state=forged")
            async with http.get(location) as page:
                assert page.status == 200
        else:
            async with http.get(url) as page:
                assert "Login failed" in await page.text()
    code, _, err = await finish(process)
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert ("state mismatch" if failure == "wrong-state" else "denied") in err
    assert not (tmp_path / "auth").exists()


async def test_priority_spends_the_subscription_before_the_paid_key(tmp_path):
    async with AnthropicSimulator(keys={"sk-ant-api03-paid-key-000000000000"}) as claude:
        seed(claude, tmp_path, "alpha")
        keys = ("claude-api-key:\n  - api-key: sk-ant-api03-paid-key-000000000000\n"
                f"    base-url: {claude.base_url}\n    priority: -1\n")
        async with run_gateway(urls_config(claude, tmp_path, keys)) as gw, aiohttp.ClientSession() as http:
            for _ in range(3):
                assert (await ask(http, gw.url, ir.OPENAI_CHAT, MODEL)).status == 200
            claude.push(unified_limit_reply(claim="seven_day", window="7d", reset_in=86400))
            for _ in range(2):
                assert (await ask(http, gw.url, ir.OPENAI_CHAT, MODEL)).status == 200
        used = ["key" if "x-api-key" in r.headers else "account" for r in api_requests(claude)]
        assert used == ["account"] * 4 + ["key"] * 2, "the key only serves once the account is limited"


def test_credentials_command_shows_a_disabled_account_and_why(tmp_path):
    import subprocess

    path = tmp_path / "claude-gone@example.com.json"
    path.write_text(json.dumps({"type": "claude", "email": "gone@example.com", "access_token": "sk-ant-oat01-x",
                                "refresh_token": "sk-ant-ort01-x", "disabled": True,
                                "disabled_reason": "refresh rejected: invalid_grant: Refresh token revoked"}))
    config = tmp_path / "config.yaml"
    config.write_text(f"auth-dir: {tmp_path}\n")
    result = subprocess.run([sys.executable, "-m", "polyrelay.cli", "credentials", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "POLYRELAY_CONFIG": ""})
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if "gone@example.com" in line]
    assert "disabled (refresh rejected: invalid_grant: Refresh token revoked)" in line
    assert "sk-ant-oat01-x" not in result.stdout


async def test_count_tokens_for_a_key_and_from_another_dialect(tmp_path):
    key = "sk-ant-api03-count-key-000000000000"
    async with AnthropicSimulator(keys={key}) as claude:
        config = f"claude-api-key:\n  - api-key: {key}\n    base-url: {claude.base_url}\n"
        async with run_gateway(config) as gw, aiohttp.ClientSession() as http, \
                http.post(f"{gw.url}/v1/responses/input_tokens", json={"model": MODEL, "input": "count me"}) as r:
            assert await r.json() == {"object": "response.input_tokens", "input_tokens": 4321}
    (sent,) = [r for r in claude.requests if r.path.endswith("/count_tokens")]
    assert sent.headers["x-api-key"] == key and "authorization" not in sent.headers
    assert sent.json()["messages"][0]["role"] == "user" and "max_tokens" not in sent.json()
