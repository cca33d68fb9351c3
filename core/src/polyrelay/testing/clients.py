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
        answer = Answer(status=response.status, headers=dict(response.headers))
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
