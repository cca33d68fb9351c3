"""What dispatch hands the HTTP layer: a complete body, a stream, or a failure.

:meth:`polyrelay.gateway.Gateway.serve` returns one of these and knows
nothing of HTTP; :mod:`polyrelay.responses` turns them into responses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import attrs

from polyrelay import ir

JSON = "application/json"


@attrs.frozen
class Complete:
    """A whole JSON answer in the client's dialect."""

    body: bytes
    #: Seconds spent waiting on upstreams (for the overhead header).
    upstream_seconds: float = 0.0


@attrs.frozen
class Stream:
    """A committed stream: the client's frames, and how to let go of the upstream."""

    frames: AsyncIterator[bytes]
    media_type: str
    #: Drops the upstream connection; safe to call more than once, and needed
    #: when the frames are never iterated (the client left before the first).
    close: Callable[[], None] = attrs.field(default=lambda: None)


@attrs.frozen
class Failure:
    """The request failed before anything was committed; ``error`` says why."""

    error: ir.ErrorInfo
    upstream_seconds: float = 0.0


Result = Complete | Stream | Failure
