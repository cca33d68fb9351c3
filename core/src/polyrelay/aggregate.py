"""Stream ↔ complete response, once for every provider.

``Collector`` folds a stream of IR events into an :class:`ir.Response` (a
non-streaming client served by a stream-only backend); ``response_events``
unfolds a response into the event sequence a streaming client expects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from polyrelay import ir
from polyrelay.dialects.base import merge_usage


class Collector:
    """Accumulates stream events into one response."""

    def __init__(self, model: str = "") -> None:
        self.response = ir.Response(id="", model=model, stop_reason=None)
        self.error: ir.ErrorInfo | None = None
        self.stopped = False
        self._open: dict[int, ir.Part] = {}

    def add(self, event: ir.Event) -> None:
        """Fold one event in."""
        response = self.response
        if isinstance(event, ir.BlockDelta):
            part = self._open.get(event.index)
            if part is None:
                part = self._start(ir.BlockStart(event.index, _KIND_FOR_DELTA[event.kind]))
            _apply_delta(part, event)
        elif isinstance(event, ir.BlockStart):
            self._start(event)
        elif isinstance(event, ir.BlockStop):
            self._open.pop(event.index, None)
        elif isinstance(event, ir.MessageStart):
            response.id = event.id or response.id
            response.model = response.model or event.model
            if event.usage is not None:
                response.usage = merge_usage(response.usage, event.usage)
        elif isinstance(event, ir.MessageDelta):
            if event.stop_reason is not None:
                response.stop_reason = event.stop_reason
                response.stop_sequence = event.stop_sequence
            if event.usage is not None:
                response.usage = merge_usage(response.usage, event.usage)
        elif isinstance(event, ir.MessageStop):
            self.stopped = True
        elif isinstance(event, ir.StreamError):
            self.error = event.error

    def result(self) -> ir.Response:
        """The response so far; stop reason defaults to ``end_turn``."""
        if self.response.stop_reason is None:
            has_call = any(isinstance(p, ir.ToolCall) for p in self.response.parts)
            self.response.stop_reason = "tool_use" if has_call else "end_turn"
        return self.response

    def _start(self, event: ir.BlockStart) -> ir.Part:
        part: ir.Part
        if event.kind == "tool_call":
            part = ir.ToolCall(id=event.id or "", name=event.name or "", arguments="", kind=event.tool_kind)
        elif event.kind == "thinking":
            part = ir.Thinking()
        elif event.kind == "redacted_thinking":
            part = ir.Thinking(redacted=True, signature=event.data)
        else:
            part = ir.Text(text="")
        self._open[event.index] = part
        self.response.parts.append(part)
        return part


_KIND_FOR_DELTA: dict[str, Literal["text", "thinking", "redacted_thinking", "tool_call"]] = {
    "text": "text",
    "thinking": "thinking",
    "arguments": "tool_call",
    "signature": "thinking",
}


def _apply_delta(part: ir.Part, event: ir.BlockDelta) -> None:
    if event.kind == "signature":
        if isinstance(part, (ir.Thinking, ir.ToolCall)):
            part.signature = (part.signature or "") + event.text
            if isinstance(part, ir.Thinking):
                part.origin = event.origin or part.origin
            else:
                part.signature_origin = event.origin or part.signature_origin
    elif isinstance(part, ir.Text) and event.kind == "text":
        part.text += event.text
    elif isinstance(part, ir.Thinking) and event.kind == "thinking":
        part.text += event.text
    elif isinstance(part, ir.ToolCall) and event.kind == "arguments":
        part.arguments += event.text


def collect(events: list[ir.Event], model: str = "") -> ir.Response:
    """Fold a whole event list into a response."""
    collector = Collector(model)
    for event in events:
        collector.add(event)
    return collector.result()


def response_events(response: ir.Response) -> Iterator[ir.Event]:
    """The event sequence that streams ``response``."""
    yield ir.MessageStart(id=response.id, model=response.model, usage=ir.Usage(
        input_tokens=response.usage.input_tokens,
        cached_tokens=response.usage.cached_tokens,
        cache_write_tokens=response.usage.cache_write_tokens,
    ))
    for index, part in enumerate(response.parts):
        if isinstance(part, ir.Text):
            yield ir.BlockStart(index, "text")
            if part.text:
                yield ir.BlockDelta(index, "text", part.text)
        elif isinstance(part, ir.Thinking):
            if part.redacted:
                yield ir.BlockStart(index, "redacted_thinking", data=part.signature)
            else:
                yield ir.BlockStart(index, "thinking")
                if part.text:
                    yield ir.BlockDelta(index, "thinking", part.text)
                if part.signature:
                    yield ir.BlockDelta(index, "signature", part.signature, origin=part.origin)
        elif isinstance(part, ir.ToolCall):
            yield ir.BlockStart(index, "tool_call", id=part.id, name=part.name, tool_kind=part.kind)
            yield ir.BlockDelta(index, "arguments", part.arguments)
            if part.signature:
                yield ir.BlockDelta(index, "signature", part.signature, origin=part.signature_origin)
        else:
            continue
        yield ir.BlockStop(index)
    yield ir.MessageDelta(stop_reason=response.stop_reason, usage=response.usage,
                          stop_sequence=response.stop_sequence)
    yield ir.MessageStop()
