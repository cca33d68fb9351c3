"""Gemini streams (SSE or a streamed JSON array) ↔ IR events."""

from __future__ import annotations

import re
import uuid
from typing import Any

from polyrelay import ir
from polyrelay.dialects import signatures
from polyrelay.dialects.base import merge_usage
from polyrelay.dialects.blocks import BLOCK_FOR_DELTA, Blocks, Tracked
from polyrelay.dialects.gemini.chunks import ChunkReader, encode_usage
from polyrelay.dialects.gemini.content import args_object
from polyrelay.dialects.gemini.errors import error_body_for
from polyrelay.dialects.gemini.wire import STOP_TO_FINISH
from polyrelay.jsonutil import dumps, loads
from polyrelay.sse import SSEParser, frame


class _ArraySplitter:
    """Cuts a streamed JSON array ``[{...},\\r\\n{...}]`` into its elements as they complete.

    Works on bytes: every structural character is ASCII and never part of a
    multi-byte UTF-8 sequence, so a split inside a character is harmless.
    """

    _OUTSIDE = re.compile(rb'[\[\]{}"]')
    _INSIDE = re.compile(rb'["\\]')

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # next byte to scan
        self._depth = -1  # -1 before the outer '[', 0 between elements, >0 inside one
        self._start = 0  # where the current element begins
        self._in_string = False

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the elements now complete (raw JSON text)."""
        buf = self._buf
        buf += data
        elements = []
        while self._pos < len(buf):
            if self._in_string:
                match = self._INSIDE.search(buf, self._pos)
                if match is None:
                    self._pos = len(buf)
                    break
                # A backslash skips the next byte, even if it has not arrived yet.
                self._pos = match.end() + (1 if match.group() == b"\\" else 0)
                self._in_string = match.group() != b'"'
                continue
            match = self._OUTSIDE.search(buf, self._pos)
            if match is None:
                self._pos = len(buf)
                break
            char, self._pos = match.group(), match.end()
            if char == b'"':
                self._in_string = True
            elif char in b"[{":
                if self._depth == -1:
                    self._depth = 0 if char == b"[" else 1  # tolerate a bare object body
                    self._start = match.start()
                elif self._depth == 0:
                    self._depth, self._start = 1, match.start()
                else:
                    self._depth += 1
            elif self._depth > 0:
                self._depth -= 1
                if self._depth == 0:
                    elements.append(bytes(buf[self._start : self._pos]))
        # Forget what is consumed: everything before the element in progress.
        keep = self._start if self._depth > 0 else min(self._pos, len(buf))
        del buf[:keep]
        self._pos -= keep
        self._start = 0
        return elements


class GeminiStreamDecoder(Tracked):
    """Upstream Gemini stream (SSE or streamed JSON array) → IR events."""

    def __init__(self) -> None:
        self._blocks = Blocks()  # the stream's, kept by its chunk reader
        self._reader = ChunkReader(blocks=self._blocks)
        self._mode: str | None = None  # "sse" or "array", from the first non-blank byte
        self._head = b""
        self._sse = SSEParser()
        self._array = _ArraySplitter()

    def feed(self, data: bytes) -> list[ir.Event]:
        """Consume bytes split anywhere; return the events they complete."""
        if self._mode is None:
            self._head += data
            stripped = self._head.lstrip()
            if not stripped:
                return []
            self._mode = "array" if stripped[:1] == b"[" else "sse"
            data, self._head = self._head, b""
        if self._mode == "array":
            payloads: list[bytes | str] = list(self._array.feed(data))
        else:
            payloads = [event.data for event in self._sse.feed(data)]
        return self._payloads(payloads)

    def close(self) -> list[ir.Event]:
        """The upstream body ended: flush; no MessageStop unless a finishReason came."""
        payloads: list[bytes | str] = [e.data for e in self._sse.close()] if self._mode == "sse" else []
        events = self._payloads(payloads)
        return events + self._reader.close()

    def _payloads(self, payloads: list[bytes | str]) -> list[ir.Event]:
        events: list[ir.Event] = []
        for payload in payloads:
            if self._reader.finished:
                break
            if not payload.strip() or payload.strip() in ("[DONE]", b"[DONE]"):
                continue
            try:
                chunk = loads(payload)
            except ValueError:
                error = ir.ErrorInfo(status=502, message="malformed chunk in the upstream Gemini stream")
                events.extend(self._reader.fail(error))
                continue
            events.extend(self._reader.read(chunk))
        return events


class GeminiStreamEncoder:
    """IR events → Gemini chunks, as SSE frames or as one streamed JSON array."""

    def __init__(self, request: ir.Request, sse: bool = True) -> None:
        self._model = request.model
        self._sse = sse
        self._id = ""
        self._written = 0
        self._closed = False
        self._usage: ir.Usage | None = None
        self._stop: str | None = None
        # No wire index: blocks keep their IR index (and close in its order).
        self._blocks = Blocks(renumber=False)
        # Gemini sends a call whole, so its fragments wait here for BlockStop.
        self._calls: dict[int, dict[str, Any]] = {}
        self._called = False

    def encode(self, event: ir.Event) -> bytes:
        """Frames for one event (often ``b""``: Gemini has no start/stop frames)."""
        if self._blocks.finished:
            return b""
        if isinstance(event, ir.MessageStart):
            self._id = self._id or event.id
            self._usage = event.usage or self._usage
        elif isinstance(event, ir.BlockStart):
            if self._blocks.index(event.index) is None:
                self._open(event.index, event.kind, event.id, event.name, event.tool_kind)
        elif isinstance(event, ir.BlockDelta):
            return self._delta(event)
        elif isinstance(event, ir.BlockStop):
            closed = self._blocks.close(event.index)
            call = self._calls.pop(closed.index, None) if closed is not None else None
            return self._call(call) if call is not None else b""
        elif isinstance(event, ir.MessageDelta):
            self._stop = event.stop_reason or self._stop
            if event.usage is not None:
                self._usage = merge_usage(self._usage, event.usage)
        elif isinstance(event, ir.MessageStop):
            return self._finish_message()
        elif isinstance(event, ir.StreamError):
            self._blocks.finish()  # buffered calls are dropped: the error ends the stream as it stands
            return self._emit(dumps(error_body_for(event.error)))
        return b""

    def finish(self) -> bytes:
        """Close the JSON array (``[]`` if nothing was written); SSE needs nothing."""
        if self._sse or self._closed:
            return b""
        self._closed = True
        return b"]" if self._written else b"[]"

    def _open(self, index: int, kind: str, call_id: str | None, name: str | None, tool_kind: str) -> str:
        self._blocks.open(index, kind)
        if kind == "tool_call":
            self._calls[index] = {"id": call_id, "name": name, "kind": tool_kind, "args": []}
        return kind

    def _delta(self, event: ir.BlockDelta) -> bytes:
        kind = self._blocks.kind(event.index)
        if kind is None:  # a lone signature opens no thought: it has nothing to ride on
            implied = event.kind if event.kind == "signature" else BLOCK_FOR_DELTA.get(event.kind, event.kind)
            kind = self._open(event.index, implied, None, None, "function")
        if kind == "tool_call":
            call = self._calls.get(event.index)
            if call is None:
                return b""  # the call was sent whole at its stop
            if event.kind == "arguments":
                call["args"].append(event.text)
            elif event.kind == "signature":
                call["signature"] = signatures.for_client(ir.GEMINI, event.text, event.origin)
            return b""
        if event.kind == "signature" and kind == "thinking" and event.text:
            return self._chunk([{"text": "", "thought": True,
                                 "thoughtSignature": signatures.for_client(ir.GEMINI, event.text, event.origin)}])
        if event.kind in ("text", "thinking") and event.text:
            part: dict[str, Any] = {"text": event.text}
            if event.kind == "thinking":
                part["thought"] = True
            return self._chunk([part])
        return b""

    def _call(self, call: dict[str, Any]) -> bytes:
        self._called = True
        arguments = "".join(call["args"])
        args = {"input": arguments} if call["kind"] == "custom" else args_object(arguments)
        body: dict[str, Any] = {"name": call["name"] or "", "args": args}
        if call["id"]:
            body["id"] = call["id"]
        part: dict[str, Any] = {"functionCall": body}
        if call.get("signature"):
            part["thoughtSignature"] = call["signature"]
        return self._chunk([part])

    def _finish_message(self) -> bytes:
        calls = (self._calls.pop(closed.index, None) for closed in self._blocks.finish())
        out = b"".join(self._call(call) for call in calls if call is not None)
        finish = "STOP" if self._called else STOP_TO_FINISH.get(self._stop or "end_turn", "STOP")
        # Gemini CLI retries a stream whose last chunk lacks finishReason.
        return out + self._chunk([{"text": ""}], finish)

    def _chunk(self, parts: list[dict[str, Any]], finish: str | None = None) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        body: dict[str, Any] = {"candidates": [candidate]}
        if self._usage is not None:
            body["usageMetadata"] = encode_usage(self._usage)
        if not self._id:
            self._id = uuid.uuid4().hex[:24]
        body["modelVersion"] = self._model
        body["responseId"] = self._id
        return self._emit(dumps(body))

    def _emit(self, payload: bytes) -> bytes:
        if self._sse:
            return frame(payload)
        prefix = b"[" if not self._written else b",\r\n"
        self._written += 1
        return prefix + payload
