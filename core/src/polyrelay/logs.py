"""Logging set-up with secret redaction.

Every record passes through :class:`RedactingFilter` before any handler
formats it: the secrets the gateway holds (client keys, upstream keys,
tokens) and anything shaped like a bearer token or a known key format are
replaced by a short redacted form.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from polyrelay.types import redact

_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._~+/=-]{8,})"),
    re.compile(r"\b(sk-[A-Za-z0-9_-]{8,})"),
    re.compile(r"\b(AIza[0-9A-Za-z_-]{20,})"),
    re.compile(r"\b(ya29\.[0-9A-Za-z_.-]{10,})"),
    re.compile(r'(?i)("?(?:access|refresh|id)_token"?\s*[:=]\s*"?)([^",\s]{8,})'),
]


class RedactingFilter(logging.Filter):
    """Replaces secrets in log messages and their arguments."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Register more secret values to hide."""
        self.secrets.update(s for s in secrets if s and len(s) >= 6)

    def scrub(self, text: str) -> str:
        """``text`` with every known secret and secret-shaped token redacted."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, redact(secret))
        for pattern in _PATTERNS:
            if pattern.groups == 2:
                text = pattern.sub(lambda m: m.group(1) + redact(m.group(2)), text)
            else:
                text = pattern.sub(lambda m: redact(m.group(1)), text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        scrub_record(self, record)
        return True


def scrub_record(redactor: RedactingFilter, record: logging.LogRecord) -> None:
    """Replace a record's message (and traceback) with a redacted rendering."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed format string must not lose the record
        message = str(record.msg)
    record.msg, record.args = redactor.scrub(message), None
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = redactor.scrub(logging.Formatter().formatException(record.exc_info))
        record.exc_info = None


_FILTER = RedactingFilter()
_installed = False


def redaction_filter() -> RedactingFilter:
    """The process-wide redactor (one set of secrets for every handler)."""
    return _FILTER


def install_redaction(secrets: Iterable[str] = ()) -> RedactingFilter:
    """Scrub every log record at creation, whoever logs it and whoever handles it."""
    global _installed
    _FILTER.add(secrets)
    if not _installed:
        make_record = logging.getLogRecordFactory()

        def factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = make_record(*args, **kwargs)
            scrub_record(_FILTER, record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
    return _FILTER


def setup_logging(debug: bool = False, secrets: Iterable[str] = ()) -> RedactingFilter:
    """Log to stderr with every record redacted; returns the redactor."""
    install_redaction(secrets)
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    if not any(getattr(h, "_polyrelay", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._polyrelay = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    return _FILTER
