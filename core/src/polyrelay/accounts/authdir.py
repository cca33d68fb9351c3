"""The auth dir: reading account files safely, and noticing changes while serving.

Every ``*.json`` under ``auth-dir`` (recursively, symlinked files
followed, symlinked directories not) is offered to the providers'
``credential_from_file`` hook.  One file can never stop the gateway: a
non-regular file (a FIFO, a device) is never opened, a file over
:data:`MAX_FILE_BYTES` is never read, and unparseable JSON, a non-object,
a ``type`` that is not a string or a provider hook that raises are each
skipped with a one-line reason.

:class:`AuthDir` remembers each file's ``(mtime, size, inode)`` and a scan
turns differences into adds, reloads and removals in the pool; a polling
scan every second is what the gateway runs (see :meth:`AuthDir.watch`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from polyrelay import jsonutil
from polyrelay.accounts.oauth import parse_time
from polyrelay.authfiles import load_failure, unclaimed_reason
from polyrelay.credentials import Pool
from polyrelay.types import Credential

log = logging.getLogger("polyrelay.accounts")

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 32
WATCH_INTERVAL = 1.0

Signature = tuple[int, int, int]


class SkippedFile(Exception):
    """An auth file that cannot be used; the message says why."""


def _walk(directory: Path, depth: int = 0) -> list[Path]:
    if depth > MAX_DEPTH:
        return []
    found: list[Path] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return []
    for entry in entries:
        if entry.name.startswith("."):
            continue  # temporary files of atomic writes, editor swap files
        try:
            if entry.is_dir(follow_symlinks=False):
                found.extend(_walk(Path(entry.path), depth + 1))
            elif entry.name.endswith(".json"):
                found.append(Path(entry.path))
        except OSError:
            continue
    return found


def signature(path: Path) -> Signature | None:
    """What changes when a file is rewritten (None: gone or unreadable)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def read_auth_file(path: Path, limit: int = MAX_FILE_BYTES) -> dict[str, Any]:
    """The JSON object in ``path``, or :class:`SkippedFile` with the reason.

    A non-regular file (FIFO, device, socket) or one over ``limit`` is
    refused from its ``stat`` without being opened; the open itself is
    non-blocking and re-checked with ``fstat``, so a file swapped in between
    can neither block nor be read.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise SkippedFile(f"cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise SkippedFile("not a regular file")
    if info.st_size > limit:
        raise SkippedFile(f"larger than {limit // 1024} KiB")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.EWOULDBLOCK):
            raise SkippedFile("not a regular file") from None
        raise SkippedFile(f"cannot open ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SkippedFile("not a regular file")
        if info.st_size > limit:
            raise SkippedFile(f"larger than {limit // 1024} KiB")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise SkippedFile(f"cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(raw) > limit:
        raise SkippedFile(f"larger than {limit // 1024} KiB")
    try:
        data = jsonutil.loads(raw)
    except (ValueError, RecursionError):
        raise SkippedFile("not valid JSON (or nested too deeply)") from None
    if not isinstance(data, dict):
        raise SkippedFile("not a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str) or not kind:
        raise SkippedFile("its 'type' is missing or not a string")
    return data


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _int(data: dict[str, Any], key: str, default: int) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def file_credential(
    provider: str,
    path: Path,
    data: dict[str, Any],
    secret_field: str = "access_token",
    refresh_field: str = "refresh_token",
    expiry_field: str = "expired",
    label: str = "",
) -> Credential:
    """A credential from a flat CLIProxyAPI-style account file.

    Reads the token fields named, and the common fields every provider's
    file may carry: ``email`` (the label), ``proxy_url``, ``priority``,
    ``excluded_models``, ``disabled`` / ``disabled_reason``.  The id is the
    file's name; ``data`` is kept for the write-back.  Raises
    :class:`SkippedFile` when the token is missing.
    """
    secret = _text(data, secret_field)
    if not secret:
        raise SkippedFile(f"no {secret_field!r}")
    excluded = data.get("excluded_models")
    return Credential(
        id=path.name,
        provider=provider,
        secret=secret,
        kind="oauth",
        label=label or _text(data, "email") or path.stem,
        refresh_token=_text(data, refresh_field) or None,
        expires_at=parse_time(data.get(expiry_field)),
        proxy_url=_text(data, "proxy_url") or None,
        priority=_int(data, "priority", 0),
        excluded_models=[m for m in excluded if isinstance(m, str)] if isinstance(excluded, list) else [],
        path=path,
        data=data,
    )


def apply_disabled(credential: Credential, data: dict[str, Any]) -> None:
    """Honour a persisted ``disabled`` flag and its reason (CLIProxyAPI keeps ``disabled`` in the file)."""
    if data.get("disabled") is True:
        credential.disabled = True
        credential.disabled_reason = _text(data, "disabled_reason") or credential.disabled_reason or \
            "disabled in the auth file"


#: Turns one file's JSON into its credential(s) (the ``credential_from_file`` hook), or None if unclaimed.
Claimer = Callable[[dict[str, Any], Path], Credential | list[Credential] | None]


@attrs.define
class AuthDir:
    """The auth dir's files as credentials in ``pool``, kept in step with the disk."""

    directory: Path
    pool: Pool
    claim: Claimer
    #: Credential types some installed provider handles (for the "nobody handles it" warning).
    claimed_types: set[str]
    #: Provider names that are registered (a file for another one is skipped).
    providers: set[str]
    #: Called with each newly loaded credential (redaction of its secrets).
    on_load: Callable[[Credential], None] = lambda _c: None
    _seen: dict[Path, Signature] = attrs.field(factory=dict)
    #: The ids each file's credentials have in the pool (one file may hold several rotation members).
    _ids: dict[Path, list[str]] = attrs.field(factory=dict)
    _reported: dict[Path, str] = attrs.field(factory=dict)

    def _skip(self, path: Path, reason: str) -> None:
        if self._reported.get(path) != reason:  # once per file and reason, not once per scan
            log.warning("skipping auth file %s: %s", path.name, reason)
            self._reported[path] = reason

    def _load(self, path: Path) -> list[Credential] | None:
        data = read_auth_file(path)
        try:
            claimed = self.claim(data, path)
        except SkippedFile:
            raise
        except Exception as exc:  # a provider's bug in one file must not stop the others
            raise SkippedFile(load_failure(exc)) from None
        if claimed is None:
            kind = data["type"]
            if kind not in self.claimed_types:
                raise SkippedFile(unclaimed_reason(kind, sorted(self.providers)))
            return None
        credentials = claimed if isinstance(claimed, list) else [claimed]
        if not credentials:
            raise SkippedFile("its provider found nothing to serve in it")
        for credential in credentials:
            if credential.provider not in self.providers:
                raise SkippedFile(f"provider {credential.provider!r} is not registered")
            apply_disabled(credential, data)
        return credentials

    def scan(self) -> tuple[int, int, int]:
        """Bring the pool in line with the directory; ``(added, reloaded, removed)``."""
        added = reloaded = removed = 0
        current = {p: s for p in _walk(self.directory) if (s := signature(p)) is not None}
        for path in [p for p in self._seen if p not in current]:
            del self._seen[path]
            self._reported.pop(path, None)
            gone = [i for i in self._ids.pop(path, []) if self.pool.remove(i) is not None]
            if gone:
                log.info("auth file %s removed: its account no longer serves", path.name)
                removed += 1
        for path, sig in current.items():
            if self._seen.get(path) == sig:
                continue
            known = path in self._seen
            self._seen[path] = sig
            try:
                credentials = self._load(path)
            except SkippedFile as exc:
                self._skip(path, str(exc))  # a bad rewrite keeps the account loaded before it
                continue
            self._reported.pop(path, None)
            if credentials is None:
                continue
            taken = {i for other, others in self._ids.items() if other != path for i in others}
            for credential in credentials:
                if credential.id in taken:  # the same file name in two subdirectories
                    credential.id = f"{path.relative_to(self.directory)}#{credential.id}"
            ids = [c.id for c in credentials]
            for old_id in self._ids.get(path, []):
                if old_id not in ids:
                    self.pool.remove(old_id)
            self._ids[path] = ids
            for credential in credentials:
                self.pool.add(credential)
                self.on_load(credential)
            if known:
                reloaded += 1
                log.info("auth file %s changed: reloaded", path.name)
            else:
                added += 1
        return added, reloaded, removed

    def describe(self) -> list[tuple[Path, list[Credential] | None, str | None]]:
        """Each file with the credentials it would load, or why it is skipped; the pool is left alone."""
        rows: list[tuple[Path, list[Credential] | None, str | None]] = []
        for path in _walk(self.directory):
            try:
                rows.append((path, self._load(path), None))
            except SkippedFile as exc:
                rows.append((path, None, str(exc)))
        return rows

    def written(self, path: Path) -> None:
        """We wrote ``path`` ourselves (a refresh): do not reload it as an outside change."""
        sig = signature(path)
        if sig is not None and path in self._seen:
            self._seen[path] = sig

    async def watch(self, interval: float = WATCH_INTERVAL) -> None:
        """Rescan every ``interval`` seconds, forever (cancel to stop)."""
        while True:
            await asyncio.sleep(interval)
            try:
                added, _, _ = self.scan()
            except Exception:  # the watcher must outlive any surprise on disk
                log.exception("auth dir scan failed")
                continue
            if added:
                log.info("auth dir: %d new account file(s) now serving", added)
