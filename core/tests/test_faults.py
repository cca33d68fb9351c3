"""Upstream faults end to end: deadlines, garbage, cut streams, aborts, hints.

Everything runs against the real gateway over loopback with
:class:`polyrelay.testing.faults.FaultUpstream` as every upstream dialect.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from polyrelay import ir
from polyrelay.testing import Reply, run_gateway
from polyrelay.testing.clients import ask, request_for
from polyrelay.testing.faults import (
    FaultUpstream,
    accept_and_hang,
    content_frames,
    error_frames,
    fault_model,
    fault_plugin,
    garbage_body,
    garbage_frames,
    hang_after_headers,
    slow_drip,
    stream_frames,
)

PAIRS = list(itertools.product(ir.DIALECTS, ir.DIALECTS))


@pytest.fixture
async def fault():
    async with FaultUpstream() as upstream:
        yield upstream


@pytest.mark.parametrize(("client", "upstream"), PAIRS)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_fault_upstream_answers_every_dialect_correctly_by_default(fault, polyrelay_http, client, upstream,
        stream):
    async with run_gateway(extra_plugins=[("fault", fault_plugin(fault))]) as gw:
        answer = await ask(polyrelay_http, gw.url, client, fault_model(upstream), "hi", stream=stream)
    assert answer.status == 200, answer.body
    assert "Hello from the fault upstream." in answer.text
    assert answer.terminal and not answer.stream_error


def _hinted_429(dialect: str) -> bytes:
    """A first-frame 429 carrying a 1234 s retry hint the way ``dialect`` writes one."""
    if dialect == ir.ANTHROPIC:
        return (b'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error",'
                b'"message":"Rate limited.","retry_after":1234}}\n\n')
    if dialect == ir.OPENAI_CHAT:
        return (b'data: {"error":{"message":"Rate limit reached. Please try again in 1234s.",'
                b'"type":"rate_limit_error","code":"rate_limit_exceeded"}}\n\n')
    return b"".join(error_frames(dialect, ir.ErrorInfo(429, "Rate limited.", kind="rate_limit", retry_after=1234)))


@pytest.mark.parametrize("upstream", ir.DIALECTS)
@pytest.mark.parametrize("same_dialect", [True, False], ids=["passthrough", "translated"])
async def test_first_frame_429_cools_the_credential_for_the_hinted_time(fault, polyrelay_http, upstream, same_dialect):
    client = upstream if same_dialect else next(d for d in ir.DIALECTS if d != upstream)
    fault.push(Reply.sse([_hinted_429(upstream)]))
    async with run_gateway(extra_plugins=[("fault", fault_plugin(fault, [upstream]))]) as gw:
        answer = await ask(polyrelay_http, gw.url, client, fault_model(upstream), "hi", stream=True)
        rows = [gw.gateway.pool.describe(c) for c in gw.gateway.pool]
    assert answer.status == 200 and answer.terminal, "the other credential serves the request"
    assert len(fault.requests) == 2
    cooled = [r for r in rows if r["model_cooldowns"]]
    assert len(cooled) == 1, rows
    assert 1230 < cooled[0]["model_cooldowns"][fault_model(upstream)]["seconds_left"] <= 1234


# -- deadlines -------------------------------------------------------------------

DEADLINES = "upstream-timeouts: {first-byte-seconds: 1, idle-seconds: 1}\nrequest-retry: 0\n"


def _gateway(fault, dialects=ir.DIALECTS, config=DEADLINES, keys=2):
    return run_gateway(config, extra_plugins=[("fault", fault_plugin(fault, dialects, keys=keys))])


def _cooling(gw) -> list[dict]:
    return [row for row in (gw.gateway.pool.describe(c) for c in gw.gateway.pool) if row["model_cooldowns"]]


@pytest.mark.parametrize("upstream", ir.DIALECTS)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_no_headers_within_the_deadline_fails_over(fault, polyrelay_http, upstream, stream):
    fault.push(accept_and_hang())
    async with _gateway(fault, [upstream]) as gw:
        started = time.monotonic()
        answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, fault_model(upstream), "hi", stream=stream)
        took = time.monotonic() - started
        cooling = _cooling(gw)
    assert answer.status == 200 and answer.terminal and not answer.stream_error, answer.body
    assert 1.0 <= took < 5.0
    assert len(cooling) == 1 and cooling[0]["model_cooldowns"][fault_model(upstream)]["reason"] == "timeout"
    assert await fault.wait_idle(), "the hung upstream request must be dropped"


@pytest.mark.parametrize("fault_kind", ["hang-after-headers", "slow-drip"])
@pytest.mark.parametrize("upstream", ir.DIALECTS)
async def test_a_stream_that_never_completes_a_frame_fails_over_before_commit(fault, polyrelay_http, upstream,
        fault_kind):
    if fault_kind == "hang-after-headers":
        fault.push(hang_after_headers())
    else:  # a byte every 0.1 s keeps the bytes flowing but completes no frame within the idle deadline
        fault.push(slow_drip(b"".join(stream_frames(upstream, fault_model(upstream))), interval=0.1))
    async with _gateway(fault, [upstream]) as gw:
        answer = await ask(polyrelay_http, gw.url, ir.ANTHROPIC, fault_model(upstream), "hi", stream=True)
    assert answer.status == 200 and answer.terminal and not answer.stream_error
    assert "Hello from the fault upstream." in answer.text
    assert len(fault.requests) == 2
    assert await fault.wait_idle()


@pytest.mark.parametrize("client", ir.DIALECTS)
async def test_silence_after_content_ends_the_stream_with_the_dialects_error_without_busy_looping(fault,
        polyrelay_http, client):
    upstream = ir.OPENAI_CHAT
    fault.push(Reply.sse(content_frames(upstream, fault_model(upstream)), hold=3600))
    config = DEADLINES + "streaming: {keepalive-seconds: 0.2}\n"
    async with _gateway(fault, [upstream], config=config) as gw:
        started = time.monotonic()
        answer = await ask(polyrelay_http, gw.url, client, fault_model(upstream), "hi", stream=True)
        took = time.monotonic() - started
    assert answer.status == 200
    assert answer.stream_error, answer.events
    assert "Hello from the fault upstream." in answer.text
    assert took < 4.0
    assert await fault.wait_idle()


async def test_keepalive_tick_and_read_timeouts_do_not_spin(fault, polyrelay_http):
    """While content has begun and the upstream is silent, keep-alives come at their interval, no faster."""
    upstream = ir.OPENAI_CHAT
    fault.push(Reply.sse(content_frames(upstream, fault_model(upstream)), hold=3600))
    config = "upstream-timeouts: {idle-seconds: 1.5}\nstreaming: {keepalive-seconds: 0.25}\n"
    async with _gateway(fault, [upstream], config=config) as gw:
        path, headers, body = request_for(ir.OPENAI_CHAT, fault_model(upstream), "hi", True)
        async with polyrelay_http.post(gw.url + path, json=body, headers=headers) as response:
            raw = await response.read()
    pings = raw.count(b": keep-alive")
    assert 3 <= pings <= 8, raw
    assert b'"error"' in raw


async def test_keepalive_flows_to_a_stream_client_while_headers_are_awaited(fault, polyrelay_http):
    upstream = ir.ANTHROPIC
    fault.push(accept_and_hang(2.0))
    config = "upstream-timeouts: {first-byte-seconds: 1.5}\nstreaming: {keepalive-seconds: 0.25}\nrequest-retry: 0\n"
    async with _gateway(fault, [upstream], config=config) as gw:
        path, headers, body = request_for(ir.ANTHROPIC, fault_model(upstream), "hi", True)
        async with polyrelay_http.post(gw.url + path, json=body, headers=headers) as response:
            first = await response.content.readany()
            raw = first + await response.read()
    assert response.status == 200
    assert first.startswith(b"event: ping"), "the client hears from the gateway before the upstream answers"
    assert raw.count(b"event: ping") >= 3
    assert b"event: message_stop" in raw and b"Hello from the fault upstream." in raw


async def test_when_every_credential_times_out_the_client_gets_a_timeout_error_in_its_dialect(fault, polyrelay_http):
    upstream = ir.GEMINI
    fault.push(accept_and_hang(), accept_and_hang())
    async with _gateway(fault, [upstream]) as gw:
        answer = await ask(polyrelay_http, gw.url, ir.ANTHROPIC, fault_model(upstream), "hi", stream=False)
    assert answer.status == 504
    assert answer.body["type"] == "error" and "timed out" in answer.body["error"]["message"]


async def test_a_stream_client_committed_early_gets_the_failure_as_its_terminal_error(fault, polyrelay_http):
    upstream = ir.OPENAI_RESPONSES
    fault.push(accept_and_hang(), accept_and_hang())
    config = "upstream-timeouts: {first-byte-seconds: 0.6}\nstreaming: {keepalive-seconds: 0.2}\nrequest-retry: 0\n"
    async with _gateway(fault, [upstream], config=config) as gw:
        answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, fault_model(upstream), "hi", stream=True)
    assert answer.status == 200
    assert answer.stream_error


async def test_total_deadline_bounds_a_stream_that_keeps_talking(fault, polyrelay_http):
    upstream = ir.OPENAI_CHAT
    # Content every 0.1 s, for longer than the total deadline allows.
    fault.push(Reply.sse(content_frames(upstream, fault_model(upstream)) * 40, interval=0.1))
    config = "upstream-timeouts: {total-seconds: 1.5}\n"
    async with _gateway(fault, [upstream], config=config) as gw:
        started = time.monotonic()
        answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, fault_model(upstream), "hi", stream=True)
        took = time.monotonic() - started
    assert answer.stream_error
    assert took < 4.0


@pytest.mark.parametrize("keepalive", [0, 0.2], ids=["no-ticks", "ticks"])
@pytest.mark.parametrize("client", [ir.OPENAI_CHAT, ir.ANTHROPIC], ids=["passthrough", "translated"])
async def test_a_stream_longer_than_its_idle_deadline_arrives_whole(fault, polyrelay_http, client, keepalive):
    """Frames 0.35 s apart, an idle deadline of 0.8 s, keep-alives every 0.2 s or none.

    The stream lasts longer than the idle deadline (and each gap outlasts a
    tick): the one alarm a stream's reads share must move with every frame
    and tell a keep-alive tick from a deadline.
    """
    upstream = ir.OPENAI_CHAT
    frames = stream_frames(upstream, fault_model(upstream))
    fault.push(Reply.sse(frames, interval=0.35))
    config = (f"upstream-timeouts: {{idle-seconds: 0.8}}\nstreaming: {{keepalive-seconds: {keepalive}}}\n"
              "request-retry: 0\n")
    async with _gateway(fault, [upstream], config=config) as gw:
        started = time.monotonic()
        answer = await ask(polyrelay_http, gw.url, client, fault_model(upstream), "hi", stream=True)
        took = time.monotonic() - started
    assert answer.status == 200 and answer.terminal and not answer.stream_error, answer.events
    assert answer.text == "Hello from the fault upstream."
    assert took > 0.8, "the stream must outlast its idle deadline for this test to mean anything"
    assert len(fault.requests) == 1, "no deadline passed, so nothing was retried"


async def test_deadlines_are_overridable_per_provider(fault, polyrelay_http):
    upstream = ir.OPENAI_CHAT
    fault.push(accept_and_hang(1.5))
    config = ("upstream-timeouts: {first-byte-seconds: 0.5, providers: {fault-openai-chat: {first-byte-seconds: 5}}}"
              "\nrequest-retry: 0\n")
    async with _gateway(fault, [upstream], config=config) as gw:
        answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, fault_model(upstream), "hi", stream=False)
    assert answer.status == 200
    assert len(fault.requests) == 1, "the provider's longer deadline let the slow answer arrive"


# -- garbage from the upstream ---------------------------------------------------


@pytest.mark.parametrize(("client", "upstream"), PAIRS)
async def test_a_non_json_200_body_fails_over(fault, polyrelay_http, client, upstream):
    fault.push(garbage_body())
    async with _gateway(fault, [upstream]) as gw:
        answer = await ask(polyrelay_http, gw.url, client, fault_model(upstream), "hi", stream=False)
        cooling = _cooling(gw)
    assert answer.status == 200, answer.body
    assert "Hello from the fault upstream." in answer.text
    assert len(cooling) == 1


@pytest.mark.parametrize("upstream", ir.DIALECTS)
async def test_a_json_200_body_of_the_wrong_shape_is_not_passed_through(fault, polyrelay_http, upstream):
    fault.push(Reply.json({"unexpected": True}), Reply.json([1, 2]))
    async with _gateway(fault, [upstream]) as gw:
        answer = await ask(polyrelay_http, gw.url, upstream, fault_model(upstream), "hi", stream=False)
    assert answer.status == 502
    assert b"unexpected" not in str(answer.body).encode()


@pytest.mark.parametrize("upstream", ir.DIALECTS)
@pytest.mark.parametrize("same_dialect", [True, False], ids=["passthrough", "translated"])
async def test_garbage_frames_fail_over_before_commit(fault, polyrelay_http, upstream, same_dialect):
    client = upstream if same_dialect else ir.OPENAI_CHAT if upstream != ir.OPENAI_CHAT else ir.ANTHROPIC
    fault.push(garbage_frames())
    async with _gateway(fault, [upstream]) as gw:
        answer = await ask(polyrelay_http, gw.url, client, fault_model(upstream), "hi", stream=True)
    assert answer.status == 200 and answer.terminal and not answer.stream_error
    assert "Hello from the fault upstream." in answer.text


@pytest.mark.parametrize("garbage", [b"<html>oops</html>", b'{"oops": [{"cut off here'], ids=["html", "cut-off"])
@pytest.mark.parametrize("upstream", ir.DIALECTS)
@pytest.mark.parametrize("same_dialect", [True, False], ids=["passthrough", "translated"])
async def test_garbage_after_content_ends_with_a_terminal_error_and_never_reaches_the_client(
    fault, polyrelay_http, upstream, same_dialect, garbage
):
    client = upstream if same_dialect else ir.OPENAI_CHAT if upstream != ir.OPENAI_CHAT else ir.ANTHROPIC
    fault.push(Reply.sse([*content_frames(upstream, fault_model(upstream)), b"data: " + garbage + b"\n\n"]))
    async with _gateway(fault, [upstream]) as gw:
        path, headers, body = request_for(client, fault_model(upstream), "hi", True)
        async with polyrelay_http.post(gw.url + path, json=body, headers=headers) as response:
            raw = await response.read()
        answer = await ask(polyrelay_http, gw.url, client, fault_model(upstream), "hi", stream=True)
    assert garbage[:6] not in raw
    assert b"Hello from the fault upstream." in raw
    assert answer.status == 200


# -- a request's own 5xx ---------------------------------------------------------


async def test_a_5xx_both_credentials_give_identically_counts_against_the_request(fault, polyrelay_http):
    upstream = ir.ANTHROPIC
    boom = {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}
    fault.push(Reply.json(boom, status=500), Reply.json(boom, status=500))
    async with _gateway(fault, [upstream]) as gw:
        bad = await ask(polyrelay_http, gw.url, ir.ANTHROPIC, fault_model(upstream), "hi", stream=False)
        cooling = _cooling(gw)
        good = [await ask(polyrelay_http, gw.url, ir.ANTHROPIC, fault_model(upstream), "hi",
                stream=False) for _ in range(2)]
    assert bad.status == 500
    assert cooling == [], "no credential is to blame for the request's own failure"
    assert [a.status for a in good] == [200, 200]


async def test_a_5xx_the_upstream_blames_on_the_request_cools_nothing(fault, polyrelay_http):
    upstream = ir.ANTHROPIC
    blamed = {"type": "error", "error": {"type": "invalid_request_error", "message": "messages: malformed"}}
    fault.push(Reply.json(blamed, status=500))
    async with _gateway(fault, [upstream]) as gw:
        bad = await ask(polyrelay_http, gw.url, ir.ANTHROPIC, fault_model(upstream), "hi", stream=False)
        cooling = _cooling(gw)
    assert bad.status == 500
    assert len(fault.requests) == 1 and cooling == []


async def test_a_credentials_own_5xx_cools_it_briefly_and_longer_only_if_it_repeats(fault, polyrelay_http):
    upstream = ir.OPENAI_CHAT
    boom = {"error": {"message": "upstream overloaded", "type": "server_error", "code": None}}
    async with _gateway(fault, [upstream], config="request-retry: 0\nrouting: {strategy: fill-first}\n") as gw:
        lengths = []
        for _ in range(3):
            fault.push(Reply.json(boom, status=503))
            answer = await ask(polyrelay_http, gw.url, ir.OPENAI_CHAT, fault_model(upstream), "hi", stream=False)
            assert answer.status == 200
            (row,) = _cooling(gw)
            lengths.append(row["model_cooldowns"][fault_model(upstream)]["seconds_left"])
            gw.gateway.pool.store.state(row["id"]).models.clear()  # ready again, failure count kept
    assert lengths[0] <= 1.0, "one 5xx is no reason to bench a shared credential for a minute"
    assert lengths[0] < lengths[1] < lengths[2]


# -- aborts ----------------------------------------------------------------------

PHASES = {
    "before-headers": lambda d, stream: accept_and_hang(),
    "after-headers": lambda d, stream: hang_after_headers(event_stream=stream),
    "mid-body": lambda d, stream: slow_drip(b"".join(stream_frames(d, fault_model(d))), interval=0.2,
                                            event_stream=stream),
    "mid-stream": lambda d, stream: Reply.sse(content_frames(d, fault_model(d)) * 50, interval=0.2),
}


@pytest.mark.parametrize("phase", list(PHASES))
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_a_client_abort_at_any_phase_closes_the_upstream_request(fault, polyrelay_http, phase, stream):
    upstream = ir.OPENAI_CHAT
    fault.push(PHASES[phase](upstream, stream))
    async with _gateway(fault, [upstream], config="") as gw:
        path, headers, body = request_for(ir.ANTHROPIC, fault_model(upstream), "hi", stream)
        task = asyncio.ensure_future(polyrelay_http.post(gw.url + path, json=body, headers=headers))
        for _ in range(250):
            if fault.active and (phase != "mid-stream" or not stream or task.done()):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        assert fault.active == 1
        if task.done():
            task.result().close()
        else:
            task.cancel()
        left = time.monotonic()
        assert await fault.wait_idle(5.0), f"the upstream request outlived the client ({phase})"
        assert fault.disconnects and fault.disconnects[0] - left < 3.0


async def test_a_client_leaving_during_early_keepalives_cancels_the_upstream_request(fault, polyrelay_http):
    upstream = ir.ANTHROPIC
    fault.push(accept_and_hang())
    async with _gateway(fault, [upstream], config="streaming: {keepalive-seconds: 0.2}\n") as gw:
        path, headers, body = request_for(ir.ANTHROPIC, fault_model(upstream), "hi", True)
        response = await polyrelay_http.post(gw.url + path, json=body, headers=headers)
        assert (await response.content.readany()).startswith(b"event: ping")
        assert fault.active == 1
        left = time.monotonic()
        response.close()
        assert await fault.wait_idle(5.0), "the upstream request outlived the client"
        assert fault.disconnects and fault.disconnects[0] - left < 3.0
