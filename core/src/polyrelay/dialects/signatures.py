"""Thinking signatures across dialects: the one labeller.

A signature is only valid at the upstream family that issued it.  When one
reaches a client of another dialect it is labelled with its origin
(:func:`polyrelay.ir.wrap_signature`), so that when the client replays it the
codec knows where it came from and never sends it to a foreign upstream.
Chat Completions has no signature field at all and uses none of this.
"""

from __future__ import annotations

from polyrelay import ir


def for_client(dialect: str, signature: str, origin: str | None) -> str:
    """A signature for a client of ``dialect``: as issued if it is ours (or unlabelled), labelled if foreign."""
    return signature if origin in (None, dialect) else ir.wrap_signature(origin, signature)


def from_client(dialect: str, value: str) -> tuple[str, str]:
    """``(origin, signature)`` of a signature a client of ``dialect`` replays: its label, else ours."""
    return ir.unwrap_signature(value, default_origin=dialect)


def for_upstream(dialect: str, signature: str | None, origin: str | None) -> str | None:
    """A signature an upstream of ``dialect`` may receive: only its own (or unlabelled), else None."""
    return signature if signature and origin in (None, dialect) else None
