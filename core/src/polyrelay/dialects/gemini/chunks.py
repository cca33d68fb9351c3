"""``GenerateContentResponse`` objects (whole or streamed chunks) → IR events, and usage both ways."""

from __future__ import annotations

import re
import uuid
from typing import Any

from polyrelay import ir
from polyrelay.dialects.blocks import Blocks, Tracked
from polyrelay.dialects.gemini.errors import error_from_object
from polyrelay.dialects.gemini.protojson import count_of, field_of, json_text, merge_missing, unknown_keys
from polyrelay.dialects.gemini.wire import FINISH_TO_STOP


def decode_usage(meta: Any) -> ir.Usage | None:
    if not isinstance(meta, dict):
        return None
    thoughts = count_of(meta, "thoughtsTokenCount")
    usage = ir.Usage(
        input_tokens=count_of(meta, "promptTokenCount") + count_of(meta, "toolUsePromptTokenCount"),
        output_tokens=count_of(meta, "candidatesTokenCount") + thoughts,
        cached_tokens=count_of(meta, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )
    # Code Assist sends {"trafficType": ...} alone on early chunks: no figures yet.
    return usage if usage.input_tokens or usage.output_tokens else None


def encode_usage(usage: ir.Usage) -> dict[str, Any]:
    meta = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(usage.output_tokens - usage.reasoning_tokens, 0),
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    }
    if usage.cached_tokens:
        meta["cachedContentTokenCount"] = usage.cached_tokens
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    return meta


class ChunkReader(Tracked):
    """Turns Gemini response chunks into IR events (shared by streams and whole bodies)."""

    def __init__(self, keep_extras: bool = False, blocks: Blocks | None = None) -> None:
        self.usage: ir.Usage | None = None
        self.calls = 0
        self.raw_parts: list[list[Any]] = []  # parts the IR cannot carry, with the block index they precede
        self.extras: dict[str, Any] = {}  # unknown response fields (decode_response only)
        self._keep_extras = keep_extras
        # Gemini's wire has no block stop: a part of another kind ends the current block.
        self._blocks = blocks if blocks is not None else Blocks()
        self._current: int | None = None
        self._id = ""
        self._seed = uuid.uuid4().hex[:12]  # call ids when the upstream gives no responseId

    def read(self, chunk: Any) -> list[ir.Event]:
        """Events for one parsed chunk (an object, or a list of them)."""
        out: list[ir.Event] = []
        if isinstance(chunk, list):
            for item in chunk:
                out.extend(self.read(item))
            return out
        if self.finished or not isinstance(chunk, dict):
            return out
        if "candidates" not in chunk and isinstance(chunk.get("response"), dict):
            chunk = chunk["response"]  # Code Assist envelope
        if "error" in chunk and "candidates" not in chunk:
            return self.fail(error_from_object(chunk["error"], 0))
        usage = decode_usage(field_of(chunk, "usageMetadata"))
        if usage is not None:
            self.usage = usage
        self._id = self._id or str(field_of(chunk, "responseId") or "")
        if self._blocks.start():
            start_usage = None
            if usage is not None:  # the input side is known up front; output comes with the stop
                start_usage = ir.Usage(input_tokens=usage.input_tokens, cached_tokens=usage.cached_tokens)
            model = str(field_of(chunk, "modelVersion") or "")
            out.append(ir.MessageStart(id=self._id, model=model, usage=start_usage))
        if self._keep_extras:
            known = ("candidates", "usageMetadata", "modelVersion", "responseId")
            merge_missing(self.extras, unknown_keys(chunk, known))
        candidates = chunk.get("candidates")
        candidate = candidates[0] if isinstance(candidates, list) and candidates else {}
        if not isinstance(candidate, dict):
            candidate = {}
        if self._keep_extras:
            extra = unknown_keys(candidate, ("content", "finishReason", "index"))
            if extra:
                merge_missing(self.extras.setdefault("candidate", {}), extra)
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict):
                self._part(part, out)
        finish = field_of(candidate, "finishReason")
        feedback = field_of(chunk, "promptFeedback")
        blocked = not candidates and isinstance(feedback, dict) and field_of(feedback, "blockReason")
        if finish or blocked:
            # finishReason is upstream JSON: a non-string must not key the table (a list cannot).
            stop = FINISH_TO_STOP.get(finish if isinstance(finish, str) else "", "end_turn") if finish else "refusal"
            out.extend(self.end(stop))
        return out

    def end(self, stop: str | None) -> list[ir.Event]:
        """Close the message: its stop reason (any call makes it tool_use) and usage."""
        out = self._finish()
        stop = "tool_use" if self.calls else (stop or "end_turn")
        out += [ir.MessageDelta(stop_reason=stop, usage=self.usage or ir.Usage()), ir.MessageStop()]
        return out

    def fail(self, error: ir.ErrorInfo) -> list[ir.Event]:
        """An in-stream error: close what is open and report it."""
        out = self._finish()
        if self._blocks.start():  # even an error-only stream opens with a MessageStart
            out.append(ir.MessageStart(id="", model=""))
        out.append(ir.StreamError(error))
        return out

    def close(self) -> list[ir.Event]:
        """The body ended: blocks are closed, but no stop is invented."""
        return [] if self.finished else self._close()

    def _part(self, part: dict[str, Any], out: list[ir.Event]) -> None:
        signature = field_of(part, "thoughtSignature")
        signature = signature if isinstance(signature, str) and signature else None
        text = part.get("text")
        if part.get("thought") is True:
            index = self._block("thinking", out)
            if isinstance(text, str) and text:
                out.append(ir.BlockDelta(index, "thinking", text))
            if signature:  # a signature seals the thought it rides on
                out.append(ir.BlockDelta(index, "signature", signature, origin=ir.GEMINI))
                out.extend(self._close())
        elif isinstance(text, str):
            if signature:
                # Gemini 3 signs a text part; the IR only carries signatures on
                # thinking, so it seals the open thought or gets one of its own.
                current = self._current
                thought = current is not None and self._blocks.open_kind(current) == "thinking"
                index = self._block("thinking", out) if current is None or not thought else current
                out.append(ir.BlockDelta(index, "signature", signature, origin=ir.GEMINI))
                out.extend(self._close())
            if text:
                out.append(ir.BlockDelta(self._block("text", out), "text", text))
        elif isinstance(field_of(part, "functionCall"), dict):
            call = field_of(part, "functionCall")
            out.extend(self._close())
            self.calls += 1
            token = re.sub(r"[^A-Za-z0-9_-]", "", self._id) or self._seed
            call_id = call.get("id") if isinstance(call.get("id"), str) and call["id"] else f"call_{token}_{self.calls}"
            args = call.get("args") if isinstance(call.get("args"), dict) else {}
            index = self._blocks.open_next("tool_call")  # a call comes whole: it opens and closes here
            out.append(ir.BlockStart(index, "tool_call", id=call_id, name=str(call.get("name") or "")))
            out.append(ir.BlockDelta(index, "arguments", json_text(args)))
            if signature:
                out.append(ir.BlockDelta(index, "signature", signature, origin=ir.GEMINI))
            self._blocks.close(index)
            out.append(ir.BlockStop(index))
        elif self._keep_extras:
            # executableCode, codeExecutionResult, inline images...: no IR block.
            self.raw_parts.append([self._blocks.opened, part])

    def _block(self, kind: str, out: list[ir.Event]) -> int:
        current = self._current
        if current is not None and self._blocks.open_kind(current) == kind:
            return current
        out.extend(self._close())
        index = self._current = self._blocks.open_next(kind)
        out.append(ir.BlockStart(index, kind))  # type: ignore[arg-type]
        return index

    def _close(self) -> list[ir.Event]:
        """End the current block (a new part of another kind, a sealing signature, a call)."""
        current, self._current = self._current, None
        closed = self._blocks.close(current) if current is not None else None
        return [ir.BlockStop(closed.index)] if closed is not None else []

    def _finish(self) -> list[ir.Event]:
        self._current = None
        return [ir.BlockStop(closed.index) for closed in self._blocks.finish()]
