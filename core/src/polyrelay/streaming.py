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
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from polyrelay import ir, secrets
from polyrelay.dialects import StreamEncoder
from polyrelay.passthrough import RawFrame, error_frame
from polyrelay.types import StreamItem, StreamState
from polyrelay.upstream import BodyReader

#: Network failures that end an upstream stream.
UPSTREAM_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


def cut_error(detail: str) -> ir.ErrorInfo:
    """The error reported when the upstream stream breaks off."""
    return ir.ErrorInfo(status=502, message=f"upstream stream ended early: {detail}", kind="api_error")


class StreamPump:
    """Reads one upstream stream and turns it into client items."""

    def __init__(
        self,
        reader: BodyReader,
        state: StreamState,
        translate: Callable[..., list[StreamItem]],
    ) -> None:
        self.reader = reader
        self.state = state
        self._translate = translate
        self.done = False

    async def next_items(self, timeout: float | None) -> list[StreamItem] | None:
        """Items from the next upstream chunk; ``None`` if ``timeout`` passed first.

        At the end of the body, the decoder is flushed, and a stream that
        ended without its terminal event gets a :class:`ir.StreamError`.
        A timeout cancels the read itself: aiohttp consumes nothing until
        ``readany`` returns, so no bytes are lost, and no task is spawned
        per chunk.
        """
        try:
            async with asyncio.timeout(timeout):
                data = await self.reader.read_chunk()
        except TimeoutError:
            return None
        except UPSTREAM_ERRORS as exc:
            self.done = True
            return [ir.StreamError(cut_error(exc.__class__.__name__))]
        if data:
            state = self.state
            return self._translate(provider=state.provider, stream=state, data=data)
        self.done = True
        items: list[StreamItem] = list(self.state.decoder.close())
        if not self.state.decoder.finished:
            items.append(ir.StreamError(cut_error("the upstream closed the connection before its final event")))
        return items

    def close(self) -> None:
        """Stop reading and drop the upstream connection (idempotent)."""
        self.reader.response.close()


def first_error(items: list[StreamItem]) -> ir.ErrorInfo | None:
    """The error among the first items, if the stream failed before any content."""
    for item in items:
        if isinstance(item, ir.StreamError):
            return item.error
        if isinstance(item, RawFrame):
            return item.error
        if isinstance(item, (ir.BlockStart, ir.BlockDelta, ir.MessageDelta, ir.MessageStop)):
            return None
    return None


class FrameWriter:
    """Encodes items into client bytes: codec frames or pass-through frames."""

    def __init__(self, encoder: StreamEncoder | None, client_dialect: str) -> None:
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
                out.append(secrets.scrub_bytes(item.data, shapes=item.error is not None))
                self.terminated = item.terminal
            elif self.encoder is not None:
                out.append(self.encoder.encode(item))
                self.terminated = isinstance(item, (ir.MessageStop, ir.StreamError))
            elif isinstance(item, ir.StreamError):
                out.append(error_frame(self.client_dialect, item.error))
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
