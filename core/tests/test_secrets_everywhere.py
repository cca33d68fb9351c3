"""No secret, whole or in part, reaches a client body or a log line (issue 8, item 2).

Random keys of every length a user might have (5 to 64 characters) are
configured; every error path is triggered with upstream messages that quote
the key: complete errors of each status, stream errors before and after the
first frame (pass-through and translated), and config files that fail to
parse around the key.  Client bodies and everything logged are then searched
for each whole key and for every 6-character window of the longer ones.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import string
import subprocess
import sys

import pytest

from polyrelay import cli, ir, jsonutil
from polyrelay.dialects import get_dialect
from polyrelay.testing import Recorded, Reply, faults, run_gateway
from polyrelay.testing.clients import ask, is_error_shape
from polyrelay.testing.faults import FaultUpstream
from polyrelay.testing.keyed import key_config, keyed_provider
from polyrelay.testing.openai_chat import OpenAIChatSimulator, chunk_frames, error_body

LENGTHS = (5, 8, 9, 16, 40, 64)
_rng = random.Random()
ALPHABET = string.ascii_letters + string.digits


def random_key(length: int) -> str:
    return "".join(_rng.choice(ALPHABET) for _ in range(length))


def leaks(text: str, secrets: list[str]) -> list[str]:
    """Each secret, or 6-character window of one, found in ``text``."""
    found = []
    for secret in secrets:
        if secret in text:
            found.append(secret)
        elif len(secret) > 6:
            found += [secret[i:i + 6] for i in range(len(secret) - 5) if secret[i:i + 6] in text][:1]
    return found


def chat_entries(upstream: OpenAIChatSimulator, keys: list[str]) -> str:
    """One openai-compatibility entry per key, so model ``m<n>`` uses exactly key ``n``."""
    lines = ["openai-compatibility:"]
    for n, key in enumerate(keys):
        lines += [f"  - name: up{n}", f"    base-url: {upstream.api_base}", "    api-key-entries:",
                  f"      - api-key: {key}", "    models:", "      - name: sim-model", f"        alias: m{n}"]
    return "\n".join(lines) + "\n"


def stream_error_frames(message: str) -> list[bytes]:
    frames = chunk_frames("sim-model", ["partial"], include_usage=False)
    error = jsonutil.dumps({"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}})
    return [frames[0], frames[1], b"data: " + error + b"\n\n"]


@pytest.fixture
def log_text():
    """Everything logged, formatted the way ``polyrelay serve`` writes it."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def test_no_key_reaches_a_client_or_a_log(polyrelay_http, log_text, capfd):
    upstream_keys = [random_key(n) for n in LENGTHS]
    gemini_keys = [random_key(n) for n in LENGTHS]
    client_keys = [random_key(n) for n in LENGTHS]
    everything = upstream_keys + gemini_keys + client_keys
    bodies: list[str] = []
    async with OpenAIChatSimulator() as chat, FaultUpstream() as gemini:
        config = (chat_entries(chat, upstream_keys) + key_config("gem", f"{gemini.base_url}/v1beta", gemini_keys)
                  + f"api-keys: [{', '.join(client_keys)}]\nrequest-retry: 0\ndebug: true\n"
                  + "disable-cooling: true\n")  # every request reaches the upstream, so every path runs
        plugins = [keyed_provider("gem", ir.GEMINI, ["gem-1"])]
        async with run_gateway(config, extra_plugins=plugins) as gw:
            for n, key in enumerate(upstream_keys):
                quoted = f"Incorrect API key provided: {key}. You passed {key!r}"
                client_key = client_keys[n]
                model = f"m{n}"
                # Complete errors of every status class, through each client dialect.
                for status, dialect in [(400, ir.OPENAI_CHAT), (401, ir.ANTHROPIC), (429, ir.OPENAI_RESPONSES),
                                        (500, ir.GEMINI), (403, ir.OPENAI_CHAT)]:
                    chat.push(Reply.json(error_body(quoted, "invalid_request_error", key), status=status))
                    answer = await ask(polyrelay_http, gw.url, dialect, model, api_key=client_key)
                    assert answer.status == status, answer.body
                    assert is_error_shape(dialect, status, answer.body)
                    assert "[redacted]" in json.dumps(answer.body)
                    bodies.append(json.dumps(answer.body))
                # Stream errors after the first frame: pass-through (chat) and translated (the others).
                for dialect in ALL_DIALECTS:
                    chat.push(Reply.sse(stream_error_frames(f"key {key} revoked")))
                    answer = await ask(polyrelay_http, gw.url, dialect, model, stream=True, api_key=client_key)
                    assert answer.status == 200 and answer.stream_error, (dialect, answer.events)
                    bodies.append(json.dumps(answer.events))
                    assert "[redacted]" in bodies[-1], (dialect, bodies[-1])
                # A stream that fails at once becomes a complete error.
                chat.push(Reply.sse(stream_error_frames(f"key {key} revoked")[2:]))
                answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, model, stream=True, api_key=client_key)
                assert answer.status >= 400 and is_error_shape(ir.OPENAI_CHAT, answer.status, answer.body)
                bodies.append(json.dumps(answer.body))
            # A Gemini upstream quoting its key: complete, and mid-stream to a pass-through Gemini client.
            for key in gemini_keys:
                gemini.push(Reply.json({"error": {"code": 400, "message": f"API key not valid: {key}",
                                                  "status": "INVALID_ARGUMENT"}}, status=400))
                answer = await ask(polyrelay_http, gw.url, ir.GEMINI, "gem-1", api_key=client_keys[-1])
                assert answer.status == 400
                bodies.append(json.dumps(answer.body))
                first = b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"par"}]}}]}\r\n\r\n'
                error = jsonutil.dumps({"error": {"code": 403, "message": f"key {key} suspended",
                                                  "status": "PERMISSION_DENIED"}})
                gemini.push(Reply.sse([first, b"data: " + error + b"\r\n\r\n"]))
                answer = await ask(polyrelay_http, gw.url, ir.GEMINI, "gem-1", stream=True, api_key=client_keys[-1])
                assert answer.status == 200 and answer.stream_error, answer.events
                bodies.append(json.dumps(answer.events))
            # Keys that are wrong by one character are refused without being echoed.
            for key in client_keys:
                answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, "m0", api_key=key[:-1] + "#")
                assert answer.status == 401
                bodies.append(json.dumps(answer.body))
    assert len(chat.requests) == len(LENGTHS) * 10
    captured = capfd.readouterr()
    logs = log_text.getvalue() + captured.out + captured.err
    assert logs.count("[redacted]") >= len(LENGTHS) * 10, "upstream messages were not logged: grepping proves nothing"
    assert leaks("\n".join(bodies), everything) == []
    assert leaks(logs, everything) == []


ALL_DIALECTS = [ir.OPENAI_CHAT, ir.ANTHROPIC, ir.OPENAI_RESPONSES, ir.GEMINI]


class QuotingUpstream(FaultUpstream):
    """Every dialect's upstream, answering each request with an error that quotes the key it was sent."""

    stream = False

    def check(self, recorded: Recorded) -> Reply | None:
        headers = recorded.headers
        key = (headers.get("x-api-key") or headers.get("x-goog-api-key")
               or headers.get("authorization", "").removeprefix("Bearer "))
        dialect = faults.dialect_of(recorded.path)
        if self.stream:
            return faults.error_after_first_frame(dialect, f"key {key} was revoked", status=401)
        body = get_dialect(dialect).error_body(ir.ErrorInfo(401, f"invalid x-api-key: {key}"))
        return Reply.json(body, status=401)


@pytest.mark.parametrize("upstream_dialect", ALL_DIALECTS)
async def test_no_key_of_any_upstream_dialect_reaches_a_client(polyrelay_http, log_text, upstream_dialect):
    keys = [random_key(n) for n in LENGTHS]
    bodies = []
    async with QuotingUpstream() as upstream:
        config = key_config("up", upstream.base_url, keys) + "request-retry: 0\ndisable-cooling: true\n"
        async with run_gateway(config, extra_plugins=[keyed_provider("up", upstream_dialect, ["up-1"])]) as gw:
            for client_dialect in ALL_DIALECTS:  # the same dialect is the pass-through path
                upstream.stream = False
                answer = await ask(polyrelay_http, gw.url, client_dialect, "up-1")
                assert answer.status == 401 and is_error_shape(client_dialect, 401, answer.body), answer.body
                bodies.append(json.dumps(answer.body))
                upstream.stream = True
                answer = await ask(polyrelay_http, gw.url, client_dialect, "up-1", stream=True)
                assert answer.status == 200 and answer.stream_error, (client_dialect, answer.events)
                bodies.append(json.dumps(answer.events))
    assert len(upstream.requests) == len(ALL_DIALECTS) * (len(keys) + 1)  # each key tried, then one stream
    assert all("[redacted]" in body for body in bodies), bodies
    assert leaks("\n".join(bodies), keys) == []
    assert leaks(log_text.getvalue(), keys) == []


def bad_configs(key: str) -> list[str]:
    """Config files that fail to load with ``key`` next to the fault."""
    return [
        f"api-keys: [{key}\nport: 8317\n",  # unclosed flow sequence
        f"api-keys:\n  - {key}\n port: 8317\n",  # bad indentation after the key
        f"api-keys: [{key}]\nport: {key}\n",  # wrong type, the key as the value
        f"request-retry: {{{key}: 1}}\n",  # a mapping where a number belongs
        f'openai-compatibility:\n  - name: x\n    api-key-entries:\n      - api-key: "{key}\\q"\n',  # bad escape
        f"openai-compatibility:\n  - name: x\n    base-url: {{a: {key}}}\n",  # a mapping where a string belongs
        f"api-keys: [{key}]\n\tport: 1\n",  # a tab
        f"api-keys: *{key}\n",  # an undefined alias
        f"routing: {{strategy: {key}}}\n",  # a value a validator refuses
    ]


def test_config_errors_print_no_values(tmp_path, capsys, log_text, monkeypatch):
    monkeypatch.setenv("POLYRELAY_CONFIG", "")
    keys = [random_key(n) for n in LENGTHS]
    for key in keys:
        for n, text in enumerate(bad_configs(key)):
            path = tmp_path / f"bad-{len(key)}-{n}.yaml"
            path.write_text(text)
            assert cli.main(["serve", "--config", str(path)]) == 2, text
    printed = capsys.readouterr()
    assert printed.err.count("polyrelay: ") == len(keys) * len(bad_configs("x")), printed.err
    assert "Traceback" not in printed.err and "line " in printed.err and "$." in printed.err
    assert leaks(printed.out + printed.err + log_text.getvalue(), keys) == []


def test_serve_reports_a_config_error_at_start_without_the_value(tmp_path):
    key = random_key(40)
    path = tmp_path / "bad.yaml"
    path.write_text(bad_configs(key)[0])
    result = subprocess.run([sys.executable, "-m", "polyrelay.cli", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "POLYRELAY_CONFIG": ""})
    assert result.returncode == 2 and "not valid YAML" in result.stderr and "line 2" in result.stderr
    assert leaks(result.stdout + result.stderr, [key]) == []
