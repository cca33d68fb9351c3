"""End to end over loopback, checked at the wire: frames, statuses, headers."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import zlib
from pathlib import Path

import pytest
from aiohttp import web

from polyrelay import ir
from polyrelay.testing import Reply, Simulator, run_gateway
from polyrelay.testing.clients import ask
from polyrelay.testing.fixtures import compat_config
from polyrelay.testing.openai_chat import OpenAIChatSimulator, chunk_frames, completion


async def test_keepalive_frames_while_upstream_is_silent(polyrelay_chat_upstream, polyrelay_http):
    frames = chunk_frames("sim-model", ["a", "b"])
    # First frame, then 2 s of silence before the rest.
    polyrelay_chat_upstream.push(Reply.sse([frames[0], b"".join(frames[1:])], interval=2.0))
    config = compat_config(polyrelay_chat_upstream, ["sk-test-a"], extra="streaming: {keepalive-seconds: 0.25}")
    async with run_gateway(config) as gw:
        body = {"model": "sim", "stream": True, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
        async with polyrelay_http.post(f"{gw.url}/v1/chat/completions", json=body) as response:
            chat_raw = await response.read()
        polyrelay_chat_upstream.push(Reply.sse([frames[0], b"".join(frames[1:])], interval=2.0))
        async with polyrelay_http.post(f"{gw.url}/v1/messages", json=body,
                             headers={"anthropic-version": "2023-06-01"}) as response:
            anthropic_raw = await response.read()
    assert chat_raw.count(b": keep-alive\n\n") >= 3
    assert chat_raw.endswith(b"data: [DONE]\n\n")
    # Anthropic clients get ping events, which their SDKs ignore.
    assert anthropic_raw.count(b"event: ping") >= 3
    assert b"event: message_stop" in anthropic_raw


async def test_client_disconnect_cancels_the_upstream_at_once(polyrelay_chat_upstream, polyrelay_http):
    polyrelay_chat_upstream.push(Reply.sse(chunk_frames("sim-model", [f" w{i}" for i in range(40)]), interval=0.25))
    async with run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a"])) as gw:
        body = {"model": "sim", "stream": True, "messages": [{"role": "user", "content": "x"}]}
        response = await polyrelay_http.post(f"{gw.url}/v1/chat/completions", json=body)
        await response.content.readany()
        assert polyrelay_chat_upstream.active == 1
        left_at = time.monotonic()
        response.close()
        for _ in range(250):
            if polyrelay_chat_upstream.disconnects:
                break
            await asyncio.sleep(0.02)
        assert polyrelay_chat_upstream.disconnects, "the upstream request was not cancelled"
        # The stream had ~10 s left; seconds, not the stream's end, is what "at once" means on a loaded machine.
        assert polyrelay_chat_upstream.disconnects[0] - left_at < 3.0
        assert polyrelay_chat_upstream.active == 0


async def test_client_disconnect_while_waiting_for_a_non_stream_answer(polyrelay_chat_upstream, polyrelay_http):
    polyrelay_chat_upstream.push(Reply.json(completion("sim-model", "late"), delay=5))
    async with run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a"])) as gw:
        body = {"model": "sim", "messages": [{"role": "user", "content": "x"}]}
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(polyrelay_http.post(f"{gw.url}/v1/chat/completions", json=body), timeout=0.5)
        for _ in range(100):
            if polyrelay_chat_upstream.disconnects:
                break
            await asyncio.sleep(0.02)
    assert polyrelay_chat_upstream.disconnects


@pytest.mark.parametrize(
    ("path", "headers", "check"),
    [
        ("/v1/chat/completions", {}, lambda b: b["error"]["type"] == "invalid_request_error"),
        ("/v1/responses", {}, lambda b: b["error"]["type"] == "invalid_request_error"),
        ("/v1/messages", {"anthropic-version": "2023-06-01"},
         lambda b: b["type"] == "error" and b["error"]["type"] == "invalid_request_error"),
        ("/v1beta/models/sim:generateContent", {}, lambda b: b["error"]["status"] == "INVALID_ARGUMENT"),
    ],
)
async def test_malformed_json_is_400_in_the_dialects_shape(polyrelay_chat_upstream, polyrelay_http, path, headers,
        check):
    async with run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a"])) as gw:
        for bad in (b'{"model": "sim", "messages": [', b"\xff\xfe not json", b"[1, 2]"):
            async with polyrelay_http.post(gw.url + path, data=bad, headers={**headers,
                    "content-type": "application/json"}) as r:
                assert r.status == 400
                assert check(await r.json())
        # Valid JSON the dialect cannot use (wrong types) is a 400 too, never a 500.
        wrong = {"model": "sim", "messages": "not a list", "input": 5, "contents": "nope", "max_tokens": 5}
        async with polyrelay_http.post(gw.url + path, json=wrong, headers=headers) as r:
            assert r.status == 400, await r.text()
            assert check(await r.json())
    assert polyrelay_chat_upstream.requests == []


async def test_body_over_the_limit_is_413(polyrelay_chat_upstream, polyrelay_http):
    config = compat_config(polyrelay_chat_upstream, ["sk-test-a"], extra="max-body-mb: 0.01")
    async with run_gateway(config) as gw:
        big = {"model": "sim", "max_tokens": 5, "messages": [{"role": "user", "content": "x" * 20000}]}
        async with polyrelay_http.post(f"{gw.url}/v1/messages", json=big,
                headers={"anthropic-version": "2023-06-01"}) as r:
            assert r.status == 413
            assert (await r.json())["error"]["type"] == "request_too_large"


@pytest.mark.parametrize("where", ["authorization", "x-api-key", "x-goog-api-key", "query"])
async def test_client_key_accepted_in_every_place_sdks_put_it(polyrelay_chat_upstream, polyrelay_http, where):
    config = compat_config(polyrelay_chat_upstream, ["sk-test-a"], extra="api-keys: [the-client-key]")
    async with run_gateway(config) as gw:
        headers, suffix = {}, ""
        if where == "authorization":
            headers["authorization"] = "Bearer the-client-key"
        elif where == "query":
            suffix = "?key=the-client-key"
        else:
            headers[where] = "the-client-key"
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        async with polyrelay_http.post(f"{gw.url}/v1beta/models/sim:generateContent{suffix}", json=body,
                headers=headers) as r:
            assert r.status == 200, await r.text()
        async with polyrelay_http.post(f"{gw.url}/v1beta/models/sim:generateContent", json=body) as r:
            assert r.status == 401
            assert (await r.json())["error"]["status"] == "UNAUTHENTICATED"


async def test_head_root_health_and_model_lists(polyrelay_chat_upstream, polyrelay_http):
    config = compat_config(polyrelay_chat_upstream, ["sk-test-a"], extra="model-aliases: {claude-sonnet-4: sim}")
    async with run_gateway(config) as gw:
        async with polyrelay_http.head(f"{gw.url}/") as r:
            assert r.status == 200
        async with polyrelay_http.get(f"{gw.url}/healthz") as r:
            assert (await r.json())["status"] == "ok"
        async with polyrelay_http.get(f"{gw.url}/v1/models") as r:
            data = await r.json()
        assert data["object"] == "list"
        assert {m["id"] for m in data["data"]} == {"sim", "claude-sonnet-4"}
        async with polyrelay_http.get(f"{gw.url}/v1/models", headers={"anthropic-version": "2023-06-01"}) as r:
            data = await r.json()
        assert all(m["type"] == "model" for m in data["data"]) and data["has_more"] is False
        async with polyrelay_http.get(f"{gw.url}/v1beta/models") as r:
            names = {m["name"] for m in (await r.json())["models"]}
        assert "models/sim" in names


async def test_aliases_wildcards_and_provider_prefix_echo_the_clients_model(polyrelay_chat_upstream, polyrelay_http):
    config = compat_config(polyrelay_chat_upstream, ["sk-test-a"], extra='model-aliases: {"claude-*": sim}')
    async with run_gateway(config) as gw:
        answer = await ask(polyrelay_http, gw.url, ir.ANTHROPIC, "claude-sonnet-4-5-20250929", stream=False)
        assert answer.status == 200 and answer.body["model"] == "claude-sonnet-4-5-20250929"
        answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, "sim/some-unlisted-model", stream=False)
        assert answer.status == 200 and answer.body["model"] == "sim/some-unlisted-model"
    assert [r.json()["model"] for r in polyrelay_chat_upstream.requests] == ["sim-model", "some-unlisted-model"]


@pytest.mark.parametrize("labelled", [True, False])
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_upstream_bodies_are_decoded(polyrelay_chat_upstream, polyrelay_http, labelled, encoding):
    raw = json.dumps(completion("sim-model", "squeezed")).encode()
    body = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    headers = {"content-encoding": encoding} if labelled else {}
    polyrelay_chat_upstream.push(Reply(body=body, headers={"content-type": "application/json", **headers}))
    frames = b"".join(chunk_frames("sim-model", ["squeezed"]))
    stream_body = gzip.compress(frames) if encoding == "gzip" else zlib.compress(frames)
    polyrelay_chat_upstream.push(Reply(chunks=[stream_body[:10], stream_body[10:]],
                             headers={"content-type": "text/event-stream", **headers}))
    async with run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a"])) as gw:
        answer = await ask(polyrelay_http, gw.url, ir.ANTHROPIC, "sim", stream=False)
        assert answer.text == "squeezed"
        answer = await ask(polyrelay_http, gw.url, ir.ANTHROPIC, "sim", stream=True)
        assert answer.text == "squeezed" and answer.terminal


async def test_non_stream_keepalive_sends_blank_lines_then_json(polyrelay_chat_upstream, polyrelay_http):
    polyrelay_chat_upstream.push(Reply.json(completion("sim-model", "patience"), delay=1.0))
    config = compat_config(polyrelay_chat_upstream, ["sk-test-a"], extra="nonstream-keepalive-interval: 0.2")
    async with run_gateway(config) as gw:
        body = {"model": "sim", "messages": [{"role": "user", "content": "x"}]}
        async with polyrelay_http.post(f"{gw.url}/v1/chat/completions", json=body) as r:
            raw = await r.read()
    assert raw.startswith(b"\n\n")
    assert json.loads(raw)["choices"][0]["message"]["content"] == "patience"


async def test_count_tokens_answers_in_each_dialect(polyrelay_chat_upstream, polyrelay_http):
    async with run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a"])) as gw:
        body = {"model": "sim", "messages": [{"role": "user", "content": "x" * 400}]}
        async with polyrelay_http.post(f"{gw.url}/v1/messages/count_tokens", json=body) as r:
            assert (await r.json())["input_tokens"] >= 100
        gemini = {"contents": [{"role": "user", "parts": [{"text": "x" * 400}]}]}
        async with polyrelay_http.post(f"{gw.url}/v1beta/models/sim:countTokens", json=gemini) as r:
            assert (await r.json())["totalTokens"] >= 100
    assert polyrelay_chat_upstream.requests == []


async def test_auth_dir_files_of_unknown_types_do_not_stop_start_up(polyrelay_chat_upstream, polyrelay_http,
        tmp_path: Path):
    (tmp_path / "mystery.json").write_text('{"type": "mystery", "access_token": "tok-12345678"}')
    (tmp_path / "broken.json").write_text("{not json")
    config = compat_config(polyrelay_chat_upstream, ["sk-test-a"], extra=f"auth-dir: {tmp_path}")
    async with run_gateway(config) as gw:
        answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, "sim")
        assert answer.status == 200


class RecordingProxy(Simulator):
    """An HTTP proxy that answers as the upstream itself, recording the absolute URIs it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def routes(self):
        return [web.post("/{tail:.*}", self.proxied)]

    async def proxied(self, request: web.Request) -> web.StreamResponse:
        self.targets.append(str(request.url))
        return await self.play(request, Reply.json(completion("sim-model", "via proxy")))


async def test_global_and_per_credential_proxy_url(polyrelay_chat_upstream, polyrelay_http):
    async with RecordingProxy() as proxy, RecordingProxy() as other:
        entries = "      - api-key: sk-test-a\n" f"        proxy-url: {other.base_url}\n"
        config = (compat_config(polyrelay_chat_upstream, ["sk-test-b"], extra=f"proxy-url: {proxy.base_url}\n")
                  .replace("      - api-key: sk-test-b\n", "      - api-key: sk-test-b\n" + entries))
        async with run_gateway(config) as gw:
            for _ in range(2):
                answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, "sim")
                assert answer.text == "via proxy"
    assert proxy.targets == [f"{polyrelay_chat_upstream.api_base}/chat/completions"]
    assert other.targets == [f"{polyrelay_chat_upstream.api_base}/chat/completions"]
    assert polyrelay_chat_upstream.requests == [], "every request went through a proxy"


async def test_upstream_urls_override_a_providers_address(polyrelay_chat_upstream, polyrelay_http):
    async with OpenAIChatSimulator() as elsewhere:
        config = compat_config(polyrelay_chat_upstream, ["sk-test-a"],
                               extra=f"upstream-urls: {{sim: {{api: '{elsewhere.api_base}'}}}}")
        async with run_gateway(config) as gw:
            assert (await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, "sim")).status == 200
    assert len(elsewhere.requests) == 1 and polyrelay_chat_upstream.requests == []


async def test_overhead_header_excludes_upstream_time(polyrelay_chat_upstream, polyrelay_http):
    polyrelay_chat_upstream.push(Reply.json(completion("sim-model", "slow"), delay=0.5))
    async with run_gateway(compat_config(polyrelay_chat_upstream, ["sk-test-a"])) as gw:
        answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, "sim")
    overhead = float(answer.headers["x-polyrelay-overhead-ms"])
    assert 0 <= overhead < 400, "half a second upstream must not count as gateway overhead"


async def test_disconnect_during_non_stream_keepalive_cancels_the_upstream(polyrelay_chat_upstream, polyrelay_http):
    polyrelay_chat_upstream.push(Reply.json(completion("sim-model", "late"), delay=5))
    config = compat_config(polyrelay_chat_upstream, ["sk-test-a"], extra="nonstream-keepalive-interval: 0.1")
    async with run_gateway(config) as gw:
        body = {"model": "sim", "messages": [{"role": "user", "content": "x"}]}
        response = await polyrelay_http.post(f"{gw.url}/v1/chat/completions", json=body)
        assert await response.content.readexactly(1) == b"\n"
        response.close()
        for _ in range(150):
            if polyrelay_chat_upstream.disconnects:
                break
            await asyncio.sleep(0.02)
    assert polyrelay_chat_upstream.disconnects
