"""Anthropic content blocks ↔ IR parts, for requests and responses alike."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from polyrelay import ir
from polyrelay.dialects import signatures
from polyrelay.dialects.anthropic.wire import BLOCKS_KEY, NAME, TOOL_ID_INVALID
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.fields import BOOLEAN, OBJECT, STRING, checked, field
from polyrelay.dialects.media import parse_data_url, sniff_image_type
from polyrelay.jsonutil import dumps, loads


def _extras(block: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    """Split a block's keys the IR does not model into part extras."""
    extras: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, value in block.items():
        if key == "type" or key in known:
            continue
        if key == "cache_control" and isinstance(value, dict):
            extras["cache_control"] = value
        else:
            rest[key] = value
    if rest:
        extras[NAME] = rest
    return extras


def with_extras(block: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
    """Write back ``cache_control`` and this dialect's own leftovers (nothing foreign)."""
    cache_control = extras.get("cache_control")
    if isinstance(cache_control, dict):
        block["cache_control"] = cache_control
    own = extras.get(NAME)
    if isinstance(own, dict):
        block.update(own)
    return block


def is_plain_text(part: ir.Part) -> bool:
    """A text part that a bare string says completely."""
    return isinstance(part, ir.Text) and "cache_control" not in part.extras and NAME not in part.extras


def restore_blocks(blocks: list[dict[str, Any]], carried: Any) -> list[dict[str, Any]]:
    """Put carried raw blocks back at the positions they were decoded from."""
    if isinstance(carried, list):
        for entry in sorted((e for e in carried if isinstance(e, list) and len(e) == 2 and isinstance(e[0], int)),
                            key=lambda e: e[0]):
            blocks.insert(min(entry[0], len(blocks)), entry[1])
    return blocks


def _signature_in(value: str | None, upstream: bool) -> tuple[str | None, str | None]:
    """(origin, signature) of a signature read from an upstream response or a client request."""
    if not value:
        return None, None
    if upstream:
        return NAME, value
    return signatures.from_client(NAME, value)


def decode_block(block: Any, path: str, upstream: bool = False) -> ir.Part | None:
    """One content block as a part; ``None`` for a block type the IR cannot hold."""
    checked(block, OBJECT, path, required=True)
    kind = field(block, "type", STRING, path, required=True)
    if kind == "text":
        return ir.Text(field(block, "text", STRING, path, required=True), extras=_extras(block, ("text",)))
    if kind == "image":
        return _decode_image(block, path)
    if kind == "document":
        return _decode_document(block, path)
    if kind == "tool_use":
        tool_input = block.get("input", {})
        if not isinstance(tool_input, dict):
            raise DialectError(f"{path}.input must be an object")
        return ir.ToolCall(id=field(block, "id", STRING, path, required=True),
                           name=field(block, "name", STRING, path, required=True),
                           arguments=dumps(tool_input).decode(), extras=_extras(block, ("id", "name", "input")))
    if kind == "tool_result":
        return _decode_tool_result(block, path)
    if kind == "thinking":
        origin, signature = _signature_in(field(block, "signature", STRING, path), upstream)
        return ir.Thinking(text=field(block, "thinking", STRING, path, required=True), signature=signature,
                           origin=origin, extras=_extras(block, ("thinking", "signature")))
    if kind == "redacted_thinking":
        origin, data = _signature_in(field(block, "data", STRING, path, required=True), upstream)
        return ir.Thinking(signature=data, origin=origin, redacted=True, extras=_extras(block, ("data",)))
    return None


def decode_blocks(blocks: list[Any], path: str, upstream: bool = False) -> tuple[list[ir.Part], list[list[Any]]]:
    """Parts for the known blocks, and ``[position, block]`` for the others."""
    parts: list[ir.Part] = []
    carried: list[list[Any]] = []
    for i, block in enumerate(blocks):
        part = decode_block(block, f"{path}[{i}]", upstream)
        if part is None:
            carried.append([i, block])
        else:
            parts.append(part)
    return parts, carried


def _decode_image(block: dict[str, Any], path: str) -> ir.Image:
    source = field(block, "source", OBJECT, path)
    if source is None:
        raise DialectError(f"{path}.source is required")
    extras = _extras(block, ("source",))
    if source.get("type") == "base64":
        return ir.Image(media_type=field(source, "media_type", STRING, f"{path}.source"),
                        data=field(source, "data", STRING, f"{path}.source", required=True), extras=extras)
    if source.get("type") == "url":
        return ir.Image(url=field(source, "url", STRING, f"{path}.source", required=True), extras=extras)
    # File-API ids and future source kinds: only this dialect can say them.
    extras.setdefault(NAME, {})["source"] = source
    return ir.Image(extras=extras)


def _decode_document(block: dict[str, Any], path: str) -> ir.File:
    source = field(block, "source", OBJECT, path)
    if source is None:
        raise DialectError(f"{path}.source is required")
    extras = _extras(block, ("source", "title"))
    part = ir.File(filename=field(block, "title", STRING, path), extras=extras)
    kind = source.get("type")
    if kind == "base64":
        part.media_type = field(source, "media_type", STRING, f"{path}.source")
        part.data = field(source, "data", STRING, f"{path}.source", required=True)
    elif kind == "text":
        # IR file data is base64; the text source goes back to plain text on encode.
        part.media_type = field(source, "media_type", STRING, f"{path}.source") or "text/plain"
        text = field(source, "data", STRING, f"{path}.source", required=True)
        part.data = base64.b64encode(text.encode()).decode()
    elif kind == "url":
        part.url = field(source, "url", STRING, f"{path}.source", required=True)
    elif kind == "file":
        part.file_id = field(source, "file_id", STRING, f"{path}.source", required=True)
    else:  # "content" sources and future kinds
        extras.setdefault(NAME, {})["source"] = source
    return part


def _decode_tool_result(block: dict[str, Any], path: str) -> ir.ToolResult:
    content = block.get("content")
    extras = _extras(block, ("tool_use_id", "content", "is_error"))
    parts: list[ir.Text | ir.Image | ir.File] = []
    if isinstance(content, str):
        parts.append(ir.Text(content))
    elif isinstance(content, list):
        carried: list[list[Any]] = []
        for i, inner in enumerate(content):
            part = decode_block(inner, f"{path}.content[{i}]")
            if isinstance(part, (ir.Text, ir.Image, ir.File)):
                parts.append(part)
            else:  # search_result, tool_reference...: only Anthropic has them
                carried.append([i, inner])
        if carried:
            extras[BLOCKS_KEY] = carried
    elif content is not None:
        raise DialectError(f"{path}.content must be a string or an array of content blocks")
    return ir.ToolResult(call_id=field(block, "tool_use_id", STRING, path, required=True), content=parts,
                         is_error=bool(field(block, "is_error", BOOLEAN, path)), extras=extras)


def _tool_id(value: str) -> str:
    """Anthropic accepts tool ids matching [A-Za-z0-9_-]+; others are rewritten the same way on both ends."""
    return TOOL_ID_INVALID.sub("_", value)


def call_input(call: ir.ToolCall) -> dict[str, Any]:
    """``tool_use.input`` (an object) for a call whose arguments are JSON text."""
    if call.kind == "custom":  # free-form input (Responses custom tools): wrapped, see _encode_tool
        return {"input": call.arguments}
    if not call.arguments.strip():
        return {}
    try:
        value = loads(call.arguments)
    except ValueError:
        value = None
    # Anthropic only takes an object; keep broken arguments visible to the model rather than drop them.
    return value if isinstance(value, dict) else {"_raw_arguments": call.arguments}


def signature_out(signature: str | None, origin: str | None) -> str:
    """A signature for a client of this dialect: raw if ours, labelled if foreign."""
    return signatures.for_client(NAME, signature, origin) if signature else ""


def _encode_image(part: ir.Image) -> dict[str, Any] | None:
    data, media_type = part.data, part.media_type
    if data is None and part.url and (inline := parse_data_url(part.url)):
        media_type, data = media_type or inline.media_type, inline.data
    if data is not None:
        source: dict[str, Any] = {"type": "base64", "media_type": media_type or sniff_image_type(data), "data": data}
    elif part.url:
        source = {"type": "url", "url": part.url}
    else:
        source = {}
    block = with_extras({"type": "image", "source": source}, part.extras)
    return block if block["source"] else None


def _encode_document(part: ir.File) -> dict[str, Any] | None:
    data, media_type = part.data, part.media_type
    if data is None and part.url and (inline := parse_data_url(part.url)):
        media_type, data = media_type or inline.media_type, inline.data
    source: dict[str, Any] = {}
    if data is not None:
        media_type = media_type or "application/pdf"
        source = {"type": "base64", "media_type": media_type, "data": data}
        if media_type.startswith("text/"):  # Anthropic's base64 source is PDF only; text goes as text
            try:
                source = {"type": "text", "media_type": "text/plain",
                          "data": base64.b64decode(data, validate=True).decode()}
            except (binascii.Error, ValueError):
                pass
    elif part.url:
        source = {"type": "url", "url": part.url}
    elif part.file_id:
        source = {"type": "file", "file_id": part.file_id}
    block: dict[str, Any] = {"type": "document", "source": source}
    if part.filename:
        block["title"] = part.filename
    block = with_extras(block, part.extras)
    return block if block["source"] else None


def _encode_tool_result(part: ir.ToolResult) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": _tool_id(part.call_id)}
    carried = part.extras.get(BLOCKS_KEY)
    if not carried and len(part.content) == 1 and is_plain_text(part.content[0]):
        block["content"] = part.content[0].text  # type: ignore[union-attr]
    else:
        inner = [b for b in map(encode_request_part, part.content) if b is not None]
        inner = restore_blocks(inner, carried)
        if inner:
            block["content"] = inner
    if part.is_error:
        block["is_error"] = True
    return with_extras(block, part.extras)


def encode_request_part(part: ir.Part) -> dict[str, Any] | None:
    """A part as a request content block; None when it cannot go to Anthropic."""
    if isinstance(part, ir.Text):
        # Anthropic refuses empty text blocks (OpenAI assistant turns often carry content "").
        return with_extras({"type": "text", "text": part.text}, part.extras) if part.text else None
    if isinstance(part, ir.Image):
        return _encode_image(part)
    if isinstance(part, ir.File):
        return _encode_document(part)
    if isinstance(part, ir.ToolCall):
        block = {"type": "tool_use", "id": _tool_id(part.id), "name": part.name, "input": call_input(part)}
        return with_extras(block, part.extras)
    if isinstance(part, ir.ToolResult):
        return _encode_tool_result(part)
    if isinstance(part, ir.Thinking):
        # A foreign signature never goes to Anthropic, and Anthropic refuses thinking without its
        # signature: such blocks are dropped (the model does not need its old reasoning).
        if part.origin not in (None, NAME) or not part.signature:
            return None
        if part.redacted:
            return with_extras({"type": "redacted_thinking", "data": part.signature}, part.extras)
        block = {"type": "thinking", "thinking": part.text, "signature": part.signature}
        return with_extras(block, part.extras)
    return None
