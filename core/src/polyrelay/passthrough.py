"""Same dialect in and out: forward the upstream's frames, patch only the model.

Thinking signatures and fields no codec knows yet survive byte-exact
because nothing here re-serialises JSON: frames are read (until content
begins, and an error frame) but forwarded as they came.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import attrs

from polyrelay import ir, jsonutil, sse
from polyrelay.dialects import Dialect, StreamDecoder

#: Events that mean an answer has begun: after one, nothing can be retried.
CONTENT_EVENTS = (ir.BlockStart, ir.BlockDelta, ir.MessageDelta, ir.MessageStop)


@attrs.define(slots=True)
class RawFrame:
    """One upstream frame, already in the client's dialect."""

    data: bytes
    #: The upstream's last frame (normal end or error).
    terminal: bool = False
    #: Set when the frame is the upstream's in-stream error.
    error: ir.ErrorInfo | None = None
    #: The frame carries the answer's content (not a preamble such as ``response.created``).
    content: bool = True


class PassthroughDecoder:
    """Splits upstream SSE into frames; notices the terminal one."""

    def __init__(self, dialect: Dialect, upstream_model: str, client_model: str) -> None:
        self.dialect = dialect
        self.finished = False
        self._parser = sse.SSEParser()
        self._patch = model_patch(upstream_model, client_model)
        # Until content starts, the codec reads along: it knows which frames are
        # only a preamble, and reads an error's status and retry hint.
        self._peek: StreamDecoder | None = dialect.stream_decoder()

    def feed(self, data: bytes) -> list[RawFrame]:
        """Complete frames in ``data`` (buffered across calls)."""
        return self._frames(self._parser.feed(data))

    def close(self) -> list[RawFrame]:
        """Flush a last frame that lacked its blank line."""
        return self._frames(self._parser.close())

    def _frames(self, events: list[sse.SSEEvent]) -> list[RawFrame]:
        frames = []
        kind, patch = self.dialect.frame_kind, self._patch
        for event in events:
            terminal, is_error = kind(event)
            data = event.data
            steady = self._peek is None and not (terminal or is_error)
            # Frames after the first content and before the last are most of a stream and most of its
            # CPU: one strict shape test ({...}) and no call; any other frame gets _frame's reading.
            if steady and (not data or (data[0] == "{" and data[-1] == "}")):
                frames.append(RawFrame(patch(event.raw) if patch is not None else event.raw))
            else:
                frames.append(self._frame(event, terminal, is_error))
        return frames

    def _frame(self, event: sse.SSEEvent, terminal: bool, is_error: bool) -> RawFrame:
        # Until content begins a bad frame is a silent failover, so it is parsed; after, its shape
        # is checked ({...}): an HTML page or a cut-off frame is caught, and a parse of every
        # frame cost a tenth of a pass-through stream's CPU.
        valid = _is_json_object if self._peek is not None else _is_object_shaped
        if not terminal and event.data and not valid(event.data):
            # Garbage must not reach the client as if the upstream had said it.
            self.finished = True
            garbage = ir.ErrorInfo(502, "the upstream sent a malformed stream frame", kind="api_error")
            return RawFrame(self.dialect.passthrough_error_frame(garbage), True, garbage)
        if terminal:
            self.finished = True
        raw = event.raw
        if self._patch is not None:
            raw = self._patch(raw)
        error: ir.ErrorInfo | None = None
        content = True
        if self._peek is not None:
            events = self._peek.feed(event.raw)
            error = next((e.error for e in events if isinstance(e, ir.StreamError)), None)
            content = any(isinstance(e, CONTENT_EVENTS) for e in events)
            if content or error is not None or terminal:
                self._peek = None
        if is_error and error is None:
            error = self._error_of(event)
        return RawFrame(raw, terminal, error, content)

    def _error_of(self, event: sse.SSEEvent) -> ir.ErrorInfo:
        """The error an upstream error frame carries, read as the codec reads it (status and hint)."""
        codec = self.dialect
        for item in codec.stream_decoder().feed(event.raw):
            if isinstance(item, ir.StreamError):
                return item.error
        return codec.decode_error(502, event.data.encode())


def _is_object_shaped(data: str) -> bool:
    return data.startswith("{") and data.rstrip().endswith("}")


def _is_json_object(data: str) -> bool:
    if not data.startswith("{"):
        return False
    try:
        return isinstance(jsonutil.loads(data), dict)
    except ValueError:
        return False


def _model_field(model: str, space: bool) -> bytes:
    return (b'"model": ' if space else b'"model":') + jsonutil.dumps(model)


def _model_pattern(model: str) -> re.Pattern[bytes]:
    return re.compile(rb'("model"\s*:\s*)"' + re.escape(jsonutil.dumps(model)[1:-1]) + rb'"')


@functools.lru_cache(maxsize=512)  # the same pair on every request of a route; the patch keeps no state
def model_patch(upstream_model: str, client_model: str) -> Callable[[bytes], bytes] | None:
    """A bytes → bytes function that renames the model, or None when nothing changes.

    Upstreams write compact JSON, so a plain ``bytes.replace`` of
    ``"model":"<name>"`` does the work; the regex only runs for other spacing.
    """
    if upstream_model == client_model or not upstream_model:
        return None
    old, new = _model_field(upstream_model, False), _model_field(client_model, False)
    pattern = _model_pattern(upstream_model)
    replacement = rb"\1" + jsonutil.dumps(client_model).replace(b"\\", b"\\\\")

    def patch(data: bytes) -> bytes:
        if b'"model"' not in data:
            return data
        if old in data:
            return data.replace(old, new)
        return pattern.sub(replacement, data)

    return patch


def patch_request_model(body: bytes, parsed_model: object, new_model: str) -> bytes | None:
    """Rename the top-level ``model`` in a request body without re-serializing it.

    Returns None when the rename cannot be done safely by bytes (the value
    appears more than once), so the caller re-serializes instead.
    """
    if not isinstance(parsed_model, str):
        return None
    for space in (False, True):  # the two spellings clients use, found at C speed
        old = _model_field(parsed_model, space)
        if body.count(old) == 1 and body.count(b'"model"') == 1:
            return body.replace(old, _model_field(new_model, space), 1)
    pattern = _model_pattern(parsed_model)
    if len(pattern.findall(body)) != 1:
        return None
    return pattern.sub(rb"\1" + jsonutil.dumps(new_model).replace(b"\\", b"\\\\"), body, count=1)
