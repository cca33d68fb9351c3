"""Fake upstreams that speak the real wire protocols, on loopback.

:class:`Simulator` is the base: an aiohttp server on an ephemeral port that
records every request and answers from a script (:class:`Reply` objects:
JSON, errors with retry hints, slow streams, mid-stream cuts, hangs), or
from its default answer when the script is empty.  It notices when the
gateway goes away mid-answer (``disconnects``), which is how tests prove a
client disconnect cancels the upstream request.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Collection, Mapping
from typing import Any, ClassVar, Literal, Self

import attrs
from aiohttp import web

from polyrelay import jsonutil


@attrs.define
class Recorded:
    """One request the simulator received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    #: The path as it came over the wire (percent-encoding kept), without the query.
    raw_path: str = ""

    def json(self) -> Any:
        """The body parsed as JSON."""
        return jsonutil.loads(self.body)


@attrs.define
class Reply:
    """One scripted answer."""

    status: int = 200
    body: Any = None  # dict → JSON; bytes → as is
    headers: dict[str, str] = attrs.field(factory=dict)
    #: Streamed body: frames written one by one (``interval`` apart).
    chunks: list[bytes] | None = None
    interval: float = 0.0
    #: Wait before sending the status line.
    delay: float = 0.0
    #: Drop the connection after this many chunks (a mid-stream cut).
    cut_after: int | None = None
    #: After the chunks, stay silent this long before ending the body.
    hold: float = 0.0

    @classmethod
    def json(cls, body: Any, status: int = 200, delay: float = 0.0, headers: Mapping[str, str] | None = None,
             **named: str) -> Reply:
        """A complete JSON answer; header names (a mapping or keywords) use ``_`` for ``-`` (``retry_after``)."""
        merged = {**(headers or {}), **named}
        return cls(status=status, body=body, delay=delay, headers={k.replace("_", "-"): v for k, v in merged.items()})

    @classmethod
    def sse(cls, frames: list[bytes], interval: float = 0.0, **kwargs: Any) -> Reply:
        """A ``text/event-stream`` answer."""
        return cls(chunks=frames, interval=interval, headers={"content-type": "text/event-stream"}, **kwargs)


class Simulator:
    """Base simulator: override :meth:`routes`, :meth:`check` and :meth:`default_reply`.

    It owns what every upstream checks first: the keys it accepts (``None``
    accepts any) and the models it serves (``None`` serves any).  Set
    :attr:`key_header` to where the upstream reads its key; :meth:`key_problem`
    then says whether a request's key is missing or unknown, and the subclass
    answers that in its upstream's own words.
    """

    #: ``"authorization"`` reads ``Authorization: Bearer <key>``; any other name reads that header whole.
    key_header: ClassVar[str] = "authorization"

    def __init__(self, keys: Collection[str] | None = None, models: Collection[str] | None = None) -> None:
        # Kept as given, not copied: a simulator's OAuth server may add the tokens it issues later.
        self.keys = keys
        self.models = models
        self.requests: list[Recorded] = []
        self.script: deque[Reply] = deque()
        self.disconnects: list[float] = []
        self.active = 0
        self.base_url = ""
        #: Set before :meth:`start` to serve HTTPS (an upstream the gateway reaches by TLS).
        self.ssl_context: ssl.SSLContext | None = None
        self._runner: web.AppRunner | None = None

    # -- what every upstream checks ----------------------------------------------

    def presented_key(self, recorded: Recorded) -> str:
        """The key the request carries where :attr:`key_header` says (``""`` when none)."""
        value = recorded.headers.get(self.key_header, "")
        if self.key_header != "authorization":
            return value
        return value[7:] if value.startswith("Bearer ") else ""

    def key_problem(self, recorded: Recorded) -> Literal["missing", "unknown"] | None:
        """``"missing"`` or ``"unknown"`` when the upstream would refuse the key, else ``None``."""
        if self.keys is None:
            return None
        key = self.presented_key(recorded)
        if not key:
            return "missing"
        return None if key in self.keys else "unknown"

    def serves(self, model: str) -> bool:
        """Whether the upstream serves ``model``."""
        return self.models is None or model in self.models

    # -- lifecycle -----------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """The endpoints this upstream serves."""
        return []

    async def start(self) -> str:
        """Listen on an ephemeral loopback port; returns the root URL."""
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- scripting -----------------------------------------------------------

    def push(self, *replies: Reply) -> None:
        """Queue answers for the next requests, in order."""
        self.script.extend(replies)

    def default_reply(self, recorded: Recorded) -> Reply:
        """The answer when the script is empty."""
        return Reply(status=404, body={"error": "no scripted reply"})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Record the request and play the next reply."""
        recorded = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.read(),
            raw_path=request.raw_path.partition("?")[0],
        )
        self.requests.append(recorded)
        reply = self.check(recorded) or (self.script.popleft() if self.script else self.default_reply(recorded))
        return await self.play(request, reply)

    def check(self, recorded: Recorded) -> Reply | None:
        """Validate what a real upstream validates; return an error reply or None."""
        return None

    async def play(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        """Write ``reply`` to the wire."""
        self.active += 1
        try:
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.chunks is None:
                body = reply.body if isinstance(reply.body, bytes) else jsonutil.dumps(reply.body)
                headers = {"content-type": "application/json", **reply.headers}
                return web.Response(status=reply.status, body=body, headers=headers)
            response = web.StreamResponse(status=reply.status, headers=reply.headers)
            await response.prepare(request)
            for i, chunk in enumerate(reply.chunks):
                if reply.cut_after is not None and i >= reply.cut_after:
                    assert request.transport is not None
                    request.transport.abort()  # a broken connection, not a clean end
                    return response
                if i and reply.interval:
                    await asyncio.sleep(reply.interval)
                await response.write(chunk)
            if reply.hold:
                await asyncio.sleep(reply.hold)
            await response.write_eof()
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnects.append(time.monotonic())
            raise
        finally:
            self.active -= 1
