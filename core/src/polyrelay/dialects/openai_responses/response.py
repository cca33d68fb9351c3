"""Responses ``response`` objects and usage ↔ the IR."""

from __future__ import annotations

import time
from typing import Any

from polyrelay import ir
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.fields import ARRAY, STRING, dict_or_empty, field, str_or_none, usage_count
from polyrelay.dialects.openai_responses.items import (
    Ids,
    call_part,
    merge_missing,
    message_parts,
    new_id,
    parts_to_items,
    reasoning_part,
    unknown_keys,
)
from polyrelay.dialects.openai_responses.wire import (
    NAME,
    RESPONSE_FIELDS,
    STATUS_FOR_STOP,
    STOP_FOR_FAILED,
    STOP_FOR_INCOMPLETE,
    USAGE_FIELDS,
)


def usage_from_wire(raw: Any) -> ir.Usage:
    usage = ir.Usage()
    raw = dict_or_empty(raw)
    for attr, key, sub in USAGE_FIELDS:
        value = raw.get(key)
        if sub is not None:
            value = dict_or_empty(value).get(sub)
        setattr(usage, attr, usage_count(value))
    return usage


def _usage_to_wire(usage: ir.Usage) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr, key, sub in USAGE_FIELDS:
        if sub is None:
            out[key] = getattr(usage, attr)
        else:
            out.setdefault(key, {})[sub] = getattr(usage, attr)
    out["total_tokens"] = usage.input_tokens + usage.output_tokens
    return out


def stop_from_wire(status: Any, response: dict[str, Any], has_call: bool) -> str:
    if status == "incomplete":
        reason = str_or_none(dict_or_empty(response.get("incomplete_details")).get("reason"))
        return STOP_FOR_INCOMPLETE.get(reason or "", "end_turn")
    if status == "failed":
        code = str_or_none(dict_or_empty(response.get("error")).get("code"))
        return STOP_FOR_FAILED.get(code or "", "end_turn")
    return "tool_use" if has_call else "end_turn"


def decode_output(output: list[Any]) -> tuple[list[ir.Part], list[list[Any]]]:
    """Response ``output`` items → IR parts plus ``[position, raw]`` for the rest."""
    parts: list[ir.Part] = []
    carried: list[list[Any]] = []
    for i, item in enumerate(output):
        where = f"output[{i}]."
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            parts.extend(message_parts(item, where)[1])
        elif kind in ("function_call", "custom_tool_call"):
            parts.append(call_part(item, where))
        elif kind == "reasoning":
            parts.append(reasoning_part(item, where, from_client=False))
        else:
            carried.append([len(parts), item])
    return parts, carried


def decode_response_body(body: Any) -> ir.Response:
    if not isinstance(body, dict):
        raise DialectError("upstream response must be a JSON object", status=502)
    parts, carried = decode_output(field(body, "output", ARRAY) or [])
    has_call = any(isinstance(p, ir.ToolCall) for p in parts)
    response = ir.Response(
        id=field(body, "id", STRING) or "",
        model=field(body, "model", STRING) or "",
        parts=parts,
        stop_reason=stop_from_wire(body.get("status"), body, has_call),
        usage=usage_from_wire(body.get("usage")),
    )
    ext = unknown_keys(body, tuple(RESPONSE_FIELDS))
    if carried:
        ext["output_items"] = carried
    if ext:
        response.extensions[NAME] = ext
    return response


def terminal_status(stop_reason: str | None, has_call: bool) -> tuple[str, str | None]:
    """(status, incomplete reason / failure code) for a stop reason; tool calls win."""
    if has_call:
        return "completed", None
    return STATUS_FOR_STOP.get(stop_reason or "end_turn", ("completed", None))


def response_object(
    response_id: str, model: str, created_at: int, status: str, detail: str | None,
    output: list[dict[str, Any]], usage: ir.Usage | None,
) -> dict[str, Any]:
    """The response object of the wire (and of stream snapshots)."""
    error = None
    if status == "failed":
        error = {"code": detail, "message": "The input exceeds the context window of this model."}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": detail} if status == "incomplete" else None,
        "model": model,
        "output": output,
        "usage": _usage_to_wire(usage) if usage is not None else None,
    }


def client_response_id(upstream_id: str) -> str:
    """A ``resp_`` id for a client: the upstream's own, prefixed if foreign, or a fresh one."""
    if upstream_id.startswith("resp_"):
        return upstream_id
    return f"resp_{upstream_id}" if upstream_id else new_id("resp")


def encode_response_body(response: ir.Response) -> dict[str, Any]:
    ext = dict(response.extensions.get(NAME) or {})
    response_id = client_response_id(response.id)
    output = parts_to_items(response.parts, "assistant", ext.pop("output_items", None),
                             for_client=True, ids=Ids(response_id))
    has_call = any(isinstance(p, ir.ToolCall) for p in response.parts)
    status, detail = terminal_status(response.stop_reason, has_call)
    created = ext.get("created_at")
    created_at = created if isinstance(created, int) else int(time.time())
    body = response_object(response_id, response.model, created_at, status, detail, output, response.usage)
    return merge_missing(body, ext)
