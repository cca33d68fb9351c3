"""Anthropic SSE streams ↔ IR events."""

from __future__ import annotations

import uuid
from typing import Any

from polyrelay import ir
from polyrelay.dialects.anthropic.content import signature_out
from polyrelay.dialects.anthropic.errors import error_info, error_object
from polyrelay.dialects.anthropic.response import client_message_id, decode_usage, encode_usage, stop_reason_out
from polyrelay.dialects.anthropic.wire import NAME, STOP_REASON_TO_IR, STREAM_BLOCK_KINDS, STREAM_DELTAS
from polyrelay.dialects.base import merge_usage
from polyrelay.dialects.blocks import BLOCK_FOR_DELTA, Blocks, Closed, Tracked
from polyrelay.dialects.fields import index_or_none, str_or_none
from polyrelay.jsonutil import dumps, loads
from polyrelay.sse import SSEEvent, SSEParser, frame


class AnthropicStreamDecoder(Tracked):
    """Anthropic upstream SSE bytes → IR events."""

    def __init__(self) -> None:
        self._parser = SSEParser()
        self._blocks = Blocks()  # keyed by upstream block index; the IR index is the count
        self._skipped: set[int] = set()  # upstream blocks the IR cannot carry (server tools...)
        self._usage: dict[str, Any] = {}  # raw cumulative usage: message_start, then message_delta
        self._delta_sent = False
        self._tool_called = False

    def feed(self, data: bytes) -> list[ir.Event]:
        """Consume bytes split anywhere; return the events they complete."""
        out: list[ir.Event] = []
        for event in self._parser.feed(data):
            self._handle(event, out)
        return out

    def close(self) -> list[ir.Event]:
        """End of body: flush the last frame and close open blocks (the core reports a cut stream)."""
        out: list[ir.Event] = []
        for event in self._parser.close():
            self._handle(event, out)
        if not self._blocks.finished:
            self._close_blocks(out)
        return out

    def _handle(self, event: SSEEvent, out: list[ir.Event]) -> None:
        if self._blocks.finished:
            return
        try:
            payload = loads(event.data)
        except ValueError:
            return  # not JSON: nothing an Anthropic stream means by it
        if not isinstance(payload, dict):
            return
        kind = str_or_none(payload.get("type")) or event.event
        if kind == "error":
            self._stop_all(self._blocks.finish(), out)
            out.append(ir.StreamError(error_info(payload, None, "upstream stream error")))
        elif kind == "message_start":
            self._message_start(payload, out)
        elif kind in ("content_block_start", "content_block_delta"):
            if self._delta_sent:
                return  # after message_delta the message is over: a late block has nowhere to go
            self._ensure_started(out)
            if kind == "content_block_start":
                self._block_start(payload, out)
            else:
                self._block_delta(payload, out)
        elif kind == "content_block_stop":
            closed = self._blocks.close(index_or_none(payload.get("index")))
            if closed is not None:
                self._stop(closed, out)
        elif kind == "message_delta":
            self._ensure_started(out)
            self._message_delta(payload, out)
        elif kind == "message_stop":
            self._ensure_started(out)
            self._stop_all(self._blocks.finish(), out)
            if not self._delta_sent:
                out.append(ir.MessageDelta(stop_reason="tool_use" if self._tool_called else "end_turn",
                                           usage=decode_usage(self._usage)))
            out.append(ir.MessageStop())
        # "ping" and event types of the future: nothing to say.

    def _ensure_started(self, out: list[ir.Event]) -> None:
        if self._blocks.start():
            out.append(ir.MessageStart(id="", model=""))

    def _message_start(self, payload: dict[str, Any], out: list[ir.Event]) -> None:
        message = payload.get("message")
        message = message if isinstance(message, dict) else {}
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})
        if self._blocks.start():
            out.append(ir.MessageStart(id=str_or_none(message.get("id")) or "",
                                       model=str_or_none(message.get("model")) or "",
                                       usage=decode_usage(self._usage) if isinstance(usage, dict) else None))

    def _open_block(self, upstream_index: int, kind: str, block: dict[str, Any], out: list[ir.Event]) -> int:
        index = self._blocks.open(upstream_index, kind, owes_arguments=kind == "tool_call")
        if kind == "tool_call":
            self._tool_called = True
            out.append(ir.BlockStart(index, "tool_call", id=str_or_none(block.get("id")) or "",
                                     name=str_or_none(block.get("name")) or ""))
            tool_input = block.get("input")
            if isinstance(tool_input, dict) and tool_input:  # a whole input up front (some proxies do this)
                self._delta(index, "arguments", dumps(tool_input).decode(), out)
        elif kind == "redacted_thinking":
            out.append(ir.BlockStart(index, "redacted_thinking", data=str_or_none(block.get("data"))))
        else:
            out.append(ir.BlockStart(index, kind))  # type: ignore[arg-type]
            field = "thinking" if kind == "thinking" else "text"
            self._delta(index, kind, block.get(field), out)
            if kind == "thinking":
                self._delta(index, "signature", block.get("signature"), out)
        return index

    def _delta(self, index: int, kind: str, text: Any, out: list[ir.Event]) -> None:
        if isinstance(text, str) and text:  # empty fragments say nothing
            out.append(ir.BlockDelta(index, kind, text, origin=NAME if kind == "signature" else None))  # type: ignore[arg-type]
            if kind == "arguments":
                self._blocks.fill(index)

    def _block_start(self, payload: dict[str, Any], out: list[ir.Event]) -> None:
        upstream_index, block = index_or_none(payload.get("index")), payload.get("content_block")
        if upstream_index is None or self._blocks.index(upstream_index) is not None or upstream_index in self._skipped:
            return
        block = block if isinstance(block, dict) else {}
        kind = STREAM_BLOCK_KINDS.get(str_or_none(block.get("type")) or "")
        if kind is None:
            self._skipped.add(upstream_index)  # server_tool_use, web_search_tool_result...: Anthropic-only
            return
        self._open_block(upstream_index, kind, block, out)

    def _block_delta(self, payload: dict[str, Any], out: list[ir.Event]) -> None:
        upstream_index, delta = index_or_none(payload.get("index")), payload.get("delta")
        if upstream_index is None or upstream_index in self._skipped or not isinstance(delta, dict):
            return
        spec = STREAM_DELTAS.get(str_or_none(delta.get("type")) or "")
        if spec is None:
            return  # citations_delta and future delta kinds
        kind, field = spec
        index = self._blocks.index(upstream_index)
        if index is None:  # a delta without its content_block_start: open the block it implies
            index = self._open_block(upstream_index, BLOCK_FOR_DELTA[kind], {}, out)
        if self._blocks.is_open(upstream_index):
            self._delta(index, kind, delta.get(field), out)

    @staticmethod
    def _stop(closed: Closed, out: list[ir.Event]) -> None:
        if closed.arguments is not None:  # a call without arguments: "{}"
            out.append(ir.BlockDelta(closed.index, "arguments", closed.arguments))
        out.append(ir.BlockStop(closed.index))

    def _stop_all(self, closed: list[Closed], out: list[ir.Event]) -> None:
        for block in closed:
            self._stop(block, out)

    def _close_blocks(self, out: list[ir.Event]) -> None:
        self._stop_all(self._blocks.close_all(), out)

    def _message_delta(self, payload: dict[str, Any], out: list[ir.Event]) -> None:
        self._close_blocks(out)
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})
        delta = payload.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        reason = str_or_none(delta.get("stop_reason"))
        out.append(ir.MessageDelta(stop_reason=STOP_REASON_TO_IR.get(reason, "end_turn") if reason else None,
                                   usage=decode_usage(self._usage),
                                   stop_sequence=str_or_none(delta.get("stop_sequence"))))
        self._delta_sent = True


class AnthropicStreamEncoder:
    """IR events → Anthropic SSE frames for a client (always SSE: Anthropic has no other stream form)."""

    def __init__(self, request: ir.Request) -> None:
        self._model = request.model
        # Keyed by IR index; the wire index is the count; kinds: "text" | "thinking" | "redacted" | "tool" | "custom".
        self._blocks = Blocks()
        self._signatures: dict[int, list[str | None]] = {}  # wire index → [signature so far, origin]
        self._tool_called = False
        self._usage = ir.Usage()
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None

    def encode(self, event: ir.Event) -> bytes:
        """Frames for one event."""
        if self._blocks.finished:
            return b""
        out: list[bytes] = []
        if isinstance(event, ir.StreamError):
            self._blocks.finish()  # an error frame ends the stream as it stands: no block stops
            return _frame("error", {"type": "error", "error": error_object(event.error)})
        if isinstance(event, ir.MessageStart):
            if self._blocks.start():
                self._start(event.id, event.usage, out)
            return b"".join(out)
        if self._blocks.start():
            self._start(None, None, out)
        if isinstance(event, ir.BlockStart):
            if self._blocks.index(event.index) is None:
                self._open_block(event, out)
        elif isinstance(event, ir.BlockDelta):
            self._delta(event, out)
        elif isinstance(event, ir.BlockStop):
            closed = self._blocks.close(event.index)
            if closed is not None:
                self._stop(closed, out)
        elif isinstance(event, ir.MessageDelta):
            # Held until MessageStop so the client sees exactly one message_delta.
            if event.stop_reason is not None:
                self._stop_reason, self._stop_sequence = event.stop_reason, event.stop_sequence
            if event.usage is not None:
                self._usage = merge_usage(self._usage, event.usage)
        elif isinstance(event, ir.MessageStop):
            self._finish_message(out)
        return b"".join(out)

    def finish(self) -> bytes:
        """Anthropic streams need no closing bytes after message_stop / error."""
        return b""

    def _start(self, message_id: str | None, usage: ir.Usage | None, out: list[bytes]) -> None:
        if usage is not None:
            self._usage = merge_usage(self._usage, usage)
        message: dict[str, Any] = {
            "id": client_message_id(message_id), "type": "message", "role": "assistant", "model": self._model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": encode_usage(self._usage)}
        out.append(_frame("message_start", {"type": "message_start", "message": message}))

    def _open_block(self, event: ir.BlockStart, out: list[bytes]) -> int:
        block: dict[str, Any]
        if event.kind == "tool_call":
            self._tool_called = True
            kind = "custom" if event.tool_kind == "custom" else "tool"
            block = {"type": "tool_use", "id": event.id or "toolu_" + uuid.uuid4().hex[:24], "name": event.name or "",
                     "input": {}}
        elif event.kind == "redacted_thinking":
            kind = "redacted"  # BlockStart has no origin: redacted data only ever comes from Anthropic
            block = {"type": "redacted_thinking", "data": event.data or ""}
        elif event.kind == "thinking":
            kind = "thinking"
            block = {"type": "thinking", "thinking": "", "signature": ""}
        else:
            kind = "text"
            block = {"type": "text", "text": ""}
        wire = self._blocks.open(event.index, kind)
        start = {"type": "content_block_start", "index": wire, "content_block": block}
        out.append(_frame("content_block_start", start))
        if kind == "custom":  # free-form input travels as the string of {"input": ...}
            out.append(self._delta_frame(wire, {"type": "input_json_delta", "partial_json": '{"input":"'}))
        return wire

    def _delta(self, event: ir.BlockDelta, out: list[bytes]) -> None:
        wire = self._blocks.index(event.index)
        if wire is None:
            wire = self._open_block(ir.BlockStart(event.index, BLOCK_FOR_DELTA[event.kind]), out)  # type: ignore[arg-type]
        kind = self._blocks.open_kind(event.index)
        if event.kind == "signature":
            if kind == "thinking":  # sent once at block end: clients replace, not append, signatures
                held = self._signatures.setdefault(wire, ["", None])
                held[0] = (held[0] or "") + event.text
                held[1] = event.origin or held[1]
            return  # a signature on a tool call or text (Gemini) has no place in this dialect
        if not event.text:
            return
        delta: dict[str, Any] | None = None
        if event.kind == "text" and kind == "text":
            delta = {"type": "text_delta", "text": event.text}
        elif event.kind == "thinking" and kind == "thinking":
            delta = {"type": "thinking_delta", "thinking": event.text}
        elif event.kind == "arguments" and kind == "tool":
            delta = {"type": "input_json_delta", "partial_json": event.text}
        elif event.kind == "arguments" and kind == "custom":
            delta = {"type": "input_json_delta", "partial_json": dumps(event.text).decode()[1:-1]}
        if delta is not None:
            out.append(self._delta_frame(wire, delta))

    def _stop(self, closed: Closed, out: list[bytes]) -> None:
        wire, kind = closed.index, closed.kind
        held = self._signatures.pop(wire, None)
        if held and held[0]:
            signature = signature_out(held[0], held[1])
            out.append(self._delta_frame(wire, {"type": "signature_delta", "signature": signature}))
        if kind == "custom":
            out.append(self._delta_frame(wire, {"type": "input_json_delta", "partial_json": '"}'}))
        out.append(_frame("content_block_stop", {"type": "content_block_stop", "index": wire}))

    def _finish_message(self, out: list[bytes]) -> None:
        for closed in self._blocks.finish():
            self._stop(closed, out)
        reason = stop_reason_out(self._stop_reason, self._tool_called)
        delta = {"stop_reason": reason, "stop_sequence": self._stop_sequence if reason == "stop_sequence" else None}
        out.append(_frame("message_delta", {"type": "message_delta", "delta": delta,
                                            "usage": encode_usage(self._usage)}))
        out.append(_frame("message_stop", {"type": "message_stop"}))

    @staticmethod
    def _delta_frame(wire: int, delta: dict[str, Any]) -> bytes:
        return _frame("content_block_delta", {"type": "content_block_delta", "index": wire, "delta": delta})


def _frame(event: str, payload: dict[str, Any]) -> bytes:
    return frame(dumps(payload), event=event)
