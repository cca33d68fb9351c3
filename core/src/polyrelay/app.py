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
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from polyrelay import ir, jsonutil, secrets
from polyrelay.config import Config
from polyrelay.counting import upstream_count
from polyrelay.dialects import dialect_for_path, get_dialect
from polyrelay.gateway import Gateway, model_not_found
from polyrelay.guard import Guard, client_key, dialect_for, http_error, matching_key
from polyrelay.responses import ClientGone, DisconnectWatch, committed_early, error_response, to_response
from polyrelay.results import Complete, Failure, Result
from polyrelay.routing import InvalidModelName, ModelNotFound
from polyrelay.types import ClientRequest

log = logging.getLogger("polyrelay.app")


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


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
        # Starlette tries routes in order: the model endpoints, hit on every request, come first.
        routes = [
            Route("/v1/chat/completions", self.openai_chat, methods=["POST"]),
            Route("/v1/messages", self.anthropic_messages, methods=["POST"]),
            Route("/v1/responses", self.openai_responses, methods=["POST"]),
            Route("/", self.root, methods=["GET", "HEAD"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/status", self.status, methods=["GET"]),
            Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
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
        if jsonutil.too_deep(data):
            raise ValueError(f"the body nests deeper than {jsonutil.MAX_DEPTH} levels")
        return body, data

    async def _client_request(
        self, request: Request, dialect: str, *, model: str | None = None, stream: bool | None = None,
        sse: bool = True,
    ) -> ClientRequest | Response:
        """Parse and validate the parts every dialect route needs.

        ``model``, ``stream`` and ``sse`` are given by routes that carry them
        in the path rather than the body (Gemini).
        """
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
        if model is None:  # the body names the model (Gemini's is in the path, checked by its route)
            model = data.get("model")
            if not isinstance(model, str) or not model:
                return error_response(dialect, ir.ErrorInfo(400, "the 'model' field must be a non-empty string"))
            if invalid := self._model_problem(model):
                return error_response(dialect, invalid)
        if stream is None:
            stream = data.get("stream", False)
            if not isinstance(stream, bool):
                return error_response(dialect, ir.ErrorInfo(400, "the 'stream' field must be true or false"))
        problem = get_dialect(dialect).shape_problem(data)
        if problem:
            return error_response(dialect, ir.ErrorInfo(400, problem))
        return ClientRequest(
            dialect=dialect,
            body=body,
            json=data,
            model=model,
            stream=stream,
            headers=request.headers,
            query=request.query_params,
            sse=sse,
        )

    def _model_problem(self, model: str) -> ir.ErrorInfo | None:
        """A 400 for a name that cannot be a model name, before it is routed anywhere."""
        try:
            self.gateway.router.check_name(model)
        except InvalidModelName as exc:
            return ir.ErrorInfo(400, f"invalid model name {model!r}: {exc.reason}", code="invalid_model")
        return None

    async def _serve(self, request: Request, client: ClientRequest) -> Response:
        """Run the gateway, cancelling the upstream if the client leaves first.

        A client that allows it is committed early when dispatch is slow
        (see :mod:`polyrelay.responses`).
        """
        started = time.perf_counter()
        if client.stream:
            interval = self.config.streaming.keepalive_seconds if client.sse else 0.0
        else:
            interval = self.config.nonstream_keepalive_interval
        dialect = client.codec
        try:
            async with DisconnectWatch(request.receive):
                if interval:
                    work = asyncio.ensure_future(self.gateway.serve(client))
                    try:
                        done, _ = await asyncio.wait({work}, timeout=interval)
                    except asyncio.CancelledError:
                        work.cancel()  # the client left: so does the upstream request
                        raise
                    if not done:
                        return committed_early(work, dialect, interval, stream=client.stream)
                    result: Result = work.result()
                else:
                    result = await self.gateway.serve(client)
        except ClientGone:
            return Response(status_code=499)
        response = to_response(result, dialect)
        if isinstance(result, Complete | Failure):
            overhead = time.perf_counter() - started - result.upstream_seconds
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
        """``/v1beta/models/{model}:{generateContent|streamGenerateContent|countTokens}``, and ``GET`` of one model.

        ``GET /v1/models/{id}`` is OpenAI's and Anthropic's "retrieve model":
        it answers in the dialect the path speaks, like every error here.
        """
        if not self._authorized(request):
            return self._reject(request)
        dialect = dialect_for(request)
        target = request.path_params["target"]
        model, _, action = target.partition(":")
        if invalid := self._model_problem(model):
            return error_response(dialect, invalid)
        if request.method == "GET":
            return self._one_model(dialect, model)
        if action not in ("generateContent", "streamGenerateContent", "countTokens"):
            return error_response(dialect, ir.ErrorInfo(404, f"unknown method {action or target!r}"))
        client = await self._client_request(request, ir.GEMINI, model=model,
                                            stream=action == "streamGenerateContent",
                                            sse=request.query_params.get("alt") == "sse")
        if isinstance(client, Response):
            return client
        if action == "countTokens":
            return await self._count(client)
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
        codec = client.codec
        tokens = await upstream_count(targets, self.gateway.pool, self.gateway.sessions, client)
        if tokens is None:
            text = jsonutil.dumps({k: client.json[k] for k in codec.prompt_fields if k in client.json})
            tokens = max(1, math.ceil(len(text) / 4))
        return JSONResponse(codec.token_count_body(tokens))

    async def list_models(self, request: Request) -> Response:
        """``GET /v1/models``: Anthropic's shape when ``anthropic-version`` is sent, else OpenAI's."""
        if not self._authorized(request):
            return self._reject(request)
        dialect = dialect_for_path(request.url.path, request.headers)
        return JSONResponse(dialect.models_body(self.gateway.models()))

    async def list_gemini_models(self, request: Request) -> Response:
        """``GET /v1beta/models``."""
        if not self._authorized(request):
            return self._reject(request)
        return JSONResponse(get_dialect(ir.GEMINI).models_body(self.gateway.models()))

    def _one_model(self, dialect: str, model: str) -> Response:
        try:
            targets = self.gateway.router.resolve(model)
        except ModelNotFound:
            return error_response(dialect, ir.ErrorInfo(404, f"model {model!r} not found", code="model_not_found"))
        return JSONResponse(get_dialect(dialect).model_entry(model, targets[0][0].provider.name))


def create_app(config: Config, pm: pluggy.PluginManager) -> Starlette:
    """The ASGI app for ``config`` with the plugins in ``pm``."""
    return App(config, pm).starlette()
