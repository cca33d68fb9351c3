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
    raw: bytes  # the frame's bytes, blank line included (line ends normalised to LF)


class SSEParser:
    """Incremental SSE parser: ``feed(bytes)`` returns completed events.

    Linear in the bytes fed: line ends are normalised to ``\n`` once per
    chunk (only when a ``\r`` is present), then a cursor walks the blank
    lines.  Frames are returned with ``\n`` line ends.
    """

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add bytes; return every event that is now complete."""
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            buffer = _normalise(buffer)
        events: list[SSEEvent] = []
        start = 0
        while (end := buffer.find(b"\n\n", start)) >= 0:
            event = _parse_frame(buffer[start : end + 2])
            if event is not None:
                events.append(event)
            start = end + 2
        self._buffer = buffer[start:] if start else buffer
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: a last event without its blank line still counts."""
        rest, self._buffer = self._buffer, b""
        if not rest.strip():
            return []
        event = _parse_frame(rest.rstrip(b"\r\n") + b"\n\n")
        return [event] if event is not None else []

    @property
    def pending(self) -> bytes:
        """Bytes received but not yet part of a complete event."""
        return self._buffer


def _normalise(buffer: bytes) -> bytes:
    """CRLF and lone CR → LF; a trailing CR waits, since its LF may be in the next chunk."""
    held = buffer.endswith(b"\r")
    if held:
        buffer = buffer[:-1]
    buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return buffer + b"\r" if held else buffer


def _parse_frame(raw: bytes) -> SSEEvent | None:
    # Fast paths for the two shapes every upstream sends: one data line, or
    # one event line and one data line.
    if raw.startswith(b"data: ") and raw.count(b"\n") == 2:
        return SSEEvent(event=None, data=raw[6:-2].decode("utf-8", errors="replace"), raw=raw)
    if raw.startswith(b"event: ") and raw.count(b"\n") == 3:
        line_end = raw.index(b"\n")
        if raw.startswith(b"data: ", line_end + 1):
            return SSEEvent(
                event=raw[7:line_end].decode("utf-8", errors="replace"),
                data=raw[line_end + 7 : -2].decode("utf-8", errors="replace"),
                raw=raw,
            )
    name: str | None = None
    data: list[str] = []
    for line in raw.decode("utf-8", errors="replace").split("\n"):
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
