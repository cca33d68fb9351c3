"""A minimal client for each dialect, for tests that check the wire itself.

:func:`ask` sends one user prompt in a dialect, streamed or not, and
returns what a real client would take from the answer: the text, whether the
dialect's terminal event arrived, and the raw frames.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import attrs

from polyrelay import ir, jsonutil
from polyrelay.sse import SSEParser


@attrs.define
class Answer:
    status: int
    text: str = ""
    #: The dialect's end-of-answer signal arrived (message_stop, [DONE], response.completed, finishReason).
    terminal: bool = False
    #: The stream ended with the dialect's in-stream error.
    stream_error: bool = False
    events: list[tuple[str | None, Any]] = attrs.field(factory=list)
    body: Any = None
    #: Response headers, names lower-cased.
    headers: dict[str, str] = attrs.field(factory=dict)


def request_for(dialect: str, model: str, prompt: str, stream: bool) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``(path, headers, body)`` of a one-prompt request in ``dialect``."""
    if dialect == ir.ANTHROPIC:
        return "/v1/messages", {"anthropic-version": "2023-06-01"}, {
            "model": model, "max_tokens": 256, "stream": stream, "messages": [{"role": "user", "content": prompt}]}
    if dialect == ir.OPENAI_CHAT:
        return "/v1/chat/completions", {}, {
            "model": model, "stream": stream, "messages": [{"role": "user", "content": prompt}]}
    if dialect == ir.OPENAI_RESPONSES:
        return "/v1/responses", {}, {"model": model, "stream": stream, "input": prompt}
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{model}:{action}", {}, {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}


def _text_of(dialect: str, body: Any) -> str:
    if dialect == ir.ANTHROPIC:
        return "".join(b.get("text", "") for b in body.get("content", []) if b.get("type") == "text")
    if dialect == ir.OPENAI_CHAT:
        return body["choices"][0]["message"].get("content") or ""
    if dialect == ir.OPENAI_RESPONSES:
        return "".join(
            part.get("text", "")
            for item in body.get("output", []) if item.get("type") == "message"
            for part in item.get("content", []) if part.get("type") == "output_text"
        )
    return "".join(
        p.get("text", "") for c in body.get("candidates", [])
        for p in c.get("content", {}).get("parts", []) if not p.get("thought")
    )


def _stream_event(dialect: str, answer: Answer, name: str | None, data: str) -> None:
    if dialect == ir.OPENAI_CHAT and data == "[DONE]":
        answer.terminal = True
        answer.events.append((name, data))
        return
    payload = jsonutil.loads(data)
    answer.events.append((name, payload))
    if dialect == ir.ANTHROPIC:
        kind = payload.get("type")
        if kind == "content_block_delta" and payload["delta"].get("type") == "text_delta":
            answer.text += payload["delta"]["text"]
        answer.terminal |= kind == "message_stop"
        answer.stream_error |= kind == "error"
    elif dialect == ir.OPENAI_CHAT:
        if "error" in payload:
            answer.stream_error = True
        for choice in payload.get("choices") or []:
            answer.text += (choice.get("delta") or {}).get("content") or ""
    elif dialect == ir.OPENAI_RESPONSES:
        kind = payload.get("type")
        if kind == "response.output_text.delta":
            answer.text += payload["delta"]
        answer.terminal |= kind in ("response.completed", "response.incomplete")
        answer.stream_error |= kind in ("response.failed", "error")
    else:
        if "error" in payload:
            answer.stream_error = True
        for candidate in payload.get("candidates") or []:
            for part in (candidate.get("content") or {}).get("parts") or []:
                if not part.get("thought"):
                    answer.text += part.get("text", "")
            answer.terminal |= bool(candidate.get("finishReason"))


async def ask(
    session: aiohttp.ClientSession, base_url: str, dialect: str, model: str, prompt: str = "Say hello.",
    stream: bool = False, api_key: str | None = None,
) -> Answer:
    """Send one prompt in ``dialect`` and read the whole answer."""
    path, headers, body = request_for(dialect, model, prompt, stream)
    if api_key:
        headers = {**headers, "authorization": f"Bearer {api_key}"}
    async with session.post(base_url + path, json=body, headers=headers) as response:
        answer = Answer(status=response.status, headers={k.lower(): v for k, v in response.headers.items()})
        if response.status != 200 or not stream:
            raw = await response.read()
            answer.body = jsonutil.loads(raw) if raw.strip() else None
            if response.status == 200:
                answer.text = _text_of(dialect, answer.body)
                answer.terminal = True
            return answer
        parser = SSEParser()
        async for chunk in response.content.iter_any():
            for event in parser.feed(chunk):
                _stream_event(dialect, answer, event.event, event.data)
        for event in parser.close():
            _stream_event(dialect, answer, event.event, event.data)
        return answer


# -- a tool round trip, as each client dialect writes its history --------------------------

READ_SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
READ_ARGS = '{"path": "/etc/hosts"}'


def tool_round_trip(dialect: str, model: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``(path, headers, body)``: one read_file call and its result in ``dialect``'s history."""
    if dialect == ir.ANTHROPIC:
        return "/v1/messages", {"anthropic-version": "2023-06-01"}, {
            "model": model, "max_tokens": 256,
            "tools": [{"name": "read_file", "description": "Read a file", "input_schema": READ_SCHEMA}],
            "messages": [
                {"role": "user", "content": "Read /etc/hosts."},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01Read", "name": "read_file",
                                                   "input": {"path": "/etc/hosts"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01Read",
                                              "content": "127.0.0.1 localhost"}]}]}
    if dialect == ir.OPENAI_CHAT:
        call = "functions.read_file:0"  # Kimi-style: no valid Anthropic or Responses id
        return "/v1/chat/completions", {}, {
            "model": model,
            "tools": [{"type": "function", "function": {"name": "read_file", "description": "Read a file",
                                                        "parameters": READ_SCHEMA}}],
            "messages": [
                {"role": "user", "content": "Read /etc/hosts."},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": call, "type": "function", "function": {"name": "read_file", "arguments": READ_ARGS}}]},
                {"role": "tool", "tool_call_id": call, "content": "127.0.0.1 localhost"}]}
    if dialect == ir.OPENAI_RESPONSES:
        return "/v1/responses", {}, {
            "model": model,
            "tools": [{"type": "function", "name": "read_file", "description": "Read a file",
                       "parameters": READ_SCHEMA}],
            "input": [
                {"role": "user", "content": "Read /etc/hosts."},
                {"type": "function_call", "call_id": "call_read1", "name": "read_file", "arguments": READ_ARGS},
                {"type": "function_call_output", "call_id": "call_read1", "output": "127.0.0.1 localhost"}]}
    return f"/v1beta/models/{model}:generateContent", {}, {  # Gemini: no call ids at all
        "tools": [{"functionDeclarations": [{"name": "read_file", "description": "Read a file",
                                             "parameters": READ_SCHEMA}]}],
        "contents": [
            {"role": "user", "parts": [{"text": "Read /etc/hosts."}]},
            {"role": "model", "parts": [{"functionCall": {"name": "read_file", "args": {"path": "/etc/hosts"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "read_file",
                                                             "response": {"result": "127.0.0.1 localhost"}}}]}]}


def tool_calls_of(dialect: str, stream: bool, raw: bytes) -> tuple[list[tuple[str, Any]], str | None]:
    """``([(name, arguments)], stop reason)`` as a client of ``dialect`` reads them from an answer."""
    if not stream or dialect == ir.GEMINI:
        bodies = [jsonutil.loads(raw)] if not stream else [jsonutil.loads(e.data) for e in SSEParser().feed(raw)]
        if dialect == ir.ANTHROPIC:
            (body,) = bodies
            return [(b["name"], b["input"]) for b in body["content"] if b["type"] == "tool_use"], body["stop_reason"]
        if dialect == ir.OPENAI_CHAT:
            choice = bodies[0]["choices"][0]
            calls = choice["message"].get("tool_calls") or []
            return [(c["function"]["name"], jsonutil.loads(c["function"]["arguments"])) for c in calls], \
                choice["finish_reason"]
        if dialect == ir.OPENAI_RESPONSES:
            (body,) = bodies
            calls = [i for i in body["output"] if i["type"] == "function_call"]
            return [(i["name"], jsonutil.loads(i["arguments"])) for i in calls], body["status"]
        candidates = [c for b in bodies for c in b.get("candidates", [])]
        calls = [p["functionCall"] for c in candidates for p in c["content"].get("parts", []) if "functionCall" in p]
        return [(c["name"], c["args"]) for c in calls], next((c["finishReason"] for c in candidates
                                                              if c.get("finishReason")), None)
    payloads = [jsonutil.loads(e.data) for e in SSEParser().feed(raw) if e.data != "[DONE]"]
    if dialect == ir.ANTHROPIC:
        names = {p["index"]: p["content_block"]["name"] for p in payloads
                 if p["type"] == "content_block_start" and p["content_block"]["type"] == "tool_use"}
        args = {i: "".join(p["delta"]["partial_json"] for p in payloads if p["type"] == "content_block_delta"
                           and p["index"] == i) for i in names}
        stop = next(p["delta"]["stop_reason"] for p in payloads if p["type"] == "message_delta")
        return [(names[i], jsonutil.loads(args[i])) for i in names], stop
    if dialect == ir.OPENAI_CHAT:
        pieces: dict[int, list[str]] = {}
        stop = None
        for payload in payloads:
            for choice in payload.get("choices") or []:
                for call in choice["delta"].get("tool_calls") or []:
                    entry = pieces.setdefault(call["index"], ["", ""])
                    entry[0] += call.get("function", {}).get("name") or ""
                    entry[1] += call.get("function", {}).get("arguments") or ""
                stop = choice.get("finish_reason") or stop
        return [(name, jsonutil.loads(arguments)) for name, arguments in pieces.values()], stop
    done = [p["item"] for p in payloads if p["type"] == "response.output_item.done"]
    final = next(p["response"] for p in payloads if p["type"] in ("response.completed", "response.incomplete"))
    return [(i["name"], jsonutil.loads(i["arguments"])) for i in done if i["type"] == "function_call"], final["status"]


#: What each dialect says when a turn ends in a tool call.
TOOL_STOP = {ir.ANTHROPIC: "tool_use", ir.OPENAI_CHAT: "tool_calls", ir.OPENAI_RESPONSES: "completed",
             ir.GEMINI: "STOP"}


def is_error_shape(dialect: str, status: int, body: Any) -> bool:
    """Whether ``body`` is an error as ``dialect``'s SDKs parse it (for a response of ``status``)."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    error = body["error"]
    if not isinstance(error.get("message"), str):
        return False
    if dialect == ir.ANTHROPIC:
        return body.get("type") == "error" and isinstance(error.get("type"), str)
    if dialect == ir.GEMINI:
        return error.get("code") == status and isinstance(error.get("status"), str)
    return isinstance(error.get("type"), str)
