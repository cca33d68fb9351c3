"""The HTTP side of a result: Starlette responses, built here and nowhere else.

Dispatch (:mod:`polyrelay.gateway`) returns a :data:`polyrelay.results.Result`;
this module turns it into a response, watches for the client leaving, and
keeps a slow answer's connection alive.  While dispatch is still working
(the upstream has not sent its headers, or the gateway waits for a cooling
credential), a client that allows it is committed early: a non-stream client
gets a 200 and blank lines (JSON parsers skip leading whitespace), an SSE
client a 200 and the dialect's keep-alive frame.  Whatever dispatch returns
later follows in the same body; a failure then arrives as the dialect's
error body or terminal error frame, since the status line has been sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from polyrelay import ir, jsonutil, secrets
from polyrelay.dialects import Dialect, get_dialect
from polyrelay.results import JSON, Complete, Failure, Result, Stream

log = logging.getLogger("polyrelay.responses")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def error_response(dialect: Dialect | str, error: ir.ErrorInfo) -> Response:
    """A complete error response in ``dialect``'s shape (a dialect or its name)."""
    codec = get_dialect(dialect) if isinstance(dialect, str) else dialect
    headers = {}
    if error.retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(error.retry_after)))
    # The log scrubs its own copy; the client's copy is scrubbed here, since upstream messages quote keys.
    log.debug("answering %d (%s): %s", error.status, error.code or error.kind, error.message)
    error = secrets.scrub_error(error)
    body = jsonutil.dumps(codec.error_body(error))
    return Response(body, status_code=error.status, headers=headers, media_type=JSON)


class ClientGone(Exception):
    """The client disconnected; the work done for it was cancelled."""


#: How long a request runs before its client is watched for leaving.  Most answers are done
#: sooner, and for them the watcher (a task, a pending receive, its cancellation: about 50 µs)
#: would cost more than most of what the gateway does per request; a client that leaves a longer
#: request is noticed at most this much later.
WATCH_AFTER = 0.25


class DisconnectWatch:
    """``async with``: cancel the current task the moment the client disconnects.

    After :data:`WATCH_AFTER` seconds one watcher task waits on ``receive``.
    The cancellation reaches whatever the request awaits (an upstream
    request, a stream read), whose cleanup closes the upstream connection;
    the block then raises :class:`ClientGone`.  Enter it only once the
    request body has been read: the watcher reads every message after that.
    """

    __slots__ = ("_after", "_gone", "_receive", "_task", "_timer", "_watcher")

    def __init__(self, receive: Receive, after: float = WATCH_AFTER) -> None:
        self._receive = receive
        self._after = after
        self._gone = False
        self._timer: asyncio.TimerHandle | None = None
        self._watcher: asyncio.Future[None] | None = None

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        if self._after > 0:
            self._timer = asyncio.get_running_loop().call_later(self._after, self._start)
        else:
            self._start()

    def _start(self) -> None:
        self._timer = None
        self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self._gone = True
        self._task.cancel()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if self._timer is not None:
            self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError) and self._gone:
            self._task.uncancel()
            raise ClientGone from None
        return False


class StreamingBody(StreamingResponse):
    """A streaming response that always watches for the client leaving.

    Starlette skips the watch for ASGI 2.4 servers and waits for a failed
    send instead; a silent upstream would then hold its connection until
    the next chunk.  Watching always cancels the body at once, which closes
    the upstream request; ``close`` runs however the response ends, even
    when the body was never started.
    """

    def __init__(self, frames: AsyncIterator[bytes], media_type: str, owns: Result | None = None) -> None:
        super().__init__(frames, media_type=media_type, headers=SSE_HEADERS)
        self._owned = owns

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with contextlib.suppress(ClientGone, OSError):
                async with DisconnectWatch(receive):
                    await self.stream_response(send)
        finally:
            release(self._owned)


def release(result: Result | None) -> None:
    """Let go of the upstream a result still holds (a stream nobody will read)."""
    if isinstance(result, Stream):
        result.close()


def to_response(result: Result, dialect: Dialect) -> Response:
    """The response for a result that arrived before anything was committed."""
    if isinstance(result, Failure):
        return error_response(dialect, result.error)
    if isinstance(result, Stream):
        return StreamingBody(result.frames, result.media_type, owns=result)
    return Response(result.body, media_type=JSON)


def committed_early(work: asyncio.Future[Result], dialect: Dialect, interval: float, stream: bool) -> Response:
    """A 200 sent before ``work`` is done: keep-alive bytes every ``interval`` s, then the result."""
    filler = dialect.keepalive_frame if stream else b"\n"
    media_type = "text/event-stream" if stream else JSON
    return StreamingBody(_until_done(work, dialect, interval, filler, stream), media_type)


async def _until_done(
    work: asyncio.Future[Result], dialect: Dialect, interval: float, filler: bytes, stream: bool
) -> AsyncIterator[bytes]:
    try:
        while True:
            done, _ = await asyncio.wait({work}, timeout=interval)
            if done:
                break
            yield filler
        result = work.result()
        if isinstance(result, Stream):
            try:
                async for chunk in result.frames:
                    yield chunk
            finally:
                result.close()
        elif isinstance(result, Complete):
            yield result.body
        elif stream:
            yield dialect.passthrough_error_frame(secrets.scrub_error(result.error))
        else:
            yield jsonutil.dumps(dialect.error_body(secrets.scrub_error(result.error)))
    finally:
        if not work.done():
            work.cancel()  # the client left: so does the upstream request
        elif not work.cancelled() and work.exception() is None:
            release(work.result())


