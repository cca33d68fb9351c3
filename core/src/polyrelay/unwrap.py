"""Upstreams that wrap their dialect's answer in an envelope of their own.

Google's Code Assist answers ``{"response": <GenerateContentResponse>,
"traceId": ...}``, in the JSON body and in every SSE ``data:`` payload.  A
provider says so by setting :attr:`polyrelay.types.UpstreamRequest.unwrap`;
the core then applies it to a complete success body, and to each SSE payload
through :class:`UnwrappingDecoder`, before a codec or a pass-through client
sees anything, so the rest of the pipeline meets the plain dialect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from polyrelay import sse

#: Turns one upstream payload (a JSON document as bytes) into the dialect's own;
#: must return its input unchanged when the payload is not wrapped (errors are not).
Unwrap = Callable[[bytes], bytes]


class UnwrappingDecoder:
    """A stream decoder in front of another: each SSE event's data unwrapped, then re-framed."""

    def __init__(self, inner: Any, unwrap: Unwrap) -> None:
        self.inner = inner
        self._unwrap = unwrap
        self._parser = sse.SSEParser()

    @property
    def finished(self) -> bool:
        """The inner decoder saw the upstream's terminal event."""
        return bool(self.inner.finished)

    def feed(self, data: bytes) -> list[Any]:
        """Complete events in ``data``, unwrapped and handed to the inner decoder."""
        return self._forward(self._parser.feed(data))

    def close(self) -> list[Any]:
        """End of the upstream body: a last event without its blank line, then the inner flush."""
        return [*self._forward(self._parser.close()), *self.inner.close()]

    def _forward(self, events: list[sse.SSEEvent]) -> list[Any]:
        if not events:
            return []
        framed = b"".join(sse.frame(self._unwrap(e.data.encode()), e.event) for e in events)
        return list(self.inner.feed(framed))
