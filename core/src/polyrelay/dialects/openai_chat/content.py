"""Chat Completions message content parts ↔ IR parts, and the extras this dialect keeps."""

from __future__ import annotations

from typing import Any

from polyrelay import ir
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.fields import STRING, field
from polyrelay.dialects.media import data_url, parse_data_url
from polyrelay.dialects.openai_chat.wire import NAME
from polyrelay.jsonutil import dumps


def unknown_keys(obj: dict[str, Any], known: set[str] | frozenset[str], inner: str | None = None,
               inner_known: set[str] | None = None) -> dict[str, Any]:
    """Keys of a part the IR has no field for (and of its inner object, nested)."""
    extra = {k: v for k, v in obj.items() if k not in known}
    if inner is not None and isinstance(obj.get(inner), dict):
        rest = {k: v for k, v in obj[inner].items() if k not in (inner_known or set())}
        if rest:
            extra[inner] = rest
    return extra


def own_extras(extras: dict[str, Any]) -> dict[str, Any]:
    """This dialect's slice of an extras dict (other dialects' extras are not ours to send)."""
    value = extras.get(NAME)
    return value if isinstance(value, dict) else {}


def with_extras(wire: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
    """Merge a part's saved leftovers back, one level deep for inner objects."""
    for key, value in own_extras(extras).items():
        if isinstance(value, dict) and isinstance(wire.get(key), dict):
            wire[key] = {**wire[key], **value}
        else:
            wire.setdefault(key, value)
    return wire


def tag(extra: dict[str, Any]) -> dict[str, Any]:
    return {NAME: extra} if extra else {}


def args_text(value: Any, where: str) -> str:
    """Tool-call arguments as JSON text; some clients send an object instead of a string."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return dumps(value).decode()
    raise DialectError(f"{where} must be a JSON string")


def _decode_part(part: dict[str, Any], where: str) -> ir.Text | ir.Image | ir.File | None:
    """One content part; None for types the IR cannot hold (kept aside by the caller)."""
    kind = part["type"]
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise DialectError(f"{where}.text must be a string")
        return ir.Text(text=text, extras=tag(unknown_keys(part, {"type", "text"})))
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image  # a bare string is common enough
        if not isinstance(url, str):
            raise DialectError(f"{where}.image_url.url must be a string")
        extras = tag(unknown_keys(part, {"type", "image_url"}, "image_url", {"url"}))
        inline = parse_data_url(url)
        if inline is not None:
            return ir.Image(media_type=inline.media_type, data=inline.data, extras=extras)
        return ir.Image(url=url, extras=extras)
    if kind == "file":
        file = part.get("file")
        if not isinstance(file, dict):
            raise DialectError(f"{where}.file must be an object")
        data = field(file, "file_data", STRING, f"{where}.file.")
        result = ir.File(
            file_id=field(file, "file_id", STRING, f"{where}.file."),
            filename=field(file, "filename", STRING, f"{where}.file."),
            extras=tag(unknown_keys(part, {"type", "file"}, "file", {"file_data", "file_id", "filename"})),
        )
        if data is not None:
            inline = parse_data_url(data)
            result.media_type, result.data = (inline.media_type, inline.data) if inline is not None else (None, data)
        return result
    return None


def decode_content(content: Any, where: str) -> tuple[list[ir.Text | ir.Image | ir.File], list[dict[str, Any]]]:
    """Message content → (IR parts, parts set aside with their position)."""
    if content is None:
        return [], []
    if isinstance(content, str):
        return [ir.Text(text=content)], []
    if not isinstance(content, list):
        raise DialectError(f"{where}.content must be a string, an array of parts or null")
    parts: list[ir.Text | ir.Image | ir.File] = []
    aside: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise DialectError(f"{where}.content[{j}] must be an object with a string type")
        decoded = _decode_part(part, f"{where}.content[{j}]")
        if decoded is None:
            aside.append({"at": j, "part": part})
        else:
            parts.append(decoded)
    return parts, aside


def encode_part(part: ir.Part) -> dict[str, Any] | None:
    """IR part → user-content part; None for what chat user content cannot carry."""
    if isinstance(part, ir.Text):
        return with_extras({"type": "text", "text": part.text}, part.extras)
    if isinstance(part, ir.Image):
        if part.data is not None:
            url = data_url(part.media_type, part.data, "image/png")
        elif part.url is not None:
            url = part.url
        else:
            return None
        return with_extras({"type": "image_url", "image_url": {"url": url}}, part.extras)
    if isinstance(part, ir.File):
        file: dict[str, Any] = {}
        if part.data is not None:
            # Our own decoder keeps a raw (non data-URL) file_data as media_type None: send it back raw.
            file["file_data"] = part.data if part.media_type is None else data_url(part.media_type, part.data, "")
        elif part.file_id is not None:
            file["file_id"] = part.file_id
        else:
            return None  # a URL-only document: the chat file part has no URL field
        if part.filename is not None:
            file["filename"] = part.filename
        return with_extras({"type": "file", "file": file}, part.extras)
    return None  # thinking / tool parts never sit in user content


def content_value(wire: list[dict[str, Any]], aside: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A lone plain text part becomes a string; otherwise parts with set-aside ones put back in place."""
    if not aside and len(wire) == 1 and wire[0].keys() == {"type", "text"}:
        text: str = wire[0]["text"]
        return text
    if not wire and not aside:
        return ""
    for item in aside:
        wire.insert(min(item.get("at", len(wire)), len(wire)), item["part"])
    return wire


def saved_extras(extras: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    mine = own_extras(extras)
    return mine.get("fields") or {}, mine.get("extra_parts") or []
