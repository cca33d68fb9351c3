"""Issue 8, over loopback against the real gateway: no request steers the upstream,
no input makes a plain-text 500, no slow client pins the gateway, no web page
spends a keyless gateway's accounts, and /healthz says nothing but "alive"."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import resource
import signal
import subprocess
import sys

import pytest

from polyrelay import hookimpl, ir
from polyrelay.guard import AcceptErrorThrottle
from polyrelay.testing import Reply, run_gateway
from polyrelay.testing.clients import ask, is_error_shape, request_for
from polyrelay.testing.faults import FaultUpstream
from polyrelay.testing.fixtures import compat_config
from polyrelay.testing.gateway import free_port
from polyrelay.testing.keyed import key_config, keyed_provider
from polyrelay.urls import join_path, model_name_problem, path_segment

GEMINI_KEY = "AIzaSy-operator-gemini-key-000000000000"
ALL = [ir.ANTHROPIC, ir.OPENAI_CHAT, ir.OPENAI_RESPONSES, ir.GEMINI]
HOSTILE = [
    "gem/../../../v1beta/cachedContents#",
    "gem/x?alt=json&key=ATTACKER#",
    "gem/..",
    "gem/a/b",
    "gem/%2e%2e",
    "gem/a%2Fb",
    "gem/a\x00b",
    "gem/a\r\nx-injected: 1",
    "gem/ spaced",
    "../gem-1",
]


@pytest.fixture
async def gemini_upstream():
    async with FaultUpstream() as upstream:
        yield upstream


def gemini_gateway(upstream: FaultUpstream, extra: str = ""):
    config = key_config("gem", f"{upstream.base_url}/v1beta", [GEMINI_KEY]) + extra
    return run_gateway(config, extra_plugins=[keyed_provider("gem", ir.GEMINI, ["gem-1", "tuned:v1"])])


async def post(polyrelay_http, url, dialect, model, stream=False, headers=None):
    path, base_headers, body = request_for(dialect, model, "hi", stream)
    async with polyrelay_http.post(url + path, json=body, headers={**base_headers, **(headers or {})}) as r:
        if r.content_type == "text/event-stream":
            return r.status, await r.text(), r.headers
        return r.status, await r.json(content_type=None), r.headers


# -- 1: a model name never steers the upstream ------------------------------------------


@pytest.mark.parametrize("dialect", ALL)
async def test_hostile_model_names_are_400_in_the_dialect_and_reach_no_upstream(gemini_upstream, polyrelay_http,
        dialect):
    async with gemini_gateway(gemini_upstream) as gw:
        for model in HOSTILE:
            if dialect == ir.GEMINI:
                # The Gemini route takes the model from the path: the client percent-encodes it.
                url = f"{gw.url}/v1beta/models/{path_segment(model)}:generateContent"
                async with polyrelay_http.post(url, json={"contents": [{"parts": [{"text": "x"}]}]}) as r:
                    status, body = r.status, await r.json(content_type=None)
            else:
                status, body, _ = await post(polyrelay_http, gw.url, dialect, model)
            # A newline cannot be in any route's path: that is a 404, from no route at all.
            expected = 404 if dialect == ir.GEMINI and "\n" in model else 400
            assert status == expected, (model, body)
            assert is_error_shape(dialect, status, body), body
    assert gemini_upstream.requests == [], [r.path for r in gemini_upstream.requests]


async def test_the_classic_traversal_paths_reach_no_upstream(gemini_upstream, polyrelay_http):
    raw = [
        "/v1beta/models/gem%2F..%2F..%2Fadmin%3Fx%3D1%23:generateContent",
        "/v1beta/models/gem%2F..%2F..%2F..%2Fv1beta%2FcachedContents%23:streamGenerateContent?alt=sse",
        "/v1/models/gem%2F%2e%2e%2Fadmin:generateContent",
    ]
    async with gemini_gateway(gemini_upstream) as gw:
        for path in raw:
            async with polyrelay_http.post(gw.url + path, json={"contents": [{"parts": [{"text": "x"}]}]}) as r:
                assert r.status == 400, path
                assert is_error_shape(ir.GEMINI, 400, await r.json())
    assert gemini_upstream.requests == []


@pytest.mark.parametrize("dialect", ALL)
async def test_the_model_is_one_encoded_segment_of_the_upstream_path(gemini_upstream, polyrelay_http, dialect):
    async with gemini_gateway(gemini_upstream) as gw:
        for model, expected in [("gem-1", "gem-1"), ("gem/gem-2.5-x", "gem-2.5-x"), ("tuned:v1", "tuned:v1")]:
            if dialect == ir.GEMINI and ":" in model:
                continue  # a Gemini path splits at the first ':', so such a model is not addressable there
            status, body, _ = await post(polyrelay_http, gw.url, dialect, model)
            assert status == 200, body
            assert gemini_upstream.requests[-1].raw_path == f"/v1beta/models/{expected}:generateContent"
            status, body, _ = await post(polyrelay_http, gw.url, dialect, model, stream=True)
            assert status == 200 and "Hello from the fault upstream" in body.replace('", "', "")
            assert gemini_upstream.requests[-1].raw_path == f"/v1beta/models/{expected}:streamGenerateContent"
            assert gemini_upstream.requests[-1].query == {"alt": "sse"}
            assert gemini_upstream.requests[-1].headers["x-goog-api-key"] == GEMINI_KEY


async def test_an_alias_pattern_routes_any_name_and_only_its_target_travels(gemini_upstream, polyrelay_http):
    async with gemini_gateway(gemini_upstream, extra='model-aliases: {"team-*": gem-1}\n') as gw:
        status, body, _ = await post(polyrelay_http, gw.url, ir.OPENAI_CHAT, "team-a/../../admin?x#")
    assert status == 200, body
    assert [r.raw_path for r in gemini_upstream.requests] == ["/v1beta/models/gem-1:generateContent"]


def test_model_names_and_segments():
    for good in ["gemini-2.5-pro", "claude-sonnet-4-5@20250929", "openai/gpt-4o", "qwen3-coder-plus", "llama3:8b"]:
        assert model_name_problem(good) is None, good
    for bad in [*HOSTILE, "", "a b", "x/y/z", "ü-model", "-dash-first"]:
        assert model_name_problem(bad) is not None, bad
    assert model_name_problem("odd/name/served", served={"odd/name/served"}) is None
    assert path_segment("a/b?c#d%e f") == "a%2Fb%3Fc%23d%25e%20f"
    assert join_path("http://h/v1beta/", "models", "x/y", suffix=":generateContent") == (
        "http://h/v1beta/models/x%2Fy:generateContent")
    for dots in (".", ".."):
        with pytest.raises(ValueError):
            path_segment(dots)


# -- 3: no input makes a 500; errors of the HTTP layer speak the dialect too ---------------


def with_deep_field(body: dict, field: str, depth: int) -> bytes:
    """``body`` plus ``field`` holding ``depth`` nested arrays (raw: no encoder nests that deep)."""
    raw = json.dumps({**body, field: "DEEP"})
    return raw.replace('"DEEP"', "[" * depth + '"leaf"' + "]" * depth).encode()


@pytest.mark.parametrize("dialect", ALL)
async def test_deep_nesting_is_a_400_in_the_dialect(gemini_upstream, polyrelay_http, dialect):
    async with gemini_gateway(gemini_upstream) as gw:
        path, headers, body = request_for(dialect, "gem-1", "hi", False)
        headers = {**headers, "content-type": "application/json"}
        for depth in (70, 300, 1000, 5000):
            for field in ("x_extension", "tools"):
                async with polyrelay_http.post(gw.url + path, data=with_deep_field(body, field, depth),
                        headers=headers) as r:
                    assert r.status == 400, (depth, await r.text())
                    answer = await r.json()
                        # Our limit, or orjson's own (1,024) for the deepest.
                    assert is_error_shape(dialect, 400, answer)
                    assert "nests deeper than 64" in str(answer) or "depth limit" in str(answer)
        # Nesting well inside the limit is served.
        async with polyrelay_http.post(gw.url + path, data=with_deep_field(body, "x_extension", 20),
                headers=headers) as r:
            assert r.status == 200, await r.text()
    assert len(gemini_upstream.requests) == 1


def deep_schema(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"p": schema}}
    return schema


@pytest.mark.parametrize("dialect", [ir.ANTHROPIC, ir.OPENAI_CHAT, ir.OPENAI_RESPONSES])
async def test_a_deep_tool_schema_is_translated_for_gemini_or_refused_as_400(gemini_upstream, polyrelay_http, dialect):
    """Gemini's schema cleanup recurses: under the depth limit it works, over it the limit answers first."""
    async with gemini_gateway(gemini_upstream) as gw:
        path, headers, body = request_for(dialect, "gem-1", "hi", False)
        for levels, expected in ((25, 200), (40, 400), (500, 400)):
            tool = ({"name": "t", "input_schema": deep_schema(levels)} if dialect == ir.ANTHROPIC else
                    {"type": "function", "name": "t", "parameters": deep_schema(levels)}
                    if dialect == ir.OPENAI_RESPONSES else
                    {"type": "function", "function": {"name": "t", "parameters": deep_schema(levels)}})
            raw = json.dumps({**body, "tools": [tool]}) if levels < 100 else with_deep_field(body, "tools", levels)
            async with polyrelay_http.post(gw.url + path, data=raw if isinstance(raw, bytes) else raw.encode(),
                                 headers={**headers, "content-type": "application/json"}) as r:
                assert r.status == expected, (levels, await r.text())
                assert expected == 200 or is_error_shape(dialect, 400, await r.json())
    assert len(gemini_upstream.requests) == 1


def exploding_provider() -> tuple[str, object]:
    """The ``gem`` provider with a bug: building its upstream request raises."""
    name, plugin = keyed_provider("gem", ir.GEMINI, ["gem-1"])

    class Exploding(type(plugin)):
        @hookimpl
        def translate_request(self, provider, request, credential):
            raise RuntimeError("a provider bug")

    return name, Exploding()


@pytest.mark.parametrize("dialect", ALL)
async def test_an_escaping_exception_is_a_500_in_the_dialect_with_a_request_id(gemini_upstream, polyrelay_http,
        dialect, caplog):
    config = key_config("gem", f"{gemini_upstream.base_url}/v1beta", [GEMINI_KEY])
    plugins = [exploding_provider()]
    with caplog.at_level(logging.ERROR, logger="polyrelay.guard"):
        async with run_gateway(config, extra_plugins=plugins) as gw:
            status, body, headers = await post(polyrelay_http, gw.url, dialect, "gem-1")
    assert status == 500
    assert headers["content-type"].startswith("application/json")
    assert is_error_shape(dialect, 500, body), body
    request_id = headers["x-request-id"]
    assert request_id in str(body)
    assert any(request_id in r.getMessage() and "a provider bug" in (r.exc_text or "") for r in caplog.records)


def failing_stream_provider() -> tuple[str, object]:
    """The ``gem`` provider with a bug that shows only mid-stream: its second chunk raises."""
    name, plugin = keyed_provider("gem", ir.GEMINI, ["gem-1"])
    calls = []

    class FailsMidStream(type(plugin)):
        @hookimpl
        def translate_chunk(self, provider, stream, data):
            calls.append(data)
            if len(calls) > 1:
                raise RuntimeError("a chunk bug")
            return stream.decoder.feed(data)

    return name, FailsMidStream()


@pytest.mark.parametrize("dialect", ALL)
async def test_an_exception_after_the_stream_started_ends_it_with_the_dialects_error(gemini_upstream,
        polyrelay_http, dialect):
    from polyrelay.testing.faults import content_frames, stream_frames

    frames = stream_frames(ir.GEMINI, "gem-1")
    gemini_upstream.push(Reply.sse([content_frames(ir.GEMINI, "gem-1")[0], *frames[1:]], interval=0.05))
    config = key_config("gem", f"{gemini_upstream.base_url}/v1beta", [GEMINI_KEY])
    async with run_gateway(config, extra_plugins=[failing_stream_provider()]) as gw:
        answer = await ask(polyrelay_http, gw.url, dialect, "gem-1", stream=True)
    assert answer.status == 200
    assert answer.stream_error, answer.events
    assert "internal error (request id" in json.dumps(answer.events)


@pytest.mark.parametrize(("method", "path", "dialect", "status"), [
    ("GET", "/v1/messages", ir.ANTHROPIC, 405),
    ("GET", "/v1/chat/completions", ir.OPENAI_CHAT, 405),
    ("PUT", "/v1/responses", ir.OPENAI_RESPONSES, 405),
    ("POST", "/v1/messages/nope", ir.ANTHROPIC, 404),
    ("POST", "/v1/chat/nope", ir.OPENAI_CHAT, 404),
    ("POST", "/v1beta/nope", ir.GEMINI, 404),
    ("GET", "/nothing-here", ir.OPENAI_CHAT, 404),
])
async def test_404_and_405_are_in_the_paths_dialect(polyrelay_chat_upstream, polyrelay_http, method, path, dialect,
        status):
    async with (run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a"])) as gw,
                polyrelay_http.request(method, gw.url + path, json={}) as r):
        assert r.status == status
        assert r.content_type == "application/json"
        assert is_error_shape(dialect, status, await r.json())
        if status == 405:
            assert "POST" in r.headers["allow"]


@pytest.mark.parametrize("dialect", ALL)
async def test_oversized_headers_are_431_in_the_dialect(gemini_upstream, polyrelay_http, dialect):
    async with gemini_gateway(gemini_upstream) as gw:
        status, body, _ = await post(polyrelay_http, gw.url, dialect, "gem-1", headers={"x-padding": "p" * 40_000})
    assert status == 431
    assert is_error_shape(dialect, 431, body)
    assert gemini_upstream.requests == []


# -- 5: slow bodies, concurrency caps, accept errors ---------------------------------------


async def open_slow_body(url: str, path: str, key: str | None = None):
    """A request whose body never finishes arriving."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    auth = f"authorization: Bearer {key}\r\n" if key else ""
    writer.write(f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n{auth}"
                 "content-length: 1000\r\n\r\n{\"model\": ".encode())
    await writer.drain()
    return reader, writer


async def test_a_body_that_never_arrives_is_a_408_in_the_dialect(polyrelay_chat_upstream):
    config = compat_config(polyrelay_chat_upstream, ["sk-test-a"], extra="client-limits: {body-seconds: 0.5}")
    async with run_gateway(config) as gw:
        reader, writer = await open_slow_body(gw.url, "/v1/messages")
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            assert head.startswith(b"HTTP/1.1 408")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            body = await asyncio.wait_for(reader.readexactly(length), timeout=5)
        finally:
            writer.close()
    assert b'"type":"error"' in body and b"did not arrive" in body
    assert polyrelay_chat_upstream.requests == []


@pytest.mark.parametrize("keys", [True, False])
async def test_concurrent_requests_are_capped_per_client(polyrelay_chat_upstream, polyrelay_http, keys):
    extra = "client-limits: {concurrent-requests: 2}\n" + ("api-keys: [client-one, client-two]\n" if keys else "")
    async with run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a"], extra=extra)) as gw:
        key = "client-one" if keys else None
        held = [await open_slow_body(gw.url, "/v1/chat/completions", key) for _ in range(2)]
        try:
            await asyncio.sleep(0.2)
            auth = {"authorization": "Bearer client-one"} if keys else {}
            status, body, headers = await post(polyrelay_http, gw.url, ir.OPENAI_CHAT, "sim", headers=auth)
            assert status == 429, body
            assert is_error_shape(ir.OPENAI_CHAT, 429, body) and headers["retry-after"] == "1"
            if keys:  # another client's key is not held back by this one's slow requests
                status, body, _ = await post(polyrelay_http, gw.url, ir.OPENAI_CHAT, "sim",
                                             headers={"authorization": "Bearer client-two"})
                assert status == 200, body
        finally:
            for _, writer in held:
                writer.close()
        await asyncio.sleep(0.3)
        # The slots come back when those clients leave.
        status, body, _ = await post(polyrelay_http, gw.url, ir.OPENAI_CHAT, "sim",
                                     headers={"authorization": "Bearer client-one"} if keys else {})
        assert status == 200, body


async def test_out_of_descriptors_is_logged_once_not_per_accept(tmp_path):
    """A real `polyrelay serve` with a tiny file limit, flooded with connections."""
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(f"port: {port}\nauth-dir: {tmp_path}/auth\n")

    def small_file_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    process = subprocess.Popen([sys.executable, "-m", "polyrelay.cli", "serve", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=small_file_limit)
    held: list[asyncio.StreamWriter] = []
    try:
        for _ in range(300):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        for _ in range(120):  # far past the limit: the gateway cannot accept most of them
            with contextlib.suppress(OSError):
                held.append((await asyncio.open_connection("127.0.0.1", port))[1])
        await asyncio.sleep(3.5)  # the loop retries accepting every second meanwhile
    finally:
        for writer in held:
            writer.close()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    logs = out + err
    assert logs.count("cannot accept connections") == 1, logs[-3000:]
    assert "Too many open files" in logs and logs.count("Traceback") == 0, logs[-3000:]


def test_accept_errors_are_logged_once_per_interval(caplog):
    loop = asyncio.new_event_loop()
    try:
        throttle = AcceptErrorThrottle(interval=60)
        loop.set_exception_handler(throttle)
        with caplog.at_level(logging.ERROR):
            for _ in range(500):
                loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                             "exception": OSError(errno.EMFILE, "Too many open files")})
    finally:
        loop.close()
    lines = [r for r in caplog.records if "accept" in r.getMessage()]
    assert len(lines) == 1 and "Too many open files" in lines[0].getMessage()
    assert throttle.suppressed == 499


# -- 8: a keyless gateway and browsers -----------------------------------------------------


async def test_a_keyless_gateway_refuses_foreign_web_pages(polyrelay_chat_upstream, polyrelay_http):
    async with run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a"])) as gw:
        path, _, body = request_for(ir.OPENAI_CHAT, "sim", "hi", False)
        refused = [
            {"origin": "https://evil.example"},
            {"origin": "null"},
            {"host": "rebind.evil.example"},
            {"host": "rebind.evil.example:8317", "origin": "http://rebind.evil.example:8317"},
        ]
        for extra in refused:
            async with polyrelay_http.post(gw.url + path, json=body, headers=extra) as r:
                assert r.status == 403, extra
                assert is_error_shape(ir.OPENAI_CHAT, 403, await r.json())
                assert "access-control-allow-origin" not in r.headers
        # A simple (preflight-free) cross-site POST: text/plain, or no type at all.
        for content_type in ("text/plain", None):
            kwargs = {"headers": {"content-type": content_type}} if content_type else {}
            async with polyrelay_http.post(gw.url + path, data=b'{"model":"sim","messages":[]}', **kwargs) as r:
                assert r.status == 415
                assert is_error_shape(ir.OPENAI_CHAT, 415, await r.json())
        for local in ({"origin": "http://localhost:5173"}, {"host": "localhost:8317"}, {"host": "[::1]:8317"}):
            async with polyrelay_http.post(gw.url + path, json=body, headers=local) as r:
                assert r.status == 200, local
    assert len(polyrelay_chat_upstream.requests) == 3


async def test_cors_answers_only_configured_origins(polyrelay_chat_upstream, polyrelay_http):
    config = compat_config(polyrelay_chat_upstream, ["sk-test-a"], extra="cors-origins: [https://app.example]")
    async with run_gateway(config) as gw:
        url = f"{gw.url}/v1/chat/completions"
        preflight = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
        async with polyrelay_http.options(url, headers={**preflight, "origin": "https://app.example"}) as r:
            assert r.status == 204
            assert r.headers["access-control-allow-origin"] == "https://app.example"
        async with polyrelay_http.options(url, headers={**preflight, "origin": "https://evil.example"}) as r:
            assert r.status == 403 and "access-control-allow-origin" not in r.headers
        _, _, body = request_for(ir.OPENAI_CHAT, "sim", "hi", False)
        async with polyrelay_http.post(url, json=body, headers={"origin": "https://app.example"}) as r:
            assert r.status == 200
            assert r.headers["access-control-allow-origin"] == "https://app.example"


async def test_with_keys_a_page_needs_the_key_and_gets_no_cors(polyrelay_chat_upstream, polyrelay_http):
    config = compat_config(polyrelay_chat_upstream, ["sk-test-a"], extra="api-keys: [the-client-key]")
    async with run_gateway(config) as gw:
        path, _, body = request_for(ir.OPENAI_CHAT, "sim", "hi", False)
        async with polyrelay_http.post(gw.url + path, json=body, headers={"origin": "https://evil.example"}) as r:
            assert r.status == 401
        headers = {"origin": "https://tool.example", "authorization": "Bearer the-client-key"}
        async with polyrelay_http.post(gw.url + path, json=body, headers=headers) as r:
            assert r.status == 200
            assert "access-control-allow-origin" not in r.headers


# -- 13: /healthz is liveness only ---------------------------------------------------------


async def test_healthz_is_liveness_and_counts_need_the_key(polyrelay_chat_upstream, polyrelay_http):
    config = compat_config(polyrelay_chat_upstream, ["sk-test-a", "sk-test-b"], extra="api-keys: [the-client-key]")
    async with run_gateway(config) as gw:
        async with polyrelay_http.get(f"{gw.url}/healthz") as r:
            assert r.status == 200 and await r.json() == {"status": "ok"}
        async with polyrelay_http.get(f"{gw.url}/status") as r:
            assert r.status == 401
        async with polyrelay_http.get(f"{gw.url}/status", headers={"authorization": "Bearer the-client-key"}) as r:
            assert await r.json() == {"status": "ok", "providers": 1, "credentials": 2}


async def test_retrieve_model_answers_in_the_clients_dialect(polyrelay_chat_upstream, polyrelay_http):
    async with run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a"])) as gw:
        async with polyrelay_http.get(f"{gw.url}/v1/models/sim") as r:
            assert await r.json() == {"id": "sim", "object": "model", "created": 0, "owned_by": "sim"}
        async with polyrelay_http.get(f"{gw.url}/v1/models/sim", headers={"anthropic-version": "2023-06-01"}) as r:
            assert (await r.json())["type"] == "model"
        async with polyrelay_http.get(f"{gw.url}/v1beta/models/sim") as r:
            assert (await r.json())["name"] == "models/sim"
        async with polyrelay_http.get(f"{gw.url}/v1/models/nope") as r:
            assert r.status == 404 and is_error_shape(ir.OPENAI_CHAT, 404, await r.json())
