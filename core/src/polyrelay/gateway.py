"""The dispatcher: route, choose a credential, attempt, classify, fail over.

Everything before the first byte reaches the client may be retried on
another credential; after it, failures end the stream with the dialect's
terminal error.  :meth:`Gateway.serve` returns a
:data:`polyrelay.results.Result` and speaks no HTTP; :mod:`polyrelay.responses`
does.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Mapping

import aiohttp
import attrs
import pluggy

from polyrelay import defaults, ir, jsonutil
from polyrelay.accounts.authdir import AuthDir
from polyrelay.accounts.upkeep import Accounts
from polyrelay.config import Config
from polyrelay.credentials import Pool, Routes
from polyrelay.defaults import is_passthrough
from polyrelay.delivery import Attempt, deliver
from polyrelay.dialects import DialectError, get_dialect
from polyrelay.logs import redaction_filter
from polyrelay.plugins import Binding, bind, call_each, collect_providers
from polyrelay.results import Complete, Failure, Result, Stream
from polyrelay.routing import ModelNotFound, Router
from polyrelay.streaming import UPSTREAM_ERRORS, deadline_error
from polyrelay.types import ClientRequest, Credential, Provider, Verdict
from polyrelay.upstream import BodyReader, Sessions

log = logging.getLogger("polyrelay.gateway")

#: Statuses after which another round over the credentials is worth it.
ROUND_RETRY_STATUSES = frozenset({403, 408, 429, 500, 502, 503, 504})
ERROR_BODY_LIMIT = 1024 * 1024


@attrs.define
class Spent:
    """What one request has used of the upstream so far, over all its attempts."""

    seconds: float = 0.0
    attempts: int = 0


@attrs.frozen
class Tried:
    """A failed attempt: what went wrong and what it means for the credential."""

    error: ir.ErrorInfo
    verdict: Verdict
    #: The upstream's HTTP status when it answered with an error status (None otherwise).
    status: int | None = None

    @property
    def final(self) -> bool:
        """A request fault: stop trying other credentials."""
        return self.verdict.action == "fail"

    def same_failure(self, other: Tried) -> bool:
        """Two credentials failed this request in exactly the same way."""
        a, b = self.error, other.error
        return (self.status, a.status, a.kind, a.code, a.message) == (other.status, b.status, b.kind, b.code, b.message)


class Gateway:
    """Providers, credentials and the request loop, built once at start."""

    def __init__(self, config: Config, pm: pluggy.PluginManager, pool: Pool | None = None) -> None:
        self.config = config
        self.pm = pm
        # The core's own copies: a plugin's Provider objects are never changed.
        providers = [_with_overrides(p, config) for p in collect_providers(pm, config)]
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

    async def serve(self, client: ClientRequest) -> Result:
        """Answer one client request (any dialect, stream or not)."""
        try:
            targets = self.router.resolve(client.model)
        except ModelNotFound:
            return Failure(model_not_found(client))
        if not all(is_passthrough(binding.provider, client) for binding, _ in targets):
            try:
                client.decoded()  # a body this dialect cannot read fails now, as a 400
            except DialectError as exc:
                return Failure(exc.to_error())
        by_provider = {b.provider.name: (b, model) for b, model in targets}
        routes = [(b.provider.name, model) for b, model in targets]
        if not self.pool.eligible(routes):
            names = ", ".join(sorted(by_provider))
            return Failure(ir.ErrorInfo(
                503, f"no credentials available for model {client.model!r} (providers: {names})",
                kind="overloaded", code="no_credentials"))

        spent = Spent()
        outcome = await self._rounds(client, routes, by_provider, spent)
        if not isinstance(outcome, Tried | None):
            return outcome
        recovering: list[tuple[Routes, frozenset[str]]] = [(routes, frozenset())]
        # Only a request every credential refused for its quota pays for this check.
        if self.config.quota_exceeded.switch_preview_model and self.pool.all_rate_limited(routes):
            served = await self._previews(client, targets, routes, spent, recovering)
            if served is not None:
                return served
        return self._exhausted(client, outcome, spent, recovering)

    async def _rounds(
        self, client: ClientRequest, routes: Routes, by_provider: dict[str, tuple[Binding, str]], spent: Spent,
        exclude: frozenset[str] = frozenset(), served_as_upstream: bool = False,
    ) -> Result | Tried | None:
        """Rounds of attempts over ``routes`` until one serves the request or none can.

        Returns the result when an attempt served it or failed it for good
        (a request fault); otherwise the last failed attempt (None: every
        credential was cooling, nothing was sent).  ``served_as_upstream``:
        the answer names the upstream model it came from, not the client's.
        """
        last: Tried | None = None
        # The request's first 5xx, not yet held against its credential: when the
        # next credential answers identically, the request is what is wrong.
        doubt: tuple[Credential, str, Tried] | None = None
        for round_no in range(max(0, self.config.request_retry) + 1):
            tried: set[str] = set(exclude)
            while True:
                limit = self.config.max_retry_credentials
                if limit and len(tried) - len(exclude) >= limit:
                    break
                candidates = self.pool.candidates(routes, exclude=tried)
                if not candidates:
                    break
                credential = self._select(candidates, by_provider, client)
                tried.add(credential.id)
                attempt = self._attempt_for(client, credential, *by_provider[credential.provider],
                                            served_as_upstream=served_as_upstream)
                spent.attempts += 1
                try:
                    outcome = await self._attempt(attempt)
                finally:
                    spent.seconds += attempt.upstream_seconds
                if not isinstance(outcome, Tried):
                    if doubt is not None:
                        self._mark(*doubt)  # another credential served it: the 5xx was the first one's own
                    self.pool.mark_success(credential, attempt.request.upstream_model)
                    if isinstance(outcome, Complete):
                        return Complete(outcome.body, upstream_seconds=spent.seconds)
                    return outcome
                last = outcome
                if doubt is not None:
                    if outcome.same_failure(doubt[2]):
                        return Failure(outcome.error, upstream_seconds=spent.seconds)  # the request's fault
                    self._mark(*doubt)
                    doubt = None
                if outcome.final:
                    return Failure(outcome.error, upstream_seconds=spent.seconds)
                if spent.attempts == 1 and outcome.status is not None and outcome.status >= 500:
                    doubt = (credential, attempt.request.upstream_model, outcome)
                    continue
                self._mark(credential, attempt.request.upstream_model, outcome)
            if doubt is not None:
                self._mark(*doubt)  # no other credential to compare with
                doubt = None
            if last is not None and last.error.status not in ROUND_RETRY_STATUSES:
                break
            wait = self.pool.soonest_recovery(routes, exclude)
            if round_no == self.config.request_retry or wait is None:
                break
            if self.config.max_retry_interval <= 0 or wait > self.config.max_retry_interval:
                break
            await asyncio.sleep(wait)
        return last

    async def _previews(
        self, client: ClientRequest, targets: list[tuple[Binding, str]], routes: Routes, spent: Spent,
        recovering: list[tuple[Routes, frozenset[str]]],
    ) -> Result | None:
        """``quota-exceeded.switch-preview-model``: the request served by its model's preview siblings.

        Each preview is tried in its provider's order, over the credentials
        that serve the requested model.  Only a served answer is returned:
        a preview that fails, for whatever reason, leaves the client the
        answer it gets without the setting (its routes join ``recovering``
        for the retry hint).
        """
        declared = {b.provider.name: self.router.previews(b.provider.name, model) for b, model in targets}
        owners = {c.id for c, _ in self.pool.eligible(routes)}
        for index in range(max(map(len, declared.values()), default=0)):
            by_provider: dict[str, tuple[Binding, str]] = {}
            for binding, _ in targets:
                previews = declared[binding.provider.name]
                if len(previews) > index:
                    by_provider[binding.provider.name] = (binding, previews[index])
            preview_routes = [(name, model) for name, (_, model) in by_provider.items()]
            exclude = frozenset(c.id for c, _ in self.pool.eligible(preview_routes) if c.id not in owners)
            recovering.append((preview_routes, exclude))
            names = ", ".join(sorted({model for _, model in preview_routes}))
            log.info("model %r is rate-limited on every credential; trying preview model %s "
                     "(quota-exceeded.switch-preview-model)", client.model, names)
            outcome = await self._rounds(client, preview_routes, by_provider, spent, exclude,
                                         served_as_upstream=True)
            if not isinstance(outcome, Tried | Failure | None):
                return outcome
        return None

    def _exhausted(
        self, client: ClientRequest, last: Tried | None, spent: Spent, recovering: list[tuple[Routes, frozenset[str]]],
    ) -> Failure:
        """The answer when no credential could serve the request: the upstream's last error, or a 429
        with the soonest recovery over every route the request could have taken."""
        waits = [w for routes, exclude in recovering if (w := self.pool.soonest_recovery(routes, exclude)) is not None]
        wait = min(waits, default=None)
        if last is not None:
            # This request reached the upstream: its own answer is the truthful one.
            error = last.error
            if error.status == 429 and wait is not None:
                error = attrs.evolve(error, retry_after=wait)
            return Failure(error, upstream_seconds=spent.seconds)
        message = f"all credentials for model {client.model!r} are cooling down; retry in {math.ceil(wait or 1)}s"
        return Failure(
            ir.ErrorInfo(429, message, kind="rate_limit", code="model_cooldown", retry_after=wait or 1.0),
            upstream_seconds=spent.seconds,
        )

    def _attempt_for(
        self, client: ClientRequest, credential: Credential, binding: Binding, model: str,
        served_as_upstream: bool = False,
    ) -> Attempt:
        provider = binding.provider
        request = client.for_attempt(model, renamed=served_as_upstream)
        return Attempt(
            binding=binding, credential=credential, request=request, client=client.codec,
            upstream=get_dialect(provider.dialect), passthrough=is_passthrough(provider, client),
            timeouts=self.config.upstream_timeouts.for_provider(provider.name),
        )

    def _mark(self, credential: Credential, model: str, tried: Tried) -> None:
        self.pool.mark_failure(credential, model, tried.verdict, tried.status or tried.error.status)

    def _select(
        self, candidates: list[Credential], by_provider: dict[str, tuple[Binding, str]], client: ClientRequest
    ) -> Credential:
        provider = by_provider[candidates[0].provider][0].provider
        if self._plugins_select:
            chosen: Credential | None = self.pm.hook.select_credential(
                provider=provider, model=client.model, candidates=candidates, request=client
            )
            if chosen is not None and chosen in candidates:
                return chosen
        return self.pool.choose(candidates, f"{provider.name}:{client.model}")

    async def _attempt(self, attempt: Attempt) -> Complete | Stream | Tried:
        binding, credential = attempt.binding, attempt.credential
        provider = binding.provider
        timeouts = attempt.timeouts
        connect = _connect_timeout(timeouts.connect_seconds or None)
        first_byte = min((s for s in (timeouts.first_byte_seconds, timeouts.total_seconds) if s), default=None)
        for refreshed in (False, True):
            used = credential.secret  # a refresh is owed only if this token is still the current one
            try:
                upstream = binding.translate_request(provider=provider, request=attempt.request, credential=credential)
            except DialectError as exc:  # the request cannot be written in the upstream's dialect
                error = exc.to_error()
                return Tried(error, Verdict("fail", error))
            session, options = self.sessions.get(credential.proxy_url)
            sent = time.perf_counter()
            deadline = asyncio.timeout(first_byte)
            try:
                async with deadline:
                    response = await session.request(
                        upstream.method, upstream.url, data=upstream.body, headers=upstream.headers,
                        timeout=connect, **options,
                    )
            except UPSTREAM_ERRORS as exc:
                if deadline.expired():
                    error = deadline_error(f"no response headers within {first_byte:g}s")
                else:
                    error = ir.ErrorInfo(502, f"upstream unreachable ({exc.__class__.__name__})", kind="api_error")
                return Tried(error, Verdict("next", error))
            finally:
                attempt.upstream_seconds += time.perf_counter() - sent
            binding.observe_response(provider=provider, credential=credential, status=response.status,
                                     headers=response.headers)
            if response.status < 300:
                result = await deliver(attempt, response, upstream, self.config.streaming.keepalive_seconds)
                if isinstance(result, ir.ErrorInfo):
                    return self._classify(attempt, result.status, {}, result)
                return result
            body = await self._error_body(attempt, response)
            tried = self._classify(attempt, response.status, response.headers, None, body)
            if tried.verdict.action == "refresh":
                refreshable = not refreshed and provider.refresh is not None and credential.kind == "oauth"
                if refreshable and await self.accounts.refresh(provider, credential, used):
                    continue
                verdict = Verdict("next", tried.error, scope="credential", cooldown=tried.verdict.cooldown,
                                  disable=tried.verdict.disable)
                if verdict.disable:
                    self.accounts.disable(credential, verdict.disable)
                return attrs.evolve(tried, verdict=verdict)
            return tried
        return Tried(_internal(), Verdict("next", _internal()))

    async def _error_body(self, attempt: Attempt, response: aiohttp.ClientResponse) -> bytes:
        sent = time.perf_counter()
        try:
            async with asyncio.timeout(attempt.timeouts.idle_seconds or None):
                body = await BodyReader(response).read_all(ERROR_BODY_LIMIT)
        except UPSTREAM_ERRORS:
            body = b""
        except BaseException:
            response.close()  # cancelled: drop the connection rather than leave it half read
            raise
        finally:
            attempt.upstream_seconds += time.perf_counter() - sent
        response.release()
        return body

    def _classify(
        self, attempt: Attempt, status: int, headers: Mapping[str, str], error: ir.ErrorInfo | None,
        body: bytes | None = None,
    ) -> Tried:
        """Ask the provider what a failed answer means.

        An in-stream error arrives decoded, hint included; the hook gets it
        as ``error`` and, for implementations that read only ``body``, as
        the dialect's error body too.
        """
        if body is None:
            assert error is not None
            body = jsonutil.dumps(attempt.upstream.error_body(error))
            answered = None
        else:
            error = attempt.upstream.decode_error(status, body)
            answered = status
        verdict: Verdict = attempt.binding.classify_response(
            provider=attempt.binding.provider, status=status, headers=headers, body=body, error=error
        )
        reported = verdict.error or error
        if verdict.error is None:
            verdict = attrs.evolve(verdict, error=reported)
        if verdict.disable and verdict.action != "refresh":  # a refresh verdict disables only if refreshing fails
            self.accounts.disable(attempt.credential, verdict.disable)
        return Tried(reported, verdict, answered)

    async def refresh(self, binding: Binding, credential: Credential) -> bool:
        """Refresh a credential once, however many requests ask at the same time."""
        return await self.accounts.refresh(binding.provider, credential)

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


@functools.lru_cache(maxsize=16)  # one per distinct connect deadline in the config, reused by every attempt
def _connect_timeout(seconds: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=seconds, sock_read=None)


def _internal() -> ir.ErrorInfo:
    return ir.ErrorInfo(502, "the upstream request failed", kind="api_error")


def _with_overrides(provider: Provider, config: Config) -> Provider:
    """The core's copy of ``provider`` with the config's ``upstream-urls`` and refresh lead applied."""
    overrides = config.upstream_urls.get(provider.name, {})
    lead = config.refresh_lead_seconds.get(provider.name, provider.refresh_lead)
    return attrs.evolve(provider, urls={**provider.urls, **overrides}, refresh_lead=lead)
