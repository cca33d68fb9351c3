"""The `polyrelay` command as a user runs it, and secrets kept out of its logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from polyrelay import ir
from polyrelay.testing import Reply
from polyrelay.testing.clients import ask
from polyrelay.testing.conformance import ProviderConformance
from polyrelay.testing.fixtures import compat_config
from polyrelay.testing.gateway import free_port
from polyrelay.testing.openai_chat import OpenAIChatSimulator, chunk_frames, completion, error_body

UPSTREAM_KEYS = ["sk-upstream-alpha-0123456789", "sk-upstream-bravo-9876543210"]
CLIENT_KEY = "client-key-charlie-5555555555"
POLYRELAY = [sys.executable, "-m", "polyrelay.cli"]


def run_cli(*args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--config", str(config)] if config else []
    return subprocess.run([*POLYRELAY, *args, *extra], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "POLYRELAY_CONFIG": ""})


async def test_secrets_never_reach_logs_or_clients(tmp_path):
    async with OpenAIChatSimulator() as upstream:
        port = free_port()
        config = tmp_path / "config.yaml"
        config.write_text(compat_config(upstream, UPSTREAM_KEYS, extra=(
            f"port: {port}\ndebug: true\napi-keys: [{CLIENT_KEY}]\nauth-dir: {tmp_path}/auth\nrequest-retry: 0\n")))
        # The first key is rejected with a message that quotes it, as real upstreams do.
        upstream.push(Reply.json(error_body(f"Incorrect API key provided: {UPSTREAM_KEYS[0]}", "invalid_request_error",
                                            "invalid_api_key"), status=401))
        process = subprocess.Popen([*POLYRELAY, "serve", "--config", str(config)], stderr=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                for _ in range(300):
                    try:
                        async with http.get(f"{url}/healthz"):
                            break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.05)
                answers = [
                    await ask(http, url, ir.OPENAI_CHAT, "sim", api_key=CLIENT_KEY),  # 401 upstream → next key
                    await ask(http, url, ir.OPENAI_CHAT, "sim", api_key=CLIENT_KEY + "x"),  # rejected client key
                    await ask(http, url, ir.ANTHROPIC, "no-such-model", api_key=CLIENT_KEY),
                ]
                upstream.push(Reply.json(error_body("slow down", "requests", "rate_limit_exceeded"), status=429))
                answers.append(await ask(http, url, ir.OPENAI_CHAT, "sim", api_key=CLIENT_KEY))
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
    assert [a.status for a in answers] == [200, 401, 400, 429]
    logs = out + err
    assert "polyrelay serving on" in logs, logs[-2000:]
    assert "cooling" in logs, "the log must say something happened, or grepping it proves nothing"
    bodies = json.dumps([a.body for a in answers])
    for secret in [*UPSTREAM_KEYS, CLIENT_KEY]:
        assert secret not in logs
        assert secret not in bodies


def test_cli_lists_plugins_models_and_credentials_without_secrets(tmp_path):
    config = tmp_path / "config.yaml"
    sim = OpenAIChatSimulator()
    sim.base_url = "http://127.0.0.1:9"
    config.write_text(compat_config(sim, UPSTREAM_KEYS, extra=f"auth-dir: {tmp_path}/auth"))
    plugins = run_cli("plugins")
    assert plugins.returncode == 0
    rows = [line.split() for line in plugins.stdout.splitlines()]
    # Entry-point names are import names: the one a user passes to POLYRELAY_PLUGINS is the module.
    assert ["polyrelay.openai_compat", "polyrelay", "0.1.0"] in rows, plugins.stdout
    assert ["polyrelay.defaults", "polyrelay", "(built", "in)"] in rows, plugins.stdout
    models = run_cli("models", config=config)
    assert models.returncode == 0 and "sim" in models.stdout.split()
    creds = run_cli("credentials", "--json", config=config)
    assert creds.returncode == 0, creds.stderr
    rows = json.loads(creds.stdout)
    assert [r["provider"] for r in rows] == ["sim", "sim"]
    assert all(r["cooldown"] is None for r in rows)
    for secret in UPSTREAM_KEYS:
        assert secret not in creds.stdout + creds.stderr


def test_cli_reports_a_bad_config_with_its_key_path(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("port: not-a-number\n")
    result = run_cli("models", config=config)
    assert result.returncode == 2
    assert "$.port" in result.stderr and "Traceback" not in result.stderr


class TestBuiltinOpenAICompatible(ProviderConformance):
    """The built-in provider passes the suite every provider plugin runs."""

    provider_name = "sim"
    distribution = "polyrelay"
    model = "sim"
    expected_text = "Hello from the simulator."

    simulator_fixture = "polyrelay_chat_upstream"   # keys sk-test-a and sk-test-b

    def config_text(self, simulator: OpenAIChatSimulator) -> str:
        return compat_config(simulator, ["sk-test-a", "sk-test-b"])

    def rate_limit_reply(self) -> Reply:
        return Reply.json(error_body("Rate limit reached. Please try again in 2s.", "requests",
                                     "rate_limit_exceeded"), status=429)

    def tool_call_reply(self, name: str, arguments: dict, stream: bool) -> Reply:
        call = ("call_1", name, [json.dumps(arguments)])
        if stream:
            return Reply.sse(chunk_frames("sim-model", [], tool_calls=[call]))
        tool_calls = [{"id": "call_1", "type": "function",
                       "function": {"name": name, "arguments": json.dumps(arguments)}}]
        return Reply.json(completion("sim-model", None, tool_calls, finish_reason="tool_calls"))

