"""The guard: what every HTTP request meets before a route, as one ASGI middleware.

In order, a request is refused (each time in the dialect its path speaks,
never as Starlette's plain text) when:

1. its headers exceed :data:`MAX_HEADER_BYTES` (431);
2. the gateway has no ``api-keys`` and the request comes from a browser page
   that is not this machine's: an ``Origin`` that is neither loopback nor in
   ``cors-origins``, or a ``Host`` that is neither a loopback name nor the
   configured host (DNS rebinding defeats the loopback bind otherwise) (403);
3. it is a POST without a JSON content type, which is what a page can send
   cross-origin without a CORS preflight (415);
4. its client already has ``client-limits.concurrent-requests`` in flight:
   counted per client key, or per address when no valid key is presented, so
   slow bodies from one client cannot pin every file descriptor (429).

CORS preflights are answered for ``cors-origins`` only.  An exception that
escapes a route becomes a 500 in the client's dialect carrying a request id
that the log line shares; after the response started, the connection is
closed and the log says why, except that an event stream gets the dialect's
terminal error event first, so its SDK raises instead of seeing a silent cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hmac
import ipaddress
import logging
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polyrelay import ir
from polyrelay.config import Config
from polyrelay.dialects import dialect_for_path, get_dialect
from polyrelay.responses import error_response

log = logging.getLogger("polyrelay.guard")

#: Request line and headers together.
MAX_HEADER_BYTES = 32 * 1024
#: hypercorn's header buffer: above the guard's limit, so the guard (which
#: knows the dialect) answers 431; only beyond it does hypercorn answer bare.
SERVER_HEADER_BUFFER = 2 * MAX_HEADER_BYTES
_DIALECT_KEY = "polyrelay.dialect"  # the ASGI scope key that holds it
_PREFLIGHT_HEADERS = "authorization, content-type, x-api-key, x-goog-api-key, anthropic-version, anthropic-beta"


def dialect_for(request: HTTPConnection) -> str:
    """Which dialect a request speaks: the one whose paths it uses, else by marker headers (``/v1/models``)."""
    scope = request.scope
    # Asked by the guard and again by the route: worked out once per request, from the raw
    # path (building Starlette's URL object for it costs more than the lookup itself).
    name: str | None = scope.get(_DIALECT_KEY)
    if name is None:
        name = scope[_DIALECT_KEY] = dialect_for_path(scope["path"], request.headers).name
    return name


def client_key(request: HTTPConnection) -> str | None:
    """The API key a client presented, in whichever place its SDK puts it."""
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key") or request.headers.get("x-goog-api-key") or request.query_params.get("key")


def matching_key(presented: str | None, keys: list[bytes]) -> int | None:
    """The index of the configured key ``presented`` equals, compared in constant time."""
    candidate = (presented or "").encode()
    found = None
    # Compare against every key so the time taken says nothing about which matched.
    for index, key in enumerate(keys):
        if hmac.compare_digest(candidate, key):
            found = index
    return found


@functools.lru_cache(maxsize=256)  # asked on every request of a keyless gateway, nearly always for one name
def is_loopback_host(host: str) -> bool:
    """Whether a host name or address (no port) only ever means this machine."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    """The name in a ``Host`` header or an origin's authority, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    return value.rpartition(":")[0] if value.count(":") == 1 else value


#: The request headers the guard's checks read.
_CHECKED = frozenset({b"origin", b"host", b"content-type", b"access-control-request-method"})


def _read_headers(scope: Scope) -> tuple[int, dict[str, str]]:
    """The size of the request line and headers, and the first value of each header in :data:`_CHECKED`.

    One pass over the raw list (ASGI names are lower case): Starlette's
    ``Headers`` scans the whole list per lookup, and raises inside for each
    header that is absent.
    """
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    seen: dict[str, str] = {}
    for name, value in scope["headers"]:
        size += len(name) + len(value) + 4
        if name in _CHECKED:
            seen.setdefault(name.decode(), value.decode("latin-1"))
    return size, seen


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def refuse(dialect: str, status: int, message: str, code: str | None = None, **headers: str) -> Response:
    """An error response of the guard (or a Starlette HTTP error) in ``dialect``'s shape."""
    response = error_response(dialect, ir.ErrorInfo(status, message, code=code))
    response.headers.update(headers)
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's 404/405 in the dialect the path speaks (an ``exception_handlers`` entry)."""
    assert isinstance(exc, HTTPException)
    dialect = dialect_for(request)
    if exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    elif exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    else:
        message = str(exc.detail)
    return refuse(dialect, exc.status_code, message, **dict(exc.headers or {}))


class Guard:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app: ASGIApp, config: Config) -> None:
        self.app = app
        self.keys = [k.encode() for k in config.api_keys]
        self.cap = config.client_limits.concurrent_requests
        self.origins = {o.rstrip("/").lower() for o in config.cors_origins}
        self.hosts = {config.host.lower()} if config.host and config.host not in ("0.0.0.0", "::") else set()
        # A wildcard bind with an explicit opt-in serves any name the machine has.
        self.any_host = not self.hosts and config.allow_unauthenticated_remote
        self.in_flight: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal, dialect, client, send = self._admit(scope, send)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        self.in_flight[client] = self.in_flight.get(client, 0) + 1
        tracked = _Tracked(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            await _internal_error(scope, send, tracked, dialect, exc)
        finally:
            left = self.in_flight[client] - 1
            if left:
                self.in_flight[client] = left
            else:
                del self.in_flight[client]

    def _admit(self, scope: Scope, send: Send) -> tuple[Response | None, str, str, Send]:
        """The refusal (or None), the dialect, the client id and the ``send`` to use.

        A helper rather than inline so that what the checks read is freed
        before the request runs: a stream holds the caller's frame for minutes.
        """
        request = HTTPConnection(scope)
        dialect = dialect_for(request)
        size, seen = _read_headers(scope)
        origin = seen.get("origin")
        refusal = self._check(scope, size, seen, dialect, origin)
        if refusal is not None:
            return refusal, dialect, "", send
        if origin is not None and origin.rstrip("/").lower() in self.origins:
            send = _with_cors(send, origin)
        client = self._client_id(request)
        if self.cap and self.in_flight.get(client, 0) >= self.cap:
            return refuse(dialect, 429, f"more than {self.cap} requests in flight from this client",
                          code="too_many_concurrent_requests", **{"retry-after": "1"}), dialect, client, send
        return None, dialect, client, send

    def _check(
        self, scope: Scope, size: int, headers: dict[str, str], dialect: str, origin: str | None
    ) -> Response | None:
        if size > MAX_HEADER_BYTES:
            return refuse(dialect, 431, f"request headers exceed {MAX_HEADER_BYTES // 1024} KiB")
        if not self.keys:
            if origin is not None and not self._origin_allowed(origin):
                return refuse(dialect, 403, "requests from web pages are refused: this gateway has no api-keys "
                              "(add the page's origin to cors-origins, or configure api-keys)", code="forbidden_origin")
            host = headers.get("host")
            if host is not None and not self.any_host:
                name = _host_name(host)
                if not is_loopback_host(name) and name not in self.hosts:
                    return refuse(dialect, 403, "this gateway has no api-keys and answers only to loopback host "
                                  "names or its configured host", code="forbidden_host")
        method = scope["method"]
        if method == "OPTIONS" and origin is not None and "access-control-request-method" in headers:
            return self._preflight(dialect, origin)
        if method == "POST" and not _is_json(headers.get("content-type", "")):
            return refuse(dialect, 415, "the request body must be sent as Content-Type: application/json",
                          code="unsupported_media_type")
        return None

    def _origin_allowed(self, origin: str) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in self.origins:
            return True
        scheme, sep, authority = origin.partition("://")
        return bool(sep) and scheme in ("http", "https") and is_loopback_host(_host_name(authority))

    def _preflight(self, dialect: str, origin: str) -> Response:
        if origin.rstrip("/").lower() not in self.origins:
            return refuse(dialect, 403, "this origin is not in cors-origins", code="forbidden_origin")
        return Response(status_code=204, headers={
            "access-control-allow-origin": origin, "access-control-allow-methods": "GET, POST, HEAD",
            "access-control-allow-headers": _PREFLIGHT_HEADERS, "access-control-max-age": "600", "vary": "origin"})

    def _client_id(self, request: HTTPConnection) -> str:
        if self.keys:
            index = matching_key(client_key(request), self.keys)
            if index is not None:
                return f"key:{index}"
        peer = request.client
        return f"addr:{peer.host if peer else '?'}"

class _Tracked:
    """``send`` that remembers how far the response got, for the error path.

    A slotted object rather than a closure over three cells: every open
    stream holds one for its whole life.
    """

    __slots__ = ("event_stream", "finished", "send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = self.event_stream = self.finished = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.event_stream = any(k.lower() == b"content-type" and v.startswith(b"text/event-stream")
                                    for k, v in message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.finished = not message.get("more_body", False)
        await self.send(message)


async def _internal_error(scope: Scope, send: Send, tracked: _Tracked, dialect: str, exc: Exception) -> None:
    """Log an unexpected error under a request id; answer 500, or end a started stream the dialect's way."""
    request_id = uuid.uuid4().hex[:16]
    log.error("request %s (%s %s) failed: %s", request_id, scope["method"], scope["path"],
              exc.__class__.__name__, exc_info=exc)
    if tracked.started:
        if tracked.event_stream and not tracked.finished:  # the status is out: end the stream the dialect's way
            error = ir.ErrorInfo(500, f"internal error (request id {request_id})", code="internal_error")
            frame = get_dialect(dialect).passthrough_error_frame(error)
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": frame, "more_body": False})
        return
    response = refuse(dialect, 500, f"internal error (request id {request_id})", code="internal_error",
                      **{"x-request-id": request_id})
    await response(scope, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


def _with_cors(send: Send, origin: str) -> Send:
    """``send`` that marks the response readable by ``origin`` (a configured one)."""

    async def cors_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", []), (b"access-control-allow-origin", origin.encode("latin-1")),
                       (b"vary", b"origin")]
            message = {**message, "headers": headers}
        await send(message)

    return cors_send


#: Accept errors that mean "out of descriptors or memory": the loop retries
#: by itself, and a traceback per retry floods the log.
_ACCEPT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class AcceptErrorThrottle:
    """A loop exception handler that logs resource-exhaustion accept errors once per ``interval``."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self.suppressed = 0
        self._last = -float("inf")

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if not (isinstance(exc, OSError) and exc.errno in _ACCEPT_ERRNOS):
            loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - self._last < self.interval:
            self.suppressed += 1
            return
        log.error("cannot accept connections: %s (%d more since the last report; raise the file limit "
                  "or lower client-limits.concurrent-requests)", exc.strerror, self.suppressed)
        self._last, self.suppressed = now, 0


def throttle_accept_errors(loop: asyncio.AbstractEventLoop, interval: float = 60.0) -> AcceptErrorThrottle:
    """Install :class:`AcceptErrorThrottle` on ``loop`` (returns it, for tests)."""
    handler = AcceptErrorThrottle(interval)
    loop.set_exception_handler(handler)
    return handler
