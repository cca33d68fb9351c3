"""Keeping accounts alive: single-flight refresh, write-back, the disabled state, background upkeep.

:class:`Accounts` is what the gateway calls on a 401 and what its
background task runs.  A refresh happens once per credential however many
requests ask: each asker passes the token *its* request used, and a waiter
that finds the credential already holding another token just retries with
it.  The refreshed file is written back atomically; when that write fails
the new token still serves from memory, the failure is logged once with
the path, shown as ``write_error`` by ``polyrelay credentials`` and retried
by the background task.  A grant the token endpoint calls dead
(``invalid_grant``) disables the account, with the reason written into its
file so the state survives a restart; it is never retried in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from polyrelay.accounts.authdir import AuthDir
from polyrelay.accounts.oauth import RefreshRejected
from polyrelay.credentials import Pool, write_json_atomic
from polyrelay.logs import redaction_filter
from polyrelay.types import Credential, Provider
from polyrelay.upstream import Sessions

log = logging.getLogger("polyrelay.accounts")

REFRESH_TIMEOUT = 60.0
#: After a failed proactive refresh, wait this long before the next try.
RETRY_AFTER_FAILURE = 300.0
REFRESH_INTERVAL = 30.0


class Accounts:
    """Refresh, persistence and the disabled state of the pool's credentials."""

    def __init__(
        self,
        pool: Pool,
        sessions: Sessions,
        providers: dict[str, Provider],
        auth_dir: AuthDir | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pool = pool
        self.sessions = sessions
        self.providers = providers
        self.auth_dir = auth_dir
        self.clock = clock
        self._next_try: dict[str, float] = {}
        #: Completed refreshes per credential id (tests and status).
        self.refreshes: dict[str, int] = {}

    # -- refresh -----------------------------------------------------------

    async def refresh(self, provider: Provider, credential: Credential, used: str | None = None) -> bool:
        """Renew ``credential``'s token once; True when it now holds a token newer than ``used``.

        ``used`` is the token the failed request sent (default: the current
        one).  Concurrent callers share one refresh.
        """
        refresher = provider.refresh
        if refresher is None or credential.disabled:
            return False
        used = credential.secret if used is None else used
        async with self.pool.refresh_lock(credential):
            if credential.secret != used:
                return True  # refreshed since that request was sent
            if credential.disabled:
                return False
            session, _ = self.sessions.get(credential.proxy_url)
            try:
                async with asyncio.timeout(REFRESH_TIMEOUT):
                    await refresher(credential, session, provider)
            except RefreshRejected as exc:
                self.disable(credential, f"refresh rejected: {exc}")
                return False
            except Exception as exc:  # a failed refresh cools the credential; it must not crash the request
                log.warning("refresh of %s failed: %s", credential.label, _describe(exc))
                self._next_try[credential.id] = self.clock() + RETRY_AFTER_FAILURE
                return False
            redaction_filter().add(credential.secrets)
            self._share_with_siblings(credential)
            self.refreshes[credential.id] = self.refreshes.get(credential.id, 0) + 1
            self._next_try.pop(credential.id, None)
            log.info("refreshed credential %s", credential.label)
            self.persist(credential)
            return True

    def _share_with_siblings(self, credential: Credential) -> None:
        """Members loaded from the same file hold the same token: give them the new one too."""
        if credential.path is None:
            return
        for other in self.pool:
            if other is not credential and other.path == credential.path:
                other.secret, other.refresh_token = credential.secret, credential.refresh_token
                other.expires_at, other.data = credential.expires_at, credential.data

    def due(self, credential: Credential, now: float) -> bool:
        """Whether the proactive refresh should renew ``credential`` now."""
        provider = self.providers.get(credential.provider)
        if provider is None or provider.refresh is None or credential.disabled or credential.kind != "oauth":
            return False
        if credential.expires_at is None or now < self._next_try.get(credential.id, 0.0):
            return False
        return credential.expires_at - provider.refresh_lead <= now

    async def refresh_due(self) -> int:
        """One pass: refresh what is about to expire, retry failed writes; the number refreshed."""
        now = self.clock()
        for credential in list(self.pool):
            if self.pool.store.state(credential.id).write_error is not None:
                self.persist(credential)
        due = [c for c in self.pool if self.due(c, now)]
        results = await asyncio.gather(*(self.refresh(self.providers[c.provider], c) for c in due),
                                       return_exceptions=True)
        return sum(1 for r in results if r is True)

    # -- persistence and the disabled state ----------------------------------

    def persist(self, credential: Credential) -> bool:
        """Write ``credential.data`` back to its file; False (logged once, retried later) when that fails."""
        if credential.path is None:
            return True
        state = self.pool.store.state(credential.id)
        try:
            write_json_atomic(credential.path, credential.data)
        except OSError as exc:
            reason = f"cannot write {credential.path}: {exc.strerror or exc.__class__.__name__}"
            if state.write_error is None:
                log.error("%s; the account keeps serving from memory and the write is retried", reason)
            state.write_error = reason
            return False
        if state.write_error is not None:
            log.info("wrote %s after an earlier failure", credential.path)
            state.write_error = None
        if self.auth_dir is not None:
            self.auth_dir.written(credential.path)
        return True

    def disable(self, credential: Credential, reason: str) -> None:
        """Take ``credential`` out of rotation for good, recording why in its file (logged once)."""
        if credential.disabled and credential.disabled_reason == reason:
            return
        credential.disabled = True
        credential.disabled_reason = reason
        log.warning("account %s disabled: %s", credential.label, reason)
        if credential.path is not None:
            credential.record_disabled(reason)
            self.persist(credential)

    # -- background ------------------------------------------------------------

    async def refresh_loop(self, interval: float = REFRESH_INTERVAL) -> None:
        """Proactive refresh and write-back retries every ``interval`` seconds, forever."""
        while True:
            try:
                await self.refresh_due()
            except Exception:  # upkeep must outlive any one surprise
                log.exception("account upkeep failed")
            await asyncio.sleep(interval)

    async def run(self, refresh_interval: float = REFRESH_INTERVAL, watch_interval: float | None = None) -> None:
        """All background upkeep (refresh, and auth-dir watching when there is a dir) until cancelled."""
        tasks = [asyncio.ensure_future(self.refresh_loop(refresh_interval))]
        if self.auth_dir is not None:
            watch = self.auth_dir.watch() if watch_interval is None else self.auth_dir.watch(watch_interval)
            tasks.append(asyncio.ensure_future(watch))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _describe(exc: Exception) -> str:
    text = str(exc)
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
