"""Every captured real-client request, served by an upstream of every dialect.

The captures in ``core/tests/fixtures/captures`` are what Claude Code,
Codex CLI, Gemini CLI, Qwen Code and the official SDKs really send.  Each
one goes to the gateway exactly as captured (path, query, headers, body)
and is served by an upstream of each of the four dialects.  The upstream
answers are hand-written wire frames, independent of the codecs under test.

The client must receive the terminal event it needs (``message_stop``,
``response.completed``, ``finishReason``, ``[DONE]``), and the upstream must
receive every function tool, every tool result and the system prompt.  When
the upstream speaks the client's dialect, it must receive the body
byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from polyrelay import ModelInfo, Provider, hookimpl, ir, jsonutil
from polyrelay.dialects import get_dialect
from polyrelay.sse import SSEParser
from polyrelay.testing import Recorded, Reply, Simulator, run_gateway
from polyrelay.testing.clients import Answer, _stream_event
from polyrelay.testing.openai_chat import chunk_frames, completion
from polyrelay.testing.plugin import plugin_of

CAPTURES = sorted((Path(__file__).parents[1] / "core/tests/fixtures/captures").glob("*.json"))


def sse(event: str | None, data: dict[str, Any]) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(data).encode() + b"\n\n"


def anthropic_reply(stream: bool) -> Reply:
    message = {"id": "msg_up", "type": "message", "role": "assistant", "model": "up-model", "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 1}}
    if not stream:
        return Reply.json({**message, "content": [{"type": "text", "text": "Done."}], "stop_reason": "end_turn"})
    return Reply.sse([
        sse("message_start", {"type": "message_start", "message": message}),
        sse("content_block_start", {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "text", "text": ""}}),
        sse("ping", {"type": "ping"}),
        sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": "Done."}}),
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                              "usage": {"output_tokens": 2}}),
        sse("message_stop", {"type": "message_stop"}),
    ])


def responses_reply(stream: bool) -> Reply:
    item = {"id": "msg_up", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": "Done.", "annotations": []}]}
    response = {"id": "resp_up", "object": "response", "created_at": 1, "status": "completed", "model": "up-model",
                "output": [item], "usage": {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11}}
    if not stream:
        return Reply.json(response)
    pending = {**response, "status": "in_progress", "output": []}
    events = [
        ("response.created", {"response": pending}),
        ("response.in_progress", {"response": pending}),
        ("response.output_item.added", {"output_index": 0, "item": {**item, "status": "in_progress", "content": []}}),
        ("response.content_part.added", {"item_id": "msg_up", "output_index": 0, "content_index": 0,
                                         "part": {"type": "output_text", "text": "", "annotations": []}}),
        ("response.output_text.delta", {"item_id": "msg_up", "output_index": 0, "content_index": 0,
                                        "delta": "Done."}),
        ("response.output_text.done", {"item_id": "msg_up", "output_index": 0, "content_index": 0, "text": "Done."}),
        ("response.content_part.done", {"item_id": "msg_up", "output_index": 0, "content_index": 0,
                                        "part": item["content"][0]}),
        ("response.output_item.done", {"output_index": 0, "item": item}),
        ("response.completed", {"response": response}),
    ]
    return Reply.sse([sse(name, {"type": name, "sequence_number": i, **data})
                      for i, (name, data) in enumerate(events)])


def gemini_reply(stream: bool) -> Reply:
    chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Done."}]}, "finishReason": "STOP",
                             "index": 0}],
             "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 2, "totalTokenCount": 11},
             "modelVersion": "up-model"}
    return Reply.sse([sse(None, chunk)]) if stream else Reply.json(chunk)


def chat_reply(stream: bool) -> Reply:
    return Reply.sse(chunk_frames("up-model", ["Done."])) if stream else Reply.json(completion("up-model", "Done."))


REPLIES = {ir.ANTHROPIC: anthropic_reply, ir.OPENAI_RESPONSES: responses_reply, ir.GEMINI: gemini_reply,
           ir.OPENAI_CHAT: chat_reply}


class AnyDialectUpstream(Simulator):
    """Answers every dialect's endpoint with a short, well-formed answer."""

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/{tail:.*}", self.handle)]

    def default_reply(self, recorded: Recorded) -> Reply:
        path = recorded.path
        if path.endswith("/v1/messages"):
            return anthropic_reply(recorded.json().get("stream") is True)
        if path.endswith("/chat/completions"):
            return chat_reply(recorded.json().get("stream") is True)
        if path.endswith("/responses"):
            return responses_reply(recorded.json().get("stream") is True)
        return gemini_reply("streamGenerateContent" in path)


def upstream_plugin(root: str) -> object:
    bases = {ir.ANTHROPIC: root, ir.OPENAI_CHAT: f"{root}/v1", ir.OPENAI_RESPONSES: f"{root}/v1",
             ir.GEMINI: f"{root}/v1beta"}

    @hookimpl
    def register_providers() -> list[Provider]:
        return [Provider(name=f"up-{d}", dialect=d, urls={"api": bases[d]}, models=[ModelInfo(f"up-{d}-model")])
                for d in ir.DIALECTS]

    @hookimpl
    def config_credentials(provider: Provider) -> list[Any]:
        from polyrelay import Credential

        return [Credential(id=f"{provider.name}#0", provider=provider.name, secret="upstream-key-123")]

    return plugin_of(register_providers=register_providers, config_credentials=config_credentials)


def dialect_of(path: str) -> str:
    if path.startswith("/v1/messages"):
        return ir.ANTHROPIC
    if path.startswith("/v1/chat"):
        return ir.OPENAI_CHAT
    if path.startswith("/v1/responses"):
        return ir.OPENAI_RESPONSES
    return ir.GEMINI


SKIP_HEADERS = {"host", "content-length", "connection", "authorization", "x-api-key", "x-goog-api-key",
                "accept-encoding"}


def expectations(capture: dict[str, Any]) -> ir.Request:
    """What the client sent, as the client's own codec reads it."""
    return get_dialect(dialect_of(capture["path"])).decode_request(capture["body"])


def upstream_view(dialect: str, recorded: Recorded) -> ir.Request:
    return get_dialect(dialect).decode_request(recorded.json())


async def replay(gateway_url: str, capture: dict[str, Any], body: bytes) -> tuple[int, Answer]:
    headers = {k: v for k, v in capture["headers"] if k.lower() not in SKIP_HEADERS}
    query = capture.get("query") or ""
    url = gateway_url + capture["path"] + (f"?{query}" if query else "")
    dialect = dialect_of(capture["path"])
    answer = Answer(status=0)
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as response:
        answer.status = response.status
        if response.content_type != "text/event-stream":
            answer.body = await response.json(content_type=None)
            return response.status, answer
        parser = SSEParser()
        async for chunk in response.content.iter_any():
            for event in parser.feed(chunk):
                _stream_event(dialect, answer, event.event, event.data)
    return response.status, answer


def terminal_ok(dialect: str, answer: Answer, streamed: bool) -> bool:
    if not streamed:
        body = answer.body
        if dialect == ir.ANTHROPIC:
            return body.get("stop_reason") is not None
        if dialect == ir.OPENAI_CHAT:
            return body["choices"][0]["finish_reason"] is not None
        if dialect == ir.OPENAI_RESPONSES:
            return body.get("status") == "completed"
        return bool(body["candidates"][0].get("finishReason"))
    return answer.terminal and not answer.stream_error


def function_tools(request: ir.Request) -> list[str]:
    return sorted(t.name for t in request.tools if t.kind == "function")


def tool_results(request: ir.Request) -> list[str]:
    return [p.call_id for m in request.messages for p in m.parts if isinstance(p, ir.ToolResult)]


def system_text(request: ir.Request) -> str:
    head = "\n".join(t.text for t in request.system)
    head += "\n".join(p.text for m in request.messages if m.role == "system" for p in m.parts
                      if isinstance(p, ir.Text))
    return head


@pytest.mark.parametrize("upstream", ir.DIALECTS)
@pytest.mark.parametrize("capture_path", CAPTURES, ids=[p.stem for p in CAPTURES])
async def test_capture_is_served_by_every_upstream_dialect(capture_path: Path, upstream: str) -> None:
    capture = json.loads(capture_path.read_text())
    client_dialect = dialect_of(capture["path"])
    body = json.dumps(capture["body"]).encode()
    streamed = capture["body"].get("stream") is True or "streamGenerateContent" in capture["path"]
    async with AnyDialectUpstream() as sim:
        config = f'model-aliases: {{"*": "up-{upstream}/up-model"}}\n'
        async with run_gateway(config, extra_plugins=[("captures", upstream_plugin(sim.base_url))]) as gateway:
            status, answer = await replay(gateway.url, capture, body)
        assert status == 200, answer.body
        assert terminal_ok(client_dialect, answer, streamed), "the client did not get its terminal event"
        assert "Done." in (answer.text or json.dumps(answer.body))
        (recorded,) = sim.requests
    sent = expectations(capture)
    received = upstream_view(upstream, recorded)
    assert set(function_tools(sent)) <= {t.name for t in received.tools}, "a function tool was lost"
    assert len(tool_results(received)) == len(tool_results(sent)), "a tool result was lost"
    for line in system_text(sent).splitlines()[:20]:
        if line.strip():
            assert line.strip() in system_text(received), f"system prompt line lost: {line[:60]!r}"
    if upstream == client_dialect:
        expected = body
        if client_dialect != ir.GEMINI:
            expected = body.replace(jsonutil.dumps(capture["body"]["model"]), b'"up-model"', 1)
        assert recorded.body == expected, "same-dialect bodies must pass through byte for byte"
