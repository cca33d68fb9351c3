"""The credential pool: who may serve a request, cooldowns, rotation, refresh.

State per credential and per (credential, model) lives in a
:class:`CooldownStore`; the in-memory store is the default, and the
interface is small so a shared store (Redis) can stand in for several
replicas.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs

from polyrelay.types import Credential, Verdict

log = logging.getLogger("polyrelay.credentials")

#: ``(provider name, upstream model)`` pairs a request may be served by.
Routes = Sequence[tuple[str, str]]

#: Default cooldowns per status class when the upstream gives no hint (seconds).
AUTH_COOLDOWN = 30 * 60.0
NOT_FOUND_COOLDOWN = 12 * 3600.0
TRANSIENT_COOLDOWN = 60.0
#: The first transient cooldown; each further one in a row doubles it, up to the configured cap.
TRANSIENT_FIRST = 1.0
RATE_LIMIT_LADDER_MAX = 30 * 60.0
#: Upstream hints are obeyed up to this long.
MAX_COOLDOWN = 24 * 3600.0


@attrs.define
class Cooldown:
    until: float
    reason: str
    status: int | None = None


@attrs.define
class CredentialState:
    cooldown: Cooldown | None = None
    models: dict[str, Cooldown] = attrs.field(factory=dict)
    failures: int = 0
    successes: int = 0
    last_used: float = 0.0
    #: Step on the 429 back-off ladder (1 s, 2 s, 4 s, ...).
    ladder: int = 0
    #: Transient failures (5xx, no answer) since the last success, across requests.
    transient: int = 0
    #: Why the last write-back of this credential's file failed (None: written).
    write_error: str | None = None


class CooldownStore(Protocol):
    """Where credential state lives (in memory, or shared between replicas)."""

    def state(self, credential_id: str) -> CredentialState:
        """The state of one credential (created on first use)."""
        ...

    def next_cursor(self, key: str) -> int:
        """Advance and return the round-robin cursor for ``key``."""
        ...


class MemoryStore:
    """Credential state in this process; bounded by the number of credentials."""

    _MAX_CURSORS = 4096

    def __init__(self) -> None:
        self._states: dict[str, CredentialState] = {}
        self._cursors: dict[str, int] = {}

    def state(self, credential_id: str) -> CredentialState:
        """The state of one credential (created on first use)."""
        state = self._states.get(credential_id)
        if state is None:
            state = self._states[credential_id] = CredentialState()
        return state

    def next_cursor(self, key: str) -> int:
        """Advance and return the round-robin cursor for ``key``."""
        if key not in self._cursors and len(self._cursors) >= self._MAX_CURSORS:
            self._cursors.clear()
        value = self._cursors.get(key, -1) + 1
        self._cursors[key] = value
        return value


def serves(credential: Credential, model: str) -> bool:
    """Whether the credential may be used for client model ``model``."""
    if credential.models is not None and model not in credential.models:
        return False
    return not any(fnmatch.fnmatchcase(model, pattern) for pattern in credential.excluded_models)


class Pool:
    """All credentials, their state, and the choice between them."""

    def __init__(
        self,
        strategy: str = "round-robin",
        store: CooldownStore | None = None,
        clock: Callable[[], float] = time.time,
        transient_cooldown: float = TRANSIENT_COOLDOWN,
        disable_cooling: bool = False,
    ) -> None:
        self.strategy = strategy
        self.store: CooldownStore = store or MemoryStore()
        self.clock = clock
        self.transient_cooldown = transient_cooldown
        self.disable_cooling = disable_cooling
        self._credentials: dict[str, Credential] = {}
        self._refresh_locks: dict[str, asyncio.Lock] = {}

    # -- membership ----------------------------------------------------------

    def add(self, credential: Credential) -> None:
        """Add (or replace) a credential."""
        self._credentials[credential.id] = credential

    def remove(self, credential_id: str) -> Credential | None:
        """Drop a credential (its auth file was deleted); its state goes with it."""
        return self._credentials.pop(credential_id, None)

    def __iter__(self) -> Iterator[Credential]:
        return iter(sorted(self._credentials.values(), key=lambda c: (c.provider, c.id)))

    def __len__(self) -> int:
        return len(self._credentials)

    def get(self, credential_id: str) -> Credential | None:
        """A credential by id."""
        return self._credentials.get(credential_id)

    def secrets(self) -> list[str]:
        """Every secret held, for log redaction."""
        return [s for c in self._credentials.values() for s in c.secrets]

    # -- choosing ------------------------------------------------------------

    def cooling_until(self, credential: Credential, model: str) -> float:
        """When the credential can serve ``model`` again (0 = now)."""
        holding = self._holding(credential, model, self.clock())
        return holding.until if holding is not None else 0.0

    def _holding(self, credential: Credential, model: str, now: float) -> Cooldown | None:
        """The live cooldown that holds ``credential`` off ``model`` longest (None: ready)."""
        state = self.store.state(credential.id)
        longest = None
        for cooldown in (state.cooldown, state.models.get(model)):
            if cooldown is not None and cooldown.until > now and (longest is None or cooldown.until > longest.until):
                longest = cooldown
        return longest

    def eligible(self, routes: Routes, exclude: Collection[str] = ()) -> list[tuple[Credential, str]]:
        """``(credential, upstream model)`` for every enabled credential on ``routes``, cooling or not.

        ``routes`` pairs a provider name with the model name it is asked for.
        """
        models = dict(routes)
        return [
            (c, models[c.provider])
            for c in self._credentials.values()
            if c.provider in models and not c.disabled and c.id not in exclude and serves(c, models[c.provider])
        ]

    def candidates(self, routes: Routes, exclude: Collection[str] = ()) -> list[Credential]:
        """Credentials ready now: not cooling, highest priority tier, stable order."""
        ready = [c for c, model in self.eligible(routes, exclude) if not self.cooling_until(c, model)]
        if not ready:
            return []
        top = max(c.priority for c in ready)
        return sorted((c for c in ready if c.priority == top), key=lambda c: c.id)

    def all_rate_limited(self, routes: Routes) -> bool:
        """Whether every enabled credential on ``routes`` is cooling after a 429 (its quota or rate
        limit spent), and none of them for any other reason (an auth failure, a transient error)."""
        now = self.clock()
        eligible = self.eligible(routes)
        return bool(eligible) and all(
            (holding := self._holding(c, model, now)) is not None and holding.status == 429 for c, model in eligible)

    def soonest_recovery(self, routes: Routes, exclude: Collection[str] = ()) -> float | None:
        """Seconds until the first cooling credential recovers (None if none is cooling)."""
        times = [t for c, model in self.eligible(routes, exclude) if (t := self.cooling_until(c, model))]
        if not times:
            return None
        return max(0.0, min(times) - self.clock())

    def choose(self, candidates: list[Credential], key: str) -> Credential:
        """The configured strategy's pick among ready candidates.

        Round-robin gives each candidate ``weight`` turns per cycle (a key
        with ``weight: 2`` serves twice as often as one with the default 1).
        """
        if self.strategy == "fill-first" or len(candidates) == 1:
            return candidates[0]
        total = sum(max(1, c.weight) for c in candidates)
        turn = self.store.next_cursor(key) % total
        for candidate in candidates:
            turn -= max(1, candidate.weight)
            if turn < 0:
                return candidate
        return candidates[-1]

    # -- outcomes ------------------------------------------------------------

    def mark_success(self, credential: Credential, model: str) -> None:
        """A served request clears that model's cooldown and the back-off ladder."""
        state = self.store.state(credential.id)
        state.successes += 1
        state.last_used = self.clock()
        state.models.pop(model, None)
        state.ladder = 0
        state.transient = 0

    def mark_failure(self, credential: Credential, model: str, verdict: Verdict, status: int | None) -> float:
        """Apply a failed attempt's cooldown; returns its length in seconds."""
        state = self.store.state(credential.id)
        state.failures += 1
        state.last_used = self.clock()
        if self.disable_cooling or verdict.action in ("ok", "fail"):
            return 0.0
        seconds = verdict.cooldown if verdict.cooldown is not None else self._default_cooldown(state, status)
        if seconds <= 0:
            return 0.0
        reason = verdict.reason or (verdict.error.kind if verdict.error else f"status {status}")
        previous = state.cooldown if verdict.scope == "credential" else state.models.get(model)
        if verdict.repeat_cooldown is not None and _repeats(previous, reason, status, self.clock(), verdict):
            seconds = verdict.repeat_cooldown
        seconds = min(seconds, MAX_COOLDOWN)
        until = self.clock() + seconds
        if verdict.scope == "credential":
            if state.cooldown is None or state.cooldown.until < until:
                state.cooldown = Cooldown(until, reason, status)
        else:
            current = state.models.get(model)
            if current is None or current.until < until:  # never shorten a later recovery
                state.models[model] = Cooldown(until, reason, status)
        log.info("credential %s cooling %.1fs for %s (%s)", credential.label, seconds, model, reason)
        return seconds

    def _default_cooldown(self, state: CredentialState, status: int | None) -> float:
        if status == 429:
            seconds = min(2.0**state.ladder, RATE_LIMIT_LADDER_MAX)
            state.ladder += 1
            return seconds
        if status in (401, 402, 403):
            return AUTH_COOLDOWN
        if status == 404:
            return NOT_FOUND_COOLDOWN
        # One 5xx says little about the credential: short at first, longer only if it keeps failing.
        seconds = min(TRANSIENT_FIRST * 2.0**state.transient, self.transient_cooldown)
        state.transient += 1
        return seconds

    def reset(self, credential: Credential) -> None:
        """Clear every cooldown of a credential."""
        state = self.store.state(credential.id)
        state.cooldown = None
        state.models.clear()
        state.ladder = 0
        state.transient = 0

    def describe(self, credential: Credential) -> dict[str, Any]:
        """A secret-free summary of a credential and its state."""
        state = self.store.state(credential.id)
        now = self.clock()

        def left(cooldown: Cooldown | None) -> dict[str, Any] | None:
            if cooldown is None or cooldown.until <= now:
                return None
            return {"seconds_left": round(cooldown.until - now, 1), "reason": cooldown.reason}

        return {
            "id": credential.id,
            "provider": credential.provider,
            "kind": credential.kind,
            "label": credential.label,
            "disabled": credential.disabled,
            "disabled_reason": credential.disabled_reason or None,
            "quota": credential.quota or None,
            "priority": credential.priority,
            "cooldown": left(state.cooldown),
            "model_cooldowns": {m: left(c) for m, c in state.models.items() if left(c)},
            "successes": state.successes,
            "failures": state.failures,
            "write_error": state.write_error,
        }

    # -- refresh -------------------------------------------------------------

    def refresh_lock(self, credential: Credential) -> asyncio.Lock:
        """One lock per token, so concurrent 401s refresh it once: per auth file (the members a
        file serves share its token), else per credential."""
        key = str(credential.path) if credential.path is not None else credential.id
        lock = self._refresh_locks.get(key)
        if lock is None:
            lock = self._refresh_locks[key] = asyncio.Lock()
        return lock


def _repeats(previous: Cooldown | None, reason: str, status: int | None, now: float, verdict: Verdict) -> bool:
    """Whether a failure repeats the last cooldown of its scope right after it ended."""
    if previous is None or previous.reason != reason or previous.status != status:
        return False
    return previous.until <= now <= previous.until + verdict.repeat_window


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` with ``data`` so readers never see half a file.

    Written to a temporary file in the same directory (same filesystem),
    flushed to disk, renamed over the original, and the directory synced so
    the rename itself survives a crash; mode 0600 since it holds tokens.  A
    symlinked auth file is written through: its target is replaced and the
    link stays.  This is the one function that writes credential files.
    """
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new auth dir is private
    # The temporary name is capped so a long account name still fits NAME_MAX.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:64]}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_directory(target.parent)


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # some filesystems (and Windows) cannot open a directory; the data itself is synced
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
