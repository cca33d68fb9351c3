"""Delivering a 2xx upstream answer: pass it through, or translate it.

Which of the two is chosen once per attempt (:func:`choose`); everything
that differs between them lives in :class:`PassThrough` and
:class:`Translate`.  :func:`deliver` then reads the answer under the
attempt's deadlines: a complete body, a stream peeked until its first item
(an upstream that fails before any content becomes a failover, not a client
error), or a stream folded into one body for a non-stream client.

Every path that owns the upstream response closes it when it is done with
it, on cancellation too.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import aiohttp
import attrs

from polyrelay import aggregate, ir, jsonutil
from polyrelay.config import UpstreamTimeouts
from polyrelay.dialects import Dialect, DialectError, StreamDecoder
from polyrelay.dialects.base import looks_like_response
from polyrelay.passthrough import PassthroughDecoder, model_patch
from polyrelay.plugins import Binding
from polyrelay.results import JSON, Complete, Stream
from polyrelay.streaming import UPSTREAM_ERRORS, FrameWriter, StreamPump, client_stream, deadline_error, opening
from polyrelay.types import ClientRequest, Credential, StreamItem, StreamState, UpstreamRequest
from polyrelay.unwrap import Unwrap, UnwrappingDecoder
from polyrelay.upstream import BodyReader


@attrs.define
class Attempt:
    """One try of one request on one credential, with its own state."""

    binding: Binding
    credential: Credential
    #: The attempt's copy of the client request (``upstream_model`` set).
    request: ClientRequest
    client: Dialect
    upstream: Dialect
    #: The client's body goes upstream as it is (model aside).
    passthrough: bool
    timeouts: UpstreamTimeouts
    #: Seconds spent waiting on the upstream in this attempt.
    upstream_seconds: float = 0.0


class Unreadable(Exception):
    """The upstream's 2xx answer is not what its dialect promises."""


NOT_A_RESPONSE = "the upstream's answer is not a response of its dialect"


def parse_body(body: bytes) -> Any:
    """A complete upstream body's JSON; :class:`Unreadable` if it is not JSON."""
    try:
        return jsonutil.loads(body)
    except ValueError as exc:
        raise _unreadable(exc) from None


def _unreadable(exc: Exception) -> Unreadable:
    return Unreadable(f"unreadable upstream response ({exc.__class__.__name__})")


def read_response(upstream: Dialect, body: bytes) -> ir.Response:
    """A complete upstream body decoded, if it is a response of its dialect at all.

    Codecs read leniently (unknown fields are kept, missing ones defaulted),
    so ``{}`` would decode as an empty answer: a real one has an id, usage
    or content.
    """
    try:
        decoded = upstream.decode_response(parse_body(body))
    except DialectError as exc:
        raise _unreadable(exc) from None
    usage = decoded.usage
    if not (decoded.parts or decoded.id or usage.input_tokens or usage.output_tokens):
        raise Unreadable(NOT_A_RESPONSE)
    return decoded


class Translate:
    """The upstream's answer decoded by its codec and re-encoded in the client's."""

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt

    def complete(self, body: bytes) -> bytes:
        """The client's body for a complete upstream body."""
        attempt = self.attempt
        decoded = read_response(attempt.upstream, body)
        decoded.model = attempt.request.model
        return jsonutil.dumps(attempt.client.encode_response(decoded))

    def decoder(self) -> StreamDecoder:
        """A fresh decoder for the upstream stream."""
        return self.attempt.upstream.stream_decoder()

    def writer(self) -> FrameWriter:
        """Encodes the stream's items for the client."""
        request = self.attempt.request
        encoder = self.attempt.client.stream_encoder(attrs.evolve(request.decoded(), model=request.model),
                                                     sse=request.sse)
        return FrameWriter(encoder, self.attempt.client)


class PassThrough:
    """The upstream's bytes forwarded as they are, model renamed, after a validity check."""

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt

    def complete(self, body: bytes) -> bytes:
        """The body itself, once it proved to be a response of the dialect.

        Checked as a stream's frames are, by its shape and not by decoding
        it: the bytes are not read again, and a full decode is most of the
        CPU a passed-through answer would otherwise cost.
        """
        attempt = self.attempt
        if not looks_like_response(attempt.upstream, parse_body(body)):
            raise Unreadable(NOT_A_RESPONSE)
        patch = model_patch(attempt.request.upstream_model, attempt.request.model)
        return patch(body) if patch else body

    def decoder(self) -> PassthroughDecoder:
        """Splits the upstream stream into frames."""
        request = self.attempt.request
        return PassthroughDecoder(self.attempt.upstream, request.upstream_model, request.model)

    def writer(self) -> FrameWriter:
        """Writes the frames unchanged."""
        return FrameWriter(None, self.attempt.client)


Delivery = Translate | PassThrough


def choose(attempt: Attempt, upstream_stream: bool) -> Delivery:
    """Pass-through when the body went as it was and the answer's form suits the client.

    A non-stream client of a stream-only upstream is served by folding the
    stream, which needs the codec even in the same dialect.
    """
    if attempt.passthrough and (attempt.request.stream or not upstream_stream):
        return PassThrough(attempt)
    return Translate(attempt)


async def deliver(
    attempt: Attempt, response: aiohttp.ClientResponse, upstream: UpstreamRequest, keepalive: float
) -> Complete | Stream | ir.ErrorInfo:
    """The client's result for a 2xx upstream answer, or the error that makes it a failed attempt.

    ``upstream`` is the request that was sent: whether it asked for a stream,
    its ``unwrap`` (an upstream's envelope taken off the body, or off each SSE
    payload, before anything else reads it) and the ``context`` its stream's
    ``translate_chunk`` finds in ``extra``.
    """
    upstream_stream, unwrap = upstream.stream, upstream.unwrap
    delivery = choose(attempt, upstream_stream)
    reader = BodyReader(response)
    timeouts = attempt.timeouts
    total_at = time.monotonic() + timeouts.total_seconds if timeouts.total_seconds else None
    if not upstream_stream:
        return await _complete(attempt, delivery, reader, total_at, unwrap)
    request = attempt.request
    decoder: Any = delivery.decoder()
    if unwrap is not None:
        decoder = UnwrappingDecoder(decoder, unwrap)
    state = StreamState(client=request, provider=attempt.binding.provider, credential=attempt.credential,
                        decoder=decoder, passthrough=isinstance(delivery, PassThrough),
                        extra=dict(upstream.context))
    pump = StreamPump(reader, state, attempt.binding.translate_chunk, idle=timeouts.idle_seconds or None,
                      total_at=total_at)
    if not request.stream:
        return await _aggregate(attempt, pump)
    started = time.perf_counter()
    first: list[StreamItem] = []
    opened: ir.ErrorInfo | bool = False
    try:
        while opened is False and not pump.done:
            # No tick: until content begins nothing is committed; the HTTP layer keeps the client alive.
            first.extend(await pump.next_items(None) or [])
            opened = opening(first)
    except BaseException:
        pump.close()
        raise
    finally:
        attempt.upstream_seconds += time.perf_counter() - started
    if isinstance(opened, ir.ErrorInfo):
        pump.close()
        return opened
    writer = delivery.writer()
    # Committed: no retry will need the request body again, and a stream can live for minutes.
    state.client = request.without_body()
    frames = client_stream(pump, writer, first, keepalive if request.sse else 0.0, attempt.client.keepalive_frame)
    return Stream(frames, "text/event-stream" if request.sse else JSON, close=pump.close)


async def _complete(
    attempt: Attempt, delivery: Delivery, reader: BodyReader, total_at: float | None, unwrap: Unwrap | None
) -> Complete | ir.ErrorInfo:
    timeouts = attempt.timeouts
    limits = [s for s in (timeouts.idle_seconds, total_at and total_at - time.monotonic()) if s]
    # A body that came with its headers (most small answers) is read without waiting: no timer for it.
    wait = min(limits) if limits and not reader.response.content.is_eof() else None
    started = time.perf_counter()
    try:
        async with asyncio.timeout(wait) as deadline:
            body = await reader.read_all()
    except TimeoutError:
        reader.response.close()
        if deadline.expired():
            return deadline_error(f"the upstream body did not arrive within {wait:g}s")
        return ir.ErrorInfo(502, "upstream body broke off (TimeoutError)", kind="api_error")
    except UPSTREAM_ERRORS as exc:
        reader.response.close()
        return ir.ErrorInfo(502, f"upstream body broke off ({exc.__class__.__name__})", kind="api_error")
    except BaseException:
        reader.response.close()  # cancelled (the client left): the connection must not linger
        raise
    finally:
        attempt.upstream_seconds += time.perf_counter() - started
    reader.response.release()
    if unwrap is not None:
        body = unwrap(body)
    try:
        return Complete(delivery.complete(body))
    except Unreadable as exc:
        return ir.ErrorInfo(502, str(exc), kind="api_error")


async def _aggregate(attempt: Attempt, pump: StreamPump) -> Complete | ir.ErrorInfo:
    """A non-stream client served from an upstream stream."""
    request = attempt.request
    collector = aggregate.Collector(request.model)
    started = time.perf_counter()
    try:
        while not pump.done:
            for item in await pump.next_items(None) or []:
                collector.add(cast(ir.Event, item))  # a folded stream is translated: no raw frames
            if collector.error is not None or collector.stopped:
                break
    finally:
        pump.close()
        attempt.upstream_seconds += time.perf_counter() - started
    if collector.error is not None:
        # Nothing has reached the client: a stream that broke off, or ended without its final
        # event, is a failed attempt to retry elsewhere, never a truncated answer passed as whole.
        return collector.error
    result = collector.result()
    result.model = request.model
    return Complete(jsonutil.dumps(attempt.client.encode_response(result)))
