"""An account's stream on its way back to the client.

Two things differ from the public API.  Tool names and call ids shortened
on the way up (:mod:`polyrelay_codex.names`) are put back.  And the
backend's ``response.completed`` often carries an empty ``output``, the
items having arrived only in ``response.output_item.done``: a pass-through
client that reads the final response (the ``openai`` SDK does) would see
nothing, so the items are put into it.  The codec path needs only the
first fix; its decoder reads the items from their own events.

Every other pass-through frame keeps its upstream bytes: a frame is parsed
only when its event type or a stand-in in it says it needs work.
"""

from __future__ import annotations

from typing import Any

from polyrelay import ir, jsonutil, sse
from polyrelay.passthrough import RawFrame
from polyrelay.types import StreamItem
from polyrelay_codex import names

ITEM_DONE = b"response.output_item.done"
COMPLETED = b"response.completed"
#: An event line names the type within the frame's first bytes.
_HEAD = 64


class AccountStream:
    """Per-stream state: the restore map and the finished items, by output index."""

    def __init__(self, restore: dict[str, str]) -> None:
        self.restore = restore
        self._needles = [s.encode() for s in restore]
        self._items: dict[int, Any] = {}

    def fix(self, items: list[StreamItem]) -> list[StreamItem]:
        """The items with originals restored and the final output filled in."""
        out: list[StreamItem] = []
        for item in items:
            if isinstance(item, RawFrame):
                item = self._frame(item)
            elif self.restore and isinstance(item, ir.BlockStart) and item.kind == "tool_call":
                item.name = self.restore.get(item.name or "", item.name)
                item.id = self.restore.get(item.id or "", item.id)
            out.append(item)
        return out

    def _frame(self, frame: RawFrame) -> RawFrame:
        head = frame.data[:_HEAD]
        done, completed = ITEM_DONE in head, COMPLETED in head
        restore = bool(self._needles) and any(n in frame.data for n in self._needles)
        if not (done or completed or restore):
            return frame
        changed = False
        rebuilt = []
        for event in sse.SSEParser().feed(frame.data if frame.data.endswith(b"\n\n") else frame.data + b"\n\n"):
            try:
                payload = jsonutil.loads(event.data)
            except ValueError:
                return frame
            if not isinstance(payload, dict):
                return frame
            if restore:
                changed |= names.restore_event(payload, self.restore)
            if done and isinstance(payload.get("item"), dict):
                index = payload.get("output_index")
                self._items[index if isinstance(index, int) else len(self._items)] = payload["item"]
            if completed:
                changed |= self._fill(payload)
            rebuilt.append(sse.frame(jsonutil.dumps(payload), event=event.event))
        if not changed:
            return frame
        return RawFrame(b"".join(rebuilt), frame.terminal, frame.error)

    def _fill(self, payload: dict[str, Any]) -> bool:
        response = payload.get("response")
        if not isinstance(response, dict) or response.get("output") or not self._items:
            return False
        response["output"] = [self._items[i] for i in sorted(self._items)]
        return True
