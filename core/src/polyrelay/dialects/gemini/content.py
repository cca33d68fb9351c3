"""Gemini parts ↔ IR parts: text, thoughts, function calls and responses, media."""

from __future__ import annotations

import mimetypes
from typing import Any

from polyrelay import ir
from polyrelay.dialects import fields, signatures
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.fields import BOOLEAN, STRING, checked
from polyrelay.dialects.gemini.protojson import field_of, has_field, json_text, merge_missing, unknown_keys
from polyrelay.dialects.gemini.wire import PART_KEYS, SKIP_SIGNATURE
from polyrelay.dialects.media import parse_data_url
from polyrelay.jsonutil import loads


def decode_part(raw: Any, where: str, slot: str, pending: list[tuple[str, str]]) -> ir.Part | None:
    part = fields.obj(raw, where, required=True)
    sig_value = checked(field_of(part, "thoughtSignature"), STRING, f"{where}.thoughtSignature")
    origin, sig = signatures.from_client(ir.GEMINI, sig_value) if sig_value else (None, None)
    result: ir.Part
    if has_field(part, "text") or part.get("thought") is True:
        text = checked(part.get("text"), STRING, f"{where}.text") or ""
        if checked(part.get("thought"), BOOLEAN, f"{where}.thought"):
            result = ir.Thinking(text=text, signature=sig, origin=origin or ir.GEMINI)
        else:
            result = ir.Text(text=text)
    elif has_field(part, "functionCall"):
        call = fields.obj(field_of(part, "functionCall"), f"{where}.functionCall", required=True)
        result = _decode_call(call, where, slot, pending)
        result.signature, result.signature_origin = sig, origin
    elif has_field(part, "functionResponse"):
        data = fields.obj(field_of(part, "functionResponse"), f"{where}.functionResponse", required=True)
        result = _decode_result(data, where, slot, pending)
    elif has_field(part, "inlineData") or has_field(part, "fileData"):
        result = _decode_media(part, where)
    else:
        return None
    if sig and not isinstance(result, (ir.Thinking, ir.ToolCall)):
        result.extras["thought_signature"] = {"origin": origin, "value": sig}
    extra = unknown_keys(part, PART_KEYS)
    if extra:
        result.extras["gemini"] = extra
    return result


def _decode_call(data: dict[str, Any], where: str, slot: str, pending: list[tuple[str, str]]) -> ir.ToolCall:
    name = checked(data.get("name"), STRING, f"{where}.functionCall.name")
    if not name:
        raise DialectError(f"{where}.functionCall.name is required")
    args = data.get("args")
    if args is not None and not isinstance(args, dict):
        raise DialectError(f"{where}.functionCall.args must be an object")
    call_id = checked(data.get("id"), STRING, f"{where}.functionCall.id") or f"call_{slot}"
    pending.append((call_id, name))
    call = ir.ToolCall(id=call_id, name=name, arguments=json_text(args or {}))
    inner = unknown_keys(data, ("name", "args", "id"))
    if inner:
        call.extras["gemini_inner"] = inner
    return call


def _decode_result(data: dict[str, Any], where: str, slot: str, pending: list[tuple[str, str]]) -> ir.ToolResult:
    name = checked(data.get("name"), STRING, f"{where}.functionResponse.name")
    given = checked(data.get("id"), STRING, f"{where}.functionResponse.id")
    # Pair with the call: by id when given, else the oldest unanswered call of that name.
    match = next((c for c in pending if c[0] == given), None) if given else None
    if match is None and not given:
        match = next((c for c in pending if name is None or c[1] == name), None)
    if match is not None:
        pending.remove(match)
    call_id = given or (match[0] if match else f"call_{slot}")
    text, is_error = _result_text(data.get("response"))
    result = ir.ToolResult(call_id=call_id, content=[ir.Text(text)], is_error=is_error,
                           name=name or (match[1] if match else None))
    inner = unknown_keys(data, ("name", "response", "id"))
    if inner:
        result.extras["gemini_inner"] = inner
    return result


def _result_text(response: Any) -> tuple[str, bool]:
    """``{"output"|"result": str}`` → the string; ``{"error": x}`` → an error result; else the JSON."""
    if isinstance(response, dict) and len(response) == 1:
        key, value = next(iter(response.items()))
        if key == "error":
            return (value if isinstance(value, str) else json_text(value)), True
        if key in ("output", "result") and isinstance(value, str):
            return value, False
    return json_text(response if response is not None else {}), False


def _decode_media(part: dict[str, Any], where: str) -> ir.Image | ir.File:
    inline = has_field(part, "inlineData")
    key = "inlineData" if inline else "fileData"
    data = fields.obj(field_of(part, key), f"{where}.{key}", required=True)
    mime = checked(field_of(data, "mimeType"), STRING, f"{where}.{key}.mimeType")
    payload = checked(data.get("data"), STRING, f"{where}.{key}.data") if inline else None
    url = None if inline else checked(field_of(data, "fileUri"), STRING, f"{where}.{key}.fileUri")
    media: ir.Image | ir.File
    if mime and mime.startswith("image/"):
        media = ir.Image(media_type=mime, data=payload, url=url)
    else:
        media = ir.File(media_type=mime, data=payload, url=url)
    inner = unknown_keys(data, ("mimeType", "data", "fileUri"))
    if inner:
        media.extras["gemini_inner"] = inner
    return media


def args_object(arguments: str) -> dict[str, Any]:
    """Call arguments as the object Gemini requires (invalid JSON → ``{}``)."""
    try:
        value = loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _result_response(result: ir.ToolResult) -> dict[str, Any]:
    """``functionResponse.response`` must be an object: JSON objects pass, else ``{"result": text}``."""
    text = "".join(p.text for p in result.content if isinstance(p, ir.Text))
    try:
        value = loads(text) if text.strip().startswith("{") else None
    except ValueError:
        value = None
    if result.is_error:
        return {"error": value if isinstance(value, dict) else text}
    if isinstance(value, dict) and list(value) != ["error"]:  # a lone "error" key would read back as a failure
        return value
    return {"result": text}


def _media_part(part: ir.Image | ir.File) -> dict[str, Any] | None:
    default = "image/png" if isinstance(part, ir.Image) else "application/octet-stream"
    if part.data:
        return {"inlineData": {"mimeType": part.media_type or default, "data": part.data}}
    url = part.url
    if not url:
        return None  # a provider file id (OpenAI file-…) means nothing to Google
    inline = parse_data_url(url)
    if inline:
        return {"inlineData": {"mimeType": inline.media_type or part.media_type or default, "data": inline.data}}
    mime = part.media_type or mimetypes.guess_type(url)[0] or default
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def with_extras(out: dict[str, Any], part: ir.Part, inner: str | None = None) -> dict[str, Any]:
    if inner and part.extras.get("gemini_inner"):
        merge_missing(out[inner], part.extras["gemini_inner"])
    merge_missing(out, part.extras.get("gemini", {}))
    return out


def is_response(part: dict[str, Any]) -> bool:
    return "functionResponse" in part


def encode_parts(message: ir.Message, names: dict[str, str]) -> list[dict[str, Any]]:
    raw_parts: dict[int, list[Any]] = {}
    for index, raw in message.extras.get("gemini_parts", []):
        raw_parts.setdefault(index, []).append(raw)
    out: list[dict[str, Any]] = []
    carried: str | None = None  # a text-less Gemini thought's signature, re-attached to the next part
    for index, part in enumerate(message.parts):
        out.extend(raw_parts.pop(index, []))
        encoded, signature = _encode_part(part, names)
        if isinstance(part, ir.Thinking) and encoded is None and signature:
            if carried:
                out.append({"text": "", "thought": True, "thoughtSignature": carried})
            carried = signature
            continue
        if encoded is None:
            continue
        if carried and not signature:
            signature, carried = carried, None
        elif carried:
            out.append({"text": "", "thought": True, "thoughtSignature": carried})
            carried = None
        if isinstance(part, ir.ToolCall) and not signature:
            signature = SKIP_SIGNATURE  # history from elsewhere: Gemini 3 would reject the call otherwise
        if signature:
            encoded["thoughtSignature"] = signature
        out.append(encoded)
        if isinstance(part, ir.ToolResult):  # images inside a result follow it as inline parts
            out.extend(m for m in (_media_part(c) for c in part.content if not isinstance(c, ir.Text)) if m)
    for rest in raw_parts.values():
        out.extend(rest)
    if carried:
        out.append({"text": "", "thought": True, "thoughtSignature": carried})
    return out


def _encode_part(part: ir.Part, names: dict[str, str]) -> tuple[dict[str, Any] | None, str | None]:
    """One IR part → (Gemini part without signature, the signature Gemini may see)."""
    extra_sig = part.extras.get("thought_signature")
    signature = None
    if isinstance(extra_sig, dict):
        signature = signatures.for_upstream(ir.GEMINI, extra_sig.get("value"), extra_sig.get("origin"))
    if isinstance(part, ir.Text):
        return with_extras({"text": part.text}, part), signature
    if isinstance(part, ir.Thinking):
        # Another provider's reasoning cannot be verified by Gemini and would pass
        # for Gemini's own; redacted blocks are Anthropic-only ciphertext.
        own = part.origin == ir.GEMINI or (part.origin is None and part.signature)
        if part.redacted or not own:
            return None, None
        signature = signatures.for_upstream(ir.GEMINI, part.signature, part.origin)
        if not part.text:
            return None, signature
        return with_extras({"text": part.text, "thought": True}, part), signature
    if isinstance(part, ir.ToolCall):
        args = {"input": part.arguments} if part.kind == "custom" else args_object(part.arguments)
        call: dict[str, Any] = {"functionCall": {"name": part.name, "args": args, "id": part.id}}
        if not part.id:
            del call["functionCall"]["id"]  # an empty id is worse than none
        signature = signatures.for_upstream(ir.GEMINI, part.signature, part.signature_origin)
        return with_extras(call, part, "functionCall"), signature
    if isinstance(part, ir.ToolResult):
        # The name must be the function's: from the result, else the call it answers.
        name = part.name or names.get(part.call_id) or "unknown_function"
        response = {"functionResponse": {"name": name, "response": _result_response(part), "id": part.call_id}}
        return with_extras(response, part, "functionResponse"), signature
    media = _media_part(part)
    if media is None:
        return None, None
    return with_extras(media, part, next(iter(media))), signature


def response_part(part: ir.Part) -> list[dict[str, Any]]:
    """One IR response part → Gemini parts for a client (foreign signatures wrapped)."""
    if isinstance(part, ir.Text):
        out: dict[str, Any] = {"text": part.text}
        sig = part.extras.get("thought_signature")
        if isinstance(sig, dict) and sig.get("value"):
            out["thoughtSignature"] = signatures.for_client(ir.GEMINI, sig["value"], sig.get("origin"))
        return [out]
    if isinstance(part, ir.Thinking):
        if part.redacted:
            return []  # Anthropic ciphertext with no text: nothing a Gemini client can show or replay
        out = {"text": part.text, "thought": True}
        if part.signature:
            out["thoughtSignature"] = signatures.for_client(ir.GEMINI, part.signature, part.origin)
        return [out]
    if isinstance(part, ir.ToolCall):
        args = {"input": part.arguments} if part.kind == "custom" else args_object(part.arguments)
        out = {"functionCall": {"name": part.name, "args": args, "id": part.id}}
        if part.signature:
            out["thoughtSignature"] = signatures.for_client(ir.GEMINI, part.signature, part.signature_origin)
        return [out]
    if isinstance(part, (ir.Image, ir.File)):
        media = _media_part(part)
        return [media] if media else []
    return []
