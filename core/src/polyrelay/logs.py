"""Logging set-up with secret redaction.

Every record passes through :class:`RedactingFilter` before any handler
formats it; the filter is a view of the one scrubber in
:mod:`polyrelay.secrets`, so a log line and a client body lose the same
secrets the same way (entirely).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from polyrelay import secrets as _secrets


class RedactingFilter(logging.Filter):
    """Removes secrets from log messages, their arguments and tracebacks."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.add(secrets)

    @property
    def secrets(self) -> frozenset[str]:
        """The secret values removed."""
        return _secrets.scrubber().secrets()

    def add(self, secrets: Iterable[str | None]) -> None:
        """Register more secret values to hide (with the process-wide scrubber)."""
        _secrets.register(secrets)

    def scrub(self, text: str) -> str:
        """``text`` with every known secret and secret-shaped token removed."""
        return _secrets.scrub(text)

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
