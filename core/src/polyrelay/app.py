"""The HTTP surface: four dialects' routes on one Starlette app.

A route reads only what routing needs (model, stream flag); the gateway
does the rest.  Every error a client can cause comes back in its own
dialect's shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import pluggy
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from polyrelay import ir, jsonutil, secrets
from polyrelay.config import Config
from polyrelay.counting import upstream_count
from polyrelay.gateway import Gateway, error_response, model_not_found
from polyrelay.guard import Guard, client_key, dialect_for, http_error, matching_key
from polyrelay.routing import InvalidModelName, ModelNotFound
from polyrelay.types import ClientRequest

log = logging.getLogger("polyrelay.app")


class ClientGone(Exception):
    """The client disconnected; the work done for it was cancelled."""


@contextlib.asynccontextmanager
async def cancelled_on_disconnect(receive: Receive) -> AsyncIterator[None]:
    """Cancel the current task the moment the client disconnects.

    One watcher task per request.  The cancellation reaches whatever the
    request awaits (an upstream request, a stream read), whose cleanup
    closes the upstream connection; the block then raises
    :class:`ClientGone`.
    """
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        yield
    except asyncio.CancelledError:
        if not gone:
            raise
        task.uncancel()
        raise ClientGone from None
    finally:
        watcher.cancel()


class StreamingBody(StreamingResponse):
    """A streaming response that always watches for the client leaving.

    Starlette skips the watch for ASGI 2.4 servers and waits for a failed
    send instead; a silent upstream would then hold its connection until
    the next chunk.  Watching always cancels the body at once, which closes
    the upstream request.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with contextlib.suppress(ClientGone, OSError):
            async with cancelled_on_disconnect(receive):
                await self.stream_response(send)


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


#: The one field each dialect cannot do without, and the types it may have.
_CONTENT_FIELD = {
    ir.ANTHROPIC: ("messages", (list,)),
    ir.OPENAI_CHAT: ("messages", (list,)),
    ir.OPENAI_RESPONSES: ("input", (list, str)),
    ir.GEMINI: ("contents", (list,)),
}


def shape_problem(dialect: str, data: dict[str, Any]) -> str | None:
    """A cheap check of the body's main field, so pass-through rejects what a codec would.

    Pass-through requests are not decoded, and an upstream's own 400 would
    cost a credential attempt; this catches the common malformed case.
    """
    field, types = _CONTENT_FIELD[dialect]
    value = data.get(field)
    if value is None:
        if dialect == ir.OPENAI_RESPONSES or (dialect == ir.GEMINI and "generateContentRequest" in data):
            return None
        return f"the {field!r} field is required"
    if not isinstance(value, types):
        kinds = " or ".join("an array" if t is list else "a string" for t in types)
        return f"the {field!r} field must be {kinds}"
    return None


class App:
    """Builds the Starlette application around a :class:`Gateway`."""

    def __init__(self, config: Config, pm: pluggy.PluginManager) -> None:
        self.config = config
        self.pm = pm
        self.gateway = Gateway(config, pm)
        self._keys = [k.encode() for k in config.api_keys]
        self._body_limit = int(config.max_body_mb * 1024 * 1024)
        self._refresher: asyncio.Task[None] | None = None
        secrets.register([*self.gateway.pool.secrets(), *config.api_keys])

    def starlette(self) -> Starlette:
        """The ASGI application."""
        routes = [
            Route("/", self.root, methods=["GET", "HEAD"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/status", self.status, methods=["GET"]),
            Route("/v1/messages", self.anthropic_messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
            Route("/v1/chat/completions", self.openai_chat, methods=["POST"]),
            Route("/v1/responses", self.openai_responses, methods=["POST"]),
            Route("/v1/responses/input_tokens", self.count_tokens, methods=["POST"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v1beta/models", self.list_gemini_models, methods=["GET"]),
            Route("/v1beta/models/{target:path}", self.gemini, methods=["POST", "GET"]),
            Route("/v1/models/{target:path}", self.gemini, methods=["POST", "GET"]),
        ]
        return Starlette(routes=routes, lifespan=self.lifespan, middleware=[Middleware(Guard, config=self.config)],
                         exception_handlers={404: http_error, 405: http_error})

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        """Own the outbound sessions and the refresh loop for the app's lifetime."""
        self._refresher = asyncio.create_task(self.gateway.background())
        try:
            yield
        finally:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            await self.gateway.aclose()

    # -- plumbing --------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        return not self._keys or matching_key(client_key(request), self._keys) is not None

    def _reject(self, request: Request) -> Response:
        return error_response(
            dialect_for(request),
            ir.ErrorInfo(401, "invalid or missing API key", kind="authentication", code="invalid_api_key"),
        )

    async def _read_json(self, request: Request) -> tuple[bytes, dict[str, Any]]:
        size = 0
        parts = []
        deadline = self.config.client_limits.body_seconds or None
        try:
            async with asyncio.timeout(deadline):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > self._body_limit:
                        raise BodyTooLarge
                    parts.append(chunk)
        except TimeoutError:
            raise BodyTooSlow from None
        body = b"".join(parts)
        data = jsonutil.loads(body)
        if not isinstance(data, dict):
            raise ValueError("the request body must be a JSON object")
        if jsonutil.too_deep(body, data):
            raise ValueError(f"the body nests deeper than {jsonutil.MAX_DEPTH} levels")
        return body, data

    async def _client_request(self, request: Request, dialect: str) -> ClientRequest | Response:
        """Parse and validate the parts every dialect route needs."""
        if not self._authorized(request):
            return self._reject(request)
        try:
            body, data = await self._read_json(request)
        except BodyTooLarge:
            limit = f"{self.config.max_body_mb:g} MB"
            return error_response(dialect, ir.ErrorInfo(413, f"request body exceeds {limit}", kind="request_too_large"))
        except BodyTooSlow:
            seconds = f"{self.config.client_limits.body_seconds:g}"
            return error_response(dialect, ir.ErrorInfo(408, f"the request body did not arrive within {seconds}s"))
        except ValueError as exc:
            return error_response(dialect, ir.ErrorInfo(400, f"malformed JSON body: {exc}", kind="invalid_request"))
        model = data.get("model")
        if dialect != ir.GEMINI and (not isinstance(model, str) or not model):
            return error_response(dialect, ir.ErrorInfo(400, "the 'model' field must be a non-empty string"))
        if dialect != ir.GEMINI and (invalid := self._model_problem(str(model))):
            return error_response(dialect, invalid)
        stream = data.get("stream", False)
        if not isinstance(stream, bool):
            return error_response(dialect, ir.ErrorInfo(400, "the 'stream' field must be true or false"))
        problem = shape_problem(dialect, data)
        if problem:
            return error_response(dialect, ir.ErrorInfo(400, problem))
        return ClientRequest(
            dialect=dialect,
            body=body,
            json=data,
            model=model if isinstance(model, str) else "",
            stream=stream,
            headers=request.headers,
            query=request.query_params,
        )

    def _model_problem(self, model: str) -> ir.ErrorInfo | None:
        """A 400 for a name that cannot be a model name, before it is routed anywhere."""
        try:
            self.gateway.router.check_name(model)
        except InvalidModelName as exc:
            return ir.ErrorInfo(400, f"invalid model name {model!r}: {exc.reason}", code="invalid_model")
        return None

    async def _serve(self, request: Request, client: ClientRequest) -> Response:
        """Run the gateway, cancelling the upstream if the client leaves first."""
        started = time.perf_counter()
        interval = self.config.nonstream_keepalive_interval if not client.stream else 0.0
        try:
            async with cancelled_on_disconnect(request.receive):
                if interval:
                    work = asyncio.ensure_future(self.gateway.serve(client))
                    try:
                        done, _ = await asyncio.wait({work}, timeout=interval)
                    except asyncio.CancelledError:
                        work.cancel()  # the client left: so does the upstream request
                        raise
                    if not done:
                        return StreamingBody(_blank_lines_until(work, interval), media_type="application/json")
                    response = work.result()
                else:
                    response = await self.gateway.serve(client)
        except ClientGone:
            return Response(status_code=499)
        if isinstance(response, StreamingResponse):
            return StreamingBody(response.body_iterator, status_code=response.status_code,
                                 headers=dict(response.headers))
        overhead = time.perf_counter() - started - client.upstream_seconds
        response.headers["x-polyrelay-overhead-ms"] = f"{overhead * 1000:.2f}"
        return response

    # -- routes ----------------------------------------------------------------

    async def root(self, request: Request) -> Response:
        """``HEAD /`` is Claude Code's reachability probe."""
        return JSONResponse({"name": "polyrelay", "status": "ok"})

    async def healthz(self, request: Request) -> Response:
        """Liveness: the process serves HTTP (nothing more, to anyone)."""
        return JSONResponse({"status": "ok"})

    async def status(self, request: Request) -> Response:
        """``GET /status``: provider and credential counts, for clients with a key."""
        if not self._authorized(request):
            return self._reject(request)
        return JSONResponse({"status": "ok", "providers": len(self.gateway.live_providers()),
                             "credentials": len(self.gateway.pool)})

    async def anthropic_messages(self, request: Request) -> Response:
        """``POST /v1/messages``."""
        return await self._dialect_route(request, ir.ANTHROPIC)

    async def openai_chat(self, request: Request) -> Response:
        """``POST /v1/chat/completions``."""
        return await self._dialect_route(request, ir.OPENAI_CHAT)

    async def openai_responses(self, request: Request) -> Response:
        """``POST /v1/responses``."""
        return await self._dialect_route(request, ir.OPENAI_RESPONSES)

    async def _dialect_route(self, request: Request, dialect: str) -> Response:
        client = await self._client_request(request, dialect)
        if isinstance(client, Response):
            return client
        return await self._serve(request, client)

    async def gemini(self, request: Request) -> Response:
        """``/v1beta/models/{model}:{generateContent|streamGenerateContent|countTokens}``."""
        if not self._authorized(request):
            return self._reject(request)
        target = request.path_params["target"]
        model, _, action = target.partition(":")
        if invalid := self._model_problem(model):
            return error_response(ir.GEMINI, invalid)
        if request.method == "GET":
            return self._gemini_model(model)
        if action not in ("generateContent", "streamGenerateContent", "countTokens"):
            return error_response(ir.GEMINI, ir.ErrorInfo(404, f"unknown method {action or target!r}"))
        client = await self._client_request(request, ir.GEMINI)
        if isinstance(client, Response):
            return client
        client.model = model
        if action == "countTokens":
            return await self._count(client)
        client.stream = action == "streamGenerateContent"
        client.sse = request.query_params.get("alt") == "sse"
        return await self._serve(request, client)

    async def count_tokens(self, request: Request) -> Response:
        """``POST /v1/messages/count_tokens`` and ``/v1/responses/input_tokens``."""
        dialect = dialect_for(request)
        client = await self._client_request(request, dialect)
        if isinstance(client, Response):
            return client
        return await self._count(client)

    async def _count(self, client: ClientRequest) -> Response:
        """Input tokens: the upstream's count when its provider can count, else a local estimate
        (about four bytes of text per token)."""
        try:
            targets = self.gateway.router.resolve(client.model)
        except ModelNotFound:
            return error_response(client.dialect, model_not_found(client))
        tokens = await upstream_count(targets, self.gateway.pool, self.gateway.sessions, client)
        if tokens is None:
            fields = ("system", "messages", "tools", "input", "instructions", "contents", "systemInstruction")
            text = jsonutil.dumps({k: client.json[k] for k in fields if k in client.json})
            tokens = max(1, math.ceil(len(text) / 4))
        if client.dialect == ir.GEMINI:
            return JSONResponse({"totalTokens": tokens,
                                 "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]})
        if client.dialect == ir.OPENAI_RESPONSES:
            return JSONResponse({"object": "response.input_tokens", "input_tokens": tokens})
        return JSONResponse({"input_tokens": tokens})

    async def list_models(self, request: Request) -> Response:
        """``GET /v1/models``: Anthropic's shape when ``anthropic-version`` is sent, else OpenAI's."""
        if not self._authorized(request):
            return self._reject(request)
        rows = self.gateway.models()
        if "anthropic-version" in request.headers:
            data = [{"type": "model", "id": m, "display_name": m, "created_at": "1970-01-01T00:00:00Z"}
                    for m, _ in rows]
            return JSONResponse({"data": data, "has_more": False,
                                 "first_id": data[0]["id"] if data else None,
                                 "last_id": data[-1]["id"] if data else None})
        return JSONResponse({"object": "list", "data": [
            {"id": m, "object": "model", "created": 0, "owned_by": provider} for m, provider in rows]})

    async def list_gemini_models(self, request: Request) -> Response:
        """``GET /v1beta/models``."""
        if not self._authorized(request):
            return self._reject(request)
        return JSONResponse({"models": [_gemini_model_entry(m) for m, _ in self.gateway.models()]})

    def _gemini_model(self, model: str) -> Response:
        try:
            self.gateway.router.resolve(model)
        except ModelNotFound:
            return error_response(ir.GEMINI, ir.ErrorInfo(404, f"model {model!r} not found", code="model_not_found"))
        return JSONResponse(_gemini_model_entry(model))


def _gemini_model_entry(model: str) -> dict[str, Any]:
    return {"name": f"models/{model}", "displayName": model,
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]}


async def _blank_lines_until(work: asyncio.Future[Response], interval: float) -> AsyncIterator[bytes]:
    """Non-stream keep-alive: a newline every ``interval`` s, then the answer.

    JSON parsers skip leading whitespace; the status is 200 from the first
    newline on, so a later error travels as a JSON error body under 200.
    """
    try:
        while True:
            done, _ = await asyncio.wait({work}, timeout=interval)
            if done:
                break
            yield b"\n"
        response = work.result()
        if isinstance(response, StreamingResponse):
            async for chunk in response.body_iterator:
                yield chunk if isinstance(chunk, bytes) else bytes(chunk)
        else:
            yield bytes(response.body)
    finally:
        if not work.done():
            work.cancel()


def create_app(config: Config, pm: pluggy.PluginManager) -> Starlette:
    """The ASGI app for ``config`` with the plugins in ``pm``."""
    return App(config, pm).starlette()
