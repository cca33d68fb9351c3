"""A minimal HTTP/1.1 keep-alive client on asyncio protocols, for the load generator.

It sends precomputed request bytes and parses the response incrementally
(``Content-Length``, chunked, or until close), handing decoded body bytes to
a *sink* with the arrival time (``time.monotonic_ns()``).  It does far less
work per request than aiohttp or httpx, so the client stays out of the
measurement.  A blocking one-shot helper for probes is at the bottom.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time

_IDLE, _HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILER, _EOF = range(8)
_STAMP = re.compile(rb"@(\d{20})")
_OVERHEAD = re.compile(rb"(?im)^x-polyrelay-(?:overhead|elapsed)-ms:\s*([0-9.]+)")


class Sink:
    """Receives one response; the base class keeps the first body time and up to 8 KB of body."""

    __slots__ = ("body", "first_ns", "head", "keep", "size", "status")

    def __init__(self, keep: int = 0) -> None:
        self.status = 0
        self.head = b""
        self.first_ns = 0
        self.size = 0
        self.keep = keep
        self.body = bytearray()

    def on_head(self, status: int, head: bytes, now: int) -> None:
        """The status line and headers arrived."""
        self.status = status
        self.head = head

    def on_body(self, data: bytes, now: int) -> None:
        """Decoded body bytes arrived at ``now``."""
        if not self.first_ns:
            self.first_ns = now
        self.size += len(data)
        if len(self.body) < self.keep:
            self.body += data[: self.keep - len(self.body)]

    def overhead_ms(self) -> float | None:
        """The gateway's self-reported overhead header, if any."""
        match = _OVERHEAD.search(self.head)
        return float(match.group(1)) if match else None


class StreamSink(Sink):
    """Counts SSE frames, notices the terminal frame, optionally collects frame stamps."""

    __slots__ = ("first_event", "frames", "stamps", "tail", "terminal", "want_stamps")

    def __init__(self, want_stamps: bool = False, first_event: asyncio.Event | None = None) -> None:
        super().__init__(0)
        self.frames = 0
        self.tail = b""
        self.terminal = False
        self.want_stamps = want_stamps
        self.stamps: list[tuple[int, int]] = []  # (sent_ns, received_ns)
        self.first_event = first_event

    def on_body(self, data: bytes, now: int) -> None:
        """Count complete frames (``\\n\\n`` ends one, also across reads)."""
        if not self.first_ns:
            self.first_ns = now
            if self.first_event is not None:
                self.first_event.set()
        self.size += len(data)
        joined = self.tail + data
        self.frames += joined.count(b"\n\n") - self.tail.count(b"\n\n")
        self.tail = joined[-64:]
        if not self.terminal and (b"[DONE]" in joined or b"message_stop" in joined):
            self.terminal = True
        if self.want_stamps:
            for match in _STAMP.finditer(data):
                self.stamps.append((int(match.group(1)), now))


class Connection(asyncio.Protocol):
    """One keep-alive connection; :meth:`request` returns ``(status, end_ns)``."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.state = _IDLE
        self.remaining = 0
        self.keep_alive = True
        self.sink: Sink | None = None
        self.waiter: asyncio.Future[tuple[int, int]] | None = None
        self.closed = False

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> Connection:
        """Connect to ``host:port``."""
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport."""
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        """A close ends an until-close body; anything else fails the pending request."""
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.state == _EOF:
            self._finish(time.monotonic_ns())
        else:
            self.waiter = None
            waiter.set_exception(ConnectionError(f"connection closed mid-response ({exc})"))

    def close(self) -> None:
        """Close the connection."""
        if self.transport is not None:
            self.transport.close()
        self.closed = True

    def request(self, raw: bytes, sink: Sink) -> asyncio.Future[tuple[int, int]]:
        """Send ``raw``; the future resolves when the whole response has arrived."""
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectionError("connection is closed")
        self.sink = sink
        self.state = _HEAD
        self.buf = b""
        self.keep_alive = True
        waiter = self.waiter = self.loop.create_future()
        self.transport.write(raw)
        return waiter

    def data_received(self, data: bytes) -> None:
        """Advance the response parser."""
        now = time.monotonic_ns()
        if self.buf:
            data = self.buf + data
            self.buf = b""
        sink = self.sink
        pos = 0
        size = len(data)
        while pos < size:
            state = self.state
            if state == _HEAD:
                end = data.find(b"\r\n\r\n", pos)
                if end < 0:
                    self.buf = data[pos:]
                    return
                head = data[pos:end]
                pos = end + 4
                self._head(head, now)
            elif state == _LENGTH:
                take = min(self.remaining, size - pos)
                if sink is not None:
                    sink.on_body(data[pos:pos + take], now)
                pos += take
                self.remaining -= take
                if self.remaining == 0:
                    self._finish(now)
            elif state == _CHUNK_SIZE:
                end = data.find(b"\r\n", pos)
                if end < 0:
                    self.buf = data[pos:]
                    return
                length = int(data[pos:end].split(b";", 1)[0], 16)
                pos = end + 2
                if length == 0:
                    self.state = _TRAILER
                else:
                    self.remaining = length
                    self.state = _CHUNK_DATA
            elif state == _CHUNK_DATA:
                take = min(self.remaining, size - pos)
                if sink is not None:
                    sink.on_body(data[pos:pos + take], now)
                pos += take
                self.remaining -= take
                if self.remaining == 0:
                    self.state = _CHUNK_CRLF
            elif state == _CHUNK_CRLF:
                if size - pos < 2:
                    self.buf = data[pos:]
                    return
                pos += 2
                self.state = _CHUNK_SIZE
            elif state == _TRAILER:
                if data.startswith(b"\r\n", pos):
                    pos += 2
                    self._finish(now)
                else:
                    end = data.find(b"\r\n\r\n", pos)
                    if end < 0:
                        self.buf = data[pos:]
                        return
                    pos = end + 4
                    self._finish(now)
            elif state == _EOF:
                if sink is not None:
                    sink.on_body(data[pos:], now)
                return
            else:
                return  # unsolicited bytes: ignore

    def _head(self, head: bytes, now: int) -> None:
        line, _, rest = head.partition(b"\r\n")
        parts = line.split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        lower = rest.lower()
        length = -1
        chunked = False
        for header in lower.split(b"\r\n"):
            name, _, value = header.partition(b":")
            if name == b"content-length":
                length = int(value.strip() or b"0")
            elif name == b"transfer-encoding" and b"chunked" in value:
                chunked = True
            elif name == b"connection" and b"close" in value:
                self.keep_alive = False
        if self.sink is not None:
            self.sink.on_head(status, rest, now)
        if 100 <= status < 200:
            self.state = _HEAD  # interim response: the real one follows
        elif chunked:
            self.state = _CHUNK_SIZE
        elif length > 0:
            self.remaining = length
            self.state = _LENGTH
        elif length == 0 or status in (204, 304):
            self._finish(now)
        else:
            self.state = _EOF

    def _finish(self, now: int) -> None:
        self.state = _IDLE
        waiter, self.waiter = self.waiter, None
        status = self.sink.status if self.sink is not None else 0
        if waiter is not None and not waiter.done():
            waiter.set_result((status, now))
        if not self.keep_alive:
            self.close()


def request_once(port: int, raw: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    """Blocking: send ``raw`` (which should say ``Connection: close``) and read until close.

    Returns ``(status, decoded body)``; raises ``OSError`` when nobody listens.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        parts = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            parts.append(data)
    response = b"".join(parts)
    head, _, body = response.partition(b"\r\n\r\n")
    line = head.split(b"\r\n", 1)[0].split(b" ")
    status = int(line[1]) if len(line) > 1 and line[1].isdigit() else 0
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return status, body


def _dechunk(data: bytes) -> bytes:
    out = []
    pos = 0
    for _ in range(1_000_000):
        end = data.find(b"\r\n", pos)
        if end < 0:
            break
        length = int(data[pos:end].split(b";", 1)[0] or b"0", 16)
        if length == 0:
            break
        out.append(data[end + 2:end + 2 + length])
        pos = end + 2 + length + 2
    return b"".join(out)
