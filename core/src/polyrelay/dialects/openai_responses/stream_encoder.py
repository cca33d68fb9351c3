"""IR events → a Responses client's SSE (or JSON-lines) event stream."""

from __future__ import annotations

import time
from typing import Any

from polyrelay import ir
from polyrelay.aggregate import Collector
from polyrelay.dialects import openai_errors
from polyrelay.dialects.blocks import BLOCK_FOR_DELTA, Blocks
from polyrelay.dialects.calls import function_arguments
from polyrelay.dialects.openai_responses.items import Ids, new_id, reasoning_item
from polyrelay.dialects.openai_responses.response import client_response_id, response_object, terminal_status
from polyrelay.dialects.openai_responses.wire import ERROR_TYPES
from polyrelay.jsonutil import dumps
from polyrelay.sse import frame


class ResponsesStreamEncoder:
    """IR events → Responses SSE events; one output item per IR block."""

    def __init__(self, request: ir.Request, sse: bool) -> None:
        self._model = request.model
        self._sse = sse
        self._seq = 0
        # Keyed and closed by IR index; an item's output_index is the count of blocks opened before it.
        self._blocks = Blocks(renumber=False)
        self._collector = Collector(request.model)  # accumulates text, usage, stop reason
        self._parts: dict[int, ir.Part] = {}  # IR index → collected part
        self._items: dict[int, dict[str, Any]] = {}  # IR index → open output item
        self._output: list[dict[str, Any]] = []  # finished items, for the terminal snapshot
        self._has_call = False
        self._id = ""
        self._ids: Ids | None = None
        self._created_at = 0

    def encode(self, event: ir.Event) -> bytes:
        """Frames for one event (``b""`` after the terminal event)."""
        if self._blocks.finished:
            return b""
        chunks: list[bytes] = []
        if self._blocks.start():
            start = event if isinstance(event, ir.MessageStart) else ir.MessageStart(id="", model="")
            self._begin(chunks, start)
        if isinstance(event, ir.BlockDelta) and self._blocks.index(event.index) is None:
            kind = BLOCK_FOR_DELTA[event.kind]
            self._block_start(chunks, ir.BlockStart(event.index, kind))  # type: ignore[arg-type]
        if isinstance(event, ir.BlockStart):
            if self._blocks.index(event.index) is None:
                self._block_start(chunks, event)
        elif isinstance(event, ir.BlockDelta):
            if self._blocks.is_open(event.index):
                self._collector.add(event)
                self._block_delta(chunks, event)
        elif isinstance(event, ir.BlockStop):
            if self._blocks.close(event.index) is not None:
                self._item_done(chunks, event.index)
        elif isinstance(event, ir.MessageDelta):
            self._collector.add(event)
        elif isinstance(event, ir.MessageStop):
            self._end(chunks)
        elif isinstance(event, ir.StreamError):
            self._fail(chunks, event.error)
        return b"".join(chunks)

    def finish(self) -> bytes:
        """Responses streams need no closing bytes."""
        return b""

    # -- framing

    def _emit(self, chunks: list[bytes], etype: str, payload: dict[str, Any]) -> None:
        data = {"type": etype, "sequence_number": self._seq, **payload}
        self._seq += 1
        body = dumps(data)
        chunks.append(frame(body, event=etype) if self._sse else body + b"\n")

    def _snapshot(self, status: str, detail: str | None = None, usage: ir.Usage | None = None) -> dict[str, Any]:
        return response_object(self._id, self._model, self._created_at, status, detail, list(self._output), usage)

    # -- lifecycle

    def _begin(self, chunks: list[bytes], start: ir.MessageStart) -> None:
        self._collector.add(start)
        self._id = client_response_id(start.id)
        self._ids = Ids(self._id)
        self._created_at = int(time.time())
        self._emit(chunks, "response.created", {"response": self._snapshot("in_progress")})
        self._emit(chunks, "response.in_progress", {"response": self._snapshot("in_progress")})

    def _block_start(self, chunks: list[bytes], event: ir.BlockStart) -> None:
        assert self._ids is not None
        self._collector.add(event)
        part = self._parts[event.index] = self._collector.response.parts[-1]
        index = self._blocks.opened
        self._blocks.open(event.index, event.kind)
        item: dict[str, Any]
        if isinstance(part, ir.Text):
            item = {"type": "message", "role": "assistant", "content": []}
        elif isinstance(part, ir.ToolCall):
            self._has_call = True
            part.id = part.id or new_id("call")  # a Responses client pairs results by call_id
            item = {"type": "function_call", "call_id": part.id, "name": part.name, "arguments": ""}
            if part.kind == "custom":
                item = {"type": "custom_tool_call", "call_id": part.id, "name": part.name, "input": ""}
        else:
            item = {"type": "reasoning", "summary": []}
        item = {"id": self._ids.make(item["type"], index), **item, "status": "in_progress"}
        state = self._items[event.index] = {"item": item, "output_index": index, "summary_open": False}
        self._emit(chunks, "response.output_item.added", {"output_index": index, "item": item})
        if isinstance(part, ir.Text):
            self._emit(chunks, "response.content_part.added", {
                **self._where(state), "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []},
            })

    @staticmethod
    def _where(state: dict[str, Any]) -> dict[str, Any]:
        return {"item_id": state["item"]["id"], "output_index": state["output_index"]}

    def _block_delta(self, chunks: list[bytes], event: ir.BlockDelta) -> None:
        part = self._parts[event.index]
        state = self._items[event.index]
        where = self._where(state)
        if event.kind == "text" and isinstance(part, ir.Text):
            self._emit(chunks, "response.output_text.delta",
                       {**where, "content_index": 0, "delta": event.text, "logprobs": []})
        elif event.kind == "thinking" and isinstance(part, ir.Thinking):
            if not state["summary_open"]:
                state["summary_open"] = True
                self._emit(chunks, "response.reasoning_summary_part.added",
                           {**where, "summary_index": 0, "part": {"type": "summary_text", "text": ""}})
            self._emit(chunks, "response.reasoning_summary_text.delta",
                       {**where, "summary_index": 0, "delta": event.text})
        elif event.kind == "arguments" and isinstance(part, ir.ToolCall):
            etype = "response.custom_tool_call_input.delta" if part.kind == "custom" else \
                "response.function_call_arguments.delta"
            self._emit(chunks, etype, {**where, "delta": event.text})
        # signature deltas are collected; they land in output_item.done

    def _item_done(self, chunks: list[bytes], index: int) -> None:
        """Block ``index`` closed: its done events and its final item."""
        state = self._items.pop(index)
        part = self._parts.pop(index)
        where = self._where(state)
        item = state["item"]
        if isinstance(part, ir.Text):
            text_part = {"type": "output_text", "text": part.text, "annotations": []}
            self._emit(chunks, "response.output_text.done",
                       {**where, "content_index": 0, "text": part.text, "logprobs": []})
            self._emit(chunks, "response.content_part.done", {**where, "content_index": 0, "part": text_part})
            item["content"] = [text_part]
        elif isinstance(part, ir.Thinking):
            if state["summary_open"]:
                summary = {"type": "summary_text", "text": part.text}
                self._emit(chunks, "response.reasoning_summary_text.done",
                           {**where, "summary_index": 0, "text": part.text})
                self._emit(chunks, "response.reasoning_summary_part.done",
                           {**where, "summary_index": 0, "part": summary})
            done = reasoning_item(part, for_client=True) or {}
            item["summary"] = done.get("summary", [])
            if "encrypted_content" in done:
                item["encrypted_content"] = done["encrypted_content"]
        elif isinstance(part, ir.ToolCall):
            if part.kind == "custom":
                self._emit(chunks, "response.custom_tool_call_input.done", {**where, "input": part.arguments})
                item["input"] = part.arguments
            else:
                arguments = function_arguments(part.arguments)  # the done event is what clients parse
                self._emit(chunks, "response.function_call_arguments.done",
                           {**where, "name": part.name, "arguments": arguments})
                item["arguments"] = arguments
        if item["type"] == "reasoning":
            del item["status"]
        else:
            item["status"] = "completed"
        self._output.append(item)
        self._emit(chunks, "response.output_item.done", {"output_index": state["output_index"], "item": item})

    def _end(self, chunks: list[bytes]) -> None:
        for closed in self._blocks.finish():
            self._item_done(chunks, closed.index)
        response = self._collector.response
        status, detail = terminal_status(response.stop_reason, self._has_call)
        etype = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(status, "response.failed")
        self._emit(chunks, etype, {"response": self._snapshot(status, detail, response.usage)})

    def _fail(self, chunks: list[bytes], error: ir.ErrorInfo) -> None:
        type_, code = openai_errors.error_type_and_code(error, ERROR_TYPES)
        message = error.message
        if error.retry_after is not None and "try again" not in message.lower():
            # Codex reads its back-off from the message text.
            message = f"{message} Please try again in {error.retry_after:g}s."
        snapshot = self._snapshot("failed", usage=self._collector.response.usage)
        # No code: the type says the class (invalid_request_error reads back as a 400, not a 500).
        snapshot["error"] = {"code": code or type_ or "server_error", "message": message}
        self._blocks.finish()  # open items stay as they are: the failed snapshot holds the finished ones
        self._emit(chunks, "response.failed", {"response": snapshot})
