"""Tests for the OpenAI Chat Completions codec (polyrelay.dialects.openai_chat)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyrelay import ir
from polyrelay.aggregate import collect, response_events
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.hints import retry_hint_in_text as retry_after_from_message
from polyrelay.dialects.openai_chat import (
    DIALECT,
    STOP_TO_FINISH,
    ChatStreamDecoder,
)

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"
CHAT_CAPTURES = sorted(
    p.name for p in CAPTURES.glob("*.json") if json.loads(p.read_text())["path"] == "/v1/chat/completions"
)


def capture(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / name).read_text())["body"]


def sse_bytes(*payloads: Any, done: bool = True, sep: str = "\n\n") -> bytes:
    """An upstream chat stream: one ``data:`` frame per payload, then ``[DONE]``."""
    frames = [f"data: {p if isinstance(p, str) else json.dumps(p, ensure_ascii=False)}{sep}" for p in payloads]
    if done:
        frames.append(f"data: [DONE]{sep}")
    return "".join(frames).encode()


def frames(raw: bytes) -> list[str]:
    """The ``data:`` payloads of an SSE byte string, checking the framing on the way."""
    assert raw.endswith(b"\n\n")
    out = []
    for block in raw.decode().split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        assert "\n" not in block
        out.append(block[len("data: "):])
    return out


def decode_all(data: bytes, pieces: list[int] | None = None) -> tuple[list[ir.Event], ChatStreamDecoder]:
    """Feed ``data`` split at ``pieces`` offsets, then close."""
    decoder = DIALECT.stream_decoder()
    events: list[ir.Event] = []
    cuts = [0, *sorted(set(pieces or [])), len(data)]
    for start, end in itertools.pairwise(cuts):
        events.extend(decoder.feed(data[start:end]))
    events.extend(decoder.close())
    return events, decoder


# -- the dialect object -----------------------------------------------------------


def test_dialect_identity() -> None:
    assert DIALECT.name == ir.OPENAI_CHAT == "openai-chat"
    assert DIALECT.keepalive_frame == b": keep-alive\n\n"


# -- captures ---------------------------------------------------------------------


def test_chat_captures_found() -> None:
    assert CHAT_CAPTURES == [
        "qwen-code-memory-subagent.json", "qwen-code-tool-result.json", "qwen-code.json", "sdk-openai-python-chat.json",
    ]


@pytest.mark.parametrize("name", CHAT_CAPTURES)
def test_capture_decodes_and_round_trips(name: str) -> None:
    body = capture(name)
    request = DIALECT.decode_request(body)
    assert request.model == body["model"]
    assert request.stream is True and request.include_usage is True
    assert [t.name for t in request.tools] == [t["function"]["name"] for t in body["tools"]]
    assert [t.parameters for t in request.tools] == [t["function"]["parameters"] for t in body["tools"]]
    leading = [m for m in body["messages"] if m["role"] == "system"]
    assert [t.text for t in request.system] == [m["content"] for m in leading]
    assert all(m.role != "system" for m in request.messages)
    assert request.max_tokens == body.get("max_tokens")

    encoded = DIALECT.encode_request(request)
    assert encoded["model"] == body["model"]
    assert encoded["stream"] is True and encoded["stream_options"] == {"include_usage": True}
    assert DIALECT.decode_request(encoded) == request
    # The wire form is stable after one pass.
    assert DIALECT.encode_request(DIALECT.decode_request(encoded)) == encoded


def test_capture_tool_result_turn() -> None:
    body = capture("qwen-code-tool-result.json")
    request = DIALECT.decode_request(body)
    assistant, results = request.messages[-2], request.messages[-1]
    assert assistant.role == "assistant"
    (call,) = assistant.parts
    assert isinstance(call, ir.ToolCall)
    assert call.id == "call_6b89300bb9aa4840bd176051" and call.name == "read_file"
    assert json.loads(call.arguments) == {"file_path": "/home/dev/project/hello.txt"}
    assert results.role == "user"
    (result,) = results.parts
    assert result == ir.ToolResult(call_id=call.id, content=[ir.Text("hello file\n")], name="read_file")

    encoded = DIALECT.encode_request(request)
    assert encoded["messages"][-2] == {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": call.id, "type": "function",
                        "function": {"name": "read_file", "arguments": call.arguments}}],
    }
    assert encoded["messages"][-1] == {"role": "tool", "tool_call_id": call.id, "content": "hello file\n"}


def test_sdk_capture_single_user_message() -> None:
    request = DIALECT.decode_request(capture("sdk-openai-python-chat.json"))
    assert request.system == []
    assert request.messages == [ir.Message(role="user", parts=[ir.Text("say hi")])]
    assert request.tools[0] == ir.Tool(
        name="get_weather", description="Get weather",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )


# -- captures of the other dialects, decoded by their codecs, encoded to chat ------------

FOREIGN_MODULES = {"/v1/messages": "anthropic", "/v1/responses": "openai_responses"}
FOREIGN_CAPTURES = sorted(p.name for p in CAPTURES.glob("*.json") if p.name not in CHAT_CAPTURES)


def _foreign_module(path: str) -> str:
    return FOREIGN_MODULES.get(path, "gemini")


def test_foreign_captures_cover_three_dialects() -> None:
    modules = {_foreign_module(json.loads((CAPTURES / n).read_text())["path"]) for n in FOREIGN_CAPTURES}
    assert modules == {"anthropic", "openai_responses", "gemini"} and len(FOREIGN_CAPTURES) == 11


@pytest.mark.parametrize("name", FOREIGN_CAPTURES)
def test_foreign_capture_encodes_to_chat(name: str) -> None:
    import importlib

    raw = json.loads((CAPTURES / name).read_text())
    codec = importlib.import_module(f"polyrelay.dialects.{_foreign_module(raw['path'])}").DIALECT
    # Gemini names the model in the URL; the core sets it the same way.
    request = attrs.evolve(codec.decode_request(raw["body"]), stream=True)
    request = attrs.evolve(request, model=request.model or "gemini-2.5-pro")
    body = json.loads(json.dumps(DIALECT.encode_request(request)))
    back = DIALECT.decode_request(body)  # what we send is a valid chat request

    assert body["model"] == request.model
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert [t.text for t in back.system] == [t.text for t in request.system]
    sent_tools = {t.name for t in back.tools}
    assert sent_tools == {t.name for t in request.tools if t.kind in ("function", "custom")}

    calls = {p.id: p for m in request.messages for p in m.parts if isinstance(p, ir.ToolCall)}
    back_calls = {p.id: p for m in back.messages for p in m.parts if isinstance(p, ir.ToolCall)}
    assert back_calls.keys() == calls.keys()
    for call_id, call in calls.items():
        assert back_calls[call_id].name == call.name
        assert json.loads(back_calls[call_id].arguments or "null") == json.loads(call.arguments or "null")
    results = [p for m in request.messages for p in m.parts if isinstance(p, ir.ToolResult)]
    tool_messages = {m["tool_call_id"]: m for m in body["messages"] if m["role"] == "tool"}
    assert tool_messages.keys() == {r.call_id for r in results}
    for result in results:
        text = "".join(t.text for t in result.content if isinstance(t, ir.Text))
        content = tool_messages[result.call_id]["content"]
        assert (content if isinstance(content, str) else "".join(c["text"] for c in content)) == text
    # Every result follows its call: the message before a run of tool messages carries the calls.
    for i, message in enumerate(body["messages"]):
        if message["role"] == "tool":
            j = i
            while body["messages"][j]["role"] == "tool":
                j -= 1
            assert message["tool_call_id"] in {c["id"] for c in body["messages"][j].get("tool_calls", [])}

    def texts(req: ir.Request) -> list[str]:
        return [p.text for m in req.messages for p in m.parts if isinstance(p, ir.Text) and p.text]

    assert texts(back) == texts(request)
    wire = json.dumps(body)
    signatures = [p.signature for m in request.messages for p in m.parts
                  if isinstance(p, (ir.Thinking, ir.ToolCall)) and p.signature]
    assert not [s for s in signatures if s in wire]


# -- requests: a rich body ------------------------------------------------------------

RICH = {
    "model": "gpt-x",
    "messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "system", "content": [{"type": "text", "text": "Use tools.", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "name": "ann", "content": [
            {"type": "text", "text": "Look:"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K", "detail": "high"}},
            {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBER", "filename": "a.pdf"}},
            {"type": "file", "file": {"file_id": "file-123"}},
        ]},
        {"role": "assistant", "reasoning_content": "They want files.", "content": "Reading both.",
         "tool_calls": [
             {"id": "call_1", "type": "function", "function": {"name": "read", "arguments": "{\"p\":\"a\"}"}},
             {"id": "call_2", "type": "custom", "custom": {"name": "patch", "input": "*** Begin"}},
         ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "A"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "ok"},
                                                              {"type": "text", "text": "done"}]},
        {"role": "user", "content": "thanks"},
        {"role": "system", "content": "Mid-conversation reminder."},
        {"role": "assistant", "content": None, "refusal": "no"},
    ],
    "tools": [
        {"type": "function", "function": {"name": "read", "description": "Read a file",
                                          "parameters": {"type": "object"}, "strict": True}},
        {"type": "custom", "custom": {"name": "patch", "format": {"type": "grammar"}}},
        {"type": "web_search_preview"},
    ],
    "tool_choice": {"type": "function", "function": {"name": "read"}},
    "parallel_tool_calls": False,
    "max_completion_tokens": 500,
    "stop": "END",
    "temperature": 0.5,
    "top_p": 1,
    "reasoning_effort": "low",
    "response_format": {"type": "json_schema",
                        "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True,
                                        "description": "the answer"}},
    "stream": True,
    "stream_options": {"include_usage": True, "include_obfuscation": False},
    "user": "u-42",
    "n": 1, "seed": 7, "logprobs": False, "prompt_cache_key": "k", "metadata": {"sessionId": "s"},
}


def test_rich_request_decodes_to_ir() -> None:
    request = DIALECT.decode_request(RICH)
    assert request.system == [
        ir.Text("Be brief."), ir.Text("Use tools.", extras={"openai-chat": {"cache_control": {"type": "ephemeral"}}}),
    ]
    user, assistant, results, thanks, reminder, refusal = request.messages
    assert user.role == "user"
    assert user.parts == [
        ir.Text("Look:"),
        ir.Image(media_type="image/png", data="iVBORw0K", extras={"openai-chat": {"image_url": {"detail": "high"}}}),
        ir.Image(url="https://example.com/cat.jpg"),
        ir.File(media_type="application/pdf", data="JVBER", filename="a.pdf"),
        ir.File(file_id="file-123"),
    ]
    assert user.extras == {"openai-chat": {
        "fields": {"name": "ann"},
        "extra_parts": [{"at": 2, "part": {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}}}],
    }}
    assert assistant.parts == [
        ir.Thinking(text="They want files."),
        ir.Text("Reading both."),
        ir.ToolCall(id="call_1", name="read", arguments='{"p":"a"}'),
        ir.ToolCall(id="call_2", name="patch", arguments="*** Begin", kind="custom"),
    ]
    assert results.parts == [
        ir.ToolResult(call_id="call_1", content=[ir.Text("A")], name="read"),
        ir.ToolResult(call_id="call_2", content=[ir.Text("ok"), ir.Text("done")], name="patch", kind="custom"),
    ]
    assert thanks == ir.Message(role="user", parts=[ir.Text("thanks")])
    assert reminder == ir.Message(role="system", parts=[ir.Text("Mid-conversation reminder.")])
    assert refusal.parts == [] and refusal.extras == {"openai-chat": {"fields": {"refusal": "no"}}}

    assert [(t.name, t.kind) for t in request.tools] == [("read", "function"), ("patch", "custom"),
                                                         ("web_search_preview", "web_search_preview")]
    assert request.tools[0].strict is True and request.tools[0].description == "Read a file"
    assert request.tool_choice == ir.ToolChoice(mode="tool", name="read", parallel=False)
    assert request.max_tokens == 500
    assert request.stop == ["END"]
    assert request.temperature == 0.5 and request.top_p == 1.0
    assert request.thinking == ir.ThinkingConfig(enabled=True, effort="low")
    assert request.response_format == ir.ResponseFormat(type="json_schema", schema={"type": "object"},
                                                        name="out", strict=True)
    assert request.stream is True and request.include_usage is True
    assert request.metadata == {"user_id": "u-42"}
    assert request.extensions == {"openai-chat": {
        "n": 1, "seed": 7, "logprobs": False, "prompt_cache_key": "k", "metadata": {"sessionId": "s"},
        "stream_options": {"include_obfuscation": False}, "response_format": RICH["response_format"],
    }}


def test_rich_request_round_trips() -> None:
    request = DIALECT.decode_request(RICH)
    encoded = DIALECT.encode_request(request)
    assert DIALECT.decode_request(encoded) == request
    messages = encoded["messages"]
    # Leading system/developer texts: one system message with both parts.
    assert messages[0] == {"role": "system", "content": [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use tools.", "cache_control": {"type": "ephemeral"}},
    ]}
    assert messages[1]["content"][2] == RICH["messages"][2]["content"][2]  # input_audio back in place
    assert messages[1]["content"] == RICH["messages"][2]["content"]
    assert messages[2]["reasoning_content"] == "They want files."
    assert messages[2]["tool_calls"] == RICH["messages"][3]["tool_calls"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool", "user", "system",
                                             "assistant"]
    assert encoded["max_tokens"] == 500 and "max_completion_tokens" not in encoded
    assert encoded["tool_choice"] == {"type": "function", "function": {"name": "read"}}
    assert encoded["parallel_tool_calls"] is False
    assert encoded["tools"] == RICH["tools"]
    assert encoded["response_format"] == RICH["response_format"]
    assert encoded["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert encoded["reasoning_effort"] == "low"
    assert encoded["user"] == "u-42" and encoded["seed"] == 7 and encoded["stop"] == ["END"]


def test_stream_always_asks_for_usage_upstream() -> None:
    request = DIALECT.decode_request({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True})
    assert request.include_usage is False
    assert DIALECT.encode_request(request)["stream_options"] == {"include_usage": True}
    request.stream = False
    encoded = DIALECT.encode_request(request)
    assert "stream" not in encoded and "stream_options" not in encoded


def test_qwen_thinking_fields() -> None:
    body = {"model": "qwen3", "messages": [{"role": "user", "content": "x"}],
            "enable_thinking": True, "thinking_budget": 2048}
    request = DIALECT.decode_request(body)
    assert request.thinking == ir.ThinkingConfig(enabled=True, budget=2048)
    encoded = DIALECT.encode_request(request)
    # Qwen refuses reasoning_effort next to thinking_budget: the client's own switches go back alone.
    assert encoded["enable_thinking"] is True and encoded["thinking_budget"] == 2048
    assert "reasoning_effort" not in encoded
    assert DIALECT.decode_request(encoded) == request

    off = DIALECT.decode_request({"model": "qwen3", "messages": [{"role": "user", "content": "x"}],
                                  "enable_thinking": False})
    assert off.thinking == ir.ThinkingConfig(enabled=False)
    none = DIALECT.decode_request({"model": "m", "messages": [{"role": "user", "content": "x"}],
                                   "reasoning_effort": "none"})
    assert none.thinking == ir.ThinkingConfig(enabled=False, effort="none")
    assert DIALECT.encode_request(none)["reasoning_effort"] == "none"


# -- requests: encoding IR built elsewhere ---------------------------------------------


def _ir_request(**kwargs: Any) -> ir.Request:
    return ir.Request(model="up-model", messages=[ir.Message(role="user", parts=[ir.Text("hi")])], **kwargs)


@pytest.mark.parametrize(("thinking", "effort"), [
    (ir.ThinkingConfig(budget=1024), "low"),
    (ir.ThinkingConfig(budget=20000), "high"),
    (ir.ThinkingConfig(budget=100000), "xhigh"),
    (ir.ThinkingConfig(effort="medium"), "medium"),
    (ir.ThinkingConfig(effort="max", adaptive=True), "xhigh"),
    (ir.ThinkingConfig(enabled=False), "none"),
    (ir.ThinkingConfig(enabled=False, budget=0), "none"),
    (ir.ThinkingConfig(adaptive=True), None),
    (ir.ThinkingConfig(budget=-1), None),
    (ir.ThinkingConfig(effort="auto"), None),
])
def test_thinking_config_to_reasoning_effort(thinking: ir.ThinkingConfig, effort: str | None) -> None:
    encoded = DIALECT.encode_request(_ir_request(thinking=thinking))
    assert encoded.get("reasoning_effort") == effort


def test_encode_foreign_request() -> None:
    request = ir.Request(
        model="qwen3-coder-plus",
        system=[ir.Text("one"), ir.Text("two", extras={"cache_control": {"type": "ephemeral"}})],
        messages=[
            ir.Message(role="user", parts=[ir.Text("q")]),
            ir.Message(role="assistant", parts=[
                ir.Thinking(text="hmm", signature="EqQB", origin=ir.ANTHROPIC),
                ir.Thinking(redacted=True, signature="opaque", origin=ir.ANTHROPIC),
                ir.Text("calling"),
                ir.ToolCall(id="toolu_1", name="shot", arguments="{}", signature="gsig", signature_origin=ir.GEMINI),
            ]),
            ir.Message(role="user", parts=[
                ir.ToolResult(call_id="toolu_1", content=[ir.Text("taken"), ir.Image(media_type="image/jpeg",
                                                                                      data="/9j/")], is_error=True),
                ir.Text("and?"),
            ]),
        ],
        tools=[ir.Tool(name="shot", parameters={"type": "object"}),
               ir.Tool(name="web_search", kind="web_search_20250305", raw={"type": "web_search_20250305"}),
               ir.Tool(name="apply_patch", kind="custom", description="patch",
                       raw={"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}})],
        tool_choice=ir.ToolChoice(mode="required", parallel=True),
        metadata={"user_id": "abc", "other": 1},
        top_k=40,
        stop=["x", "y"],
    )
    encoded = DIALECT.encode_request(request)
    assert encoded["messages"] == [
        # Foreign extras (unkeyed cache_control) are not ours to send.
        {"role": "system", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "calling", "reasoning_content": "hmm",
         "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "shot", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "taken"},
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
            {"type": "text", "text": "and?"},
        ]},
    ]
    assert encoded["tools"] == [
        {"type": "function", "function": {"name": "shot", "parameters": {"type": "object"}}},
        {"type": "custom", "custom": {"name": "apply_patch", "description": "patch", "format": {"type": "grammar"}}},
    ]
    assert encoded["tool_choice"] == "required" and encoded["parallel_tool_calls"] is True
    assert encoded["user"] == "abc"
    assert encoded["stop"] == ["x", "y"]
    blob = json.dumps(encoded)
    for secret in ("EqQB", "opaque", "gsig", "top_k", "cache_control"):
        assert secret not in blob


def test_tool_choice_needs_tools() -> None:
    encoded = DIALECT.encode_request(_ir_request(tool_choice=ir.ToolChoice(mode="none", parallel=False)))
    assert "tool_choice" not in encoded and "parallel_tool_calls" not in encoded and "tools" not in encoded


def test_parallel_only_creates_auto_choice() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "parallel_tool_calls": True,
            "tools": [{"type": "function", "function": {"name": "f"}}]}
    request = DIALECT.decode_request(body)
    assert request.tool_choice == ir.ToolChoice(mode="auto", parallel=True)
    assert DIALECT.decode_request(DIALECT.encode_request(request)) == request


def test_custom_tool_choice_round_trips() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "custom", "custom": {"name": "g"}}],
            "tool_choice": {"type": "custom", "custom": {"name": "g"}}}
    request = DIALECT.decode_request(body)
    assert request.tool_choice == ir.ToolChoice(mode="tool", name="g")
    assert DIALECT.encode_request(request)["tool_choice"] == body["tool_choice"]


def test_unknown_tool_choice_kept_for_chat_only() -> None:
    allowed = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": allowed}
    request = DIALECT.decode_request(body)
    assert request.tool_choice is None
    assert DIALECT.encode_request(request)["tool_choice"] == allowed


@pytest.mark.parametrize("fmt", [{"type": "text"}, {"type": "json_object"}])
def test_simple_response_formats(fmt: dict[str, Any]) -> None:
    request = DIALECT.decode_request({"model": "m", "messages": [{"role": "user", "content": "x"}],
                                      "response_format": fmt})
    assert request.response_format == ir.ResponseFormat(type=fmt["type"])
    assert request.extensions == {}
    assert DIALECT.encode_request(request)["response_format"] == fmt


def test_stop_list_and_bare_string_image_url() -> None:
    request = DIALECT.decode_request({"model": "m", "stop": ["a", "b"], "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": "https://x/y.png"}]}]})
    assert request.stop == ["a", "b"]
    assert request.messages[0].parts == [ir.Image(url="https://x/y.png")]


# -- requests: malformed ------------------------------------------------------------

MALFORMED = [
    (None, "JSON object"),
    ([], "JSON object"),
    ("text", "JSON object"),
    (3, "JSON object"),
    ({}, "model"),
    ({"model": 5, "messages": []}, "model"),
    ({"model": "m"}, "messages"),
    ({"model": "m", "messages": {}}, "messages"),
    ({"model": "m", "messages": []}, "messages"),
    ({"model": "m", "messages": ["hi"]}, "messages[0]"),
    ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role"),
    ({"model": "m", "messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
    ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
    ({"model": "m", "messages": [{"role": "tool", "tool_call_id": "c", "content": None}]}, "messages[0].content"),
    ({"model": "m", "messages": [{"role": "system", "content": []}]}, "messages"),
    ({"model": "m", "messages": [{"role": "user", "content": [5]}]}, "messages[0].content[0]"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages[0].content[0]"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
     "messages[0].content[0].text"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "image_url.url"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "file", "file": "x"}]}]}, "file"),
    ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
    ({"model": "m", "messages": [{"role": "assistant", "tool_calls": {}}]}, "tool_calls"),
    ({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"type": "function"}]}]}, "tool_calls[0].id"),
    ({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}]},
     "tool_calls[0].function.name"),
    ({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "function": {"name": "f", "arguments": 3}}]}]}, "function.arguments"),
    ({"model": "m", "messages": [{"role": "assistant", "reasoning_content": 1}]}, "reasoning_content"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": {}}, "tools"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [1]}, "tools[0]"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]},
     "tools[0].function.name"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}],
      "tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]}, "parameters"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "custom"}]}, "custom.name"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"}, "tool_choice"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": 1}, "tool_choice"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "parallel_tool_calls": "yes"},
     "parallel_tool_calls"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "10"}, "max_tokens"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": True}, "max_tokens"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 1.5},
     "max_completion_tokens"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "top_p": False}, "top_p"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": 5}, "stop"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": ["a", 1]}, "stop"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream_options": []}, "stream_options"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": 1}},
     "include_usage"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": 3}, "reasoning_effort"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "enable_thinking": "on"}, "enable_thinking"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "thinking_budget": "1k"}, "thinking_budget"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": "json"}, "response_format"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema"}},
     "json_schema"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "user": 9}, "user"),
]


@pytest.mark.parametrize(("body", "field"), MALFORMED)
def test_malformed_requests_raise_dialect_error(body: Any, field: str) -> None:
    with pytest.raises(DialectError) as info:
        DIALECT.decode_request(body)
    assert field in info.value.message
    assert info.value.status == 400


def test_truncated_structures() -> None:
    whole = json.dumps(capture("qwen-code-tool-result.json"))
    for cut in range(0, len(whole), max(1, len(whole) // 40)):
        try:
            body = json.loads(whole[:cut])
        except ValueError:
            body = whole[:cut]  # the core would never pass a string, but the codec must cope
        with pytest.raises(DialectError):
            DIALECT.decode_request(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(json_values)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_json_only_dialect_errors(body: Any) -> None:
    try:
        DIALECT.decode_request(body)
    except DialectError:
        pass


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return value | json_values


parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": _maybe(st.text(max_size=5))}),
    st.fixed_dictionaries({"type": st.just("image_url"),
                           "image_url": _maybe(st.fixed_dictionaries({"url": st.sampled_from(
                               ["data:image/png;base64,AAA", "https://a/b.png", "data:;base64,", "data:x"])}))}),
    st.fixed_dictionaries({"type": st.just("file"), "file": _maybe(st.fixed_dictionaries(
        {}, optional={"file_data": st.sampled_from(["data:application/pdf;base64,JV", "JV"]),
                      "file_id": st.text(max_size=3), "filename": st.text(max_size=3)}))}),
    st.fixed_dictionaries({"type": st.sampled_from(["input_audio", "refusal", "zzz"])}),
    json_values,
)
tool_calls = st.lists(st.fixed_dictionaries(
    {"id": _maybe(st.sampled_from(["c1", "c2"]))},
    optional={"type": st.sampled_from(["function", "custom"]),
              "function": _maybe(st.fixed_dictionaries({"name": st.sampled_from(["f", "g"])},
                                                       optional={"arguments": _maybe(st.just('{"a":1}'))})),
              "custom": st.fixed_dictionaries({"name": st.just("g")}, optional={"input": st.text(max_size=4)})},
), max_size=3)
messages = st.lists(st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool"])},
    optional={"content": st.none() | st.text(max_size=5) | st.lists(parts, max_size=3),
              "tool_call_id": _maybe(st.sampled_from(["c1", "c2"])),
              "tool_calls": tool_calls,
              "reasoning_content": _maybe(st.text(max_size=4)),
              "name": st.text(max_size=3)},
), min_size=1, max_size=5)
bodies = st.fixed_dictionaries(
    {"model": _maybe(st.just("m")), "messages": messages},
    optional={
        "tools": _maybe(st.lists(st.one_of(
            st.fixed_dictionaries({"type": st.just("function"),
                                   "function": st.fixed_dictionaries({"name": st.sampled_from(["f", "g"])},
                                                                     optional={"strict": st.booleans()})}),
            st.fixed_dictionaries({"type": st.just("custom"), "custom": st.fixed_dictionaries({"name": st.just("g")})}),
            st.fixed_dictionaries({"type": st.text(max_size=4)}),
        ), max_size=2)),
        "tool_choice": _maybe(st.sampled_from(["auto", "none", "required", {"type": "function",
                                                                             "function": {"name": "f"}}])),
        "parallel_tool_calls": _maybe(st.booleans()),
        "max_tokens": _maybe(st.integers(0, 100)),
        "stop": _maybe(st.text(max_size=3)),
        "temperature": _maybe(st.floats(0, 2)),
        "reasoning_effort": _maybe(st.sampled_from(["none", "low", "high"])),
        "enable_thinking": _maybe(st.booleans()),
        "thinking_budget": _maybe(st.integers(-1, 50000)),
        "response_format": _maybe(st.sampled_from([{"type": "json_object"}, {"type": "zzz"},
                                                   {"type": "json_schema", "json_schema": {"name": "n"}}])),
        "stream": _maybe(st.booleans()),
        "stream_options": _maybe(st.fixed_dictionaries({}, optional={"include_usage": st.booleans()})),
        "user": _maybe(st.text(max_size=3)),
        "seed": st.integers(),
    },
)


@given(bodies)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_near_valid_bodies_decode_or_dialect_error_and_encode_stably(body: dict[str, Any]) -> None:
    try:
        request = DIALECT.decode_request(body)
    except DialectError:
        return
    encoded = DIALECT.encode_request(request)
    json.dumps(encoded)  # plain JSON
    again = DIALECT.decode_request(encoded)
    assert DIALECT.encode_request(again) == encoded
    assert again.model == request.model and again.tools == [t for t in request.tools]
    assert again.system == request.system


# -- complete responses ------------------------------------------------------------

QWEN_RESPONSE = {
    "id": "chatcmpl-abc", "object": "chat.completion", "created": 1700000000, "model": "qwen3-coder-plus",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": {
        "role": "assistant", "content": "Let me look.", "reasoning_content": "need the file",
        "tool_calls": [{"id": "call_9", "type": "function",
                        "function": {"name": "read_file", "arguments": "{\"file_path\":\"a\"}"}}]}}],
    "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160,
              "prompt_tokens_details": {"cached_tokens": 100}, "completion_tokens_details": {"reasoning_tokens": 9}},
    "system_fingerprint": "fp_1",
}


def test_decode_response() -> None:
    response = DIALECT.decode_response(QWEN_RESPONSE)
    assert response.id == "chatcmpl-abc" and response.model == "qwen3-coder-plus"
    assert response.parts == [
        ir.Thinking(text="need the file", origin=ir.OPENAI_CHAT),
        ir.Text("Let me look."),
        ir.ToolCall(id="call_9", name="read_file", arguments='{"file_path":"a"}'),
    ]
    assert response.stop_reason == "tool_use"
    assert response.usage == ir.Usage(input_tokens=120, output_tokens=40, cached_tokens=100, reasoning_tokens=9)
    assert response.extensions == {"openai-chat": {"created": 1700000000, "system_fingerprint": "fp_1"}}


def test_response_round_trip() -> None:
    encoded = DIALECT.encode_response(DIALECT.decode_response(QWEN_RESPONSE))
    assert encoded == {**QWEN_RESPONSE, "choices": [{**QWEN_RESPONSE["choices"][0], "message": {
        **QWEN_RESPONSE["choices"][0]["message"], "refusal": None}}]}


@pytest.mark.parametrize(("finish", "stop"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal"), ("tool_calls", "tool_use"),
    (None, "end_turn"), ("something_new", "end_turn"),
])
def test_finish_reason_mapping(finish: str | None, stop: str) -> None:
    body = {"id": "x", "model": "m", "choices": [{"index": 0, "message": {"content": "a"}, "finish_reason": finish}]}
    assert DIALECT.decode_response(body).stop_reason == stop


def test_tool_calls_win_over_stop() -> None:
    body = {"choices": [{"message": {"content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, "finish_reason": "stop"}]}
    assert DIALECT.decode_response(body).stop_reason == "tool_use"


@pytest.mark.parametrize(("stop", "finish"), sorted(STOP_TO_FINISH.items()))
def test_encode_response_finish_reasons(stop: str, finish: str) -> None:
    response = ir.Response(id="msg_1", model="client-model", parts=[ir.Text("hi")], stop_reason=stop)
    body = DIALECT.encode_response(response)
    assert body["choices"][0]["finish_reason"] == finish
    assert body["id"] == "chatcmpl-msg_1" and body["model"] == "client-model"
    assert body["object"] == "chat.completion" and isinstance(body["created"], int)


def test_encode_foreign_response() -> None:
    response = ir.Response(id="msg_1", model="client", stop_reason="end_turn", parts=[
        ir.Thinking(text="a", signature="sig", origin=ir.ANTHROPIC),
        ir.Thinking(text="b", origin=ir.GEMINI),
        ir.Text("x"), ir.Text("y"),
        ir.ToolCall(id="toolu_1", name="f", arguments='{"k":1}'),
    ], usage=ir.Usage(input_tokens=10, output_tokens=5, cached_tokens=3, cache_write_tokens=2, reasoning_tokens=1))
    body = DIALECT.encode_response(response)
    message = body["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "xy", "refusal": None, "reasoning_content": "ab",
                       "tool_calls": [{"id": "toolu_1", "type": "function",
                                       "function": {"name": "f", "arguments": '{"k":1}'}}]}
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                             "prompt_tokens_details": {"cached_tokens": 3},
                             "completion_tokens_details": {"reasoning_tokens": 1}}
    assert "sig" not in json.dumps(body)


def test_empty_response_content_is_empty_string() -> None:
    body = DIALECT.encode_response(ir.Response(id="", model="m", stop_reason="max_tokens"))
    assert body["choices"][0]["message"]["content"] == ""
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["id"].startswith("chatcmpl-") and len(body["id"]) > len("chatcmpl-")


def test_refusal_round_trips() -> None:
    body = {"id": "chatcmpl-r", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": None, "refusal": "I can't."},
         "finish_reason": "stop"}]}
    response = DIALECT.decode_response(body)
    assert [p.text for p in response.parts if isinstance(p, ir.Text)] == ["I can't."]
    message = DIALECT.encode_response(response)["choices"][0]["message"]
    assert message["refusal"] == "I can't." and message["content"] == ""


@pytest.mark.parametrize("body", [None, [], "x", {"error": {"message": "boom"}}, {"choices": 5},
                                  {"choices": [{"message": {"tool_calls": 7}}]}])
def test_decode_response_garbage(body: Any) -> None:
    try:
        response = DIALECT.decode_response(body)
    except DialectError as exc:
        assert exc.status == 502
    else:
        assert response.parts == []


# -- stream encoder ------------------------------------------------------------------

SCRIPT: list[ir.Event] = [
    ir.MessageStart(id="msg_1", model="upstream-model", usage=ir.Usage(input_tokens=10, cached_tokens=4)),
    ir.BlockStart(0, "thinking"),
    ir.BlockDelta(0, "thinking", "Let me think"),
    ir.BlockDelta(0, "signature", "sig==", origin=ir.ANTHROPIC),
    ir.BlockStop(0),
    ir.BlockStart(1, "text"),
    ir.BlockDelta(1, "text", "Hi "),
    ir.BlockDelta(1, "text", "there"),
    ir.BlockStop(1),
    ir.BlockStart(2, "tool_call", id="call_a", name="read"),
    ir.BlockStart(3, "tool_call", id="call_b", name="glob"),
    ir.BlockDelta(2, "arguments", '{"p"'),
    ir.BlockDelta(3, "arguments", '{"g":"*"}'),
    ir.BlockDelta(2, "arguments", ':"a"}'),
    ir.BlockStop(2),
    ir.BlockStop(3),
    ir.MessageDelta(stop_reason="end_turn", usage=ir.Usage(input_tokens=10, output_tokens=20, cached_tokens=4,
                                                           reasoning_tokens=5)),
    ir.MessageStop(),
]


def _client(include_usage: bool = True) -> ir.Request:
    return ir.Request(model="client-model", stream=True, include_usage=include_usage)


def _run(events: list[ir.Event], request: ir.Request, sse: bool = True) -> tuple[list[bytes], bytes]:
    encoder = DIALECT.stream_encoder(request, sse=sse)
    return [encoder.encode(e) for e in events], encoder.finish()


def test_stream_encoder_frame_by_frame() -> None:
    per_event, tail = _run(SCRIPT, _client())
    assert tail == b""
    payloads = frames(b"".join(per_event))
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    first = chunks[0]
    assert first["id"].startswith("chatcmpl-")
    for chunk in chunks:
        assert chunk["id"] == first["id"] and chunk["created"] == first["created"]
        assert chunk["model"] == "client-model" and chunk["object"] == "chat.completion.chunk"

    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], "usage": None}

    body = [{k: v for k, v in c.items() if k not in ("id", "created", "model", "object")} for c in chunks]
    assert body == [
        choice({"role": "assistant", "content": ""}),
        choice({"reasoning_content": "Let me think"}),
        choice({"content": "Hi "}),
        choice({"content": "there"}),
        choice({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                                "function": {"name": "read", "arguments": ""}}]}),
        choice({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                                "function": {"name": "glob", "arguments": ""}}]}),
        choice({"tool_calls": [{"index": 0, "function": {"arguments": '{"p"'}}]}),
        choice({"tool_calls": [{"index": 1, "function": {"arguments": '{"g":"*"}'}}]}),
        choice({"tool_calls": [{"index": 0, "function": {"arguments": ':"a"}'}}]}),
        choice({}, "tool_calls"),  # a tool call was emitted: tool_calls whatever the upstream said
        {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30,
                                  "prompt_tokens_details": {"cached_tokens": 4},
                                  "completion_tokens_details": {"reasoning_tokens": 5}}},
    ]
    # Which event produced which frames.
    counts = [len(frames(b)) if b else 0 for b in per_event]
    assert counts == [1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 2]


def test_stream_encoder_without_usage() -> None:
    per_event, _ = _run(SCRIPT, _client(include_usage=False))
    payloads = frames(b"".join(per_event))
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert payloads[-1] == "[DONE]"
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)


@pytest.mark.parametrize(("stop", "finish"), sorted(STOP_TO_FINISH.items()))
def test_stream_encoder_stop_reasons(stop: str, finish: str) -> None:
    events = [ir.MessageStart(id="x", model="m"), ir.BlockStart(0, "text"), ir.BlockDelta(0, "text", "a"),
              ir.BlockStop(0), ir.MessageDelta(stop_reason=stop, usage=ir.Usage(output_tokens=1)), ir.MessageStop()]
    payloads = frames(b"".join(_run(events, _client())[0]))
    assert payloads[-1] == "[DONE]"
    finals = [json.loads(p) for p in payloads[:-1]]
    assert finals[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}
    assert finals[-1]["choices"] == [] and finals[-1]["usage"]["completion_tokens"] == 1


def test_stream_encoder_error_mid_stream() -> None:
    error = ir.ErrorInfo(status=529, message="Overloaded")
    encoder = DIALECT.stream_encoder(_client())
    out = encoder.encode(ir.MessageStart(id="m", model="x"))
    out += encoder.encode(ir.BlockStart(0, "text")) + encoder.encode(ir.BlockDelta(0, "text", "par"))
    out += encoder.encode(ir.StreamError(error))
    assert encoder.encode(ir.MessageStop()) == b""
    assert encoder.finish() == b""
    payloads = frames(out)
    assert "[DONE]" not in payloads
    assert json.loads(payloads[-1]) == {"error": {"message": "Overloaded", "type": "server_error",
                                                  "code": "internal_server_error"}}


def test_stream_encoder_error_first_and_code_kept() -> None:
    error = ir.ErrorInfo(status=429, message="slow down", code="insufficient_quota")
    per_event, _ = _run([ir.StreamError(error)], _client())
    assert frames(per_event[0]) == ['{"error":{"message":"slow down","type":"rate_limit_error",'
                                    '"code":"insufficient_quota"}}']


def test_stream_encoder_synthesizes_start_and_call() -> None:
    events = [ir.BlockStart(0, "text"), ir.BlockDelta(0, "text", "a"), ir.BlockDelta(1, "arguments", "{}"),
              ir.MessageStop()]
    payloads = frames(b"".join(_run(events, _client(include_usage=False))[0]))
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[1]["choices"][0]["delta"] == {"content": "a"}
    start = chunks[2]["choices"][0]["delta"]["tool_calls"][0]
    assert start["index"] == 0 and start["id"].startswith("call_") and start["function"]["arguments"] == ""
    assert chunks[3]["choices"][0]["delta"] == {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}
    assert chunks[4]["choices"][0]["finish_reason"] == "tool_calls"
    assert len(chunks) == 5 and sum(1 for c in chunks if "role" in c["choices"][0]["delta"]) == 1


def test_stream_encoder_ndjson_mode() -> None:
    per_event, tail = _run(SCRIPT, _client(), sse=False)
    raw = b"".join(per_event) + tail
    lines = raw.decode().splitlines()
    assert all(line.startswith("{") for line in lines)
    assert [json.loads(line)["choices"] == [] for line in lines].count(True) == 1
    assert b"[DONE]" not in raw and b"data:" not in raw


def test_stream_encoder_custom_tool() -> None:
    events = [ir.BlockStart(0, "tool_call", id="c", name="patch", tool_kind="custom"),
              ir.BlockDelta(0, "arguments", "*** Begin"), ir.MessageStop()]
    chunks = [json.loads(p) for p in frames(b"".join(_run(events, _client(False))[0]))[:-1]]
    assert chunks[1]["choices"][0]["delta"]["tool_calls"][0] == {
        "index": 0, "id": "c", "type": "custom", "custom": {"name": "patch", "input": ""}}


# -- stream decoder -------------------------------------------------------------------

def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "chatcmpl-q1", "object": "chat.completion.chunk", "created": 1,
                            "model": "qwen3-coder-plus"}
    body["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body.update(extra)
    return body


USAGE = {"prompt_tokens": 100, "completion_tokens": 30, "total_tokens": 130,
         "prompt_tokens_details": {"cached_tokens": 60}, "completion_tokens_details": {"reasoning_tokens": 12}}

QWEN_STREAM = sse_bytes(
    _chunk({"role": "assistant", "content": ""}, usage=None),
    _chunk({"reasoning_content": "思考"}),
    _chunk({"reasoning_content": " more"}),
    _chunk({"content": "Héllo "}),
    _chunk({"content": "wörld ✓"}),
    _chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                            "function": {"name": "read_file", "arguments": ""}}]}),
    _chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                            "function": {"name": "glob", "arguments": "{\"pat"}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"path\":"}}]}),
    _chunk({"tool_calls": [{"index": 1, "function": {"arguments": "tern\":\"*.py\"}"}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\"a.py\"}"}}]}, "tool_calls"),
    _chunk(None, usage=USAGE),
)

QWEN_EVENTS: list[ir.Event] = [
    ir.MessageStart(id="chatcmpl-q1", model="qwen3-coder-plus"),
    ir.BlockStart(0, "thinking"),
    ir.BlockDelta(0, "thinking", "思考"),
    ir.BlockDelta(0, "thinking", " more"),
    ir.BlockStop(0),
    ir.BlockStart(1, "text"),
    ir.BlockDelta(1, "text", "Héllo "),
    ir.BlockDelta(1, "text", "wörld ✓"),
    ir.BlockStop(1),
    ir.BlockStart(2, "tool_call", id="call_a", name="read_file"),
    ir.BlockStart(3, "tool_call", id="call_b", name="glob"),
    ir.BlockDelta(3, "arguments", '{"pat'),
    ir.BlockDelta(2, "arguments", '{"path":'),
    ir.BlockDelta(3, "arguments", 'tern":"*.py"}'),
    ir.BlockDelta(2, "arguments", '"a.py"}'),
    ir.BlockStop(2),
    ir.BlockStop(3),
    ir.MessageDelta(stop_reason="tool_use", usage=ir.Usage(input_tokens=100, output_tokens=30, cached_tokens=60,
                                                           reasoning_tokens=12)),
    ir.MessageStop(),
]


def test_stream_decoder_realistic() -> None:
    events, decoder = decode_all(QWEN_STREAM)
    assert events == QWEN_EVENTS
    assert decoder.finished
    response = collect(events)
    assert [json.loads(p.arguments) for p in response.parts if isinstance(p, ir.ToolCall)] == [
        {"path": "a.py"}, {"pattern": "*.py"}]


def test_stream_decoder_every_split_point() -> None:
    for cut in range(len(QWEN_STREAM) + 1):
        events, decoder = decode_all(QWEN_STREAM, [cut])
        assert events == QWEN_EVENTS, cut
        assert decoder.finished


def test_stream_decoder_byte_by_byte_crlf() -> None:
    data = QWEN_STREAM.replace(b"\n\n", b"\r\n\r\n")
    events, decoder = decode_all(data, list(range(len(data))))
    assert events == QWEN_EVENTS and decoder.finished


@given(st.lists(st.integers(0, len(QWEN_STREAM)), max_size=30))
@settings(max_examples=200)
def test_stream_decoder_random_splits(cuts: list[int]) -> None:
    assert decode_all(QWEN_STREAM, cuts)[0] == QWEN_EVENTS


def test_stream_decoder_feed_returns_events_as_they_complete() -> None:
    decoder = DIALECT.stream_decoder()
    first = sse_bytes(_chunk({"role": "assistant", "content": ""}), done=False)
    assert decoder.feed(first[:-1]) == []
    assert decoder.feed(first[-1:]) == [ir.MessageStart(id="chatcmpl-q1", model="qwen3-coder-plus")]
    assert decoder.feed(b": keep-alive\n\n") == []
    assert not decoder.finished


def test_stream_decoder_usage_before_done_and_finish_without_done() -> None:
    data = sse_bytes(_chunk({"content": "hi"}), _chunk({}, "length"), _chunk(None, usage=USAGE), done=False)
    events, decoder = decode_all(data)
    assert events[-2:] == [ir.MessageDelta(stop_reason="max_tokens", usage=ir.Usage(100, 30, 60, 0, 12)),
                           ir.MessageStop()]
    assert events[-3] == ir.BlockStop(0)
    assert decoder.finished


def test_stream_decoder_cut_without_finish() -> None:
    data = sse_bytes(_chunk({"content": "hi"}), done=False)
    events, decoder = decode_all(data + b"data: {\"choi")
    # a cut stream's open block ends at EOF (as in every codec); the message does not
    assert events == [ir.MessageStart(id="chatcmpl-q1", model="qwen3-coder-plus"), ir.BlockStart(0, "text"),
                      ir.BlockDelta(0, "text", "hi"), ir.BlockStop(0)]
    assert not decoder.finished


def test_stream_decoder_last_frame_without_blank_line() -> None:
    data = sse_bytes(_chunk({"content": "hi"}), _chunk({}, "stop"), done=False) + b"data: [DONE]"
    events, decoder = decode_all(data)
    assert events[-1] == ir.MessageStop() and decoder.finished
    assert sum(isinstance(e, ir.MessageStop) for e in events) == 1


def test_stream_decoder_in_stream_error() -> None:
    error = {"error": {"message": "Rate limit reached. Please try again in 1.5s.", "type": "requests",
                       "code": "rate_limit_exceeded", "param": None}}
    data = sse_bytes(_chunk({"content": "hi"}), error, _chunk({"content": "ignored"}))
    events, decoder = decode_all(data)
    assert decoder.finished
    assert isinstance(events[-1], ir.StreamError)
    assert events[-1].error == ir.ErrorInfo(status=429, message=error["error"]["message"], kind="rate_limit",
                                            code="rate_limit_exceeded", retry_after=1.5)
    assert not any(isinstance(e, (ir.MessageStop, ir.MessageDelta)) for e in events)
    assert all(getattr(e, "text", "") != "ignored" for e in events)


def test_stream_decoder_error_as_first_frame() -> None:
    events, decoder = decode_all(sse_bytes({"error": {"message": "bad key", "code": 401}}, done=False))
    assert events == [ir.StreamError(ir.ErrorInfo(status=401, message="bad key", code="401"))]
    assert decoder.finished


def test_stream_decoder_malformed_chunk() -> None:
    events, decoder = decode_all(sse_bytes(_chunk({"content": "a"}), "{not json"))
    assert isinstance(events[-1], ir.StreamError) and events[-1].error.status == 502
    assert decoder.finished


def test_stream_decoder_ignores_empty_chunks_and_other_choices() -> None:
    data = sse_bytes(
        {"id": "x", "choices": [], "usage": None},
        _chunk({"content": "a"}),
        {"id": "x", "choices": [{"index": 1, "delta": {"content": "other"}}, {"index": 0, "delta": {"content": "b"}}]},
        [1, 2],
        _chunk({}, "stop"),
    )
    events, _ = decode_all(data)
    assert [e.text for e in events if isinstance(e, ir.BlockDelta)] == ["a", "b"]
    assert events[-2] == ir.MessageDelta(stop_reason="end_turn", usage=None)


def test_stream_decoder_arguments_only_in_final_chunk() -> None:
    data = sse_bytes(_chunk({"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                                             "function": {"name": "f", "arguments": "{\"a\":1}"}}]}, "tool_calls"))
    events, _ = decode_all(data)
    assert events[1:4] == [ir.BlockStart(0, "tool_call", id="c1", name="f"), ir.BlockDelta(0, "arguments", '{"a":1}'),
                           ir.BlockStop(0)]


def test_stream_decoder_index_quirks() -> None:
    # Every call at index 0 with its own id; then an index-less fragment.
    data = sse_bytes(
        _chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}]}),
        _chunk({"tool_calls": [{"index": 0, "id": "c2", "function": {"name": "g", "arguments": "{\"x\""}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
        _chunk({"tool_calls": [{"id": "c3", "function": {"name": "h", "arguments": {"y": 2}}}]}, "stop"),
    )
    response = collect(decode_all(data)[0])
    assert [(p.id, p.name, p.arguments) for p in response.parts if isinstance(p, ir.ToolCall)] == [
        ("c1", "f", "{}"), ("c2", "g", '{"x":1}'), ("c3", "h", '{"y":2}')]
    assert response.stop_reason == "tool_use"


def test_stream_decoder_text_after_tool_is_new_block() -> None:
    data = sse_bytes(_chunk({"content": "a"}),
                     _chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f"}}]}),
                     _chunk({"content": "b", "reasoning": "r"}), _chunk({}, "tool_calls"))
    events, _ = decode_all(data)
    starts = [(e.index, e.kind) for e in events if isinstance(e, ir.BlockStart)]
    assert starts == [(0, "text"), (1, "tool_call"), (2, "thinking"), (3, "text")]
    stops = [e.index for e in events if isinstance(e, ir.BlockStop)]
    assert sorted(stops) == [0, 1, 2, 3]


def test_stream_decoder_done_only() -> None:
    events, decoder = decode_all(b"data: [DONE]\n\n")
    assert events == [ir.MessageStart(id="", model=""), ir.MessageDelta(stop_reason="end_turn"), ir.MessageStop()]
    assert decoder.finished


def test_decoder_event_invariants_on_realistic_stream() -> None:
    events, _ = decode_all(QWEN_STREAM)
    assert isinstance(events[0], ir.MessageStart)
    assert sum(isinstance(e, ir.MessageStart) for e in events) == 1
    started: set[int] = set()
    stopped: set[int] = set()
    for event in events:
        if isinstance(event, ir.BlockStart):
            assert event.index == len(started)
            started.add(event.index)
        elif isinstance(event, ir.BlockDelta):
            assert event.index in started and event.index not in stopped
        elif isinstance(event, ir.BlockStop):
            stopped.add(event.index)
    assert started == stopped


# -- encoder → decoder ---------------------------------------------------------------


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=6)
response_parts = st.lists(st.one_of(
    texts.map(ir.Text),
    texts.map(lambda t: ir.Thinking(text=t)),
    st.tuples(st.sampled_from(["f", "g"]), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)).map(
        lambda nt: ir.ToolCall(id="", name=nt[0], arguments=json.dumps(nt[1]))),
), max_size=5)


@given(response_parts, st.sampled_from(sorted(STOP_TO_FINISH)))
@settings(max_examples=150)
def test_encoder_output_decodes_back(parts: list[ir.Part], stop: str) -> None:
    for i, part in enumerate(parts):
        if isinstance(part, ir.ToolCall):
            part.id = f"call_{i}"
    response = ir.Response(id="chatcmpl-1", model="m", parts=parts, stop_reason=stop,
                           usage=ir.Usage(input_tokens=5, output_tokens=7, cached_tokens=1, reasoning_tokens=2))
    encoder = DIALECT.stream_encoder(_client())
    wire = b"".join(encoder.encode(e) for e in response_events(response)) + encoder.finish()
    events, decoder = decode_all(wire)
    assert decoder.finished
    back = collect(events)
    # Chat merges adjacent blocks of the same kind and puts tool calls last.
    def merged(items: list[ir.Part]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for p in items:
            kind, text = ("call", f"{p.id}:{p.name}:{p.arguments}") if isinstance(p, ir.ToolCall) else (
                p.type, p.text)  # type: ignore[union-attr]
            if out and out[-1][0] == kind and kind != "call":
                out[-1] = (kind, out[-1][1] + text)
            else:
                out.append((kind, text))
        return out
    assert merged(back.parts) == merged(parts)
    has_calls = any(isinstance(p, ir.ToolCall) for p in parts)
    expected_stop = "tool_use" if has_calls else ir.Response(id="", model="", stop_reason=stop).stop_reason
    expected_stop = {"stop_sequence": "end_turn", "pause_turn": "end_turn",
                     "context_window_exceeded": "max_tokens"}.get(expected_stop, expected_stop)
    assert back.stop_reason == expected_stop
    assert back.usage == response.usage
    assert back.id == "chatcmpl-1" and back.model == "client-model"


def test_encoder_and_decoder_keep_block_order_for_text_then_calls() -> None:
    response = DIALECT.decode_response(QWEN_RESPONSE)
    encoder = DIALECT.stream_encoder(_client())
    wire = b"".join(encoder.encode(e) for e in response_events(response))
    back = collect(decode_all(wire)[0])
    assert [p.type for p in back.parts] == ["thinking", "text", "tool_call"]
    assert attrs.evolve(back, id="", model="", extensions={}) == attrs.evolve(
        response, id="", model="", extensions={}, parts=[attrs.evolve(response.parts[0], origin=None),
                                                         *response.parts[1:]])


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "body", "message", "code", "kind", "retry"), [
    (429, b'{"error":{"message":"Rate limit reached for gpt-4o. Please try again in 1.234s.","type":"tokens",'
          b'"param":null,"code":"rate_limit_exceeded"}}',
     "Rate limit reached for gpt-4o. Please try again in 1.234s.", "rate_limit_exceeded", "rate_limit", 1.234),
    (429, b'{"error":{"message":"Limit. Please try again in 20ms.","type":"requests","code":"rate_limit_exceeded"}}',
     "Limit. Please try again in 20ms.", "rate_limit_exceeded", "rate_limit", 0.02),
    (429, b'{"error":{"message":"Please try again in 6m0s.","code":"rate_limit_exceeded"}}',
     "Please try again in 6m0s.", "rate_limit_exceeded", "rate_limit", 360.0),
    (429, b'{"error":{"code":"rate_limit_exceeded","message":"Qwen rate limit: 60 requests/minute exceeded, '
          b'retry after 12s","type":"rate_limit_exceeded"}}',
     "Qwen rate limit: 60 requests/minute exceeded, retry after 12s", "rate_limit_exceeded", "rate_limit", 12.0),
    (403, b'{"error":{"code":"insufficient_quota","message":"You exceeded your current quota",'
          b'"type":"insufficient_quota"}}',
     "You exceeded your current quota", "insufficient_quota", "rate_limit", None),
    (400, b'{"error":{"code":"invalid_parameter_error","param":null,"message":"parameter.enable_thinking must be '
          b'set to false for non-streaming calls","type":"invalid_request_error"},"id":"chatcmpl-1",'
          b'"request_id":"r"}',
     "parameter.enable_thinking must be set to false for non-streaming calls", "invalid_parameter_error",
     "invalid_request", None),
    (401, b'{"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":"r"}',
     "Invalid API-key provided.", "InvalidApiKey", "authentication", None),
    (400, b'{"object":"error","message":"max_tokens too large","type":"BadRequestError","param":null,"code":400}',
     "max_tokens too large", "400", "invalid_request", None),
    (422, b'{"detail":"Unprocessable"}', "Unprocessable", None, "invalid_request", None),
    (404, b'{"error":"model not found"}', "model not found", None, "not_found", None),
    (502, b"<html><body>Bad Gateway</body></html>", "<html><body>Bad Gateway</body></html>", None, "api_error", None),
    (503, b"", "upstream returned HTTP 503", None, "overloaded", None),
    (500, b"null", "null", None, "api_error", None),
    (500, b'[{"error":{"message":"list shape","code":"x"}}]', "list shape", "x", "api_error", None),
])
def test_decode_error(status: int, body: bytes, message: str, code: str | None, kind: str,
                      retry: float | None) -> None:
    error = DIALECT.decode_error(status, body)
    assert error == ir.ErrorInfo(status=status, message=message, kind=kind, code=code, retry_after=retry)


@given(st.binary(max_size=64))
@settings(max_examples=200)
def test_decode_error_never_raises_on_bytes(body: bytes) -> None:
    error = DIALECT.decode_error(500, body)
    assert error.status == 500 and isinstance(error.message, str) and error.message


@given(json_values)
@settings(max_examples=200)
def test_decode_error_never_raises_on_json(value: Any) -> None:
    error = DIALECT.decode_error(429, json.dumps(value).encode())
    assert error.kind == "rate_limit" and error.message


@pytest.mark.parametrize(("message", "seconds"), [
    ("Please try again in 1.234s.", 1.234), ("Please try again in 20ms.", 0.02), ("try again in 1m30s", 90.0),
    ("Retry after 5 seconds", 5.0), ("retry after 2", 2.0), ("try again in 1h", 3600.0), ("try again later", None),
    ("no hint here", None),
])
def test_retry_hints(message: str, seconds: float | None) -> None:
    assert retry_after_from_message(message) == pytest.approx(seconds) if seconds else (
        retry_after_from_message(message) is None)


@pytest.mark.parametrize(("status", "type_", "code"), [
    (400, "invalid_request_error", None),
    (401, "authentication_error", "invalid_api_key"),
    (402, "invalid_request_error", None),
    (403, "permission_error", "insufficient_quota"),
    (404, "invalid_request_error", "model_not_found"),
    (413, "invalid_request_error", None),
    (429, "rate_limit_error", "rate_limit_exceeded"),
    (500, "server_error", "internal_server_error"),
    (503, "server_error", "internal_server_error"),
    (504, "server_error", "internal_server_error"),
    (529, "server_error", "internal_server_error"),
])
def test_error_body_shapes(status: int, type_: str, code: str | None) -> None:
    body = DIALECT.error_body(ir.ErrorInfo(status=status, message="m"))
    assert body == {"error": {"message": "m", "type": type_, "param": None, "code": code}}
    # What we write we can read back (the core classifies its own error bodies).
    back = DIALECT.decode_error(status, json.dumps(body).encode())
    assert back.message == "m" and back.code == code and back.kind == ir.error_kind_for_status(status)


def test_error_body_keeps_explicit_code() -> None:
    body = DIALECT.error_body(ir.ErrorInfo(status=404, message="gone", code="context_length_exceeded"))
    assert body["error"]["code"] == "context_length_exceeded"
    assert body["error"]["type"] == "invalid_request_error"
