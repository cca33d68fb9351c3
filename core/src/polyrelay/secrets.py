"""The one scrubber: secrets out of every text that reaches a client or a log.

Upstreams quote the key they reject ("Incorrect API key provided: ..."),
in complete error bodies and in stream error frames alike.  Everything of
upstream origin that the gateway relays or logs passes through
:func:`scrub` (or :func:`scrub_bytes` for raw frames), which removes each
registered secret *entirely*: no first-and-last-characters form, whatever
the secret's length, because a partial form of a short key is most of it.

Secrets are registered once, process-wide: the configured client keys and
upstream keys at start, each refreshed token as it arrives
(:func:`register`).  Shapes of well-known token formats (``Bearer ...``,
``sk-...``, ``AIza...``, ``ya29....``, ``"access_token": ...``) are removed
too, for secrets nobody registered (a token in a proxy's error page).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

import attrs

from polyrelay import ir

#: What a removed secret reads as.
MARK = "[redacted]"
#: Shorter values are not secrets worth hiding, and removing every "abc"
#: from every message would garble it.
MIN_LENGTH = 4

_SHAPES = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"()\bsk-[A-Za-z0-9_-]{8,}"),
    re.compile(r"()\bAIza[0-9A-Za-z_-]{20,}"),
    re.compile(r"()\bya29\.[0-9A-Za-z_.-]{10,}"),
    re.compile(r'(?i)("?(?:access|refresh|id)_token"?\s*[:=]\s*"?)[^",\s]{8,}'),
]
_SHAPES_BYTES = [re.compile(p.pattern.encode(), p.flags & ~re.UNICODE) for p in _SHAPES]


class Scrubber:
    """A set of secret values and the compiled patterns that remove them."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._text: re.Pattern[str] | None = None
        self._bytes: re.Pattern[bytes] | None = None

    def register(self, secrets: Iterable[str | None]) -> None:
        """Add secret values to remove from now on (empty and tiny values are ignored)."""
        new = {s for s in secrets if s and len(s) >= MIN_LENGTH} - self._secrets
        if not new:
            return
        with self._lock:
            self._secrets |= new
            # Longest first, so a secret that contains another goes whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._text = re.compile("|".join(re.escape(s) for s in ordered))
            self._bytes = re.compile(b"|".join(re.escape(s.encode()) for s in ordered))

    def secrets(self) -> frozenset[str]:
        """The registered values (for tests and diagnostics, never for output)."""
        return frozenset(self._secrets)

    def scrub(self, text: str) -> str:
        """``text`` with every registered secret and secret-shaped token removed."""
        if self._text is not None:
            text = self._text.sub(MARK, text)
        for shape in _SHAPES:
            text = shape.sub(lambda m: m.group(1) + MARK, text)
        return text

    def scrub_bytes(self, data: bytes) -> bytes:
        """:meth:`scrub` for raw bytes (a relayed error frame), without decoding them."""
        if self._bytes is not None:
            data = self._bytes.sub(MARK.encode(), data)
        for shape in _SHAPES_BYTES:
            data = shape.sub(lambda m: m.group(1) + MARK.encode(), data)
        return data


_SCRUBBER = Scrubber()


def scrubber() -> Scrubber:
    """The process-wide scrubber (one set of secrets for clients and logs)."""
    return _SCRUBBER


def register(secrets: Iterable[str | None]) -> None:
    """Register secret values with the process-wide scrubber."""
    _SCRUBBER.register(secrets)


def scrub(text: str) -> str:
    """``text`` without any registered secret (see :class:`Scrubber`)."""
    return _SCRUBBER.scrub(text)


def scrub_bytes(data: bytes) -> bytes:
    """``data`` without any registered secret (see :meth:`Scrubber.scrub_bytes`)."""
    return _SCRUBBER.scrub_bytes(data)


def scrub_error(error: ir.ErrorInfo) -> ir.ErrorInfo:
    """``error`` with its upstream-originated texts (message, code) scrubbed."""
    code = _SCRUBBER.scrub(error.code) if error.code else error.code
    return attrs.evolve(error, message=_SCRUBBER.scrub(error.message), code=code)
