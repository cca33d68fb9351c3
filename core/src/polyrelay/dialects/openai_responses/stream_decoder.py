"""Responses upstream SSE event streams → IR events."""

from __future__ import annotations

from typing import Any

from polyrelay import ir
from polyrelay.aggregate import response_events
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.blocks import Blocks, Tracked
from polyrelay.dialects.fields import dict_or_empty
from polyrelay.dialects.openai_responses.errors import stream_error
from polyrelay.dialects.openai_responses.items import reasoning_part
from polyrelay.dialects.openai_responses.response import decode_output, stop_from_wire, usage_from_wire
from polyrelay.dialects.openai_responses.wire import NAME
from polyrelay.jsonutil import loads
from polyrelay.sse import SSEParser

_TEXT_DELTAS = ("response.output_text.delta", "response.refusal.delta")


_THINKING_DELTAS = ("response.reasoning_summary_text.delta", "response.reasoning_text.delta")


_ARGUMENT_DELTAS = ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta")


_ARGUMENT_DONES = ("response.function_call_arguments.done", "response.custom_tool_call_input.done")


def _content_index(data: dict[str, Any]) -> int:
    index = data.get("content_index")
    return index if isinstance(index, int) else 0


class ResponsesStreamDecoder(Tracked):
    """Responses SSE bytes → IR events.

    IR blocks are keyed by (item key, content index): a message item opens a
    text block per content part, lazily at its first text; a reasoning item
    is one thinking block (summary parts joined by a blank line); a call item
    is one tool_call block.  Items arriving only as ``output_item.done``
    (Codex) are delivered whole from there.
    """

    def __init__(self) -> None:
        self._parser = SSEParser()
        self._blocks = Blocks()  # keyed by (item key, content index); fill: the block got content
        self._item_keys: dict[str, int] = {}  # item id → output_index
        self._saw_call = False

    def feed(self, data: bytes) -> list[ir.Event]:
        """Consume bytes split anywhere; return the events they complete."""
        return self._events(self._parser.feed(data))

    def close(self) -> list[ir.Event]:
        """Flush a last frame that lacked its blank line; a cut stream's open blocks end here, as in every codec."""
        out = self._events(self._parser.close())
        if not self.finished:
            self._stop(out, everything=True)
        return out

    def _events(self, frames: list[Any]) -> list[ir.Event]:
        out: list[ir.Event] = []
        for sse_event in frames:
            if self.finished:
                break
            try:
                data = loads(sse_event.data)
            except ValueError:
                continue  # "[DONE]" from relays, stray text: nothing to translate
            if isinstance(data, dict):
                etype = data.get("type") if isinstance(data.get("type"), str) else sse_event.event
                try:
                    self._handle(etype or "", data, out)
                except DialectError:
                    continue  # a malformed item (call without call_id...) is skipped, not fatal
        return out

    # -- helpers

    def _start(self, out: list[ir.Event], response: dict[str, Any]) -> None:
        if self._blocks.start():
            out.append(ir.MessageStart(id=str(response.get("id") or ""), model=str(response.get("model") or "")))

    def _key(self, data: dict[str, Any]) -> Any:
        """Which output item an event is about (Codex may omit output_index)."""
        item_id = data.get("item_id") or dict_or_empty(data.get("item")).get("id")
        index = data.get("output_index")
        if isinstance(index, int):
            if isinstance(item_id, str):
                self._item_keys[item_id] = index
            return index
        return self._item_keys.get(item_id, item_id) if isinstance(item_id, str) else None

    def _block(self, out: list[ir.Event], key: tuple[Any, Any], start: ir.BlockStart) -> int | None:
        """The IR index of block ``key``, started now if new; None once it closed."""
        index = self._blocks.index(key)
        if index is None:
            index = start.index = self._blocks.open(key, start.kind)
            self._saw_call |= start.kind == "tool_call"
            out.append(start)
        return index if self._blocks.is_open(key) else None

    def _delta(self, out: list[ir.Event], index: int | None, kind: str, text: Any, origin: str | None = None) -> None:
        if index is not None and isinstance(text, str) and text:
            out.append(ir.BlockDelta(index, kind, text, origin))  # type: ignore[arg-type]
            if kind != "signature":
                self._blocks.fill(index)

    def _stop(self, out: list[ir.Event], item_key: Any = None, *, everything: bool = False) -> None:
        """Close every block, or those of one output item (each of its content parts)."""
        closing = self._blocks.close_all() if everything else self._blocks.close_all(lambda key: key[0] == item_key)
        out.extend(ir.BlockStop(closed.index) for closed in closing)

    def _tool_start(self, item: dict[str, Any]) -> ir.BlockStart:
        return ir.BlockStart(0, "tool_call", id=str(item.get("call_id") or item.get("id") or ""),
                             name=str(item.get("name") or ""),
                             tool_kind="custom" if item.get("type") == "custom_tool_call" else "function")

    # -- dispatch

    def _handle(self, etype: str, data: dict[str, Any], out: list[ir.Event]) -> None:
        response = dict_or_empty(data.get("response"))
        self._start(out, response)
        key = self._key(data)
        if etype == "response.output_item.added":
            item = dict_or_empty(data.get("item"))
            if item.get("type") in ("function_call", "custom_tool_call"):
                self._block(out, (key, None), self._tool_start(item))
            elif item.get("type") == "reasoning":
                self._block(out, (key, None), ir.BlockStart(0, "thinking"))
        elif etype in _TEXT_DELTAS:
            index = self._block(out, (key, _content_index(data)), ir.BlockStart(0, "text"))
            self._delta(out, index, "text", data.get("delta"))
        elif etype in _THINKING_DELTAS:
            self._delta(out, self._block(out, (key, None), ir.BlockStart(0, "thinking")), "thinking", data.get("delta"))
        elif etype == "response.reasoning_summary_part.added":
            index = self._block(out, (key, None), ir.BlockStart(0, "thinking"))
            if index is not None and self._blocks.filled(index):
                self._delta(out, index, "thinking", "\n\n")  # same joint as a whole response
        elif etype in _ARGUMENT_DELTAS:
            start = self._tool_start({"id": data.get("item_id")})
            self._delta(out, self._block(out, (key, None), start), "arguments", data.get("delta"))
        elif etype in _ARGUMENT_DONES:
            index = self._blocks.index((key, None))
            if index is not None and not self._blocks.filled(index):
                self._delta(out, index, "arguments", data.get("arguments", data.get("input")))
        elif etype == "response.content_part.done":
            self._part_done(out, key, _content_index(data), dict_or_empty(data.get("part")))
        elif etype == "response.output_item.done":
            self._item_done(out, key, dict_or_empty(data.get("item")))
        elif etype in ("response.completed", "response.incomplete"):
            response.setdefault("status", etype.removeprefix("response."))
            self._finish(out, response)
        elif etype in ("response.failed", "error"):
            out.extend(ir.BlockStop(closed.index) for closed in self._blocks.finish())
            source = response if etype == "response.failed" else data
            out.append(ir.StreamError(stream_error(source, 500)))

    def _part_done(self, out: list[ir.Event], key: Any, content_index: Any, part: dict[str, Any]) -> None:
        """A content part ended: deliver its text if no delta did, close its block."""
        text = part.get("text", part.get("refusal"))
        block = (key, content_index)
        if self._blocks.index(block) is None and not (isinstance(text, str) and text):
            return
        index = self._block(out, block, ir.BlockStart(0, "text"))
        if index is not None and not self._blocks.filled(index):
            self._delta(out, index, "text", text)
        closed = self._blocks.close(block)
        if closed is not None:
            out.append(ir.BlockStop(closed.index))

    def _item_done(self, out: list[ir.Event], key: Any, item: dict[str, Any]) -> None:
        kind = item.get("type")
        if kind == "message":
            content = item.get("content")
            for ci, part in enumerate(content if isinstance(content, list) else []):
                self._part_done(out, key, ci, dict_or_empty(part))
        elif kind in ("function_call", "custom_tool_call"):
            index = self._block(out, (key, None), self._tool_start(item))
            if index is not None and not self._blocks.filled(index):
                self._delta(out, index, "arguments", item.get("arguments", item.get("input")))
        elif kind == "reasoning":
            index = self._block(out, (key, None), ir.BlockStart(0, "thinking"))
            if index is not None and not self._blocks.filled(index):
                self._delta(out, index, "thinking", reasoning_part(item, "", from_client=False).text)
            self._delta(out, index, "signature", item.get("encrypted_content"), NAME)
        self._stop(out, key)

    def _finish(self, out: list[ir.Event], response: dict[str, Any]) -> None:
        self._stop(out, everything=True)
        output = response.get("output")
        if not self._blocks.opened and isinstance(output, list) and output:
            # No item events at all: the completed response holds the output.
            parts = decode_output(output)[0]
            for event in response_events(ir.Response(id="", model="", parts=parts)):
                if isinstance(event, (ir.BlockStart, ir.BlockDelta, ir.BlockStop)):
                    out.append(event)
            self._saw_call = any(isinstance(p, ir.ToolCall) for p in parts)
        stop = stop_from_wire(response["status"], response, self._saw_call)
        out.append(ir.MessageDelta(stop_reason=stop, usage=usage_from_wire(response.get("usage"))))
        out.append(ir.MessageStop())
        self._blocks.finish()
