"""Anthropic message objects (complete responses) and usage ↔ the IR."""

from __future__ import annotations

import uuid
from typing import Any

from polyrelay import ir
from polyrelay.dialects.anthropic.content import call_input, decode_blocks, restore_blocks, signature_out, with_extras
from polyrelay.dialects.anthropic.wire import (
    NAME,
    RESPONSE_FIELDS,
    STOP_REASON_FROM_IR,
    STOP_REASON_TO_IR,
    USAGE_FIELDS,
)
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.fields import str_or_none, usage_count


def decode_usage(usage: dict[str, Any]) -> ir.Usage:
    """Anthropic usage (input excludes cache) → IR usage (input includes cache)."""
    cache_read = usage_count(usage.get("cache_read_input_tokens"))
    cache_write = usage_count(usage.get("cache_creation_input_tokens"))
    details = usage.get("output_tokens_details")
    reasoning = usage_count(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return ir.Usage(input_tokens=usage_count(usage.get("input_tokens")) + cache_read + cache_write,
                    output_tokens=usage_count(usage.get("output_tokens")), cached_tokens=cache_read,
                    cache_write_tokens=cache_write, reasoning_tokens=reasoning)


def encode_usage(usage: ir.Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input_tokens": max(0, usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.output_tokens,
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


def stop_reason_out(reason: str | None, tool_called: bool) -> str:
    if tool_called:  # a tool call means the client must act, whatever the upstream said
        return "tool_use"
    return STOP_REASON_FROM_IR.get(reason or "end_turn", "end_turn")


def client_message_id(value: str | None) -> str:
    """A ``msg_`` id for a client: the upstream's own, prefixed if foreign, or a fresh one."""
    if not value:
        return "msg_" + uuid.uuid4().hex[:24]
    return value if value.startswith("msg_") else "msg_" + value


def decode_response_body(body: Any) -> ir.Response:
    if not isinstance(body, dict):
        raise DialectError("body must be a JSON object")
    content = body.get("content", [])
    if not isinstance(content, list):
        raise DialectError("content must be an array")
    parts, carried = decode_blocks(content, "content", upstream=True)
    ext = {key: value for key, value in body.items() if key not in RESPONSE_FIELDS}
    if carried:
        ext["_blocks"] = carried
    usage = body.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    usage_rest = {k: v for k, v in usage.items() if k not in USAGE_FIELDS}
    if usage_rest:  # service_tier, server_tool_use, cache_creation breakdown...
        ext["_usage"] = usage_rest
    reason = str_or_none(body.get("stop_reason"))
    return ir.Response(
        id=str_or_none(body.get("id")) or "",
        model=str_or_none(body.get("model")) or "",
        parts=parts,
        stop_reason=STOP_REASON_TO_IR.get(reason, "end_turn") if reason else None,
        stop_sequence=str_or_none(body.get("stop_sequence")),
        usage=decode_usage(usage),
        extensions={NAME: ext} if ext else {},
    )


def _encode_response_part(part: ir.Part) -> dict[str, Any] | None:
    if isinstance(part, ir.Text):
        return with_extras({"type": "text", "text": part.text}, part.extras)
    if isinstance(part, ir.Thinking):
        signature = signature_out(part.signature, part.origin)
        if part.redacted:
            return with_extras({"type": "redacted_thinking", "data": signature}, part.extras) if signature else None
        return with_extras({"type": "thinking", "thinking": part.text, "signature": signature}, part.extras)
    if isinstance(part, ir.ToolCall):
        block = {"type": "tool_use", "id": part.id or "toolu_" + uuid.uuid4().hex[:24], "name": part.name,
                 "input": call_input(part)}
        return with_extras(block, part.extras)
    return None  # images, files, tool results: an Anthropic reply has no such blocks


def encode_response_body(response: ir.Response) -> dict[str, Any]:
    ext = response.extensions.get(NAME, {})
    content = [b for b in map(_encode_response_part, response.parts) if b is not None]
    content = restore_blocks(content, ext.get("_blocks"))
    tool_called = any(isinstance(p, ir.ToolCall) for p in response.parts)
    reason = stop_reason_out(response.stop_reason, tool_called)
    usage = encode_usage(response.usage)
    if isinstance(ext.get("_usage"), dict):
        usage.update(ext["_usage"])
    body: dict[str, Any] = {
        "id": client_message_id(response.id), "type": "message", "role": "assistant", "model": response.model,
        "content": content, "stop_reason": reason,
        "stop_sequence": response.stop_sequence if reason == "stop_sequence" else None, "usage": usage,
    }
    for key, value in ext.items():
        if not key.startswith("_") and key not in body:
            body[key] = value
    return body
