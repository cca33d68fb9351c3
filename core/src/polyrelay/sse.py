"""Server-sent events: an incremental parser and the frame writer.

Upstream bytes arrive split anywhere (mid-line, mid-UTF-8 sequence); the
parser buffers until a blank line ends an event.  It accepts ``\\n``,
``\\r\\n`` and ``\\r`` line ends and ``data:`` with or without the space, as
the clients in the wild do.
"""

from __future__ import annotations

import attrs


@attrs.define(slots=True)
class SSEEvent:
    """One complete event: its ``event:`` name (if any) and joined ``data:``."""

    event: str | None
    data: str
    raw: bytes  # the frame's bytes as received, blank line included


class SSEParser:
    """Incremental SSE parser: ``feed(bytes)`` returns completed events."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add bytes; return every event that is now complete."""
        self._buffer += chunk
        events: list[SSEEvent] = []
        while True:
            end, sep_len = _find_frame_end(self._buffer)
            if end < 0:
                return events
            raw = self._buffer[: end + sep_len]
            self._buffer = self._buffer[end + sep_len :]
            event = _parse_frame(raw)
            if event is not None:
                events.append(event)

    def close(self) -> list[SSEEvent]:
        """End of stream: a last event without its blank line still counts."""
        rest, self._buffer = self._buffer, b""
        if not rest.strip():
            return []
        event = _parse_frame(rest)
        return [event] if event is not None else []

    @property
    def pending(self) -> bytes:
        """Bytes received but not yet part of a complete event."""
        return self._buffer


def _find_frame_end(buffer: bytes) -> tuple[int, int]:
    """Position and length of the first blank-line separator, or (-1, 0)."""
    best, best_len = -1, 0
    for sep in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        pos = buffer.find(sep)
        if pos >= 0 and (best < 0 or pos < best):
            best, best_len = pos, len(sep)
    return best, best_len


def _parse_frame(raw: bytes) -> SSEEvent | None:
    text = raw.decode("utf-8", errors="replace")
    name: str | None = None
    data: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line or line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
    if not data and name is None:
        return None  # comment-only frame (keep-alive)
    return SSEEvent(event=name, data="\n".join(data), raw=raw)


def frame(data: bytes | str, event: str | None = None) -> bytes:
    """Write one SSE frame (``event:`` line when named, then ``data:``)."""
    if isinstance(data, str):
        data = data.encode()
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


KEEPALIVE_COMMENT = b": keep-alive\n\n"
