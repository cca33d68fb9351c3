"""Complete ``GenerateContentResponse`` bodies ↔ IR responses."""

from __future__ import annotations

from typing import Any

from polyrelay import ir
from polyrelay.aggregate import collect
from polyrelay.dialects.base import DialectError, UpstreamFailure
from polyrelay.dialects.gemini.chunks import ChunkReader, encode_usage
from polyrelay.dialects.gemini.content import response_part
from polyrelay.dialects.gemini.protojson import merge_missing
from polyrelay.dialects.gemini.wire import STOP_TO_FINISH


def decode_response_body(body: Any) -> ir.Response:
    """A whole response (object, Code Assist envelope or collected array) → IR response."""
    if not isinstance(body, (dict, list)):
        raise DialectError("Gemini response must be a JSON object", status=502)
    reader = ChunkReader(keep_extras=True)
    events = reader.read(body)
    if not reader.finished:
        events += reader.end(None)
    failure = next((e.error for e in events if isinstance(e, ir.StreamError)), None)
    if failure is not None:
        raise UpstreamFailure(failure.message, status=failure.status, code=failure.code)
    response = collect(events)
    extras = dict(reader.extras)
    if reader.raw_parts:
        extras["parts"] = reader.raw_parts
    if extras:
        response.extensions[ir.GEMINI] = extras
    return response


def encode_response_body(response: ir.Response) -> dict[str, Any]:
    """IR response → GenerateContentResponse (``modelVersion`` = ``response.model``)."""
    ext = response.extensions.get(ir.GEMINI, {})
    raw_parts: dict[int, list[Any]] = {}
    for index, raw in ext.get("parts", []):
        raw_parts.setdefault(index, []).append(raw)
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(response.parts):
        parts.extend(raw_parts.pop(index, []))
        parts.extend(response_part(part))
    for rest in raw_parts.values():
        parts.extend(rest)
    called = any(isinstance(p, ir.ToolCall) for p in response.parts)
    candidate: dict[str, Any] = {}
    if parts:
        candidate["content"] = {"role": "model", "parts": parts}
    candidate["finishReason"] = "STOP" if called else STOP_TO_FINISH.get(response.stop_reason or "end_turn", "STOP")
    candidate["index"] = 0
    merge_missing(candidate, ext.get("candidate", {}))
    body = {"candidates": [candidate], "usageMetadata": encode_usage(response.usage),
            "modelVersion": response.model, "responseId": response.id}
    merge_missing(body, {k: v for k, v in ext.items() if k not in ("candidate", "parts")})
    return body
