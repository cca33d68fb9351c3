"""The one stream handler: upstream bytes → translate_chunk → client frames.

Every provider's stream goes through :class:`StreamPump`.  It peeks until
the first item before the core commits status and headers (so an upstream
that fails at once becomes an HTTP error or a silent failover), interleaves
keep-alive frames while the upstream is silent, ends every stream with a
terminal event, and closes the upstream connection however the stream ends,
client disconnect included.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from polyrelay import ir, secrets
from polyrelay.dialects import Dialect, StreamEncoder
from polyrelay.passthrough import CONTENT_EVENTS, RawFrame
from polyrelay.types import StreamItem, StreamState
from polyrelay.upstream import BodyReader

#: Network failures that end an upstream stream.
UPSTREAM_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


def cut_error(detail: str) -> ir.ErrorInfo:
    """The error reported when the upstream stream breaks off."""
    return ir.ErrorInfo(status=502, message=f"upstream stream ended early: {detail}", kind="api_error")


def deadline_error(detail: str) -> ir.ErrorInfo:
    """The error reported when an upstream deadline passes."""
    return ir.ErrorInfo(status=504, message=f"upstream timed out: {detail}", kind="timeout")


class StreamPump:
    """Reads one upstream stream and turns it into client items.

    ``idle`` bounds the time between complete frames (a drip that never
    completes one is idle), ``total_at`` (a ``time.monotonic()`` instant) the
    whole stream.  Either ends the stream with a timeout
    :class:`ir.StreamError`.

    One alarm per stream serves every read: a read that is due later than
    the alarm leaves it set, and an alarm that rings before the current
    read is due sets itself again.  A timer per read (``asyncio.timeout``,
    about 4 µs) cost more than the rest of a pass-through frame.
    """

    def __init__(
        self,
        reader: BodyReader,
        state: StreamState,
        translate: Callable[..., list[StreamItem]],
        idle: float | None = None,
        total_at: float | None = None,
    ) -> None:
        self.reader = reader
        self.state = state
        self._translate = translate
        self._idle = idle
        self._total_at = total_at
        self._progress = time.monotonic()
        self.done = False
        self._alarm: asyncio.TimerHandle | None = None
        self._alarm_at = math.inf
        #: The task blocked in a read, and when that read is due.
        self._reader_task: asyncio.Task[Any] | None = None
        self._due = math.inf
        self._rang = False

    def _deadline(self, now: float) -> tuple[float | None, str]:
        """Seconds left before a deadline, and what passing it means."""
        left, why = None, ""
        if self._idle is not None:
            left, why = self._progress + self._idle - now, f"no complete frame for {self._idle:g}s"
        if self._total_at is not None and (left is None or self._total_at - now < left):
            left, why = self._total_at - now, "the answer took longer than its total deadline"
        return left, why

    async def next_items(self, tick: float | None) -> list[StreamItem] | None:
        """Items from the next upstream chunk; ``None`` if the keep-alive ``tick`` passed first.

        At the end of the body, the decoder is flushed, and a stream that
        ended without its terminal event gets a :class:`ir.StreamError`.
        A due read is cancelled: aiohttp consumes nothing until ``readany``
        returns, so no bytes are lost, and no task is spawned per chunk.
        Only this pump's alarm is a tick or a deadline: a ``TimeoutError``
        from inside the read is a broken upstream, which ends the stream
        (never a loop of keep-alives), and any other cancellation goes on.
        """
        now = time.monotonic()
        left, why = self._deadline(now)
        wait = tick if left is None else max(0.0, left if tick is None else min(tick, left))
        task, cancelling = None, 0
        if wait is not None:
            task = asyncio.current_task()
            assert task is not None
            cancelling = task.cancelling()  # as asyncio.timeout does: only our own cancel is ours to take back
            self._reader_task, self._due, self._rang = task, now + wait, False
            if self._due < self._alarm_at:
                self._set_alarm(self._due)
        try:
            data = await self.reader.read_chunk()
        except asyncio.CancelledError:
            if task is None or not self._rang or task.uncancel() > cancelling:
                raise
            if left is not None and (tick is None or left <= tick):
                self.done = True
                return [ir.StreamError(deadline_error(why))]
            return None
        except UPSTREAM_ERRORS as exc:
            return self._cut(exc)
        finally:
            self._reader_task = None
        if data:
            state = self.state
            items = self._translate(provider=state.provider, stream=state, data=data)
            if items or b"\n\n" in data or b"\r\n\r\n" in data:
                self._progress = time.monotonic()
            return items
        self.done = True
        items = list(self.state.decoder.close())
        if not self.state.decoder.finished:
            items.append(ir.StreamError(cut_error("the upstream closed the connection before its final event")))
        return items

    def _set_alarm(self, when: float) -> None:
        if self._alarm is not None:
            self._alarm.cancel()
        # A delay, not a loop instant: the pump's clock is time.monotonic(), whatever the loop's is.
        self._alarm = asyncio.get_running_loop().call_later(max(0.0, when - time.monotonic()), self._ring)
        self._alarm_at = when

    def _ring(self) -> None:
        self._alarm, self._alarm_at = None, math.inf
        task = self._reader_task
        if task is None or self.done:
            return  # between reads: the next read sets the alarm it needs
        if time.monotonic() < self._due:
            self._set_alarm(self._due)
        elif not self._rang:
            self._rang = True
            task.cancel()

    def _cut(self, exc: BaseException) -> list[StreamItem]:
        self.done = True
        return [ir.StreamError(cut_error(exc.__class__.__name__))]

    def close(self) -> None:
        """Stop reading and drop the upstream connection (idempotent)."""
        if self._alarm is not None:
            self._alarm.cancel()
            self._alarm, self._alarm_at = None, math.inf
        self.reader.response.close()


def opening(items: list[StreamItem]) -> ir.ErrorInfo | bool:
    """How a stream opens: an error before any content, True once content began, False if not yet known."""
    for item in items:
        if isinstance(item, ir.StreamError):
            return item.error
        if isinstance(item, RawFrame):
            if item.error is not None:
                return item.error
            if item.content:
                return True
        elif isinstance(item, CONTENT_EVENTS):
            return True
    return False


class FrameWriter:
    """Encodes items into client bytes: codec frames or pass-through frames."""

    def __init__(self, encoder: StreamEncoder | None, client_dialect: Dialect) -> None:
        self.encoder = encoder
        self.client_dialect = client_dialect
        self.terminated = False

    def write(self, items: list[StreamItem]) -> bytes:
        """Bytes for a batch of items."""
        out = []
        for item in items:
            if self.terminated:
                break
            if isinstance(item, ir.StreamError):
                item = ir.StreamError(secrets.scrub_error(item.error))  # upstream text may quote a key
            if isinstance(item, RawFrame):
                # An upstream's error frame may quote a key; content frames are the model's answer, untouched.
                out.append(secrets.scrub_bytes(item.data) if item.error is not None else item.data)
                self.terminated = item.terminal
            elif self.encoder is not None:
                out.append(self.encoder.encode(item))
                self.terminated = isinstance(item, (ir.MessageStop, ir.StreamError))
            elif isinstance(item, ir.StreamError):
                out.append(self.client_dialect.passthrough_error_frame(item.error))
                self.terminated = True
        return b"".join(out)

    def finish(self) -> bytes:
        """Closing bytes (a JSON array's ``]``)."""
        return self.encoder.finish() if self.encoder is not None else b""


async def client_stream(
    pump: StreamPump,
    writer: FrameWriter,
    first: list[StreamItem],
    keepalive: float,
    keepalive_frame: bytes,
    on_end: Callable[[], Any] | None = None,
) -> AsyncIterator[bytes]:
    """The body of a committed streaming response."""
    try:
        data = writer.write(first)
        if data:
            yield data
        while not pump.done and not writer.terminated:
            items = await pump.next_items(keepalive or None)
            if items is None:
                yield keepalive_frame
                continue
            data = writer.write(items)
            if data:
                yield data
        if not writer.terminated:
            # The decoder ended without a terminal item: still end the stream properly.
            data = writer.write([ir.StreamError(cut_error("no final event"))])
            if data:
                yield data
        tail = writer.finish()
        if tail:
            yield tail
    finally:
        pump.close()
        if on_end is not None:
            with contextlib.suppress(Exception):
                on_end()
