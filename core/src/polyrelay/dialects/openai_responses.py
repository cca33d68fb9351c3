"""The OpenAI Responses dialect (``POST /v1/responses``, Codex CLI, chatgpt.com codex).

Wire facts are in ``wire-protocols.md`` §2.3 (request, items, response,
stream order) and §3.3 (Codex backend quirks).  Shape of the codec:

* A request's ``input`` is a flat list of items; adjacent items of the same
  role become one IR message (a ``function_call`` joins the assistant message
  before it, a ``function_call_output`` lands in a user message).
* What the IR cannot say is kept under the dialect's own key, so another
  dialect's encoder never sees it by accident: ``extras["openai-responses"]``
  on parts, messages and tools, ``extensions["openai-responses"]`` on the
  request and response.  Inside a part's extras, ``"item"`` holds the item's
  leftover keys (``id``, ``status``...) on the first part of each item, which
  also marks where an item starts, and ``"part"`` the content part's leftovers.
  A message's ``"items"`` lists ``[part position, raw item]`` for item types
  the IR has no part for (``web_search_call``...), re-emitted in place.
* Reasoning ``encrypted_content`` is the thinking signature; it only goes
  back to a Responses upstream, and reaches a Responses client wrapped when
  another provider issued it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from polyrelay import ir
from polyrelay.aggregate import Collector, response_events
from polyrelay.dialects import openai_errors
from polyrelay.dialects.base import (
    DialectError,
    bearer_auth,
    content_field_problem,
    openai_model_entry,
    openai_models_body,
    reraise_as_dialect_error,
)
from polyrelay.dialects.fields import (
    ARRAY,
    BOOLEAN,
    NUMBER,
    OBJECT,
    STRING,
    dict_or_empty,
    field,
    token_count,
    usage_count,
)
from polyrelay.dialects.hints import retry_hint_in_text
from polyrelay.dialects.media import data_url, parse_data_url
from polyrelay.jsonutil import dumps, loads
from polyrelay.sse import KEEPALIVE_COMMENT, SSEEvent, SSEParser, frame

NAME = ir.OPENAI_RESPONSES

# -- mapping tables ------------------------------------------------------------

# Wire role → IR role.  Unknown roles become "user" and keep their name in the
# item extras (same-dialect only).
_ROLE_FROM_WIRE = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
# IR role → wire role; a mid-conversation system message is a developer message.
_ROLE_TO_WIRE = {"user": "user", "assistant": "assistant", "system": "developer"}

# (status, incomplete_details.reason / error.code) → IR stop reason.
_STOP_FOR_INCOMPLETE = {"max_output_tokens": "max_tokens", "content_filter": "refusal"}
_STOP_FOR_FAILED = {"context_length_exceeded": "context_window_exceeded"}
# IR stop reason → (response status, incomplete reason or failure code).
_STATUS_FOR_STOP = {
    "end_turn": ("completed", None),
    "stop_sequence": ("completed", None),
    "tool_use": ("completed", None),
    "pause_turn": ("completed", None),
    "max_tokens": ("incomplete", "max_output_tokens"),
    "refusal": ("incomplete", "content_filter"),
    "context_window_exceeded": ("failed", "context_length_exceeded"),
}

# IR Usage attribute ← wire key (and sub key inside a *_details object).
_USAGE_FIELDS = (
    ("input_tokens", "input_tokens", None),
    ("cached_tokens", "input_tokens_details", "cached_tokens"),
    ("output_tokens", "output_tokens", None),
    ("reasoning_tokens", "output_tokens_details", "reasoning_tokens"),
)

# Canonical error kind → (error.type, default error.code).  Unlike chat, an
# overload is "server_is_overloaded": the code the Responses API itself sends.
_ERROR_TYPES = {**openai_errors.ERROR_TYPES, "overloaded": ("server_error", "server_is_overloaded")}
# error.type values that are really codes (OpenAI quota, Codex usage limits).
_TYPES_THAT_ARE_CODES = frozenset({"usage_limit_reached", "usage_not_included", "insufficient_quota"})

# Responses effort names; other IR levels are mapped, "auto" means "omit".
_EFFORT_TO_WIRE = {"max": "xhigh", "auto": None}

_REQUEST_FIELDS = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "reasoning",
    "text", "max_output_tokens", "temperature", "top_p", "metadata", "stream",
})
_RESPONSE_FIELDS = frozenset({
    "id", "model", "output", "status", "incomplete_details", "usage", "object", "output_text",
})

# A redacted Anthropic thinking block has no Responses form: it travels to a
# Responses client as a reasoning item whose wrapped encrypted_content starts so.
_REDACTED_MARK = "redacted:"

# -- small helpers -------------------------------------------------------------


def _x(holder: Any) -> dict[str, Any]:
    """This dialect's extras dict on a part, message or tool (created on demand)."""
    return holder.extras.setdefault(NAME, {})


def _xr(holder: Any) -> dict[str, Any]:
    """This dialect's extras on ``holder`` for reading (``{}`` when absent or malformed)."""
    value = holder.extras.get(NAME)
    return value if isinstance(value, dict) else {}


def _rest(obj: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in known}


def _merge_missing(target: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Add carried keys that the IR-derived ``target`` lacks (nested objects merged)."""
    for key, value in extra.items():
        if key not in target:
            target[key] = value
        elif isinstance(target[key], dict) and isinstance(value, dict):
            _merge_missing(target[key], value)
    return target


def _wire_signature(origin: str | None, signature: str) -> str:
    """A signature as a Responses client receives it: foreign ones wrapped."""
    return signature if origin in (NAME, None) else ir.wrap_signature(origin, signature)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


# -- request decoding ----------------------------------------------------------


def _content_part(raw: dict[str, Any], where: str, default_text: str) -> ir.Part | None:
    """One message content part → IR part (None: unknown type, dropped deliberately)."""
    ptype = field(raw, "type", STRING, where, required=True)
    part: ir.Text | ir.Image | ir.File
    if ptype in ("input_text", "output_text", "text"):
        part = ir.Text(field(raw, "text", STRING, where, required=True))
        rest = _rest(raw, ("type", "text"))
        if ptype != default_text:
            rest["type"] = ptype
    elif ptype == "refusal":
        part = ir.Text(field(raw, "refusal", STRING, where, required=True))
        rest = _rest(raw, ("refusal",))
    elif ptype == "input_image":
        url = raw.get("image_url")
        if isinstance(url, dict):  # chat-style {"url": ...} from confused clients
            url = url.get("url")
        if url is not None and not isinstance(url, str):
            raise DialectError(f"{where}image_url must be a string")
        inline = parse_data_url(url or "")
        part = ir.Image(media_type=inline.media_type if inline else None, data=inline.data if inline else None,
                        url=None if inline and inline.data else url)
        rest = _rest(raw, ("type", "image_url"))
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
        rest = _rest(raw, ("type", "file_data", "file_url", "file_id", "filename"))
    else:
        return None
    if rest:
        _x(part)["part"] = rest
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


def _call_part(item: dict[str, Any], where: str) -> ir.ToolCall:
    """A ``function_call`` / ``custom_tool_call`` item → ToolCall."""
    custom = item.get("type") == "custom_tool_call"
    key = "input" if custom else "arguments"
    part = ir.ToolCall(
        id=field(item, "call_id", STRING, where, required=True),
        name=field(item, "name", STRING, where, required=True),
        arguments=field(item, key, STRING, where) or "",
        kind="custom" if custom else "function",
    )
    head = _rest(item, ("type", "call_id", "name", key))
    if head:
        _x(part)["item"] = head
    return part


def _reasoning_part(item: dict[str, Any], where: str, *, from_client: bool) -> ir.Thinking:
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
        origin, signature = ir.unwrap_signature(encrypted, NAME) if from_client else (NAME, encrypted)
        if origin != NAME and signature.startswith(_REDACTED_MARK):
            part.redacted, part.text, signature = True, "", signature[len(_REDACTED_MARK):]
        part.signature, part.origin = signature, origin
    head = _rest(item, ("type", "summary", "encrypted_content"))
    if head:
        _x(part)["item"] = head
    return part


def _message_parts(item: dict[str, Any], where: str) -> tuple[str, list[ir.Part]]:
    """A ``message`` item → (IR role, parts); the first part carries the item's leftovers."""
    role = field(item, "role", STRING, where, required=True)
    ir_role = _ROLE_FROM_WIRE.get(role, "user")
    default_text = "output_text" if ir_role == "assistant" else "input_text"
    parts = _content_parts(item.get("content"), f"{where}content", default_text)
    head = _rest(item, ("type", "content"))
    if role == _ROLE_TO_WIRE[ir_role]:
        del head["role"]
    if parts:
        _x(parts[0])["item"] = head
    return ir_role, parts


class _InputReader:
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
                self._target("assistant").parts.append(_call_part(item, where))
            elif kind in ("function_call_output", "custom_tool_call_output"):
                self._target("user").parts.append(self._result(item, where))
            elif kind == "reasoning":
                self._target("assistant").parts.append(_reasoning_part(item, where, from_client=True))
            else:
                self._unknown(item)
        if self._pending:  # nothing but unknown items: keep them on an empty user turn
            self._target("user")

    def _message(self, item: dict[str, Any], where: str) -> None:
        ir_role, parts = _message_parts(item, where)
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
        head = _rest(item, ("type", "call_id", "output"))
        if head:
            _x(part)["item"] = head
        if isinstance(output, list):
            _x(part)["output_list"] = True  # so a one-text array stays an array
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
            _x(message).setdefault("items", []).extend([0, raw] for raw in self._pending)
            self._pending = []
        return message

    def _unknown(self, item: dict[str, Any]) -> None:
        """An item type the IR has no part for: carried at its position, same-dialect only."""
        self._leading = False
        if self.messages:
            last = self.messages[-1]
            _x(last).setdefault("items", []).append([len(last.parts), item])
        else:
            self._pending.append(item)


def _decode_tool(raw: Any, where: str) -> ir.Tool:
    if not isinstance(raw, dict):
        raise DialectError(f"{where} must be an object")
    kind = field(raw, "type", STRING, f"{where}.", required=True)
    if kind == "function":
        tool = ir.Tool(
            name=field(raw, "name", STRING, f"{where}.", required=True),
            description=field(raw, "description", STRING, f"{where}."),
            parameters=field(raw, "parameters", OBJECT, f"{where}."),
            strict=field(raw, "strict", BOOLEAN, f"{where}."),
        )
        rest = _rest(raw, ("type", "name", "description", "parameters", "strict"))
        if rest:
            _x(tool)["tool"] = rest
        return tool
    # custom (grammar) tools and built-ins: kept whole, marked as ours so that
    # only this dialect's encoder re-emits the raw form.
    name = raw.get("name")
    description = raw.get("description")
    tool = ir.Tool(
        name=name if isinstance(name, str) else kind,
        description=description if isinstance(description, str) else None,
        kind=kind,
        raw=raw,
    )
    _x(tool)["native"] = True
    return tool


def _decode_tool_choice(body: dict[str, Any], ext: dict[str, Any]) -> ir.ToolChoice | None:
    raw = body.get("tool_choice")
    parallel = field(body, "parallel_tool_calls", BOOLEAN)
    choice: ir.ToolChoice | None = None
    if isinstance(raw, str):
        if raw not in ("auto", "none", "required"):
            raise DialectError("tool_choice must be auto, none, required or an object")
        choice = ir.ToolChoice(mode=raw)  # type: ignore[arg-type]
    elif isinstance(raw, dict):
        kind = field(raw, "type", STRING, "tool_choice.", required=True)
        if kind in ("function", "custom"):
            choice = ir.ToolChoice(mode="tool", name=field(raw, "name", STRING, "tool_choice.", required=True))
        else:  # hosted tool / allowed_tools: kept whole for a Responses upstream
            ext["tool_choice"] = raw
            choice = ir.ToolChoice(mode="auto" if raw.get("mode") == "auto" else "required")
    elif raw is not None:
        raise DialectError("tool_choice must be a string or an object")
    if parallel is not None:
        choice = choice or ir.ToolChoice()
        choice.parallel = parallel
    return choice


def _decode_request(body: dict[str, Any]) -> ir.Request:
    model = field(body, "model", STRING, required=True)
    ext = _rest(body, tuple(_REQUEST_FIELDS))
    reader = _InputReader()
    instructions = field(body, "instructions", STRING)
    if instructions:
        reader.system.append(ir.Text(instructions))
    source = body.get("input")
    if isinstance(source, str):
        source = [{"type": "message", "role": "user", "content": source}]
    if source is not None and not isinstance(source, list):
        raise DialectError("input must be a string or an array of items")
    reader.read(source or [])

    request = ir.Request(model=model, messages=reader.messages, system=reader.system)
    request.tools = [_decode_tool(t, f"tools[{i}]") for i, t in enumerate(field(body, "tools", ARRAY) or [])]
    request.tool_choice = _decode_tool_choice(body, ext)

    reasoning = field(body, "reasoning", OBJECT)
    if reasoning is not None:
        effort = field(reasoning, "effort", STRING, "reasoning.")
        summary = field(reasoning, "summary", STRING, "reasoning.")
        request.thinking = ir.ThinkingConfig(
            enabled=effort != "none",
            effort=effort,
            summary=summary,
            # No summary asked means no reasoning text wanted: say so, so that
            # other encoders do not read the silence as "show thoughts".
            include_thoughts=summary is not None and summary != "none",
        )
        if rest := _rest(reasoning, ("effort", "summary")):
            ext["reasoning"] = rest

    text = field(body, "text", OBJECT)
    if text is not None:
        fmt = field(text, "format", OBJECT, "text.")
        rest = _rest(text, ("format",))
        if fmt is not None:
            ftype = field(fmt, "type", STRING, "text.format.", required=True)
            if ftype in ("text", "json_object", "json_schema"):
                request.response_format = ir.ResponseFormat(
                    type=ftype,
                    name=field(fmt, "name", STRING, "text.format."),
                    schema=field(fmt, "schema", OBJECT, "text.format."),
                    strict=field(fmt, "strict", BOOLEAN, "text.format."),
                )
                fmt = _rest(fmt, ("type", "name", "schema", "strict"))
            if fmt:
                rest["format"] = fmt
        if rest:
            ext["text"] = rest

    request.max_tokens = token_count(body.get("max_output_tokens"), "max_output_tokens")
    request.temperature = field(body, "temperature", NUMBER)
    request.top_p = field(body, "top_p", NUMBER)
    request.metadata = field(body, "metadata", OBJECT) or {}
    request.stream = bool(field(body, "stream", BOOLEAN))
    if ext:
        request.extensions[NAME] = ext
    return request


# -- items from IR parts (requests and responses share these) -------------------


def _encode_content(part: ir.Text | ir.Image | ir.File, default_text: str) -> dict[str, Any]:
    extra = dict_or_empty(_xr(part).get("part"))
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
    return _merge_missing(out, extra)


def _message_item(head: dict[str, Any], role: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return _merge_missing({"type": "message", "role": head.get("role", role), "content": content}, head)


def _call_item(part: ir.ToolCall) -> dict[str, Any]:
    if part.kind == "custom":
        item = {"type": "custom_tool_call", "call_id": part.id, "name": part.name, "input": part.arguments}
    else:
        item = {"type": "function_call", "call_id": part.id, "name": part.name, "arguments": part.arguments or "{}"}
    return _merge_missing(item, dict_or_empty(_xr(part).get("item")))


def _reasoning_item(part: ir.Thinking, *, for_client: bool) -> dict[str, Any] | None:
    """A reasoning item, or None when this signature must not go upstream."""
    summary = [{"type": "summary_text", "text": part.text}] if part.text and not part.redacted else []
    item: dict[str, Any] = {"type": "reasoning", "summary": summary}
    if for_client:
        if part.signature is not None:
            value = _REDACTED_MARK + part.signature if part.redacted else part.signature
            # Redacted blocks are Anthropic's; wrap even when the origin got lost.
            origin = part.origin or (ir.ANTHROPIC if part.redacted else None)
            item["encrypted_content"] = _wire_signature(origin, value)
    elif part.redacted or part.signature is None or part.origin not in (NAME, None):
        # Upstream: reasoning without our own encrypted_content cannot be replayed.
        return None
    else:
        item["encrypted_content"] = part.signature
    return _merge_missing(item, dict_or_empty(_xr(part).get("item")))


def _result_item(part: ir.ToolResult) -> dict[str, Any]:
    texts = [p.text for p in part.content if isinstance(p, ir.Text)]
    output: str | list[dict[str, Any]]
    if len(texts) == len(part.content) and not _xr(part).get("output_list"):
        output = "\n".join(texts)
    else:
        output = [_encode_content(p, "input_text") for p in part.content]
    kind = "custom_tool_call_output" if part.kind == "custom" else "function_call_output"
    item = {"type": kind, "call_id": part.call_id, "output": output}
    return _merge_missing(item, dict_or_empty(_xr(part).get("item")))


def _positioned(carried: Any) -> dict[int, list[dict[str, Any]]]:
    """``[[position, raw item], ...]`` extras → {position: [raw items]}."""
    out: dict[int, list[dict[str, Any]]] = {}
    for entry in carried if isinstance(carried, list) else []:
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int) and isinstance(entry[1], dict):
            out.setdefault(entry[0], []).append(entry[1])
    return out


def _parts_to_items(
    parts: list[ir.Part], role: str, carried: Any, *, for_client: bool, ids: _Ids | None = None
) -> list[dict[str, Any]]:
    """IR parts → Responses items, in order; ``for_client`` builds response output."""
    default_text = "output_text" if role == "assistant" else "input_text"
    wire_role = _ROLE_TO_WIRE[role]
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
            x = _xr(part)
            if current is None or "item" in x:
                current = item = _message_item(dict_or_empty(x.get("item")), wire_role, [])
            content = _encode_content(part, default_text)
            if for_client and content["type"] == "output_text":
                content.setdefault("annotations", [])
            current["content"].append(content)
        else:
            current = None
            if isinstance(part, ir.ToolCall):
                item = _call_item(part)
            elif isinstance(part, ir.Thinking):
                item = _reasoning_item(part, for_client=for_client)
            elif isinstance(part, ir.ToolResult) and not for_client:
                item = _result_item(part)
        if item is not None:
            if ids is not None:
                ids.fill(item, len(items))
            items.append(item)
    for k in sorted(extra_items):
        items.extend(extra_items[k])
    return items


class _Ids:
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


# -- request encoding ----------------------------------------------------------


def _encode_tool(tool: ir.Tool) -> dict[str, Any] | None:
    x = _xr(tool)
    if x.get("native") and isinstance(tool.raw, dict):
        return tool.raw
    if tool.kind == "function":
        out: dict[str, Any] = {"type": "function", "name": tool.name}
        if tool.description:
            out["description"] = tool.description
        out["parameters"] = tool.parameters or {"type": "object", "properties": {}}
        # Responses treats a missing strict as true, which rejects most schemas
        # written for other dialects; unknown means not strict.
        out["strict"] = bool(tool.strict)
        return _merge_missing(out, dict_or_empty(x.get("tool")))
    if tool.kind == "custom":
        out = {"type": "custom", "name": tool.name}
        if tool.description:
            out["description"] = tool.description
        return out
    return None  # another dialect's built-in tool has no Responses equivalent


def _encode_reasoning(thinking: ir.ThinkingConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    effort = thinking.effort
    if not thinking.enabled:
        effort = "none"
    elif effort is None and thinking.budget is not None:
        effort = ir.effort_for_budget(thinking.budget)
    effort = _EFFORT_TO_WIRE.get(effort, effort) if effort is not None else None
    if effort is not None:
        out["effort"] = effort
    # Unsaid (None) means a dialect that shows thoughts whenever thinking is
    # on (Anthropic, Gemini): ask for a summary, or the client gets no thinking.
    show = thinking.include_thoughts
    if show is None:
        show = thinking.enabled and effort != "none"
    summary = thinking.summary or ("auto" if show else None)
    if summary is not None:
        out["summary"] = summary
    return out


def _encode_request(request: ir.Request) -> dict[str, Any]:
    ext = dict(request.extensions.get(NAME) or {})
    body: dict[str, Any] = {"model": request.model}
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for text in request.system:
        x = _xr(text)
        if "item" in x:  # came from a developer/system input message: keep it one
            current = _message_item(dict_or_empty(x["item"]), "developer", [])
            items.append(current)
        if current is None:
            instructions.append(text.text)
        else:
            current["content"].append(_encode_content(text, "input_text"))
    for message in request.messages:
        items.extend(_parts_to_items(message.parts, message.role, _xr(message).get("items"), for_client=False))
    if instructions:
        body["instructions"] = "\n\n".join(instructions)
    body["input"] = items

    tools = [t for t in map(_encode_tool, request.tools) if t is not None]
    if tools:
        body["tools"] = tools
    hosted_choice = ext.pop("tool_choice", None)
    choice = request.tool_choice
    if choice is not None:
        if isinstance(hosted_choice, dict) and choice.mode in ("auto", "required"):
            body["tool_choice"] = hosted_choice
        elif choice.mode == "tool":
            custom = any(t.name == choice.name and t.kind == "custom" for t in request.tools)
            body["tool_choice"] = {"type": "custom" if custom else "function", "name": choice.name}
        else:
            body["tool_choice"] = choice.mode
        if choice.parallel is not None:
            body["parallel_tool_calls"] = choice.parallel
    if request.thinking is not None:
        body["reasoning"] = _encode_reasoning(request.thinking)
    for key, value in (("max_output_tokens", request.max_tokens), ("temperature", request.temperature),
                       ("top_p", request.top_p)):
        if value is not None:
            body[key] = value
    fmt = request.response_format
    if fmt is not None:
        wire: dict[str, Any] = {"type": fmt.type}
        if fmt.type == "json_schema":
            wire["name"] = fmt.name or "response"
            wire["schema"] = fmt.schema or {}
            if fmt.strict is not None:
                wire["strict"] = fmt.strict
        body["text"] = {"format": wire}
    if request.metadata:
        body["metadata"] = request.metadata
    body["stream"] = request.stream
    return _merge_missing(body, ext)


# -- responses -----------------------------------------------------------------


def _usage_from_wire(raw: Any) -> ir.Usage:
    usage = ir.Usage()
    raw = dict_or_empty(raw)
    for attr, key, sub in _USAGE_FIELDS:
        value = raw.get(key)
        if sub is not None:
            value = dict_or_empty(value).get(sub)
        setattr(usage, attr, usage_count(value))
    return usage


def _usage_to_wire(usage: ir.Usage) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr, key, sub in _USAGE_FIELDS:
        if sub is None:
            out[key] = getattr(usage, attr)
        else:
            out.setdefault(key, {})[sub] = getattr(usage, attr)
    out["total_tokens"] = usage.input_tokens + usage.output_tokens
    return out


def _stop_from_wire(status: Any, response: dict[str, Any], has_call: bool) -> str:
    if status == "incomplete":
        return _STOP_FOR_INCOMPLETE.get(dict_or_empty(response.get("incomplete_details")).get("reason"), "end_turn")
    if status == "failed":
        return _STOP_FOR_FAILED.get(dict_or_empty(response.get("error")).get("code"), "end_turn")
    return "tool_use" if has_call else "end_turn"


def _decode_output(output: list[Any]) -> tuple[list[ir.Part], list[list[Any]]]:
    """Response ``output`` items → IR parts plus ``[position, raw]`` for the rest."""
    parts: list[ir.Part] = []
    carried: list[list[Any]] = []
    for i, item in enumerate(output):
        where = f"output[{i}]."
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            parts.extend(_message_parts(item, where)[1])
        elif kind in ("function_call", "custom_tool_call"):
            parts.append(_call_part(item, where))
        elif kind == "reasoning":
            parts.append(_reasoning_part(item, where, from_client=False))
        else:
            carried.append([len(parts), item])
    return parts, carried


def _decode_response(body: Any) -> ir.Response:
    if not isinstance(body, dict):
        raise DialectError("upstream response must be a JSON object", status=502)
    parts, carried = _decode_output(field(body, "output", ARRAY) or [])
    has_call = any(isinstance(p, ir.ToolCall) for p in parts)
    response = ir.Response(
        id=field(body, "id", STRING) or "",
        model=field(body, "model", STRING) or "",
        parts=parts,
        stop_reason=_stop_from_wire(body.get("status"), body, has_call),
        usage=_usage_from_wire(body.get("usage")),
    )
    ext = _rest(body, tuple(_RESPONSE_FIELDS))
    if carried:
        ext["output_items"] = carried
    if ext:
        response.extensions[NAME] = ext
    return response


def _terminal(stop_reason: str | None, has_call: bool) -> tuple[str, str | None]:
    """(status, incomplete reason / failure code) for a stop reason; tool calls win."""
    if has_call:
        return "completed", None
    return _STATUS_FOR_STOP.get(stop_reason or "end_turn", ("completed", None))


def _response_object(
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


def _response_id(upstream_id: str) -> str:
    if upstream_id.startswith("resp_"):
        return upstream_id
    return f"resp_{upstream_id}" if upstream_id else _new_id("resp")


def _encode_response(response: ir.Response) -> dict[str, Any]:
    ext = dict(response.extensions.get(NAME) or {})
    response_id = _response_id(response.id)
    output = _parts_to_items(response.parts, "assistant", ext.pop("output_items", None),
                             for_client=True, ids=_Ids(response_id))
    has_call = any(isinstance(p, ir.ToolCall) for p in response.parts)
    status, detail = _terminal(response.stop_reason, has_call)
    created = ext.get("created_at")
    created_at = created if isinstance(created, int) else int(time.time())
    body = _response_object(response_id, response.model, created_at, status, detail, output, response.usage)
    return _merge_missing(body, ext)


# -- errors --------------------------------------------------------------------


def _error_info(status: int, body: dict[str, Any], fallback: str) -> ir.ErrorInfo:
    """An OpenAI/Codex error body → ErrorInfo (message, code, retry hint)."""
    message, code, etype = openai_errors.error_fields(body)
    message = message or fallback
    if code is None and etype in _TYPES_THAT_ARE_CODES:
        code = etype
    # Codex usage limits say when they lift; that beats any wording in the message.
    err = openai_errors.error_source(body)
    retry = None
    resets_in = err.get("resets_in_seconds")
    resets_at = err.get("resets_at")
    if isinstance(resets_in, (int, float)) and not isinstance(resets_in, bool):
        retry = max(float(resets_in), 0.0)
    elif isinstance(resets_at, (int, float)) and not isinstance(resets_at, bool):
        retry = max(float(resets_at) - time.time(), 0.0)
    if retry is None:
        retry = retry_hint_in_text(message)
    return ir.ErrorInfo(status=status, message=message, code=code, retry_after=retry)


def _decode_error(status: int, body: bytes) -> ir.ErrorInfo:
    text = body.decode("utf-8", errors="replace").strip()
    fallback = text[:1000] or f"upstream returned HTTP {status}"
    try:
        data = loads(body) if text else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return ir.ErrorInfo(status=status, message=fallback, retry_after=retry_hint_in_text(text))
    detail = data.get("detail")  # the Codex backend's 400s: {"detail": "..."}
    if detail is not None and "error" not in data:
        message = detail if isinstance(detail, str) else dumps(detail).decode()
        return ir.ErrorInfo(status=status, message=message, retry_after=retry_hint_in_text(message))
    return _error_info(status, data, fallback)


def _stream_error(data: dict[str, Any], fallback_status: int) -> ir.ErrorInfo:
    """An ``error`` event or a failed response's ``error`` → ErrorInfo."""
    status = data.get("status")
    if not isinstance(status, int) or isinstance(status, bool):  # in-stream: only the code says it
        _, code, etype = openai_errors.error_fields(data)
        status = openai_errors.status_for_code(code, etype, fallback_status)
    return _error_info(status, data, "upstream stream failed")


# -- stream decoding -----------------------------------------------------------

_TEXT_DELTAS = ("response.output_text.delta", "response.refusal.delta")
_THINKING_DELTAS = ("response.reasoning_summary_text.delta", "response.reasoning_text.delta")
_ARGUMENT_DELTAS = ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta")
_ARGUMENT_DONES = ("response.function_call_arguments.done", "response.custom_tool_call_input.done")


def _content_index(data: dict[str, Any]) -> int:
    index = data.get("content_index")
    return index if isinstance(index, int) else 0


class _StreamDecoder:
    """Responses SSE bytes → IR events.

    IR blocks are keyed by (item key, content index): a message item opens a
    text block per content part, lazily at its first text; a reasoning item
    is one thinking block (summary parts joined by a blank line); a call item
    is one tool_call block.  Items arriving only as ``output_item.done``
    (Codex) are delivered whole from there.
    """

    def __init__(self) -> None:
        self.finished = False
        self._parser = SSEParser()
        self._started = False
        self._index: dict[tuple[Any, Any], int] = {}  # block key → IR index
        self._open: dict[int, tuple[Any, Any]] = {}  # IR index → block key, still open
        self._filled: set[int] = set()  # IR indices that got content
        self._item_keys: dict[str, int] = {}  # item id → output_index
        self._saw_call = False

    def feed(self, data: bytes) -> list[ir.Event]:
        """Consume bytes split anywhere; return the events they complete."""
        return self._events(self._parser.feed(data))

    def close(self) -> list[ir.Event]:
        """Flush a last frame that lacked its blank line."""
        return self._events(self._parser.close())

    def _events(self, frames: list[Any]) -> list[ir.Event]:
        out: list[ir.Event] = []
        for sse_event in frames:
            if self.finished:
                break
            try:
                data = loads(sse_event.data)
            except ValueError:
                continue  # "[DONE]" from relays, stray text: nothing to translate
            if isinstance(data, dict):
                etype = data.get("type") if isinstance(data.get("type"), str) else sse_event.event
                try:
                    self._handle(etype or "", data, out)
                except DialectError:
                    continue  # a malformed item (call without call_id...) is skipped, not fatal
        return out

    # -- helpers

    def _start(self, out: list[ir.Event], response: dict[str, Any]) -> None:
        if not self._started:
            self._started = True
            out.append(ir.MessageStart(id=str(response.get("id") or ""), model=str(response.get("model") or "")))

    def _key(self, data: dict[str, Any]) -> Any:
        """Which output item an event is about (Codex may omit output_index)."""
        item_id = data.get("item_id") or dict_or_empty(data.get("item")).get("id")
        index = data.get("output_index")
        if isinstance(index, int):
            if isinstance(item_id, str):
                self._item_keys[item_id] = index
            return index
        return self._item_keys.get(item_id, item_id) if isinstance(item_id, str) else None

    def _block(self, out: list[ir.Event], key: tuple[Any, Any], start: ir.BlockStart) -> int | None:
        """The IR index of block ``key``, started now if new; None once it closed."""
        index = self._index.get(key)
        if index is None:
            index = start.index = len(self._index)
            self._index[key] = index
            self._open[index] = key
            self._saw_call |= start.kind == "tool_call"
            out.append(start)
        return index if index in self._open else None

    def _delta(self, out: list[ir.Event], index: int | None, kind: str, text: Any, origin: str | None = None) -> None:
        if index is not None and isinstance(text, str) and text:
            out.append(ir.BlockDelta(index, kind, text, origin))  # type: ignore[arg-type]
            if kind != "signature":
                self._filled.add(index)

    def _stop(self, out: list[ir.Event], item_key: Any = None, *, everything: bool = False) -> None:
        for index in sorted(i for i, key in self._open.items() if everything or key[0] == item_key):
            del self._open[index]
            out.append(ir.BlockStop(index))

    def _tool_start(self, item: dict[str, Any]) -> ir.BlockStart:
        return ir.BlockStart(0, "tool_call", id=str(item.get("call_id") or item.get("id") or ""),
                             name=str(item.get("name") or ""),
                             tool_kind="custom" if item.get("type") == "custom_tool_call" else "function")

    # -- dispatch

    def _handle(self, etype: str, data: dict[str, Any], out: list[ir.Event]) -> None:
        response = dict_or_empty(data.get("response"))
        self._start(out, response)
        key = self._key(data)
        if etype == "response.output_item.added":
            item = dict_or_empty(data.get("item"))
            if item.get("type") in ("function_call", "custom_tool_call"):
                self._block(out, (key, None), self._tool_start(item))
            elif item.get("type") == "reasoning":
                self._block(out, (key, None), ir.BlockStart(0, "thinking"))
        elif etype in _TEXT_DELTAS:
            index = self._block(out, (key, _content_index(data)), ir.BlockStart(0, "text"))
            self._delta(out, index, "text", data.get("delta"))
        elif etype in _THINKING_DELTAS:
            self._delta(out, self._block(out, (key, None), ir.BlockStart(0, "thinking")), "thinking", data.get("delta"))
        elif etype == "response.reasoning_summary_part.added":
            index = self._block(out, (key, None), ir.BlockStart(0, "thinking"))
            if index in self._filled:
                self._delta(out, index, "thinking", "\n\n")  # same joint as a whole response
        elif etype in _ARGUMENT_DELTAS:
            start = self._tool_start({"id": data.get("item_id")})
            self._delta(out, self._block(out, (key, None), start), "arguments", data.get("delta"))
        elif etype in _ARGUMENT_DONES:
            index = self._index.get((key, None))
            if index is not None and index not in self._filled:
                self._delta(out, index, "arguments", data.get("arguments", data.get("input")))
        elif etype == "response.content_part.done":
            self._part_done(out, key, _content_index(data), dict_or_empty(data.get("part")))
        elif etype == "response.output_item.done":
            self._item_done(out, key, dict_or_empty(data.get("item")))
        elif etype in ("response.completed", "response.incomplete"):
            response.setdefault("status", etype.removeprefix("response."))
            self._finish(out, response)
        elif etype in ("response.failed", "error"):
            self._stop(out, everything=True)
            source = response if etype == "response.failed" else data
            out.append(ir.StreamError(_stream_error(source, 500)))
            self.finished = True

    def _part_done(self, out: list[ir.Event], key: Any, content_index: Any, part: dict[str, Any]) -> None:
        """A content part ended: deliver its text if no delta did, close its block."""
        text = part.get("text", part.get("refusal"))
        block = (key, content_index)
        if block not in self._index and not (isinstance(text, str) and text):
            return
        index = self._block(out, block, ir.BlockStart(0, "text"))
        if index is not None and index not in self._filled:
            self._delta(out, index, "text", text)
        if index is not None:
            del self._open[index]
            out.append(ir.BlockStop(index))

    def _item_done(self, out: list[ir.Event], key: Any, item: dict[str, Any]) -> None:
        kind = item.get("type")
        if kind == "message":
            content = item.get("content")
            for ci, part in enumerate(content if isinstance(content, list) else []):
                self._part_done(out, key, ci, dict_or_empty(part))
        elif kind in ("function_call", "custom_tool_call"):
            index = self._block(out, (key, None), self._tool_start(item))
            if index not in self._filled:
                self._delta(out, index, "arguments", item.get("arguments", item.get("input")))
        elif kind == "reasoning":
            index = self._block(out, (key, None), ir.BlockStart(0, "thinking"))
            if index not in self._filled:
                self._delta(out, index, "thinking", _reasoning_part(item, "", from_client=False).text)
            self._delta(out, index, "signature", item.get("encrypted_content"), NAME)
        self._stop(out, key)

    def _finish(self, out: list[ir.Event], response: dict[str, Any]) -> None:
        self._stop(out, everything=True)
        output = response.get("output")
        if not self._index and isinstance(output, list) and output:
            # No item events at all: the completed response holds the output.
            parts = _decode_output(output)[0]
            for event in response_events(ir.Response(id="", model="", parts=parts)):
                if isinstance(event, (ir.BlockStart, ir.BlockDelta, ir.BlockStop)):
                    out.append(event)
            self._saw_call = any(isinstance(p, ir.ToolCall) for p in parts)
        stop = _stop_from_wire(response["status"], response, self._saw_call)
        out.append(ir.MessageDelta(stop_reason=stop, usage=_usage_from_wire(response.get("usage"))))
        out.append(ir.MessageStop())
        self.finished = True


# -- stream encoding -----------------------------------------------------------


class _StreamEncoder:
    """IR events → Responses SSE events; one output item per IR block."""

    def __init__(self, request: ir.Request, sse: bool) -> None:
        self._model = request.model
        self._sse = sse
        self._seq = 0
        self._started = False
        self._done = False
        self._collector = Collector(request.model)  # accumulates text, usage, stop reason
        self._parts: dict[int, ir.Part] = {}  # IR index → collected part
        self._items: dict[int, dict[str, Any]] = {}  # IR index → open output item
        self._closed: set[int] = set()
        self._output: list[dict[str, Any]] = []  # finished items, for the terminal snapshot
        self._count = 0  # output_index of the next item
        self._has_call = False
        self._id = ""
        self._ids: _Ids | None = None
        self._created_at = 0

    def encode(self, event: ir.Event) -> bytes:
        """Frames for one event (``b""`` after the terminal event)."""
        if self._done:
            return b""
        chunks: list[bytes] = []
        if not self._started:
            start = event if isinstance(event, ir.MessageStart) else ir.MessageStart(id="", model="")
            self._begin(chunks, start)
        if isinstance(event, ir.BlockDelta) and event.index not in self._parts and event.index not in self._closed:
            kind = {"text": "text", "arguments": "tool_call"}.get(event.kind, "thinking")
            self._block_start(chunks, ir.BlockStart(event.index, kind))  # type: ignore[arg-type]
        if isinstance(event, ir.BlockStart):
            if event.index not in self._parts and event.index not in self._closed:
                self._block_start(chunks, event)
        elif isinstance(event, ir.BlockDelta):
            if event.index in self._items:
                self._collector.add(event)
                self._block_delta(chunks, event)
        elif isinstance(event, ir.BlockStop):
            self._block_stop(chunks, event.index)
        elif isinstance(event, ir.MessageDelta):
            self._collector.add(event)
        elif isinstance(event, ir.MessageStop):
            self._end(chunks)
        elif isinstance(event, ir.StreamError):
            self._fail(chunks, event.error)
        return b"".join(chunks)

    def finish(self) -> bytes:
        """Responses streams need no closing bytes."""
        return b""

    # -- framing

    def _emit(self, chunks: list[bytes], etype: str, payload: dict[str, Any]) -> None:
        data = {"type": etype, "sequence_number": self._seq, **payload}
        self._seq += 1
        body = dumps(data)
        chunks.append(frame(body, event=etype) if self._sse else body + b"\n")

    def _snapshot(self, status: str, detail: str | None = None, usage: ir.Usage | None = None) -> dict[str, Any]:
        return _response_object(self._id, self._model, self._created_at, status, detail, list(self._output), usage)

    # -- lifecycle

    def _begin(self, chunks: list[bytes], start: ir.MessageStart) -> None:
        self._started = True
        self._collector.add(start)
        self._id = _response_id(start.id)
        self._ids = _Ids(self._id)
        self._created_at = int(time.time())
        self._emit(chunks, "response.created", {"response": self._snapshot("in_progress")})
        self._emit(chunks, "response.in_progress", {"response": self._snapshot("in_progress")})

    def _block_start(self, chunks: list[bytes], event: ir.BlockStart) -> None:
        assert self._ids is not None
        self._collector.add(event)
        part = self._parts[event.index] = self._collector.response.parts[-1]
        index = self._count
        self._count += 1
        item: dict[str, Any]
        if isinstance(part, ir.Text):
            item = {"type": "message", "role": "assistant", "content": []}
        elif isinstance(part, ir.ToolCall):
            self._has_call = True
            part.id = part.id or _new_id("call")  # a Responses client pairs results by call_id
            item = {"type": "function_call", "call_id": part.id, "name": part.name, "arguments": ""}
            if part.kind == "custom":
                item = {"type": "custom_tool_call", "call_id": part.id, "name": part.name, "input": ""}
        else:
            item = {"type": "reasoning", "summary": []}
        item = {"id": self._ids.make(item["type"], index), **item, "status": "in_progress"}
        state = self._items[event.index] = {"item": item, "output_index": index, "summary_open": False}
        self._emit(chunks, "response.output_item.added", {"output_index": index, "item": item})
        if isinstance(part, ir.Text):
            self._emit(chunks, "response.content_part.added", {
                **self._where(state), "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []},
            })

    @staticmethod
    def _where(state: dict[str, Any]) -> dict[str, Any]:
        return {"item_id": state["item"]["id"], "output_index": state["output_index"]}

    def _block_delta(self, chunks: list[bytes], event: ir.BlockDelta) -> None:
        part = self._parts[event.index]
        state = self._items[event.index]
        where = self._where(state)
        if event.kind == "text" and isinstance(part, ir.Text):
            self._emit(chunks, "response.output_text.delta",
                       {**where, "content_index": 0, "delta": event.text, "logprobs": []})
        elif event.kind == "thinking" and isinstance(part, ir.Thinking):
            if not state["summary_open"]:
                state["summary_open"] = True
                self._emit(chunks, "response.reasoning_summary_part.added",
                           {**where, "summary_index": 0, "part": {"type": "summary_text", "text": ""}})
            self._emit(chunks, "response.reasoning_summary_text.delta",
                       {**where, "summary_index": 0, "delta": event.text})
        elif event.kind == "arguments" and isinstance(part, ir.ToolCall):
            etype = "response.custom_tool_call_input.delta" if part.kind == "custom" else \
                "response.function_call_arguments.delta"
            self._emit(chunks, etype, {**where, "delta": event.text})
        # signature deltas are collected; they land in output_item.done

    def _block_stop(self, chunks: list[bytes], index: int) -> None:
        state = self._items.pop(index, None)
        if state is None:
            return
        self._closed.add(index)
        part = self._parts.pop(index)
        where = self._where(state)
        item = state["item"]
        if isinstance(part, ir.Text):
            text_part = {"type": "output_text", "text": part.text, "annotations": []}
            self._emit(chunks, "response.output_text.done",
                       {**where, "content_index": 0, "text": part.text, "logprobs": []})
            self._emit(chunks, "response.content_part.done", {**where, "content_index": 0, "part": text_part})
            item["content"] = [text_part]
        elif isinstance(part, ir.Thinking):
            if state["summary_open"]:
                summary = {"type": "summary_text", "text": part.text}
                self._emit(chunks, "response.reasoning_summary_text.done",
                           {**where, "summary_index": 0, "text": part.text})
                self._emit(chunks, "response.reasoning_summary_part.done",
                           {**where, "summary_index": 0, "part": summary})
            done = _reasoning_item(part, for_client=True) or {}
            item["summary"] = done.get("summary", [])
            if "encrypted_content" in done:
                item["encrypted_content"] = done["encrypted_content"]
        elif isinstance(part, ir.ToolCall):
            if part.kind == "custom":
                self._emit(chunks, "response.custom_tool_call_input.done", {**where, "input": part.arguments})
                item["input"] = part.arguments
            else:
                arguments = part.arguments or "{}"  # the done event is what clients parse
                self._emit(chunks, "response.function_call_arguments.done",
                           {**where, "name": part.name, "arguments": arguments})
                item["arguments"] = arguments
        if item["type"] == "reasoning":
            del item["status"]
        else:
            item["status"] = "completed"
        self._output.append(item)
        self._emit(chunks, "response.output_item.done", {"output_index": state["output_index"], "item": item})

    def _end(self, chunks: list[bytes]) -> None:
        for index in sorted(self._items):
            self._block_stop(chunks, index)
        response = self._collector.response
        status, detail = _terminal(response.stop_reason, self._has_call)
        etype = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(status, "response.failed")
        self._emit(chunks, etype, {"response": self._snapshot(status, detail, response.usage)})
        self._done = True

    def _fail(self, chunks: list[bytes], error: ir.ErrorInfo) -> None:
        _, code = openai_errors.error_type_and_code(error, _ERROR_TYPES)
        message = error.message
        if error.retry_after is not None and "try again" not in message.lower():
            # Codex reads its back-off from the message text.
            message = f"{message} Please try again in {error.retry_after:g}s."
        snapshot = self._snapshot("failed", usage=self._collector.response.usage)
        snapshot["error"] = {"code": code or "server_error", "message": message}
        self._emit(chunks, "response.failed", {"response": snapshot})
        self._done = True


# -- the dialect ---------------------------------------------------------------

#: Stream events that end a Responses stream normally, and those that end it failed
#: (https://platform.openai.com/docs/api-reference/responses-streaming).
_DONE_EVENTS = frozenset({"response.completed", "response.incomplete"})
_FAILED_EVENTS = frozenset({"response.failed", "error"})


class OpenAIResponsesDialect:
    """The OpenAI Responses codec (see the module docstring)."""

    name = NAME
    keepalive_frame = KEEPALIVE_COMMENT
    marker_headers: tuple[str, ...] = ()
    model_in_body: bool = True
    forwarded_headers: tuple[str, ...] = ()
    prompt_fields: tuple[str, ...] = ("input", "instructions", "tools")

    def claims_path(self, path: str) -> bool:
        """``/v1/responses`` and ``/v1/responses/input_tokens``."""
        return path.startswith("/v1/responses")

    def auth_headers(self, secret: str) -> dict[str, str]:
        """``Authorization: Bearer`` (https://platform.openai.com/docs/api-reference/authentication)."""
        return bearer_auth(secret)

    def upstream_path(self, model: str, stream: bool) -> str:
        """``/responses`` under the ``/v1`` base: model and stream flag travel in the body."""
        return "/responses"

    def passes_through(self, stream: bool, sse: bool) -> bool:
        """Always: Responses streams only SSE."""
        return True

    def shape_problem(self, data: dict[str, Any]) -> str | None:
        """``input`` may be absent (a ``previous_response_id`` continuation), else a string or an array."""
        return content_field_problem(data, "input", (list, str), required=False)

    def frame_kind(self, event: SSEEvent) -> tuple[bool, bool]:
        """By event name: completed / incomplete end a stream, failed / error end it failed."""
        kind = event.event or ""
        failed = kind in _FAILED_EVENTS
        return failed or kind in _DONE_EVENTS, failed

    def passthrough_error_frame(self, error: ir.ErrorInfo) -> bytes:
        """``event: error`` with ``{"type": "error", "code", "message", "param"}``, the streaming error event."""
        inner = self.error_body(error)["error"]
        payload = {"type": "error", "code": inner.get("code"), "message": inner.get("message"), "param": None}
        return frame(dumps(payload), "error")

    def token_count_body(self, tokens: int) -> dict[str, Any]:
        """``/v1/responses/input_tokens``: ``{"object": "response.input_tokens", "input_tokens": n}``."""
        return {"object": "response.input_tokens", "input_tokens": tokens}

    def models_body(self, models: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """OpenAI's ``{"object": "list", "data": [...]}``."""
        return openai_models_body(models)

    def model_entry(self, model: str, owner: str) -> dict[str, Any]:
        """One OpenAI ``model`` object."""
        return openai_model_entry(model, owner)

    def decode_request(self, body: Any) -> ir.Request:
        """Client JSON body → IR request; any fault is a DialectError (400)."""
        if not isinstance(body, dict):
            raise DialectError("request body must be a JSON object")
        with reraise_as_dialect_error("invalid Responses request"):
            return _decode_request(body)

    def encode_request(self, request: ir.Request) -> dict[str, Any]:
        """IR request → JSON body for a Responses upstream."""
        return _encode_request(request)

    def decode_response(self, body: Any) -> ir.Response:
        """Upstream response object → IR response."""
        with reraise_as_dialect_error("invalid Responses response", status=502):
            return _decode_response(body)

    def encode_response(self, response: ir.Response) -> dict[str, Any]:
        """IR response → response object for a Responses client."""
        return _encode_response(response)

    def stream_decoder(self) -> _StreamDecoder:
        """A fresh decoder for one upstream SSE stream."""
        return _StreamDecoder()

    def stream_encoder(self, request: ir.Request, *, sse: bool = True) -> _StreamEncoder:
        """A fresh encoder; ``sse=False`` writes one JSON event per line."""
        return _StreamEncoder(request, sse)

    def decode_error(self, status: int, body: bytes) -> ir.ErrorInfo:
        """Upstream error body (OpenAI, Codex, or garbage) → ErrorInfo."""
        return _decode_error(status, body)

    def error_body(self, error: ir.ErrorInfo) -> dict[str, Any]:
        """ErrorInfo → ``{"error": {message, type, param, code}}``."""
        return {"error": openai_errors.error_object(error, _ERROR_TYPES)}


DIALECT = OpenAIResponsesDialect()
