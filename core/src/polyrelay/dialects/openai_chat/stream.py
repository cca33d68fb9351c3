"""Chat Completions ``chat.completion.chunk`` streams ↔ IR events."""

from __future__ import annotations

import time
from typing import Any

from polyrelay import ir
from polyrelay.dialects import openai_errors
from polyrelay.dialects.base import merge_usage
from polyrelay.dialects.blocks import Blocks, Tracked
from polyrelay.dialects.fields import is_int
from polyrelay.dialects.openai_chat.errors import stream_error
from polyrelay.dialects.openai_chat.response import (
    chat_id,
    decode_usage,
    encode_usage,
    new_id,
    pick_choice,
    stop_reason_for,
)
from polyrelay.dialects.openai_chat.wire import STOP_TO_FINISH
from polyrelay.jsonutil import dumps, loads
from polyrelay.sse import SSEParser, frame


class ChatStreamDecoder(Tracked):
    """Chat completion chunks (SSE, ``[DONE]``-terminated) → IR events."""

    def __init__(self) -> None:
        self._parser = SSEParser()
        self._blocks = Blocks()  # every block opens with open_next: an upstream key may name several calls
        self._current: int | None = None  # the current "text" | "thinking" block: a change of kind ends it
        self._tools: dict[Any, int] = {}  # upstream tool-call key → IR block index
        self._tool_ids: dict[int, str] = {}
        self._stop: str | None = None
        self._usage: ir.Usage | None = None

    def feed(self, data: bytes) -> list[ir.Event]:
        """Consume bytes split anywhere; return the events they complete."""
        events: list[ir.Event] = []
        if self.finished:
            return events
        for sse in self._parser.feed(data):
            self._handle(sse.data, events)
            if self.finished:
                break
        return events

    def close(self) -> list[ir.Event]:
        """EOF: flush; a stream that had its finish_reason but no ``[DONE]`` still ends normally."""
        events: list[ir.Event] = []
        if not self.finished:
            for sse in self._parser.close():
                self._handle(sse.data, events, at_eof=True)
        if not self.finished and self._stop is not None:
            self._finish(events)
        elif not self.finished:
            self._close_all(events)  # a cut stream's open blocks end here, as in every codec
        return events

    def _handle(self, data: str, events: list[ir.Event], at_eof: bool = False) -> None:
        payload = data.strip()
        if not payload or self.finished:
            return
        if payload == "[DONE]":
            self._finish(events)
            return
        try:
            chunk = loads(payload)
        except ValueError:
            if at_eof:
                return  # the body broke off mid-frame: a cut, which the core reports itself
            # A chunk we cannot read may have held content: fail loudly rather than lose it.
            self._close_all(events, terminal=True)
            events.append(ir.StreamError(ir.ErrorInfo(status=502, message="upstream sent a malformed stream chunk")))
            return
        if not isinstance(chunk, dict):
            return
        if chunk.get("error") is not None:
            self._close_all(events, terminal=True)
            events.append(ir.StreamError(stream_error(chunk)))
            return
        choice = pick_choice(chunk.get("choices"))
        usage = chunk.get("usage")
        if choice is None and not isinstance(usage, dict):
            return
        self._start(chunk, events)
        if isinstance(usage, dict):
            self._usage = decode_usage(usage)  # cumulative: the latest figure wins
        if choice is None:
            return
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._delta(delta, events)
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish:
            # Usage may still follow, so the message ends at [DONE]; the blocks end now.
            self._stop = stop_reason_for(finish, bool(self._tool_ids))
            self._close_all(events)

    def _start(self, chunk: dict[str, Any], events: list[ir.Event]) -> None:
        if self._blocks.start():
            cid, model = chunk.get("id"), chunk.get("model")
            events.append(ir.MessageStart(id=cid if isinstance(cid, str) else "",
                                          model=model if isinstance(model, str) else ""))

    def _delta(self, delta: dict[str, Any], events: list[ir.Event]) -> None:
        reasoning = delta.get("reasoning_content")
        if not isinstance(reasoning, str):
            reasoning = delta.get("reasoning")  # vLLM / OpenRouter spelling
        if isinstance(reasoning, str) and reasoning:
            self._text("thinking", reasoning, events)
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._text("text", content, events)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                if isinstance(call, dict):
                    self._tool(call, position, events)

    def _text(self, kind: str, text: str, events: list[ir.Event]) -> None:
        index = self._current
        if index is None or self._blocks.open_kind(index) != kind:
            self._close_text(events)
            index = self._current = self._blocks.open_next(kind)
            events.append(ir.BlockStart(index, kind))  # type: ignore[arg-type]
        events.append(ir.BlockDelta(index, kind, text))  # type: ignore[arg-type]

    def _tool(self, call: dict[str, Any], position: int, events: list[ir.Event]) -> None:
        custom = call.get("type") == "custom" or isinstance(call.get("custom"), dict)
        body = call.get("custom" if custom else "function")
        body = body if isinstance(body, dict) else {}
        call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
        key: Any = call.get("index") if is_int(call.get("index")) else ("pos", position)
        index = self._tools.get(key)
        if index is not None and call_id is not None and call_id != self._tool_ids[index]:
            # Some servers reuse index 0 for every parallel call; a new id means a new call
            # (and id-less fragments after it belong to the newest one).
            index = None
        if index is None:
            self._close_text(events)
            index = self._blocks.open_next("tool_call", owes_arguments=not custom)
            self._tools[key] = index
            self._tool_ids[index] = call_id or new_id("call_")
            name = body.get("name")
            events.append(ir.BlockStart(index, "tool_call", id=self._tool_ids[index],
                                        name=name if isinstance(name, str) else "",
                                        tool_kind="custom" if custom else "function"))
        fragment = body.get("input" if custom else "arguments")
        if isinstance(fragment, (dict, list)):
            fragment = dumps(fragment).decode()  # some servers send the final arguments as an object
        if isinstance(fragment, str) and fragment:
            self._blocks.fill(index)
            events.append(ir.BlockDelta(index, "arguments", fragment))

    def _close_text(self, events: list[ir.Event]) -> None:
        if self._current is not None:
            if self._blocks.close(self._current) is not None:
                events.append(ir.BlockStop(self._current))
            self._current = None

    def _close_all(self, events: list[ir.Event], *, terminal: bool = False) -> None:
        """The current text block first (as the wire reads), then the calls in index order."""
        self._close_text(events)
        for closed in self._blocks.finish() if terminal else self._blocks.close_all():
            if closed.arguments is not None:  # a call without arguments: "{}"
                events.append(ir.BlockDelta(closed.index, "arguments", closed.arguments))
            events.append(ir.BlockStop(closed.index))

    def _finish(self, events: list[ir.Event]) -> None:
        self._start({}, events)
        self._close_all(events, terminal=True)
        stop = self._stop or stop_reason_for(None, bool(self._tool_ids))
        events.append(ir.MessageDelta(stop_reason=stop, usage=self._usage))
        events.append(ir.MessageStop())


class ChatStreamEncoder:
    """IR events → chat completion chunks (SSE with ``[DONE]``, or one JSON object per line)."""

    def __init__(self, request: ir.Request, *, sse: bool = True) -> None:
        self._model = request.model
        self._include_usage = request.include_usage
        self._sse = sse
        self._id = ""
        self._created = int(time.time())
        self._finish_sent = False
        # Holds the tool calls only, keyed by IR index: a call's index is its position among the calls.
        self._calls = Blocks()
        self._stop: str | None = None
        self._usage = ir.Usage()

    def encode(self, event: ir.Event) -> bytes:
        """Frames for one event."""
        if self._calls.finished:
            return b""
        out: list[dict[str, Any]] = []
        if isinstance(event, ir.StreamError):
            self._calls.finish()
            return self._write([{"error": openai_errors.error_object(event.error, with_param=False)}])
        if self._calls.start():
            self._id = chat_id(event.id if isinstance(event, ir.MessageStart) else None)
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if isinstance(event, ir.MessageStart):
            if event.usage is not None:
                self._usage = merge_usage(self._usage, event.usage)
        elif isinstance(event, ir.BlockStart):
            if event.kind == "tool_call" and self._calls.index(event.index) is None:
                out.append(self._call_start(event.index, event.id, event.name, event.tool_kind))
        elif isinstance(event, ir.BlockDelta):
            out.extend(self._delta(event))
        elif isinstance(event, ir.BlockStop):
            closed = self._calls.close(event.index)
            if closed is not None and closed.arguments is not None:  # a call without arguments: "{}"
                out.append(self._chunk({"tool_calls": [{"index": closed.index,
                                                        "function": {"arguments": closed.arguments}}]}))
        elif isinstance(event, ir.MessageDelta):
            if event.usage is not None:
                self._usage = merge_usage(self._usage, event.usage)
            if event.stop_reason is not None:
                self._stop = event.stop_reason
                out.extend(self._finish_chunk())
        elif isinstance(event, ir.MessageStop):
            out.extend(self._finish_chunk())
            if self._include_usage:
                out.append({"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                            "model": self._model, "choices": [], "usage": encode_usage(self._usage)})
            self._calls.finish()  # a call still open gets no "{}" here: decoders close calls before the stop
            return self._write(out) + (b"data: [DONE]\n\n" if self._sse else b"")
        return self._write(out)

    def finish(self) -> bytes:
        """Chat framing needs nothing after the terminal frame."""
        return b""

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self._include_usage:
            chunk["usage"] = None  # every chunk but the usage one says null (stream_options.include_usage)
        return chunk

    def _call_start(self, index: int, call_id: str | None, name: str | None, kind: str) -> dict[str, Any]:
        position = self._calls.open(index, "tool_call", owes_arguments=kind != "custom")
        call: dict[str, Any] = {"index": position, "id": call_id or new_id("call_")}
        if kind == "custom":
            call.update(type="custom", custom={"name": name or "", "input": ""})
        else:
            call.update(type="function", function={"name": name or "", "arguments": ""})
        return self._chunk({"tool_calls": [call]})

    def _delta(self, event: ir.BlockDelta) -> list[dict[str, Any]]:
        if not event.text or event.kind == "signature":
            return []  # chat has no place for signatures
        if event.kind == "text":
            return [self._chunk({"content": event.text})]
        if event.kind == "thinking":
            return [self._chunk({"reasoning_content": event.text})]
        out = []
        position = self._calls.index(event.index)
        if position is None:  # arguments without a start: announce the call first
            out.append(self._call_start(event.index, None, None, "function"))
            position = self._calls.opened - 1
        self._calls.fill(position)
        out.append(self._chunk({"tool_calls": [{"index": position, "function": {"arguments": event.text}}]}))
        return out

    def _finish_chunk(self) -> list[dict[str, Any]]:
        if self._finish_sent:
            return []
        self._finish_sent = True
        finish = "tool_calls" if self._calls.opened else STOP_TO_FINISH.get(self._stop or "end_turn", "stop")
        return [self._chunk({}, finish)]

    def _write(self, objects: list[dict[str, Any]]) -> bytes:
        if self._sse:
            return b"".join(frame(dumps(o)) for o in objects)
        return b"".join(dumps(o) + b"\n" for o in objects)
