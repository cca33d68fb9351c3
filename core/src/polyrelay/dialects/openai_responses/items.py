"""Responses input and output items (messages, calls, results, reasoning) ↔ IR parts."""

from __future__ import annotations

import uuid
from typing import Any

from polyrelay import ir
from polyrelay.dialects import signatures
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.calls import function_arguments
from polyrelay.dialects.fields import ARRAY, STRING, dict_or_empty, field
from polyrelay.dialects.media import data_url, parse_data_url
from polyrelay.dialects.openai_responses.wire import NAME, REDACTED_MARK, ROLE_FROM_WIRE, ROLE_TO_WIRE


def own_extras(holder: Any) -> dict[str, Any]:
    """This dialect's extras dict on a part, message or tool (created on demand)."""
    extras: dict[str, Any] = holder.extras.setdefault(NAME, {})
    return extras


def read_extras(holder: Any) -> dict[str, Any]:
    """This dialect's extras on ``holder`` for reading (``{}`` when absent or malformed)."""
    value = holder.extras.get(NAME)
    return value if isinstance(value, dict) else {}


def unknown_keys(obj: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in known}


def merge_missing(target: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Add carried keys that the IR-derived ``target`` lacks (nested objects merged)."""
    for key, value in extra.items():
        if key not in target:
            target[key] = value
        elif isinstance(target[key], dict) and isinstance(value, dict):
            merge_missing(target[key], value)
    return target


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _content_part(raw: dict[str, Any], where: str, default_text: str) -> ir.Part | None:
    """One message content part → IR part (None: unknown type, dropped deliberately)."""
    ptype = field(raw, "type", STRING, where, required=True)
    part: ir.Text | ir.Image | ir.File
    if ptype in ("input_text", "output_text", "text"):
        part = ir.Text(field(raw, "text", STRING, where, required=True))
        rest = unknown_keys(raw, ("type", "text"))
        if ptype != default_text:
            rest["type"] = ptype
    elif ptype == "refusal":
        part = ir.Text(field(raw, "refusal", STRING, where, required=True))
        rest = unknown_keys(raw, ("refusal",))
    elif ptype == "input_image":
        url = raw.get("image_url")
        if isinstance(url, dict):  # chat-style {"url": ...} from confused clients
            url = url.get("url")
        if url is not None and not isinstance(url, str):
            raise DialectError(f"{where}image_url must be a string")
        inline = parse_data_url(url or "")
        part = ir.Image(media_type=inline.media_type if inline else None, data=inline.data if inline else None,
                        url=None if inline and inline.data else url)
        rest = unknown_keys(raw, ("type", "image_url"))
    elif ptype == "input_file":
        file_data = field(raw, "file_data", STRING, where)
        inline = parse_data_url(file_data or "")
        part = ir.File(
            media_type=inline.media_type if inline else None,
            data=inline.data if inline else file_data,
            url=field(raw, "file_url", STRING, where),
            file_id=field(raw, "file_id", STRING, where),
            filename=field(raw, "filename", STRING, where),
        )
        rest = unknown_keys(raw, ("type", "file_data", "file_url", "file_id", "filename"))
    else:
        return None
    if rest:
        own_extras(part)["part"] = rest
    return part


def _content_parts(content: Any, where: str, default_text: str) -> list[ir.Part]:
    """A message ``content`` (string or parts array) → IR parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [ir.Text(content)]
    if not isinstance(content, list):
        raise DialectError(f"{where} must be a string or an array")
    parts = []
    for j, raw in enumerate(content):
        if not isinstance(raw, dict):
            raise DialectError(f"{where}[{j}] must be an object")
        part = _content_part(raw, f"{where}[{j}].", default_text)
        if part is not None:
            parts.append(part)
    return parts


def call_part(item: dict[str, Any], where: str) -> ir.ToolCall:
    """A ``function_call`` / ``custom_tool_call`` item → ToolCall."""
    custom = item.get("type") == "custom_tool_call"
    key = "input" if custom else "arguments"
    part = ir.ToolCall(
        id=field(item, "call_id", STRING, where, required=True),
        name=field(item, "name", STRING, where, required=True),
        arguments=field(item, key, STRING, where) or "",
        kind="custom" if custom else "function",
    )
    head = unknown_keys(item, ("type", "call_id", "name", key))
    if head:
        own_extras(part)["item"] = head
    return part


def reasoning_part(item: dict[str, Any], where: str, *, from_client: bool) -> ir.Thinking:
    """A ``reasoning`` item → Thinking; summary texts joined, encrypted_content the signature."""
    texts = []
    for j, summary in enumerate(field(item, "summary", ARRAY, where) or []):
        if not isinstance(summary, dict):
            raise DialectError(f"{where}summary[{j}] must be an object")
        texts.append(field(summary, "text", STRING, f"{where}summary[{j}].") or "")
    if not any(texts) and isinstance(item.get("content"), list):
        # Raw reasoning (reasoning_text parts) when there is no summary.
        texts = [c.get("text") or "" for c in item["content"] if isinstance(c, dict) and isinstance(c.get("text"), str)]
    part = ir.Thinking(text="\n\n".join(t for t in texts if t), origin=NAME)
    encrypted = field(item, "encrypted_content", STRING, where)
    if encrypted is not None:
        origin, signature = signatures.from_client(NAME, encrypted) if from_client else (NAME, encrypted)
        if origin != NAME and signature.startswith(REDACTED_MARK):
            part.redacted, part.text, signature = True, "", signature[len(REDACTED_MARK):]
        part.signature, part.origin = signature, origin
    head = unknown_keys(item, ("type", "summary", "encrypted_content"))
    if head:
        own_extras(part)["item"] = head
    return part


def message_parts(item: dict[str, Any], where: str) -> tuple[str, list[ir.Part]]:
    """A ``message`` item → (IR role, parts); the first part carries the item's leftovers."""
    role = field(item, "role", STRING, where, required=True)
    ir_role = ROLE_FROM_WIRE.get(role, "user")
    default_text = "output_text" if ir_role == "assistant" else "input_text"
    parts = _content_parts(item.get("content"), f"{where}content", default_text)
    head = unknown_keys(item, ("type", "content"))
    if role == ROLE_TO_WIRE[ir_role]:
        del head["role"]
    if parts:
        own_extras(parts[0])["item"] = head
    return ir_role, parts


class InputReader:
    """Folds ``input`` items into system texts and role-merged IR messages."""

    def __init__(self) -> None:
        self.system: list[ir.Text] = []
        self.messages: list[ir.Message] = []
        self._leading = True  # still in the run of leading system/developer messages
        self._pending: list[dict[str, Any]] = []  # unknown items seen before any message

    def read(self, items: list[Any]) -> None:
        """Consume the whole ``input`` array."""
        for i, item in enumerate(items):
            where = f"input[{i}]."
            if not isinstance(item, dict):
                raise DialectError(f"input[{i}] must be an object")
            kind = field(item, "type", STRING, where)
            if kind is None and "role" not in item:
                raise DialectError(f"input[{i}] needs a type or a role")
            if kind in (None, "message"):
                self._message(item, where)
            elif kind in ("function_call", "custom_tool_call"):
                self._target("assistant").parts.append(call_part(item, where))
            elif kind in ("function_call_output", "custom_tool_call_output"):
                self._target("user").parts.append(self._result(item, where))
            elif kind == "reasoning":
                self._target("assistant").parts.append(reasoning_part(item, where, from_client=True))
            else:
                self._unknown(item)
        if self._pending:  # nothing but unknown items: keep them on an empty user turn
            self._target("user")

    def _message(self, item: dict[str, Any], where: str) -> None:
        ir_role, parts = message_parts(item, where)
        if not parts:
            self._unknown(item)  # an empty message has no IR form; carried whole
        elif self._leading and ir_role == "system" and all(isinstance(p, ir.Text) for p in parts):
            # Codex sends its system prompt as leading developer messages.
            self.system.extend(p for p in parts if isinstance(p, ir.Text))
        else:
            self._target(ir_role).parts.extend(parts)

    def _result(self, item: dict[str, Any], where: str) -> ir.ToolResult:
        output = item.get("output")
        if isinstance(output, str):
            content: list[Any] = [ir.Text(output)]
        elif isinstance(output, list):
            content = _content_parts(output, f"{where}output", "input_text")
        else:
            raise DialectError(f"{where}output must be a string or an array")
        part = ir.ToolResult(
            call_id=field(item, "call_id", STRING, where, required=True),
            content=content,
            kind="custom" if item.get("type") == "custom_tool_call_output" else "function",
        )
        head = unknown_keys(item, ("type", "call_id", "output"))
        if head:
            own_extras(part)["item"] = head
        if isinstance(output, list):
            own_extras(part)["output_list"] = True  # so a one-text array stays an array
        return part

    def _target(self, role: str) -> ir.Message:
        """The message to append to: the last one if its role matches, else a new one."""
        self._leading = False
        if self.messages and self.messages[-1].role == role:
            message = self.messages[-1]
        else:
            message = ir.Message(role=role)  # type: ignore[arg-type]
            self.messages.append(message)
        if self._pending:
            own_extras(message).setdefault("items", []).extend([0, raw] for raw in self._pending)
            self._pending = []
        return message

    def _unknown(self, item: dict[str, Any]) -> None:
        """An item type the IR has no part for: carried at its position, same-dialect only."""
        self._leading = False
        if self.messages:
            last = self.messages[-1]
            own_extras(last).setdefault("items", []).append([len(last.parts), item])
        else:
            self._pending.append(item)


def encode_content(part: ir.Text | ir.Image | ir.File, default_text: str) -> dict[str, Any]:
    extra = dict_or_empty(read_extras(part).get("part"))
    if isinstance(part, ir.Text):
        ptype = extra.get("type", default_text)
        out: dict[str, Any] = {"type": ptype, "refusal" if ptype == "refusal" else "text": part.text}
    elif isinstance(part, ir.Image):
        out = {"type": "input_image"}
        # A wire image needs a MIME type; PNG is the most common unlabeled one.
        url = data_url(part.media_type, part.data, "image/png") if part.data else part.url
        if url:
            out["image_url"] = url
    else:
        out = {"type": "input_file"}
        if part.data:
            out["file_data"] = data_url(part.media_type, part.data, "application/pdf")
        for key, value in (("file_url", part.url), ("file_id", part.file_id), ("filename", part.filename)):
            if value:
                out[key] = value
    return merge_missing(out, extra)


def message_item(head: dict[str, Any], role: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return merge_missing({"type": "message", "role": head.get("role", role), "content": content}, head)


def _call_item(part: ir.ToolCall) -> dict[str, Any]:
    if part.kind == "custom":
        item = {"type": "custom_tool_call", "call_id": part.id, "name": part.name, "input": part.arguments}
    else:
        item = {"type": "function_call", "call_id": part.id, "name": part.name,
                "arguments": function_arguments(part.arguments)}
    return merge_missing(item, dict_or_empty(read_extras(part).get("item")))


def reasoning_item(part: ir.Thinking, *, for_client: bool) -> dict[str, Any] | None:
    """A reasoning item, or None when this signature must not go upstream."""
    summary = [{"type": "summary_text", "text": part.text}] if part.text and not part.redacted else []
    item: dict[str, Any] = {"type": "reasoning", "summary": summary}
    if for_client:
        if part.signature is not None:
            value = REDACTED_MARK + part.signature if part.redacted else part.signature
            # Redacted blocks are Anthropic's; wrap even when the origin got lost.
            origin = part.origin or (ir.ANTHROPIC if part.redacted else None)
            item["encrypted_content"] = signatures.for_client(NAME, value, origin)
    elif part.redacted or part.signature is None or part.origin not in (NAME, None):
        # Upstream: reasoning without our own encrypted_content cannot be replayed.
        return None
    else:
        item["encrypted_content"] = part.signature
    return merge_missing(item, dict_or_empty(read_extras(part).get("item")))


def _result_item(part: ir.ToolResult) -> dict[str, Any]:
    texts = [p.text for p in part.content if isinstance(p, ir.Text)]
    output: str | list[dict[str, Any]]
    if len(texts) == len(part.content) and not read_extras(part).get("output_list"):
        output = "\n".join(texts)
    else:
        output = [encode_content(p, "input_text") for p in part.content]
    kind = "custom_tool_call_output" if part.kind == "custom" else "function_call_output"
    item = {"type": kind, "call_id": part.call_id, "output": output}
    return merge_missing(item, dict_or_empty(read_extras(part).get("item")))


def _positioned(carried: Any) -> dict[int, list[dict[str, Any]]]:
    """``[[position, raw item], ...]`` extras → {position: [raw items]}."""
    out: dict[int, list[dict[str, Any]]] = {}
    for entry in carried if isinstance(carried, list) else []:
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int) and isinstance(entry[1], dict):
            out.setdefault(entry[0], []).append(entry[1])
    return out


def parts_to_items(
    parts: list[ir.Part], role: str, carried: Any, *, for_client: bool, ids: Ids | None = None
) -> list[dict[str, Any]]:
    """IR parts → Responses items, in order; ``for_client`` builds response output."""
    default_text = "output_text" if role == "assistant" else "input_text"
    wire_role = ROLE_TO_WIRE[role]
    extra_items = _positioned(carried)
    items: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for k, part in enumerate(parts):
        if k in extra_items:
            items.extend(extra_items.pop(k))
            current = None
        item: dict[str, Any] | None = None
        if isinstance(part, (ir.Text, ir.Image, ir.File)):
            if role == "assistant" and not isinstance(part, ir.Text):
                continue  # assistant content is output_text/refusal only
            x = read_extras(part)
            if current is None or "item" in x:
                current = item = message_item(dict_or_empty(x.get("item")), wire_role, [])
            content = encode_content(part, default_text)
            if for_client and content["type"] == "output_text":
                content.setdefault("annotations", [])
            current["content"].append(content)
        else:
            current = None
            if isinstance(part, ir.ToolCall):
                item = _call_item(part)
            elif isinstance(part, ir.Thinking):
                item = reasoning_item(part, for_client=for_client)
            elif isinstance(part, ir.ToolResult) and not for_client:
                item = _result_item(part)
        if item is not None:
            if ids is not None:
                ids.fill(item, len(items))
            items.append(item)
    for k in sorted(extra_items):
        items.extend(extra_items[k])
    return items


class Ids:
    """Item ids and statuses for response output (``msg_``/``rs_``/``fc_`` + the response stem)."""

    _PREFIX = {"message": "msg", "reasoning": "rs", "function_call": "fc", "custom_tool_call": "ctc"}

    def __init__(self, response_id: str) -> None:
        self.stem = response_id.removeprefix("resp_") or uuid.uuid4().hex

    def make(self, kind: str, output_index: int) -> str:
        """A fresh id for the item at ``output_index``."""
        return f"{self._PREFIX.get(kind, 'item')}_{self.stem}_{output_index}"

    def fill(self, item: dict[str, Any], output_index: int) -> None:
        """Give an output item its id and status unless it has them."""
        item.setdefault("id", self.make(item["type"], output_index))
        if item["type"] != "reasoning":
            item.setdefault("status", "completed")
