"""Taking over a CLIProxyAPI set-up: safe defaults, its command line, `polyrelay check`, truthful messages."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from polyrelay import hookimpl
from polyrelay.authfiles import AuthFileError
from polyrelay.check import run_check
from polyrelay.cliproxy_flags import translate
from polyrelay.config import ConfigError
from polyrelay.gateway import Gateway
from polyrelay.plugins import collect_providers
from polyrelay.preflight import exposure, is_placeholder
from polyrelay.server import load, run
from polyrelay.testing.fixtures import compat_config
from polyrelay.testing.gateway import free_port
from polyrelay.testing.openai_chat import OpenAIChatSimulator

EXAMPLE = Path(__file__).parent / "fixtures" / "cliproxyapi" / "config.example.yaml"
POLYRELAY = [sys.executable, "-m", "polyrelay.cli"]
#: One file of every type CLIProxyAPI writes into its auth dir (values are fakes).
AUTH_FILES = {
    "claude-user@example.com.json": {"type": "claude", "access_token": "sk-ant-oat01-fake", "refresh_token": "r",
                                     "email": "user@example.com", "expired": "2026-12-01T00:00:00Z"},
    "codex-user@example.com-plus.json": {"type": "codex", "access_token": "a", "refresh_token": "r", "id_token": "i",
                                         "account_id": "acc", "email": "user@example.com"},
    "user@example.com-proj.json": {"type": "gemini", "token": {"access_token": "a", "refresh_token": "r"},
                                   "project_id": "proj", "email": "user@example.com"},
    "qwen-user.json": {"type": "qwen", "access_token": "a", "refresh_token": "r", "resource_url": "portal.qwen.ai"},
    "antigravity-user@example.com.json": {"type": "antigravity", "access_token": "a", "refresh_token": "r"},
    "kimi-1700000000000.json": {"type": "kimi", "access_token": "a", "refresh_token": "r"},
    "xai-user.json": {"type": "xai", "access_token": "a", "refresh_token": "r"},
    "vertex-proj.json": {"type": "vertex", "service_account": {"client_email": "x"}, "project_id": "proj"},
    "iflow-user.json": {"type": "iflow", "api_key": "k", "email": "user@example.com"},
}


def polyrelay(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POLYRELAY_CONFIG": ""}
    if home is not None:
        env["HOME"] = str(home)  # the example's auth-dir is ~/.cli-proxy-api
    return subprocess.run([*POLYRELAY, *args], capture_output=True, text=True, timeout=60, env=env)


# -- safe by default -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["your-api-key-1", "your-api-key-3", "your-key", "sk-atSM...", "AIzaSy...01"])
def test_example_values_are_placeholders(value):
    assert is_placeholder(value)


@pytest.mark.parametrize("value", ["sk-ant-api03-abcdef", "polyrelay-demo-key", "my-real-key-9f8e7d"])
def test_real_keys_are_not_placeholders(value):
    assert not is_placeholder(value)


def test_the_example_config_unchanged_refuses_to_start(tmp_path):
    result = polyrelay("-config", str(EXAMPLE), home=tmp_path)
    assert result.returncode == 2
    assert "refusing to start" in result.stderr and "placeholder" in result.stderr
    assert "your-api-key-2" not in result.stderr, "the message names the problem, not the values"
    assert "Traceback" not in result.stderr


def test_management_secret_refuses_to_start(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("api-keys: [k-4f9a8b7c6d]\nremote-management:\n  secret-key: mgmt-secret-123456\n")
    result = polyrelay("serve", "--config", str(config))
    assert result.returncode == 2
    assert "management API is not available in polyrelay yet" in result.stderr
    assert "mgmt-secret-123456" not in result.stderr


@pytest.mark.parametrize("host", ["", "0.0.0.0", "::"])
def test_an_open_host_without_a_real_key_listens_on_loopback(host):
    config, _ = load(config_text=f"host: {json.dumps(host)}\napi-keys: [your-api-key-1]\n", environ={})
    bound, why = exposure(config)
    assert bound == "127.0.0.1"
    assert why is not None and "127.0.0.1" in why


def test_an_open_host_with_a_real_key_listens_where_asked():
    config, _ = load(config_text='host: ""\napi-keys: [k-4f9a8b7c6d]\n', environ={})
    assert exposure(config) == ("0.0.0.0", None)


async def test_empty_host_binds_loopback_and_says_so(caplog):
    config, pm = load(config_text='host: ""\n', environ={})
    config.port = free_port()
    bound: list[list[str]] = []
    stop = asyncio.Event()

    def ready(bind: list[str]) -> None:
        bound.append(bind)
        stop.set()

    with caplog.at_level(logging.WARNING):
        await asyncio.wait_for(run(config, pm, shutdown_trigger=stop.wait, ready=ready), 10)
    assert bound == [[f"127.0.0.1:{config.port}"]]
    assert "listening on 127.0.0.1 instead of 'every interface'" in caplog.text


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_tls_is_served_with_the_configured_certificate(tmp_path):
    cert, key = _self_signed(tmp_path)
    async with OpenAIChatSimulator() as upstream:
        config, pm = load(config_text=compat_config(upstream, ["sk-test-a"], extra=(
            f"tls:\n  enable: true\n  cert: {cert}\n  key: {key}\nauth-dir: {tmp_path}/auth\n")), environ={})
        config.port = free_port()
        stop = asyncio.Event()
        task = asyncio.create_task(run(config, pm, shutdown_trigger=stop.wait))
        trust = ssl.create_default_context(cafile=str(cert))
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(200):
                    with contextlib.suppress(aiohttp.ClientError):
                        async with http.post(f"https://127.0.0.1:{config.port}/v1/chat/completions", ssl=trust,
                                             json={"model": "sim", "messages": [{"role": "user", "content": "hi"}]}
                                             ) as response:
                            body = await response.json()
                            break
                    await asyncio.sleep(0.05)
                else:
                    pytest.fail("no HTTPS answer")
                with pytest.raises(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{config.port}/healthz") as plain:
                        await plain.read()
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
    assert response.status == 200
    assert body["choices"][0]["message"]["content"] == "Hello from the simulator."


@pytest.mark.parametrize("missing", ["cert", "key"])
async def test_tls_with_a_missing_file_fails_at_start_naming_it(tmp_path, missing):
    cert, key = _self_signed(tmp_path)
    files = {"cert": cert, "key": key}
    files[missing] = tmp_path / f"no-such-{missing}.pem"
    config, pm = load(config_text=f"tls: {{enable: true, cert: {files['cert']}, key: {files['key']}}}\n", environ={})
    with pytest.raises(ConfigError) as error:
        await run(config, pm, shutdown_trigger=asyncio.Event().wait)
    assert f"tls.{missing} {files[missing]}" in str(error.value)


def test_nested_keys_polyrelay_ignores_are_named(caplog):
    text = compat_config(OpenAIChatSimulator(), ["sk-test-a"], models=(
        "      - name: sim-model\n        alias: sim\n        display-name: Sim\n        thinking: {levels: [low]}\n"))
    with caplog.at_level(logging.WARNING, logger="polyrelay.config"):
        config, _ = load(config_text=text, environ={})
    assert "openai-compatibility[0].models[0].display-name" in config.unknown_keys
    assert "openai-compatibility[0].models[0].thinking" in config.unknown_keys
    assert "openai-compatibility[0].models[0].display-name" in caplog.text


# -- CLIProxyAPI's command line ----------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "expected"), [
    (["-config", "c.yaml"], ["serve", "--config", "c.yaml"]),
    (["--config=c.yaml"], ["serve", "--config", "c.yaml"]),
    (["-claude-login"], ["login", "claude"]),
    (["-codex-login", "-no-browser"], ["login", "codex", "--no-browser"]),
    (["-codex-device-login", "-config", "c.yaml"], ["login", "codex", "--device", "--config", "c.yaml"]),
    (["-login", "-project_id", "my-proj", "-oauth-callback-port", "8085"],
     ["login", "gemini", "--project-id", "my-proj", "--port", "8085"]),
    (["--login", "--project_id=my-proj"], ["login", "gemini", "--project-id", "my-proj"]),
    (["-qwen-login", "-oauth-callback-port=9000"], ["login", "qwen", "--port", "9000"]),
    (["check", "-config", "c.yaml"], ["check", "--config", "c.yaml"]),
    (["serve", "--demo"], ["serve", "--demo"]),
    (["-h"], ["-h"]),
    ([], []),
])
def test_cliproxyapi_flags_map_onto_polyrelay_commands(argv, expected):
    assert translate(argv) == expected


def test_a_login_alias_reaches_the_login_command():
    result = polyrelay("-claude-login", "-no-browser", "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: polyrelay login" in result.stdout and "--no-browser" in result.stdout


def test_bare_polyrelay_prints_help_and_does_not_serve():
    result = polyrelay()
    assert result.returncode == 0
    assert "usage: polyrelay" in result.stdout and "serve" in result.stdout and "--demo" in result.stdout


def test_models_and_credentials_say_when_nothing_is_configured(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"auth-dir: {tmp_path}/auth\n")
    for command in ("models", "credentials"):
        result = polyrelay(command, "--config", str(config))
        assert result.returncode == 0
        assert "nothing is configured" in result.stderr and "--demo" in result.stderr, result.stderr


def _first_line_with(marker: str, args: list[str], env: dict[str, str]) -> str:
    """Start ``polyrelay serve``, read its log until ``marker`` (30 s at most), stop it."""
    process = subprocess.Popen([*POLYRELAY, "serve", *args], stderr=subprocess.PIPE, text=True, env=env)
    killer = threading.Timer(30, process.kill)  # a missing line fails the test instead of hanging it
    killer.start()
    try:
        for line in process.stderr:
            if marker in line:
                return line
        return ""
    finally:
        killer.cancel()
        process.terminate()
        process.communicate(timeout=30)


def test_no_credentials_hint_names_config_only_without_one(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"auth-dir: {tmp_path}/auth\nport: {free_port()}\n")
    env = {**os.environ, "POLYRELAY_CONFIG": "", "HOME": str(tmp_path)}
    with_config = _first_line_with("no credentials yet", ["--config", str(config)], env)
    assert with_config and "--config FILE" not in with_config and "polyrelay login" in with_config
    without = _first_line_with("no credentials yet", ["--port", str(free_port())], env)
    assert "start with --config FILE" in without


def test_the_first_warning_comes_formatted(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"auth-dir: {tmp_path}/auth\nport: {free_port()}\nws-auth: true\n")
    first = _first_line_with("WARNING", ["--config", str(config)], dict(os.environ))
    assert "WARNING polyrelay.config: config keys accepted but not used by polyrelay: ws-auth" in first


# -- polyrelay check -----------------------------------------------------------------------------------


def _auth_dir(home: Path) -> Path:
    auth = home / ".cli-proxy-api"
    auth.mkdir()
    for name, data in AUTH_FILES.items():
        (auth / name).write_text(json.dumps(data))
    (auth / "broken.json").write_text('{"type": "claude", ')
    return auth


def test_check_on_the_example_config_and_every_auth_file_type(tmp_path):
    _auth_dir(tmp_path)
    result = polyrelay("check", "-config", str(EXAMPLE), home=tmp_path)
    report = result.stdout
    assert result.returncode == 1, "the example's placeholder keys would refuse to start"
    assert "REFUSES TO START: api-keys holds 3 placeholder value(s)" in report
    assert "listening on 127.0.0.1 instead of 'every interface'" in report
    for key in ("pprof", "plugins", "commercial-mode", "ws-auth", "routing.session-affinity",
                "remote-management.allow-remote", "quota-exceeded.antigravity-credits", "codex"):
        assert f"\n  {key}\n" in report, key
    for kind in ("antigravity", "kimi", "xai", "vertex", "iflow"):
        name = next(n for n, d in AUTH_FILES.items() if d["type"] == kind)
        assert f"{name}: type {kind!r} is not supported by polyrelay yet" in report
    config, pm = load(EXAMPLE, environ={})
    installed = ", ".join(sorted(p.name for p in collect_providers(pm, config))) or "none"
    for name in AUTH_FILES:
        line = next((line for line in report.splitlines() if line.strip().startswith(name)), "")
        assert line, f"{name} is not in the report"
        assert "→" in line or line.strip().startswith(f"{name}: "), "served, or a reason why not"
        if "no installed provider handles type" in line:
            assert line.endswith(f"(installed: {installed})"), line
    assert "broken.json: not valid JSON" in report
    assert "your-api-key-2" not in report and "sk-ant-oat01-fake" not in report, "no value is quoted"
    assert "polyrelay serve would refuse to start" in report


def test_check_of_a_servable_config_reports_what_it_serves(tmp_path):
    config = tmp_path / "config.yaml"
    sim = OpenAIChatSimulator()
    sim.base_url = "http://127.0.0.1:9"
    config.write_text(compat_config(sim, ["sk-upstream-alpha-0123", "sk-upstream-bravo-4567"],
                                    extra=f"auth-dir: {tmp_path}/auth\napi-keys: [k-4f9a8b7c6d]\n"))
    result = polyrelay("check", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\n  sim              openai-chat      sim\n" in result.stdout
    assert "sim              api-key  2 ready" in result.stdout
    assert "polyrelay serve would start" in result.stdout
    assert "sk-upstream-alpha-0123" not in result.stdout + result.stderr


class StrictFiles:
    """A plugin that claims two auth-file types and finds each file of them unusable."""

    @hookimpl
    def credential_from_file(self, data: dict, path: Path) -> None:
        if data.get("type") == "strict-keyed":
            raise KeyError("refresh_token")
        if data.get("type") == "strict-said":
            raise AuthFileError("missing field token.refresh_token")


def _strict_auth_dir(tmp_path: Path) -> Path:
    auth = tmp_path / "auth"
    auth.mkdir()
    (auth / "keyed.json").write_text(json.dumps({"type": "strict-keyed", "access_token": "tok-secret-123456"}))
    (auth / "said.json").write_text(json.dumps({"type": "strict-said", "token": {"access_token": "tok-2"}}))
    (auth / "other.json").write_text(json.dumps({"type": "nobody"}))
    return auth


def test_a_claimed_file_that_fails_to_load_says_why(tmp_path, caplog):
    auth = _strict_auth_dir(tmp_path)
    config, pm = load(config_text=f"auth-dir: {auth}\n", environ={}, extra_plugins=[("strict", StrictFiles())])
    with caplog.at_level(logging.WARNING):
        gateway = Gateway(config, pm)
    installed = ", ".join(sorted(b.provider.name for b in gateway.bindings)) or "none"
    assert "keyed.json: missing field 'refresh_token'" in caplog.text
    assert "said.json: missing field token.refresh_token" in caplog.text
    assert f"other.json: no installed provider handles type 'nobody' (installed: {installed})" in caplog.text
    assert "tok-secret-123456" not in caplog.text


def test_check_reports_the_same_reasons(tmp_path, capsys):
    auth = _strict_auth_dir(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(f"auth-dir: {auth}\n")
    assert run_check(config, extra_plugins=[("strict", StrictFiles())]) == 0
    report = capsys.readouterr().out
    assert "keyed.json: missing field 'refresh_token'" in report
    assert "said.json: missing field token.refresh_token" in report
    assert "other.json: no installed provider handles type 'nobody'" in report


def test_the_demo_stays_on_loopback():
    result = polyrelay("serve", "--demo", "--host", "0.0.0.0")
    assert result.returncode == 2
    assert "the demo only listens on loopback" in result.stderr


def test_a_busy_port_is_a_message_not_a_traceback(tmp_path):
    config = tmp_path / "config.yaml"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config.write_text(f"auth-dir: {tmp_path}/auth\nport: {port}\n")
        result = polyrelay("serve", "--config", str(config))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
