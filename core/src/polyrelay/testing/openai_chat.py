"""A simulator of an OpenAI-compatible Chat Completions upstream.

It checks the bearer key like the real service (401 ``invalid_api_key``),
answers non-stream requests with a ``chat.completion`` and stream requests
with ``chat.completion.chunk`` frames, the usage chunk when
``stream_options.include_usage`` is set, and ``data: [DONE]``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Collection, Sequence
from typing import Any

from aiohttp import web

from polyrelay import jsonutil
from polyrelay.testing.simulator import Recorded, Reply, Simulator

_ids = itertools.count(1)


def completion(model: str, text: str | None, tool_calls: list[dict[str, Any]] | None = None,
               finish_reason: str = "stop", prompt_tokens: int = 11, completion_tokens: int = 7) -> dict[str, Any]:
    """A complete ``chat.completion`` body."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": f"chatcmpl-sim{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def chunk_frames(
    model: str,
    pieces: list[str],
    tool_calls: Sequence[tuple[str, str, list[str]]] = (),
    finish_reason: str | None = None,
    include_usage: bool = True,
    usage: tuple[int, int] = (11, 7),
) -> list[bytes]:
    """SSE frames of a chat stream: text pieces, then tool calls (id, name, argument fragments)."""
    cid, created = f"chatcmpl-sim{next(_ids)}", int(time.time())

    def frame(delta: dict[str, Any], finish: str | None = None, extra: dict[str, Any] | None = None) -> bytes:
        body: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            body["usage"] = None
        if extra:
            body.update(extra)
        return b"data: " + jsonutil.dumps(body) + b"\n\n"

    frames = [frame({"role": "assistant", "content": "", "refusal": None})]
    frames += [frame({"content": piece}) for piece in pieces]
    for index, (call_id, name, fragments) in enumerate(tool_calls):
        frames.append(frame({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                             "function": {"name": name, "arguments": ""}}]}))
        frames += [frame({"tool_calls": [{"index": index, "function": {"arguments": f}}]}) for f in fragments]
    finish = finish_reason or ("tool_calls" if tool_calls else "stop")
    frames.append(frame({}, finish))
    if include_usage:
        prompt, completion_tokens = usage
        frames.append(b"data: " + jsonutil.dumps({
            "id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                      "total_tokens": prompt + completion_tokens}}) + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return frames


def error_body(message: str, type_: str, code: str | None) -> dict[str, Any]:
    """OpenAI's error shape."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class OpenAIChatSimulator(Simulator):
    """``POST /v1/chat/completions`` (base URL ``{root}/v1``)."""

    def __init__(self, keys: Collection[str] | None = None, reply_text: str = "Hello from the simulator.") -> None:
        super().__init__(keys)
        self.reply_text = reply_text

    @property
    def api_base(self) -> str:
        """What a client configures as its base URL."""
        return f"{self.base_url}/v1"

    def routes(self) -> list[web.RouteDef]:
        """The chat completions endpoint."""
        return [web.post("/v1/chat/completions", self.handle)]

    def check(self, recorded: Recorded) -> Reply | None:
        """401 for a missing or unknown bearer key; 400 for a body the real API rejects."""
        if self.key_problem(recorded):
            return Reply.json(error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
                              status=401)
        try:
            body = recorded.json()
        except ValueError:
            return Reply.json(error_body("We could not parse the JSON body of your request.",
                                         "invalid_request_error", None), status=400)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body.get("model"):
            return Reply.json(error_body("'messages' and 'model' are required.", "invalid_request_error", None),
                              status=400)
        return None

    def default_reply(self, recorded: Recorded) -> Reply:
        """Answer with :attr:`reply_text`, split into words when streaming."""
        body = recorded.json()
        model = body["model"]
        if body.get("stream"):
            words = self.reply_text.split(" ")
            pieces = [w if i == 0 else f" {w}" for i, w in enumerate(words)]
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return Reply.sse(chunk_frames(model, pieces, include_usage=include_usage))
        return Reply.json(completion(model, self.reply_text))
