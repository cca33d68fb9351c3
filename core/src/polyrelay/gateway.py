"""The dispatcher: route, choose a credential, attempt, classify, fail over.

Everything before the first byte reaches the client may be retried on
another credential; after it, failures end the stream with the dialect's
terminal error.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import aiohttp
import attrs
import pluggy
from starlette.responses import Response, StreamingResponse

from polyrelay import aggregate, defaults, ir, jsonutil, secrets
from polyrelay.accounts.authdir import AuthDir
from polyrelay.accounts.upkeep import Accounts
from polyrelay.config import Config
from polyrelay.credentials import Pool
from polyrelay.defaults import is_passthrough
from polyrelay.dialects import DialectError, get_dialect
from polyrelay.logs import redaction_filter
from polyrelay.passthrough import PassthroughDecoder, model_patch
from polyrelay.plugins import Binding, bind, call_each, collect_providers
from polyrelay.routing import ModelNotFound, Router
from polyrelay.streaming import UPSTREAM_ERRORS, FrameWriter, StreamPump, client_stream, first_error
from polyrelay.types import ClientRequest, Credential, StreamState, Verdict
from polyrelay.upstream import BodyReader, Sessions

log = logging.getLogger("polyrelay.gateway")

#: Statuses after which another round over the credentials is worth it.
ROUND_RETRY_STATUSES = frozenset({403, 408, 429, 500, 502, 503, 504})
ERROR_BODY_LIMIT = 1024 * 1024


def error_response(dialect: str, error: ir.ErrorInfo) -> Response:
    """A complete error response in ``dialect``'s shape."""
    headers = {}
    if error.retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(error.retry_after)))
    # Upstream messages sometimes quote the key they rejected.
    error = secrets.scrub_error(error)
    body = jsonutil.dumps(get_dialect(dialect).error_body(error))
    return Response(body, status_code=error.status, headers=headers, media_type="application/json")


@attrs.define
class Outcome:
    """The result of one attempt: a response to send, or an error."""

    response: Response | None = None
    error: ir.ErrorInfo | None = None
    #: A request fault: stop trying other credentials.
    final: bool = False


SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class Gateway:
    """Providers, credentials and the request loop, built once at start."""

    def __init__(self, config: Config, pm: pluggy.PluginManager, pool: Pool | None = None) -> None:
        self.config = config
        self.pm = pm
        providers = collect_providers(pm, config)
        for provider in providers:
            overrides = config.upstream_urls.get(provider.name, {})
            provider.urls = {**provider.urls, **overrides}
            provider.refresh_lead = config.refresh_lead_seconds.get(provider.name, provider.refresh_lead)
        self.bindings: list[Binding] = [bind(pm, p) for p in providers]
        self.router = Router(self.bindings, config)
        self.pool = pool or Pool(
            strategy=config.routing.strategy,
            transient_cooldown=config.transient_error_cooldown_seconds or 60.0,
            disable_cooling=config.disable_cooling,
        )
        self.sessions = Sessions(config.proxy_url)
        # Calling the hook costs a fan-out per attempt; skip it when only the core's default answers.
        self._plugins_select = any(
            impl.plugin is not defaults for impl in pm.hook.select_credential.get_hookimpls()
        )
        self._load_credentials()

    # -- start-up ------------------------------------------------------------

    def _load_credentials(self) -> None:
        by_name = {b.provider.name: b.provider for b in self.bindings}
        for provider in by_name.values():
            for _, creds in call_each(self.pm, "config_credentials", config=self.config, provider=provider):
                for credential in creds or []:
                    self.pool.add(credential)
        self.auth_dir = AuthDir(
            self.config.auth_path, self.pool,
            claim=lambda data, path: self.pm.hook.credential_from_file(data=data, path=path),
            claimed_types={t for p in by_name.values() for t in p.credential_types},
            providers=set(by_name),
            on_load=lambda credential: redaction_filter().add(credential.secrets),
        )
        self.auth_dir.scan()
        self.accounts = Accounts(self.pool, self.sessions, by_name, self.auth_dir)

    def models(self) -> list[tuple[str, str]]:
        """``(model, provider)`` for every routable model whose provider holds a usable credential.

        An account provider is registered before any account exists (one may
        be logged in while serving); until then its models are not listed.
        """
        live = self.live_providers()
        return [(model, provider) for model, provider in self.router.models() if provider in live]

    def live_providers(self) -> set[str]:
        """The providers holding at least one credential that is not disabled."""
        return {c.provider for c in self.pool if not c.disabled}

    async def aclose(self) -> None:
        """Release outbound connections."""
        await self.sessions.close()

    # -- the request loop ----------------------------------------------------

    async def serve(self, client: ClientRequest) -> Response:
        """Answer one client request (any dialect, stream or not)."""
        try:
            targets = self.router.resolve(client.model)
        except ModelNotFound:
            return error_response(client.dialect, model_not_found(client))
        if not all(is_passthrough(binding.provider, client) for binding, _ in targets):
            try:
                client.decoded()  # a body this dialect cannot read fails now, as a 400
            except DialectError as exc:
                return error_response(client.dialect, exc.to_error())
        by_provider = {b.provider.name: (b, model) for b, model in targets}
        routes = [(b.provider.name, model) for b, model in targets]
        if not self.pool.eligible(routes):
            names = ", ".join(sorted(by_provider))
            return error_response(
                client.dialect,
                ir.ErrorInfo(503, f"no credentials available for model {client.model!r} (providers: {names})",
                             kind="overloaded", code="no_credentials"),
            )

        last_error: ir.ErrorInfo | None = None
        for round_no in range(max(0, self.config.request_retry) + 1):
            tried: set[str] = set()
            while True:
                limit = self.config.max_retry_credentials
                if limit and len(tried) >= limit:
                    break
                candidates = self.pool.candidates(routes, exclude=tried)
                if not candidates:
                    break
                credential = self._select(candidates, by_provider, client)
                tried.add(credential.id)
                binding, client.upstream_model = by_provider[credential.provider]
                outcome = await self._attempt(binding, credential, client)
                if outcome.response is not None:
                    return outcome.response
                last_error = outcome.error
                if outcome.final:
                    return error_response(client.dialect, outcome.error or _internal())
            if last_error is not None and last_error.status not in ROUND_RETRY_STATUSES:
                break
            wait = self.pool.soonest_recovery(routes)
            if round_no == self.config.request_retry or wait is None:
                break
            if self.config.max_retry_interval <= 0 or wait > self.config.max_retry_interval:
                break
            await asyncio.sleep(wait)

        wait = self.pool.soonest_recovery(routes)
        if last_error is not None:
            # This request reached the upstream: its own answer is the truthful one.
            if last_error.status == 429 and wait is not None:
                last_error = attrs.evolve(last_error, retry_after=wait)
            return error_response(client.dialect, last_error)
        message = f"all credentials for model {client.model!r} are cooling down; retry in {math.ceil(wait or 1)}s"
        return error_response(
            client.dialect,
            ir.ErrorInfo(429, message, kind="rate_limit", code="model_cooldown", retry_after=wait or 1.0),
        )

    def _select(
        self, candidates: list[Credential], by_provider: dict[str, tuple[Binding, str]], client: ClientRequest
    ) -> Credential:
        provider = by_provider[candidates[0].provider][0].provider
        if self._plugins_select:
            chosen = self.pm.hook.select_credential(
                provider=provider, model=client.model, candidates=candidates, request=client
            )
            if chosen is not None and chosen in candidates:
                return chosen
        return self.pool.choose(candidates, f"{provider.name}:{client.model}")

    async def _attempt(self, binding: Binding, credential: Credential, client: ClientRequest) -> Outcome:
        provider = binding.provider
        model = client.upstream_model
        for refreshed in (False, True):
            used = credential.secret  # a refresh is owed only if this token is still the current one
            upstream = binding.translate_request(provider=provider, request=client, credential=credential)
            session, options = self.sessions.get(credential.proxy_url)
            sent = time.perf_counter()
            try:
                response = await session.request(
                    upstream.method, upstream.url, data=upstream.body, headers=upstream.headers, **options
                )
            except UPSTREAM_ERRORS as exc:
                error = ir.ErrorInfo(502, f"upstream unreachable ({exc.__class__.__name__})", kind="api_error")
                self.pool.mark_failure(credential, model, Verdict("next", error), None)
                return Outcome(error=error)
            finally:
                client.upstream_seconds += time.perf_counter() - sent
            if response.status < 300:
                return await self._deliver(binding, credential, client, response, upstream.stream)
            sent = time.perf_counter()
            try:
                body = await BodyReader(response).read_all(ERROR_BODY_LIMIT)
            except UPSTREAM_ERRORS:
                body = b""
            finally:
                response.release()
                client.upstream_seconds += time.perf_counter() - sent
            verdict = binding.classify_response(
                provider=provider, status=response.status, headers=response.headers, body=body
            )
            error = verdict.error or ir.ErrorInfo(response.status, f"upstream answered {response.status}")
            if verdict.disable:
                self.accounts.disable(credential, verdict.disable)
            if verdict.action == "refresh":
                refreshable = not refreshed and provider.refresh is not None and credential.kind == "oauth"
                if refreshable and await self.accounts.refresh(provider, credential, used):
                    continue
                verdict = Verdict("next", error, scope="credential", cooldown=verdict.cooldown)
            if verdict.action == "fail":
                return Outcome(error=error, final=True)
            self.pool.mark_failure(credential, model, verdict, response.status)
            return Outcome(error=error)
        return Outcome(error=_internal())

    async def refresh(self, binding: Binding, credential: Credential) -> bool:
        """Refresh a credential once, however many requests ask at the same time."""
        return await self.accounts.refresh(binding.provider, credential)

    # -- delivering a successful answer ---------------------------------------

    async def _deliver(
        self,
        binding: Binding,
        credential: Credential,
        client: ClientRequest,
        response: aiohttp.ClientResponse,
        upstream_stream: bool,
    ) -> Outcome:
        provider = binding.provider
        reader = BodyReader(response)
        passthrough = is_passthrough(provider, client)
        if not upstream_stream:
            sent = time.perf_counter()
            try:
                body = await reader.read_all()
            except UPSTREAM_ERRORS as exc:
                response.close()
                return self._transient(credential, client, f"upstream body broke off ({exc.__class__.__name__})")
            finally:
                client.upstream_seconds += time.perf_counter() - sent
            response.release()
            return self._complete(provider.dialect, credential, client, body, passthrough)

        if passthrough and client.stream:
            decoder: Any = PassthroughDecoder(provider.dialect, client.upstream_model, client.model)
        else:
            decoder = get_dialect(provider.dialect).stream_decoder()
        state = StreamState(client=client, provider=provider, credential=credential, decoder=decoder,
                            passthrough=passthrough and client.stream)
        pump = StreamPump(reader, state, binding.translate_chunk)
        if not client.stream:
            return await self._aggregate(pump, credential, client)

        keepalive = self.config.streaming.keepalive_seconds
        first: list[Any] = []
        try:
            while not first and not pump.done:
                items = await pump.next_items(keepalive or None)
                if items is None:
                    break  # silent upstream: commit now so keep-alive frames can flow
                first.extend(items)
        except BaseException:
            pump.close()
            raise
        error = first_error(first)
        if error is not None:
            pump.close()
            verdict = binding.classify_response(
                provider=provider, status=error.status, headers={}, body=jsonutil.dumps(
                    get_dialect(provider.dialect).error_body(error))
            )
            self.pool.mark_failure(credential, client.upstream_model, verdict, error.status)
            return Outcome(error=verdict.error or error, final=verdict.action == "fail")

        self.pool.mark_success(credential, client.upstream_model)
        dialect = get_dialect(client.dialect)
        if state.passthrough:
            writer = FrameWriter(None, client.dialect)
        else:
            encoder_request = attrs.evolve(client.decoded(), model=client.model)
            writer = FrameWriter(dialect.stream_encoder(encoder_request, sse=client.sse), client.dialect)
        # Committed: no retry will need the request body again, and a stream can live for minutes.
        client.release_body()
        body = client_stream(pump, writer, first, keepalive if client.sse else 0.0, dialect.keepalive_frame)
        media_type = "text/event-stream" if client.sse else "application/json"
        return Outcome(response=StreamingResponse(body, media_type=media_type, headers=SSE_HEADERS))

    async def _aggregate(self, pump: StreamPump, credential: Credential, client: ClientRequest) -> Outcome:
        """A non-stream client served from an upstream stream."""
        collector = aggregate.Collector(client.model)
        try:
            while not pump.done:
                for item in await pump.next_items(None) or []:
                    collector.add(item)
                if collector.error is not None or collector.stopped:
                    break
        finally:
            pump.close()
        if collector.error is not None and not collector.response.parts:
            self.pool.mark_failure(credential, client.upstream_model, Verdict("next", collector.error),
                                   collector.error.status)
            return Outcome(error=collector.error)
        self.pool.mark_success(credential, client.upstream_model)
        result = collector.result()
        result.model = client.model
        body = jsonutil.dumps(get_dialect(client.dialect).encode_response(result))
        return Outcome(response=Response(body, media_type="application/json"))

    def _complete(
        self, upstream_dialect: str, credential: Credential, client: ClientRequest, body: bytes, passthrough: bool
    ) -> Outcome:
        """A complete upstream JSON body → the client's response."""
        if passthrough:
            patch = model_patch(client.upstream_model, client.model)
            self.pool.mark_success(credential, client.upstream_model)
            return Outcome(response=Response(patch(body) if patch else body, media_type="application/json"))
        try:
            decoded = get_dialect(upstream_dialect).decode_response(jsonutil.loads(body))
        except (ValueError, DialectError) as exc:
            return self._transient(credential, client, f"unreadable upstream response ({exc.__class__.__name__})")
        self.pool.mark_success(credential, client.upstream_model)
        decoded.model = client.model
        out = jsonutil.dumps(get_dialect(client.dialect).encode_response(decoded))
        return Outcome(response=Response(out, media_type="application/json"))

    def _transient(self, credential: Credential, client: ClientRequest, message: str) -> Outcome:
        error = ir.ErrorInfo(502, message, kind="api_error")
        self.pool.mark_failure(credential, client.upstream_model, Verdict("next", error), 502)
        return Outcome(error=error)

    # -- background ------------------------------------------------------------

    async def background(self) -> None:
        """Account upkeep for the gateway's lifetime: proactive refresh, write-back retries, auth-dir watching."""
        await self.accounts.run()


def model_not_found(client: ClientRequest) -> ir.ErrorInfo:
    """The error for a model no provider serves."""
    return ir.ErrorInfo(
        400,
        f"model {client.model!r} is not served by this gateway; GET /v1/models lists the available models "
        "(or run `polyrelay models`)",
        kind="invalid_request",
        code="model_not_found",
    )


def _internal() -> ir.ErrorInfo:
    return ir.ErrorInfo(502, "the upstream request failed", kind="api_error")
