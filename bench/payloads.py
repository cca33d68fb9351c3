"""Request bodies and raw HTTP/1.1 request bytes, built deterministically.

Both the orchestrator and the load generator import this module, so a
target is described by a small JSON-able dict and turned into bytes where
it is sent.
"""

from __future__ import annotations

import json
import random
from typing import Any

API_KEY = "sk-bench"
ANTHROPIC_VERSION = "2023-06-01"

_WORDS = [
    "the", "gateway", "forwards", "each", "request", "to", "upstream", "and", "streams", "answer", "back",
    "while", "client", "waits", "def", "main", "return", "async", "await", "import", "class", "self", "value",
    "result", "config", "token", "stream", "chunk", "frame", "delta", "naïve", "café", "résumé", "→", "✓",
    "日本語", "テスト",
]


def _text(rng: random.Random, size: int) -> str:
    """About ``size`` characters of deterministic word salad (some non-ASCII)."""
    out: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS)
        out.append(word)
        length += len(word) + 1
    return " ".join(out)[:size]


def _code(rng: random.Random, lines: int) -> str:
    """Source-file-like text, as a Claude Code tool result carries."""
    rows = []
    for i in range(lines):
        indent = "    " * rng.randint(0, 3)
        rows.append(f"{i + 1:>5}\t{indent}{_text(rng, rng.randint(20, 90))}")
    return "\n".join(rows)


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _pad_to(obj: dict[str, Any], holder: dict[str, Any], key: str, size: int) -> bytes:
    """Grow ``holder[key]`` (a string inside ``obj``) until ``obj`` serializes to ``size`` bytes."""
    raw = _dump(obj)
    excess = len(raw) - size
    if excess > 0:  # cutting n characters drops at least n bytes
        holder[key] = holder[key][: max(0, len(holder[key]) - excess)]
        raw = _dump(obj)
    missing = size - len(raw)
    if missing > 0:
        holder[key] = holder[key] + "x" * missing
        raw = _dump(obj)
    return raw


def chat_small(model: str, stream: bool = False, size: int = 1024) -> bytes:
    """An OpenAI chat request of exactly ``size`` bytes (1 KB by default)."""
    user: dict[str, Any] = {"role": "user", "content": _text(random.Random(1), max(0, size - 260))}
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "system", "content": "You are a terse assistant."}, user],
        "max_tokens": 256,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return _pad_to(body, user, "content", size)


def chat_large(model: str, size: int = 1024 * 1024) -> bytes:
    """A Claude Code-like OpenAI chat request of about ``size`` bytes.

    A long system prompt, two dozen tool definitions, then rounds of user
    text, assistant tool calls and large tool results (file contents).
    """
    rng = random.Random(7)
    tools = [
        {
            "type": "function",
            "function": {
                "name": f"tool_{i}",
                "description": _text(rng, 600),
                "parameters": {
                    "type": "object",
                    "properties": {
                        "file_path": {"type": "string", "description": _text(rng, 80)},
                        "limit": {"type": "integer", "description": "lines to read"},
                        "pattern": {"type": "string", "description": _text(rng, 60)},
                    },
                    "required": ["file_path"],
                },
            },
        }
        for i in range(24)
    ]
    messages: list[dict[str, Any]] = [{"role": "system", "content": _text(rng, 12000)}]
    body: dict[str, Any] = {"model": model, "messages": messages, "tools": tools, "max_tokens": 8192}
    budget = size - 16 * 1024
    used = len(_dump(body))
    turn = 0
    while used < budget and turn < 1000:
        call_id = f"call_{turn:04d}"
        user = {"role": "user", "content": _text(rng, 1500)}
        call = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {
                "name": "tool_0", "arguments": json.dumps({"file_path": f"/src/module_{turn}.py"})}}],
        }
        result = {"role": "tool", "tool_call_id": call_id, "content": _code(rng, 90)}
        messages.extend([user, call, result])
        used += sum(len(_dump(m)) + 1 for m in (user, call, result))
        turn += 1
    last = {"role": "user", "content": "Now summarize the changes."}
    messages.append(last)
    return _pad_to(body, last, "content", size)


def anthropic_stream(model: str, size: int = 1024) -> bytes:
    """An Anthropic Messages streaming request of about ``size`` bytes."""
    block: dict[str, Any] = {"type": "text", "text": _text(random.Random(3), max(0, size - 220))}
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 1024,
        "stream": True,
        "system": "You are a terse assistant.",
        "messages": [{"role": "user", "content": [block]}],
    }
    return _pad_to(body, block, "text", size)


def body_for(target: dict[str, Any]) -> bytes:
    """The body a target dict describes (``payload``, ``model``, ``stream``)."""
    payload = target["payload"]
    model = target["model"]
    if payload == "chat1k":
        return chat_small(model, stream=bool(target.get("stream")))
    if payload == "chat1m":
        return chat_large(model)
    if payload == "anthropic":
        return anthropic_stream(model)
    raise ValueError(f"unknown payload {payload!r}")


def http_request(port: int, path: str, body: bytes, headers: dict[str, str] | None = None,
                 close: bool = False) -> bytes:
    """Raw HTTP/1.1 POST bytes for 127.0.0.1:``port``."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        "Accept: */*",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def request_for(target: dict[str, Any], close: bool = False) -> bytes:
    """Raw request bytes for a target dict (adds the dialect's auth headers)."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    if target["payload"] == "anthropic":
        headers = {"x-api-key": API_KEY, "anthropic-version": ANTHROPIC_VERSION}
    return http_request(int(target["port"]), target["path"], body_for(target), headers, close=close)
