"""A fast OpenAI Chat Completions upstream for the benchmark (raw asyncio).

Run as ``python -m bench.upstream --port N``.  Every response is built once
at start-up; per request the server only finds the end of the head, the
``Content-Length`` and two flags in the body (``"stream"`` and
``"include_usage"``).  The path prefix picks the stream profile:

``/v1/chat/completions``
    non-stream: a fixed ~1 KB ``chat.completion``; stream: ``--deltas``
    content deltas written back to back, one ``write`` (one chunk) each.
``/paced/v1/chat/completions``
    stream: the deltas ``--interval-ms`` apart; each delta's text is
    ``@`` + the send time (``time.monotonic_ns()``, 20 digits), so a client
    on the same machine can compute every frame's transit latency.
``/hold/v1/chat/completions``
    stream: the role frame and one content delta, then silence for
    ``--hold-seconds`` (or until the peer closes): an open idle stream.
``/long/v1/chat/completions``
    stream: like the default but ``--long-deltas`` deltas.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from typing import Any

from bench.proc import raise_own_nofile

MODEL = "bench-model"
CREATED = 1_700_000_000
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
CHUNK_END = b"0\r\n\r\n"
MAX_HEAD = 64 * 1024


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def sse_chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    """A ``data: {chat.completion.chunk}`` frame."""
    body = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + _dump(body) + b"\n\n"


USAGE_FRAME = b"data: " + _dump({
    "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED, "model": MODEL, "choices": [],
    "usage": {"prompt_tokens": 256, "completion_tokens": 64, "total_tokens": 320}}) + b"\n\n"
DONE_FRAME = b"data: [DONE]\n\n"


def completion_response(text_size: int = 700) -> bytes:
    """The complete non-stream HTTP response (fixed size, ~1 KB)."""
    text = ("The quick brown fox jumps over the lazy dog. " * (text_size // 45 + 1))[:text_size]
    body = _dump({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": CREATED, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 256, "completion_tokens": 160, "total_tokens": 416},
    })
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def not_found() -> bytes:
    """A 404 for paths the simulator does not serve."""
    body = _dump({"error": {"message": "not found", "type": "invalid_request_error", "param": None, "code": None}})
    return b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body), body)


def flag(body: bytes, key: bytes) -> bool:
    """Whether the JSON ``body`` sets ``key`` (quoted) to ``true`` (a byte search, no parse)."""
    start = body.find(key)
    guard = 0
    while start >= 0 and guard < 64:
        pos = start + len(key)
        while body[pos:pos + 1] in (b" ", b"\t", b"\n", b"\r"):
            pos += 1
        if body[pos:pos + 1] == b":":
            pos += 1
            while body[pos:pos + 1] in (b" ", b"\t", b"\n", b"\r"):
                pos += 1
            return body.startswith(b"true", pos)
        start = body.find(key, start + 1)
        guard += 1
    return False


class Profile:
    """Precomputed stream bytes and timing parameters shared by every connection."""

    def __init__(self, deltas: int, interval: float, hold: float, long_deltas: int = 512) -> None:
        self.deltas = deltas
        self.interval = interval
        self.hold = hold
        self.completion = completion_response()
        self.not_found = not_found()
        self.first = STREAM_HEAD + chunk(sse_chunk({"role": "assistant", "content": ""}))
        self.delta_chunks = [chunk(sse_chunk({"content": f" tok{i % 1000:03d}"})) for i in range(deltas)]
        self.long_chunks = [chunk(sse_chunk({"content": f" tok{i % 1000:03d}"})) for i in range(long_deltas)]
        finish = chunk(sse_chunk({}, "stop"))
        self.tail = finish + chunk(DONE_FRAME) + CHUNK_END
        self.tail_usage = finish + chunk(USAGE_FRAME) + chunk(DONE_FRAME) + CHUNK_END

    @staticmethod
    def stamped_chunk() -> bytes:
        """A content delta carrying the current monotonic time."""
        return chunk(sse_chunk({"content": f"@{time.monotonic_ns():020d}"}))


class UpstreamProtocol(asyncio.Protocol):
    """One client connection (HTTP/1.1 keep-alive, no pipelining needed)."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.head: tuple[bytes, int, bool] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.busy = False
        self.pending: list[tuple[bytes, bytes, bool]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport."""
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop any scheduled stream writes."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.transport = None

    def data_received(self, data: bytes) -> None:
        """Parse complete requests out of the buffer and answer them."""
        self.buf += data
        for _ in range(64):  # bounded: at most 64 pipelined requests per read
            if self.head is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buf) > MAX_HEAD and self.transport is not None:
                        self.transport.close()
                    return
                head = bytes(self.buf[:end])
                del self.buf[:end + 4]
                self.head = self._parse_head(head)
            path, length, close = self.head
            if len(self.buf) < length:
                return
            body = bytes(self.buf[:length])
            del self.buf[:length]
            self.head = None
            if self.busy:
                self.pending.append((path, body, close))
            else:
                self._respond(path, body, close)

    @staticmethod
    def _parse_head(head: bytes) -> tuple[bytes, int, bool]:
        first, _, rest = head.partition(b"\r\n")
        parts = first.split(b" ")
        path = parts[1] if len(parts) > 1 else b"/"
        length = 0
        close = False
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip() or b"0")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        return path, length, close

    def _respond(self, path: bytes, body: bytes, close: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not path.endswith(b"/chat/completions"):
            transport.write(self.profile.not_found)
            self._after(close)
            return
        if not flag(body, b'"stream"'):
            transport.write(self.profile.completion)
            self._after(close)
            return
        usage = flag(body, b'"include_usage"')
        tail = self.profile.tail_usage if usage else self.profile.tail
        if path.startswith(b"/hold/"):
            self.busy = True
            # The role frame and one content delta: a gateway that commits its
            # response only once content began (polyrelay since issue #7, for
            # silent failover) must have committed, or the stream is not held.
            transport.write(self.profile.first + self.profile.delta_chunks[0])
            self.timer = self.loop.call_later(self.profile.hold, self._finish, tail, close)
        elif path.startswith(b"/paced/"):
            self.busy = True
            transport.write(self.profile.first)
            start = self.loop.time()
            self.timer = self.loop.call_at(start + self.profile.interval, self._paced, start, 0, tail, close)
        else:
            transport.write(self.profile.first)
            deltas = self.profile.long_chunks if path.startswith(b"/long/") else self.profile.delta_chunks
            for data in deltas:
                transport.write(data)
            transport.write(tail)
            self._after(close)

    def _paced(self, start: float, index: int, tail: bytes, close: bool) -> None:
        self.timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(self.profile.stamped_chunk())
        index += 1
        if index >= self.profile.deltas:
            self._finish(tail, close)
            return
        when = start + (index + 1) * self.profile.interval
        self.timer = self.loop.call_at(when, self._paced, start, index, tail, close)

    def _finish(self, tail: bytes, close: bool) -> None:
        self.timer = None
        self.busy = False
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(tail)
        self._after(close)
        if self.pending and self.transport is not None:
            path, body, close_next = self.pending.pop(0)
            self._respond(path, body, close_next)

    def _after(self, close: bool) -> None:
        if close and self.transport is not None:
            self.transport.close()


async def serve(port: int, profile: Profile, lifetime: float) -> None:
    """Serve on 127.0.0.1:``port`` until SIGTERM/SIGINT or ``lifetime`` seconds."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(profile), "127.0.0.1", port, backlog=4096,
                                      reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {port}", flush=True)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=lifetime)
    server.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench.upstream``."""
    parser = argparse.ArgumentParser(description="polyrelay bench upstream simulator")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--deltas", type=int, default=64)
    parser.add_argument("--interval-ms", type=float, default=10.0)
    parser.add_argument("--hold-seconds", type=float, default=600.0)
    parser.add_argument("--long-deltas", type=int, default=512)
    parser.add_argument("--lifetime", type=float, default=3600.0, help="exit after this many seconds regardless")
    args = parser.parse_args(argv)
    raise_own_nofile()
    profile = Profile(args.deltas, args.interval_ms / 1000.0, args.hold_seconds, args.long_deltas)
    asyncio.run(serve(args.port, profile, args.lifetime))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
