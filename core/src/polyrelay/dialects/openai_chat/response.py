"""Chat Completions ``chat.completion`` objects and usage ↔ the IR."""

from __future__ import annotations

import time
import uuid
from typing import Any

from polyrelay import ir
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.calls import function_arguments
from polyrelay.dialects.fields import is_int, str_or_none, usage_count
from polyrelay.dialects.openai_chat.content import own_extras
from polyrelay.dialects.openai_chat.errors import error_fields
from polyrelay.dialects.openai_chat.tools import encode_tool_call
from polyrelay.dialects.openai_chat.wire import FINISH_TO_STOP, NAME, STOP_TO_FINISH
from polyrelay.jsonutil import dumps


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def chat_id(upstream_id: str | None) -> str:
    """A ``chatcmpl-`` id; a foreign upstream id is kept inside it for tracing."""
    if upstream_id and upstream_id.startswith("chatcmpl-"):
        return upstream_id
    return "chatcmpl-" + (upstream_id or uuid.uuid4().hex[:24])


def decode_usage(usage: Any) -> ir.Usage:
    """Chat ``usage`` → IR usage (prompt includes cached, completion includes reasoning:
    https://platform.openai.com/docs/api-reference/chat/object)."""
    if not isinstance(usage, dict):
        return ir.Usage()
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    prompt_details = prompt_details if isinstance(prompt_details, dict) else {}
    completion_details = completion_details if isinstance(completion_details, dict) else {}
    return ir.Usage(
        input_tokens=usage_count(usage.get("prompt_tokens")),
        output_tokens=usage_count(usage.get("completion_tokens")),
        # DeepSeek-style servers report cache hits at the top level instead.
        cached_tokens=(usage_count(prompt_details.get("cached_tokens"))
                       or usage_count(usage.get("prompt_cache_hit_tokens"))),
        reasoning_tokens=usage_count(completion_details.get("reasoning_tokens")),
    )


def encode_usage(usage: ir.Usage) -> dict[str, Any]:
    """IR usage → chat ``usage``; cache writes are already inside prompt_tokens."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def pick_choice(choices: Any) -> dict[str, Any] | None:
    """Choice 0 (n > 1 is not translated)."""
    if not isinstance(choices, list):
        return None
    candidates = [c for c in choices if isinstance(c, dict)]
    return next((c for c in candidates if c.get("index", 0) == 0), candidates[0] if candidates else None)


def stop_reason_for(finish: Any, has_calls: bool) -> str:
    stop = FINISH_TO_STOP.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
    # Some servers say "stop" after emitting tool calls; the calls are what matters.
    return "tool_use" if has_calls and stop == "end_turn" else stop


def decode_response_body(body: Any) -> ir.Response:
    if not isinstance(body, dict):
        raise DialectError("upstream response is not a JSON object", status=502)
    if body.get("error") is not None and "choices" not in body:
        raise DialectError(f"upstream returned an error: {error_fields(body)[0] or 'unknown'}", status=502)
    choice = pick_choice(body.get("choices")) or {}
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    parts: list[ir.Part] = []
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.append(ir.Thinking(text=reasoning, origin=NAME))
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append(ir.Text(text=content))
    elif isinstance(content, list):
        parts.extend(ir.Text(text=p["text"]) for p in content
                     if isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"])
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(ir.Text(text=refusal, extras={NAME: {"refusal": True}}))
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        if not isinstance(call, dict):
            continue
        custom = call.get("type") == "custom"
        fn = call.get("custom" if custom else "function")
        fn = fn if isinstance(fn, dict) else {}
        name = fn.get("name")
        args = fn.get("input" if custom else "arguments")
        text = args if isinstance(args, str) else (dumps(args).decode() if isinstance(args, dict) else "")
        parts.append(ir.ToolCall(
            id=str_or_none(call.get("id")) or new_id("call_"),
            name=name if isinstance(name, str) else "",
            arguments=text if custom else function_arguments(text),
            kind="custom" if custom else "function",
        ))
    has_calls = any(isinstance(p, ir.ToolCall) for p in parts)
    extensions = {k: v for k, v in body.items() if k not in ("id", "object", "model", "choices", "usage")}
    choice_rest = {k: v for k, v in choice.items()
                   if k not in ("index", "message", "finish_reason", "delta") and v is not None}
    message_rest = {k: v for k, v in message.items()
                    if k not in ("role", "content", "reasoning_content", "refusal", "tool_calls") and v is not None}
    if choice_rest:
        extensions["choice"] = choice_rest
    if message_rest:
        extensions["message"] = message_rest
    return ir.Response(
        id=str_or_none(body.get("id")) or "",
        model=str_or_none(body.get("model")) or "",
        parts=parts,
        stop_reason=stop_reason_for(choice.get("finish_reason"), has_calls),
        usage=decode_usage(body.get("usage")),
        extensions={NAME: extensions} if extensions else {},
    )


def encode_response_body(response: ir.Response) -> dict[str, Any]:
    extensions = dict(response.extensions.get(NAME) or {})
    texts = [p for p in response.parts if isinstance(p, ir.Text)]
    answer = [p.text for p in texts if not own_extras(p.extras).get("refusal")]
    refusal = [p.text for p in texts if own_extras(p.extras).get("refusal")]
    calls = [encode_tool_call(p) for p in response.parts if isinstance(p, ir.ToolCall)]
    message: dict[str, Any] = {
        "role": "assistant",
        # null next to tool calls, as OpenAI does; "" otherwise because clients call .strip() on it.
        "content": "".join(answer) if answer or not calls else None,
        "refusal": "".join(refusal) if refusal else None,
    }
    # Chat has no signature field: thinking signatures (any origin) cannot be returned.
    reasoning = "".join(p.text for p in response.parts if isinstance(p, ir.Thinking) and not p.redacted)
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = calls
    finish = "tool_calls" if calls else STOP_TO_FINISH.get(response.stop_reason or "end_turn", "stop")
    choice: dict[str, Any] = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    for key, target in (("message", message), ("choice", choice)):
        saved = extensions.pop(key, None)
        if isinstance(saved, dict):
            for k, v in saved.items():
                target.setdefault(k, v)
    created = extensions.pop("created", None)
    body: dict[str, Any] = {
        "id": chat_id(response.id),
        "object": "chat.completion",
        "created": created if is_int(created) else int(time.time()),
        "model": response.model,
        "choices": [choice],
        "usage": encode_usage(response.usage),
    }
    for key, value in extensions.items():
        body.setdefault(key, value)
    return body
