"""Tests for the Anthropic Messages codec (polyrelay.dialects.anthropic)."""

from __future__ import annotations

import base64
import copy
import importlib
import itertools
import json
import re
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyrelay import ir
from polyrelay.aggregate import collect, response_events
from polyrelay.dialects.anthropic import DIALECT, STOP_REASON_FROM_IR, STOP_REASON_TO_IR
from polyrelay.dialects.base import DialectError
from polyrelay.sse import SSEParser

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"
ANTHROPIC_CAPTURES = ["claude-code.json", "claude-code-tool-result.json", "sdk-anthropic-python.json"]


def capture(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / name).read_text())["body"]


def frames(data: bytes) -> list[tuple[str | None, Any]]:
    """Parse SSE bytes into (event name, decoded JSON data) pairs."""
    parser = SSEParser()
    events = parser.feed(data) + parser.close()
    return [(e.event, json.loads(e.data)) for e in events]


def sse(*payloads: dict[str, Any]) -> bytes:
    """An upstream Anthropic stream: event line named after the payload type."""
    return b"".join(f"event: {p['type']}\ndata: {json.dumps(p)}\n\n".encode() for p in payloads)


def body(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 1024,
                            "messages": [{"role": "user", "content": "hi"}]}
    base.update(fields)
    return base


def roundtrip(request_body: dict[str, Any]) -> tuple[ir.Request, dict[str, Any], ir.Request]:
    first = DIALECT.decode_request(request_body)
    encoded = DIALECT.encode_request(first)
    return first, encoded, DIALECT.decode_request(encoded)


# -- identity -----------------------------------------------------------------------------------


def test_name_and_keepalive() -> None:
    assert DIALECT.name == ir.ANTHROPIC == "anthropic"
    assert DIALECT.keepalive_frame == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert frames(DIALECT.keepalive_frame) == [("ping", {"type": "ping"})]


# -- captures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ANTHROPIC_CAPTURES)
def test_capture_roundtrip_is_lossless(name: str) -> None:
    original = capture(name)
    first, encoded, second = roundtrip(copy.deepcopy(original))
    assert first == second
    # Re-encoding gives the client's body back, except an explicit "is_error": false (the default).
    for message in original["messages"]:
        for block in message["content"] if isinstance(message["content"], list) else []:
            if block.get("is_error") is False:
                del block["is_error"]
    assert encoded == original


def test_claude_code_capture_decodes_every_feature() -> None:
    request = DIALECT.decode_request(capture("claude-code.json"))
    assert request.model == "claude-opus-4-8"
    assert request.stream is True
    assert request.max_tokens == 64000
    assert [m.role for m in request.messages] == ["user", "system"]
    assert request.messages[0].parts[1] == ir.Text("say hi", extras={"cache_control": {"type": "ephemeral"}})
    assert request.messages[1].parts[0].text.startswith("Available agent types")
    assert len(request.system) == 3
    assert request.system[0].extras == {}
    assert request.system[1].extras == {"cache_control": {"type": "ephemeral"}}
    assert len(request.tools) == 25
    assert all(t.kind == "function" and t.parameters and t.parameters["type"] == "object" for t in request.tools)
    assert request.thinking == ir.ThinkingConfig(enabled=True, adaptive=True, effort="high")
    context_management = capture("claude-code.json")["context_management"]
    assert request.extensions == {"anthropic": {"context_management": context_management}}
    assert request.metadata["user_id"].startswith('{"device_id"')


def test_tool_result_capture() -> None:
    request = DIALECT.decode_request(capture("claude-code-tool-result.json"))
    call = request.messages[2].parts[0]
    result = request.messages[3].parts[0]
    assert isinstance(call, ir.ToolCall)
    assert call.id == "toolu_dbbaf64aded14374afdb2ec5" and call.name == "Bash"
    assert json.loads(call.arguments) == {"command": "echo hello-from-tool", "description": "echo test"}
    assert result == ir.ToolResult(call_id=call.id, content=[ir.Text("hello-from-tool")], is_error=False,
                                   extras={"cache_control": {"type": "ephemeral"}})


def test_sdk_capture() -> None:
    request = DIALECT.decode_request(capture("sdk-anthropic-python.json"))
    assert request.messages == [ir.Message("user", [ir.Text("say hi")])]
    assert request.tools == [ir.Tool(name="get_weather", description="Get weather for a city",
                                     parameters={"type": "object", "properties": {"city": {"type": "string"}},
                                                 "required": ["city"]})]
    assert request.thinking is None and request.system == [] and request.extensions == {}


# -- request decoding and encoding ---------------------------------------------------------------


def test_content_blocks_roundtrip() -> None:
    png = base64.b64encode(b"\x89PNG....").decode()
    messages = [
        {"role": "user", "content": [
            {"type": "text", "text": "look", "citations": None},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
            {"type": "image", "source": {"type": "url", "url": "https://x/y.jpg"},
             "cache_control": {"type": "ephemeral"}},
            {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
             "title": "a.pdf", "context": "ctx"},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
            {"type": "document", "source": {"type": "url", "url": "https://x/doc.pdf"}},
            {"type": "document", "source": {"type": "file", "file_id": "file_2"}},
            {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "c"}]}},
        ]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig-a"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "calling"},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, {"b": None}]}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True, "content": [
                {"type": "text", "text": "bad"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
                {"type": "search_result", "source": "s", "title": "t", "content": []},
            ]},
            {"type": "tool_result", "tool_use_id": "toolu_2"},
        ]},
    ]
    first, encoded, second = roundtrip(body(messages=messages))
    assert first == second
    assert encoded["messages"] == messages
    user, assistant, results = first.messages
    assert user.parts[1] == ir.Image(media_type="image/png", data=png)
    assert user.parts[2] == ir.Image(url="https://x/y.jpg", extras={"cache_control": {"type": "ephemeral"}})
    assert user.parts[4] == ir.File(media_type="application/pdf", data="JVBERi0=", filename="a.pdf",
                                    extras={"anthropic": {"context": "ctx"}})
    # A text document becomes base64 in the IR, as every other file is.
    assert user.parts[5] == ir.File(media_type="text/plain", data=base64.b64encode(b"plain words").decode())
    assert user.parts[7].file_id == "file_2"
    assert assistant.parts[0] == ir.Thinking("hmm", signature="sig-a", origin="anthropic")
    assert assistant.parts[1] == ir.Thinking(signature="opaque", origin="anthropic", redacted=True)
    assert results.parts[0].is_error is True
    assert results.parts[0].content[0] == ir.Text("bad")
    assert results.parts[0].extras["anthropic_blocks"] == [[2, messages[2]["content"][0]["content"][2]]]


def test_unknown_blocks_keep_their_position_and_stay_out_of_parts() -> None:
    server_use = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}}
    server_result = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}
    messages = [{"role": "user", "content": "q"},
                {"role": "assistant", "content": [{"type": "text", "text": "a"}, server_use, server_result,
                                                  {"type": "text", "text": "b"}]},
                {"role": "user", "content": [{"type": "container_upload", "file_id": "f"}]}]
    first, encoded, second = roundtrip(body(messages=messages))
    assert first == second
    assert encoded["messages"] == messages
    assistant = first.messages[1]
    assert [p.text for p in assistant.parts] == ["a", "b"]  # type: ignore[union-attr]
    assert assistant.extras["anthropic_blocks"] == [[1, server_use], [2, server_result]]
    assert first.messages[2].parts == []


def test_system_forms() -> None:
    assert DIALECT.decode_request(body(system="be brief")).system == [ir.Text("be brief")]
    blocks = [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
              {"type": "mystery", "x": 1}, {"type": "text", "text": "b"}]
    first, encoded, second = roundtrip(body(system=blocks))
    assert first == second and encoded["system"] == blocks
    assert first.system == [ir.Text("a", extras={"cache_control": {"type": "ephemeral", "ttl": "1h"}}), ir.Text("b")]
    assert DIALECT.encode_request(DIALECT.decode_request(body(system="s")))["system"] == "s"


def test_system_role_messages_and_unknown_roles() -> None:
    messages = [{"role": "user", "content": "a"}, {"role": "system", "content": "reminder"},
                {"role": "developer", "content": "future role", "name": "x"}]
    first, encoded, second = roundtrip(body(messages=messages))
    assert first == second and encoded["messages"] == messages
    assert [m.role for m in first.messages] == ["user", "system", "user"]
    assert first.messages[2].extras == {"anthropic": {"role": "developer", "name": "x"}}


def test_sampling_stop_metadata_and_extensions() -> None:
    request_body = body(temperature=0.3, top_k=40, stop_sequences=["END"], stream=True,
                        metadata={"user_id": "u1"}, service_tier="auto", speed="fast",
                        context_management={"edits": []}, output_config={"effort": "low", "task_budget": 5})
    first, encoded, second = roundtrip(request_body)
    assert first == second
    assert (first.temperature, first.top_p, first.top_k, first.stop) == (0.3, None, 40, ["END"])
    assert first.metadata == {"user_id": "u1"} and first.stream is True
    assert first.extensions["anthropic"] == {"service_tier": "auto", "speed": "fast",
                                             "context_management": {"edits": []}, "output_config": {"task_budget": 5}}
    assert encoded["output_config"] == {"task_budget": 5, "effort": "low"}
    assert encoded["service_tier"] == "auto" and encoded["speed"] == "fast"


def test_metadata_only_sends_user_id() -> None:
    request = ir.Request(model="m", messages=[ir.Message("user", [ir.Text("x")])],
                         metadata={"user_id": "u", "trace": "openai-only"})
    assert DIALECT.encode_request(request)["metadata"] == {"user_id": "u"}
    assert "metadata" not in DIALECT.encode_request(ir.Request(model="m", metadata={"trace": "t"}))


@pytest.mark.parametrize(("thinking", "output_config", "expected"), [
    ({"type": "enabled", "budget_tokens": 2048}, None, ir.ThinkingConfig(budget=2048)),
    ({"type": "disabled"}, None, ir.ThinkingConfig(enabled=False)),
    ({"type": "adaptive"}, {"effort": "max"}, ir.ThinkingConfig(adaptive=True, effort="max")),
    (None, {"effort": "low"}, ir.ThinkingConfig(enabled=False, effort="low")),
    ({"type": "enabled", "budget_tokens": 4096}, {"effort": "medium"}, ir.ThinkingConfig(budget=4096, effort="medium")),
])
def test_thinking_config_roundtrip(thinking: Any, output_config: Any, expected: ir.ThinkingConfig) -> None:
    request_body = body(max_tokens=8000)
    if thinking is not None:
        request_body["thinking"] = thinking
    if output_config is not None:
        request_body["output_config"] = output_config
    first, _, second = roundtrip(request_body)
    assert first.thinking == expected
    assert second == first


def test_thinking_display_is_carried() -> None:
    first, encoded, second = roundtrip(body(thinking={"type": "adaptive", "display": "omitted"}))
    assert first == second
    assert encoded["thinking"] == {"display": "omitted", "type": "adaptive"}
    # When thinking cannot be sent (a forced tool), its leftovers do not make a bare "thinking" object.
    forced = body(thinking={"type": "adaptive", "display": "omitted"}, output_config={"effort": "low", "x": 1},
                  tools=[{"name": "f", "input_schema": {"type": "object"}}], tool_choice={"type": "any"})
    encoded = DIALECT.encode_request(DIALECT.decode_request(forced))
    assert "thinking" not in encoded and encoded["output_config"] == {"x": 1}


def _thinking_request(config: ir.ThinkingConfig, **fields: Any) -> dict[str, Any]:
    request = ir.Request(model="claude-x", messages=[ir.Message("user", [ir.Text("hi")])], thinking=config, **fields)
    return DIALECT.encode_request(request)


@pytest.mark.parametrize(("config", "max_tokens", "thinking", "effort"), [
    (ir.ThinkingConfig(effort="medium"), None, {"type": "adaptive"}, "medium"),
    (ir.ThinkingConfig(effort="minimal"), None, {"type": "adaptive"}, "low"),
    (ir.ThinkingConfig(effort="xhigh"), None, {"type": "adaptive"}, "high"),
    (ir.ThinkingConfig(effort="auto"), None, {"type": "adaptive"}, None),
    (ir.ThinkingConfig(effort="none"), None, {"type": "disabled"}, None),
    (ir.ThinkingConfig(budget=0), None, {"type": "disabled"}, None),
    (ir.ThinkingConfig(budget=-1), None, {"type": "adaptive"}, None),
    (ir.ThinkingConfig(include_thoughts=True), None, {"type": "adaptive"}, None),
    (ir.ThinkingConfig(budget=500), 4000, {"type": "enabled", "budget_tokens": 1024}, None),
    (ir.ThinkingConfig(budget=50000), 8000, {"type": "enabled", "budget_tokens": 7999}, None),
    (ir.ThinkingConfig(budget=50000), None, {"type": "enabled", "budget_tokens": 31999}, None),
    (ir.ThinkingConfig(budget=2000), 1000, None, None),
])
def test_thinking_encoding_from_other_dialects(config: ir.ThinkingConfig, max_tokens: int | None,
                                               thinking: dict[str, Any] | None, effort: str | None) -> None:
    encoded = _thinking_request(config, max_tokens=max_tokens)
    assert encoded.get("thinking") == thinking
    assert encoded.get("output_config", {}).get("effort") == effort
    assert encoded["max_tokens"] == (max_tokens or 32000)


def test_thinking_constraints() -> None:
    tools = [ir.Tool(name="f", parameters={"type": "object"})]
    forced = _thinking_request(ir.ThinkingConfig(effort="high"), tools=tools, tool_choice=ir.ToolChoice("required"))
    assert "thinking" not in forced and "output_config" not in forced
    assert forced["tool_choice"] == {"type": "any"}
    sampled = _thinking_request(ir.ThinkingConfig(budget=4096), temperature=0.2, top_p=0.5, top_k=5)
    assert "temperature" not in sampled and "top_p" not in sampled and "top_k" not in sampled
    allowed = _thinking_request(ir.ThinkingConfig(budget=4096), top_p=0.95)
    assert allowed["top_p"] == 0.95
    allowed = _thinking_request(ir.ThinkingConfig(budget=4096), temperature=1, top_k=3)
    assert allowed["temperature"] == 1 and "top_k" not in allowed
    off = _thinking_request(ir.ThinkingConfig(enabled=False), temperature=0.2, top_k=5)
    assert (off["temperature"], off["top_k"]) == (0.2, 5)


def test_temperature_wins_over_top_p() -> None:
    first, encoded, _ = roundtrip(body(temperature=1, top_p=0.95))
    assert (first.temperature, first.top_p) == (1, 0.95)
    assert encoded["temperature"] == 1 and "top_p" not in encoded
    assert roundtrip(body(top_p=0.5))[1]["top_p"] == 0.5


def test_max_tokens_default_and_count_tokens_body() -> None:
    request = DIALECT.decode_request({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert request.max_tokens is None
    assert DIALECT.encode_request(request)["max_tokens"] == 32000


def test_tools_and_tool_choice() -> None:
    tools = [{"name": "f", "description": "d", "input_schema": {"type": "object"},
              "cache_control": {"type": "ephemeral"}, "defer_loading": True},
             {"type": "custom", "name": "g", "input_schema": {"type": "object", "properties": {}}, "strict": True},
             {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]
    first, encoded, second = roundtrip(body(tools=tools, tool_choice={"type": "tool", "name": "f",
                                                                      "disable_parallel_tool_use": True}))
    assert first == second
    assert first.tools[0] == ir.Tool(name="f", description="d", parameters={"type": "object"},
                                     extras={"cache_control": {"type": "ephemeral"},
                                             "anthropic": {"defer_loading": True}})
    assert first.tools[1].strict is True and first.tools[1].kind == "function"
    assert first.tools[2].kind == "web_search_20250305" and first.tools[2].raw == tools[2]
    assert first.tool_choice == ir.ToolChoice(mode="tool", name="f", parallel=False)
    assert encoded["tools"][0] == tools[0] and encoded["tools"][2] == tools[2]
    assert encoded["tool_choice"] == {"type": "tool", "name": "f", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, ir.ToolChoice("auto")),
    ({"type": "any", "disable_parallel_tool_use": False}, ir.ToolChoice("required", parallel=True)),
    ({"type": "none"}, ir.ToolChoice("none")),
])
def test_tool_choice_modes(choice: dict[str, Any], expected: ir.ToolChoice) -> None:
    first, encoded, _ = roundtrip(body(tools=[{"name": "f", "input_schema": {"type": "object"}}], tool_choice=choice))
    assert first.tool_choice == expected
    assert encoded["tool_choice"] == choice


def test_foreign_tools() -> None:
    request = ir.Request(model="m", messages=[ir.Message("user", [ir.Text("x")])], tools=[
        ir.Tool(name="web_search", kind="web_search", raw={"type": "web_search"}),  # a Responses built-in
        ir.Tool(name="apply_patch", kind="custom", description="patch"),
        ir.Tool(name="noschema"),
    ], tool_choice=ir.ToolChoice("auto", parallel=True))
    encoded = DIALECT.encode_request(request)
    assert encoded["tools"] == [
        {"name": "apply_patch", "description": "patch",
         "input_schema": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}},
        {"name": "noschema", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert encoded["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": False}
    only_builtin = ir.Request(model="m", tools=[request.tools[0]], tool_choice=ir.ToolChoice("required"))
    assert "tools" not in DIALECT.encode_request(only_builtin)
    assert "tool_choice" not in DIALECT.encode_request(only_builtin)


def test_foreign_history_is_made_acceptable() -> None:
    request = ir.Request(model="m", messages=[
        ir.Message("user", [ir.Text("q")]),
        ir.Message("assistant", [
            ir.Thinking("gemini thoughts", signature="g-sig", origin="gemini"),
            ir.Thinking("unsigned reasoning"),
            ir.Text(""),
            ir.ToolCall(id="call_1.x", name="f", arguments='{"a": 1}', signature="g", signature_origin="gemini"),
            ir.ToolCall(id="call_2", name="g", arguments=""),
            ir.ToolCall(id="call_3", name="h", arguments="{not json"),
            ir.ToolCall(id="call_4", name="apply_patch", arguments="*** Begin Patch", kind="custom"),
        ]),
        ir.Message("assistant", [ir.Thinking("only foreign", signature="s", origin="openai-responses")]),
        ir.Message("user", [ir.ToolResult(call_id="call_1.x", content=[ir.Text("ok")]),
                            ir.Image(url="data:image/jpeg;base64,/9j/AAA"), ir.Image(data="iVBORw0")]),
    ])
    encoded = DIALECT.encode_request(request)
    assert encoded["messages"] == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "call_1_x", "name": "f", "input": {"a": 1}},
            {"type": "tool_use", "id": "call_2", "name": "g", "input": {}},
            {"type": "tool_use", "id": "call_3", "name": "h", "input": {"_raw_arguments": "{not json"}},
            {"type": "tool_use", "id": "call_4", "name": "apply_patch", "input": {"input": "*** Begin Patch"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1_x", "content": "ok"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/AAA"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0"}},
        ]},
    ]


def test_foreign_files() -> None:
    text = base64.b64encode("héllo".encode()).decode()
    request = ir.Request(model="m", messages=[ir.Message("user", [
        ir.File(media_type="text/markdown", data=text, filename="r.md"),
        ir.File(url="data:application/pdf;base64,JVBE"),
        ir.File(media_type="text/plain", data="%%%not base64"),
        ir.File(),
    ])])
    assert DIALECT.encode_request(request)["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "héllo"}, "title": "r.md"},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
        {"type": "document", "source": {"type": "base64", "media_type": "text/plain", "data": "%%%not base64"}},
    ]


def test_request_signatures_follow_their_origin() -> None:
    wrapped_gemini = ir.wrap_signature("gemini", "gsig")
    messages = [{"role": "user", "content": "q"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "a", "signature": "raw-anthropic"},
                    {"type": "thinking", "thinking": "b", "signature": wrapped_gemini},
                    {"type": "redacted_thinking", "data": ir.wrap_signature("openai-responses", "enc")},
                    {"type": "thinking", "thinking": "c", "signature": ir.wrap_signature("anthropic", "own")},
                    {"type": "text", "text": "answer"}]}]
    request = DIALECT.decode_request(body(messages=messages))
    parts = request.messages[1].parts
    assert parts[0] == ir.Thinking("a", signature="raw-anthropic", origin="anthropic")
    assert parts[1] == ir.Thinking("b", signature="gsig", origin="gemini")
    assert parts[2] == ir.Thinking(signature="enc", origin="openai-responses", redacted=True)
    assert parts[3] == ir.Thinking("c", signature="own", origin="anthropic")
    # Only Anthropic's own signatures go back to an Anthropic upstream.
    assert DIALECT.encode_request(request)["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "a", "signature": "raw-anthropic"},
        {"type": "thinking", "thinking": "c", "signature": "own"},
        {"type": "text", "text": "answer"},
    ]


def test_response_format_goes_to_output_config() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    first, encoded, second = roundtrip(body(output_config={"format": {"type": "json_schema", "schema": schema}}))
    assert first.response_format == ir.ResponseFormat(type="json_schema", schema=schema)
    assert encoded["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert first == second
    json_object = ir.Request(model="m", response_format=ir.ResponseFormat(type="json_object"))
    assert "output_config" not in DIALECT.encode_request(json_object)


# -- malformed requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(("bad", "field"), [
    ({"messages": []}, "model"),
    ({"model": 3, "messages": []}, "model"),
    ({"model": "m"}, "messages"),
    ({"model": "m", "messages": {"role": "user"}}, "messages"),
    (body(messages=["hi"]), "messages[0]"),
    (body(messages=[{"content": "x"}]), "messages[0].role"),
    (body(messages=[{"role": "user"}]), "messages[0].content"),
    (body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    (body(messages=[{"role": "user", "content": [{"text": "no type"}]}]), "messages[0].content[0].type"),
    (body(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}]), "messages[0].content[0].text"),
    (body(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages[0].content[0].text"),
    (body(messages=[{"role": "user", "content": [{"type": "image", "source": "x"}]}]), "messages[0].content[0].source"),
    (body(messages=[{"role": "user", "content": [{"type": "image"}]}]), "messages[0].content[0].source"),
    (body(messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}]),
     "messages[0].content[0].source.data"),
    (body(messages=[{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": []}]}]),
     "messages[0].content[0].input"),
    (body(messages=[{"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]}]),
     "messages[0].content[0].id"),
    (body(messages=[{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]),
     "messages[0].content[0].tool_use_id"),
    (body(messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": 3}]}]),
     "messages[0].content[0].content"),
    (body(messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "is_error": "no"}]}]),
     "messages[0].content[0].is_error"),
    (body(messages=[{"role": "assistant", "content": [{"type": "thinking", "signature": "s"}]}]),
     "messages[0].content[0].thinking"),
    (body(system=5), "system"),
    (body(system=[{"type": "text", "text": None}]), "system[0].text"),
    (body(tools={"name": "f"}), "tools"),
    (body(tools=["f"]), "tools[0]"),
    (body(tools=[{"input_schema": {}}]), "tools[0].name"),
    (body(tools=[{"name": "f", "input_schema": "object"}]), "tools[0].input_schema"),
    (body(tool_choice="auto"), "tool_choice"),
    (body(tool_choice={"type": "sometimes"}), "tool_choice.type"),
    (body(tool_choice={"type": ["auto"]}), "tool_choice.type"),
    (body(tool_choice={"type": "tool"}), "tool_choice.name"),
    (body(thinking="on"), "thinking"),
    (body(thinking={"type": "enabled"}), "thinking.budget_tokens"),
    (body(thinking={"type": "turbo"}), "thinking.type"),
    (body(output_config=[]), "output_config"),
    (body(output_config={"effort": 3}), "output_config.effort"),
    (body(max_tokens="100"), "max_tokens"),
    (body(max_tokens=True), "max_tokens"),
    (body(temperature="hot"), "temperature"),
    (body(top_k=1.5), "top_k"),
    (body(stop_sequences="END"), "stop_sequences"),
    (body(stop_sequences=[1]), "stop_sequences"),
    (body(stream="yes"), "stream"),
    (body(metadata="u"), "metadata"),
])
def test_malformed_requests_name_the_field(bad: dict[str, Any], field: str) -> None:
    with pytest.raises(DialectError) as info:
        DIALECT.decode_request(bad)
    assert info.value.status == 400
    assert info.value.message.startswith(field + " ")


@pytest.mark.parametrize("bad", [None, [], "text", 3, 2.5, True, [{"model": "m"}]])
def test_non_object_bodies(bad: Any) -> None:
    with pytest.raises(DialectError, match="JSON object"):
        DIALECT.decode_request(bad)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_never_escapes_as_another_exception(value: Any) -> None:
    try:
        DIALECT.decode_request(value)
    except DialectError:
        pass


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found += _paths(inner, (*prefix, i))
    return found


_RICH_BODY = body(
    system=[{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
    messages=[{"role": "user", "content": [{"type": "text", "text": "q"},
                                           {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                        "data": "iVBOR"}}]},
              {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"},
                                                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                            "content": [{"type": "text", "text": "r"}]}]}],
    tools=[{"name": "f", "input_schema": {"type": "object"}}], tool_choice={"type": "auto"},
    thinking={"type": "enabled", "budget_tokens": 2000}, output_config={"effort": "low"}, metadata={"user_id": "u"},
)
_RICH_PATHS = _paths(_RICH_BODY)[1:]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_RICH_PATHS), json_values)
def test_corrupted_valid_body_fails_cleanly(path: tuple[Any, ...], replacement: Any) -> None:
    corrupted = copy.deepcopy(_RICH_BODY)
    target = corrupted
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = replacement
    try:
        request = DIALECT.decode_request(corrupted)
    except DialectError as exc:
        assert exc.message
        return
    # Whatever we accept, we can send on, and what we send is a body we accept again.
    encoded = DIALECT.encode_request(request)
    assert isinstance(encoded["max_tokens"], int) and isinstance(encoded["messages"], list)
    assert DIALECT.decode_request(json.loads(json.dumps(encoded))).model == request.model


# -- generated round trips -----------------------------------------------------------------------------

texts = st.text(min_size=1, max_size=12)
ids = st.from_regex(r"toolu_[A-Za-z0-9]{1,8}", fullmatch=True)
CACHED = {"cache_control": {"type": "ephemeral"}}
text_block = st.builds(lambda t, cc: {"type": "text", "text": t} | (CACHED if cc else {}), texts, st.booleans())
tool_use_block = st.builds(lambda i, n, a: {"type": "tool_use", "id": i, "name": n, "input": a}, ids, texts,
                           st.dictionaries(texts, st.integers(-1000, 1000) | texts, max_size=3))
tool_result_block = st.builds(lambda i, c, e: {"type": "tool_result", "tool_use_id": i, "content": c, "is_error": e},
                              ids, texts | st.lists(text_block, min_size=1, max_size=2), st.booleans())
thinking_block = st.builds(lambda t, s: {"type": "thinking", "thinking": t, "signature": s}, texts, texts)
message = st.builds(lambda role, content: {"role": role, "content": content},
                    st.sampled_from(["user", "assistant", "system"]),
                    texts | st.lists(st.one_of(text_block, tool_use_block, tool_result_block, thinking_block,
                                               st.just({"type": "server_tool_use", "id": "s", "input": {}})),
                                     min_size=1, max_size=4))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(message, min_size=1, max_size=5), st.none() | texts | st.lists(text_block, min_size=1, max_size=3),
       st.none() | st.lists(texts, min_size=1, max_size=2), st.none() | st.integers(1, 100_000))
def test_generated_requests_roundtrip(messages: list[dict[str, Any]], system: Any, stop: Any,
                                      max_tokens: int | None) -> None:
    request_body: dict[str, Any] = {"model": "m", "messages": messages}
    for key, value in (("system", system), ("stop_sequences", stop), ("max_tokens", max_tokens)):
        if value is not None:
            request_body[key] = value
    first, encoded, second = roundtrip(request_body)
    assert second == attrs.evolve(first, max_tokens=max_tokens or 32000)  # max_tokens is required upstream
    if max_tokens is not None:  # then the body comes back as sent, up to the normal forms we write
        expected = request_body | {"messages": _normal_form(messages)}
        if isinstance(system, list) and len(system) == 1 and "cache_control" not in system[0]:
            expected["system"] = system[0]["text"]
        assert encoded == expected


def _normal_form(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = copy.deepcopy(messages)
    for msg in out:
        for block in msg["content"] if isinstance(msg["content"], list) else []:
            if block.get("is_error") is False:
                del block["is_error"]
            inner = block.get("content")
            if block["type"] == "tool_result" and isinstance(inner, list) and len(inner) == 1 \
                    and "cache_control" not in inner[0]:
                block["content"] = block["content"][0]["text"]  # one plain text block is re-encoded as a string
        if isinstance(msg["content"], list) and len(msg["content"]) == 1 and msg["content"][0]["type"] == "text" \
                and "cache_control" not in msg["content"][0]:
            msg["content"] = msg["content"][0]["text"]
    return out


# -- responses ---------------------------------------------------------------------------------------------

RESPONSE = {
    "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "let me see", "signature": "sig=="},
        {"type": "redacted_thinking", "data": "red"},
        {"type": "text", "text": "Result:", "citations": [{"type": "char_location", "cited_text": "x"}]},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
        {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 10, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 30,
              "output_tokens": 40, "service_tier": "standard", "output_tokens_details": {"thinking_tokens": 7}},
    "container": {"id": "c1"},
}


def test_response_decode() -> None:
    response = DIALECT.decode_response(copy.deepcopy(RESPONSE))
    assert response.id == "msg_01" and response.model == "claude-sonnet-4-5"
    assert response.parts == [
        ir.Thinking("let me see", signature="sig==", origin="anthropic"),
        ir.Thinking(signature="red", origin="anthropic", redacted=True),
        ir.Text("Result:", extras={"anthropic": {"citations": [{"type": "char_location", "cited_text": "x"}]}}),
        ir.ToolCall(id="toolu_9", name="get_weather", arguments='{"city":"Paris"}'),
    ]
    assert response.usage == ir.Usage(input_tokens=60, output_tokens=40, cached_tokens=30, cache_write_tokens=20,
                                      reasoning_tokens=7)
    assert response.stop_reason == "tool_use"
    assert response.extensions["anthropic"]["container"] == {"id": "c1"}


def test_response_roundtrip_is_exact() -> None:
    assert DIALECT.encode_response(DIALECT.decode_response(copy.deepcopy(RESPONSE))) == RESPONSE


def test_response_encode_from_other_dialects() -> None:
    response = ir.Response(id="chatcmpl-7", model="gpt-x", parts=[
        ir.Thinking("r", signature="enc", origin="openai-responses"),
        ir.Thinking("plain reasoning"),
        ir.Text("hi"),
        ir.ToolCall(id="call_1", name="f", arguments="", signature="g", signature_origin="gemini"),
        ir.Image(data="iVBOR"),
    ], stop_reason="end_turn", usage=ir.Usage(input_tokens=100, output_tokens=5, cached_tokens=60))
    encoded = DIALECT.encode_response(response)
    assert encoded == {
        "id": "msg_chatcmpl-7", "type": "message", "role": "assistant", "model": "gpt-x",
        "content": [
            {"type": "thinking", "thinking": "r", "signature": "prx1.openai-responses.enc"},
            {"type": "thinking", "thinking": "plain reasoning", "signature": ""},
            {"type": "text", "text": "hi"},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {}},
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 40, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 60,
                  "output_tokens": 5},
    }
    # The client replays the wrapped signature: it comes back with its origin.
    replay = DIALECT.decode_request(body(messages=[{"role": "assistant", "content": encoded["content"][:1]}]))
    assert replay.messages[0].parts[0] == ir.Thinking("r", signature="enc", origin="openai-responses")


@pytest.mark.parametrize(("wire", "canonical"), sorted(STOP_REASON_TO_IR.items()))
def test_stop_reason_tables(wire: str, canonical: str) -> None:
    assert STOP_REASON_FROM_IR[canonical] == wire
    response = DIALECT.decode_response({**RESPONSE, "content": [], "stop_reason": wire})
    assert response.stop_reason == canonical
    assert DIALECT.encode_response(response)["stop_reason"] == wire


def test_unknown_stop_reason_and_stop_sequence() -> None:
    assert DIALECT.decode_response({**RESPONSE, "stop_reason": "new_reason"}).stop_reason == "end_turn"
    unknown = ir.Response(id="x", model="m", stop_reason="something_else")
    assert DIALECT.encode_response(unknown)["stop_reason"] == "end_turn"
    seq = DIALECT.decode_response({**RESPONSE, "content": [], "stop_reason": "stop_sequence", "stop_sequence": "##"})
    assert (seq.stop_reason, seq.stop_sequence) == ("stop_sequence", "##")
    assert DIALECT.encode_response(seq)["stop_sequence"] == "##"


@pytest.mark.parametrize("bad", [None, [], "x", {"content": "text"}, {"content": [3]}, {"content": [{"type": 1}]}])
def test_bad_upstream_response_is_a_502(bad: Any) -> None:
    with pytest.raises(DialectError) as info:
        DIALECT.decode_response(bad)
    assert info.value.status == 502
    assert info.value.message.startswith("malformed Anthropic response: ")


# -- stream encoder ----------------------------------------------------------------------------------------

CLIENT_REQUEST = ir.Request(model="client-alias", messages=[ir.Message("user", [ir.Text("hi")])], stream=True)


def encode_all(events: list[ir.Event], request: ir.Request = CLIENT_REQUEST) -> list[tuple[str | None, Any]]:
    encoder = DIALECT.stream_encoder(request)
    data = b"".join(encoder.encode(e) for e in events)
    assert encoder.finish() == b""
    return frames(data)


def test_stream_encoder_wire_order() -> None:
    events: list[ir.Event] = [
        ir.MessageStart(id="msg_abc", model="upstream-model",
                        usage=ir.Usage(input_tokens=100, cached_tokens=30, cache_write_tokens=10)),
        ir.BlockStart(0, "thinking"),
        ir.BlockDelta(0, "thinking", "Let me "),
        ir.BlockDelta(0, "thinking", "think."),
        ir.BlockDelta(0, "signature", "sig-part1", origin="anthropic"),
        ir.BlockDelta(0, "signature", "-part2", origin="anthropic"),
        ir.BlockStop(0),
        ir.BlockStart(1, "text"),
        ir.BlockDelta(1, "text", "Checking "),
        ir.BlockDelta(1, "text", "both."),
        ir.BlockStop(1),
        ir.BlockStart(2, "tool_call", id="toolu_a", name="read"),
        ir.BlockStart(3, "tool_call", id="call_b", name="grep"),
        ir.BlockDelta(2, "arguments", '{"pa'),
        ir.BlockDelta(3, "arguments", '{"q":'),
        ir.BlockDelta(2, "arguments", 'th":"a.py"}'),
        ir.BlockDelta(3, "arguments", '"x"}'),
        ir.BlockStop(3),
        ir.BlockStop(2),
        ir.MessageDelta(stop_reason="end_turn", usage=ir.Usage(input_tokens=100, output_tokens=55, cached_tokens=30,
                                                               cache_write_tokens=10)),
        ir.MessageStop(),
    ]
    usage_start = {"input_tokens": 60, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 30,
                   "output_tokens": 0}
    assert encode_all(events) == [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_abc", "type": "message", "role": "assistant", "model": "client-alias", "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": usage_start}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "Let me "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "think."}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "signature_delta", "signature": "sig-part1-part2"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "text_delta", "text": "Checking "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "text_delta", "text": "both."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {
            "type": "tool_use", "id": "toolu_a", "name": "read", "input": {}}}),
        ("content_block_start", {"type": "content_block_start", "index": 3, "content_block": {
            "type": "tool_use", "id": "call_b", "name": "grep", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2,
                                 "delta": {"type": "input_json_delta", "partial_json": '{"pa'}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 3,
                                 "delta": {"type": "input_json_delta", "partial_json": '{"q":'}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2,
                                 "delta": {"type": "input_json_delta", "partial_json": 'th":"a.py"}'}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 3,
                                 "delta": {"type": "input_json_delta", "partial_json": '"x"}'}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 3}),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                           "usage": {"input_tokens": 60, "cache_creation_input_tokens": 10,
                                     "cache_read_input_tokens": 30, "output_tokens": 55}}),
        ("message_stop", {"type": "message_stop"}),
    ]


@pytest.mark.parametrize("reason", [*ir.STOP_REASONS, None, "weird"])
def test_stream_encoder_stop_reasons(reason: str | None) -> None:
    out = encode_all([ir.MessageStart(id="msg_1", model="m"), ir.BlockStart(0, "text"), ir.BlockDelta(0, "text", "x"),
                      ir.BlockStop(0), ir.MessageDelta(stop_reason=reason, stop_sequence="##"), ir.MessageStop()])
    expected = STOP_REASON_FROM_IR.get(reason or "end_turn", "end_turn")
    assert out[-2][1]["delta"] == {"stop_reason": expected,
                                   "stop_sequence": "##" if expected == "stop_sequence" else None}
    assert [name for name, _ in out] == ["message_start", "content_block_start", "content_block_delta",
                                         "content_block_stop", "message_delta", "message_stop"]


def test_stream_encoder_synthesizes_start_and_closes_blocks() -> None:
    out = encode_all([ir.BlockDelta(4, "text", "hi"), ir.MessageStart(id="late", model="m"),
                      ir.BlockDelta(7, "arguments", '{"a":1}'), ir.MessageDelta(stop_reason="max_tokens"),
                      ir.MessageStop(), ir.BlockDelta(4, "text", "after the end")])
    names = [name for name, _ in out]
    assert names == ["message_start", "content_block_start", "content_block_delta", "content_block_start",
                     "content_block_delta", "content_block_stop", "content_block_stop", "message_delta", "message_stop"]
    assert out[0][1]["message"]["id"].startswith("msg_") and out[0][1]["message"]["model"] == "client-alias"
    assert [f[1]["index"] for f in out[1:7]] == [0, 0, 1, 1, 0, 1]
    assert out[3][1]["content_block"]["type"] == "tool_use" and out[3][1]["content_block"]["id"].startswith("toolu_")
    assert out[-2][1]["delta"]["stop_reason"] == "tool_use"  # a tool call was emitted


def test_stream_encoder_error_frame() -> None:
    error = ir.ErrorInfo(status=529, message="Overloaded")
    out = encode_all([ir.MessageStart(id="msg_1", model="m"), ir.BlockStart(0, "text"), ir.BlockDelta(0, "text", "a"),
                      ir.StreamError(error), ir.MessageStop()])
    assert out[-1] == ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert [name for name, _ in out] == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert encode_all([ir.StreamError(ir.ErrorInfo(status=429, message="slow"))]) == [
        ("error", {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}})]


def test_stream_encoder_signatures_and_foreign_blocks() -> None:
    out = encode_all([
        ir.BlockStart(0, "thinking"), ir.BlockDelta(0, "thinking", "t"),
        ir.BlockDelta(0, "signature", "g1", origin="gemini"), ir.BlockDelta(0, "signature", "g2", origin="gemini"),
        ir.BlockStop(0),
        ir.BlockStart(1, "redacted_thinking", data="opaque"), ir.BlockStop(1),
        ir.BlockStart(2, "tool_call", id="c", name="apply_patch", tool_kind="custom"),
        ir.BlockDelta(2, "arguments", 'line "1"\n'), ir.BlockDelta(2, "arguments", "é"),
        ir.BlockDelta(2, "signature", "fc-sig", origin="gemini"),
        ir.BlockStop(2), ir.MessageStop(),
    ])
    deltas = [f[1]["delta"] for f in out if f[0] == "content_block_delta"]
    assert deltas[1] == {"type": "signature_delta", "signature": "prx1.gemini.g1g2"}
    assert out[5][1]["content_block"] == {"type": "redacted_thinking", "data": "opaque"}
    arguments = "".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")
    assert json.loads(arguments) == {"input": 'line "1"\né'}
    assert all(d["type"] != "signature_delta" or d["signature"].startswith("prx1.gemini.g1") for d in deltas)


# -- stream decoder ----------------------------------------------------------------------------------------

UPSTREAM = sse(
    {"type": "message_start", "message": {"id": "msg_up", "type": "message", "role": "assistant",
                                          "model": "claude-sonnet-4-5", "content": [], "stop_reason": None,
                                          "stop_sequence": None,
                                          "usage": {"input_tokens": 12, "cache_creation_input_tokens": 3,
                                                    "cache_read_input_tokens": 5, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Höhe "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "🤔"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQB=="}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "server_tool_use", "id": "srv",
                                                                  "name": "web_search", "input": {}}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"q":1}'}},
    {"type": "content_block_stop", "index": 1},
    {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "Hi "}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "citations_delta", "citation": {}}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "there"}},
    {"type": "content_block_stop", "index": 2},
    {"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f",
                                                                  "input": {}}},
    {"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": '{"a": '}},
    {"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": '"é"}'}},
    {"type": "content_block_stop", "index": 3},
    {"type": "content_block_start", "index": 4, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "g",
                                                                  "input": {}}},
    {"type": "content_block_stop", "index": 4},
    {"type": "content_block_start", "index": 5, "content_block": {"type": "redacted_thinking", "data": "R"}},
    {"type": "content_block_stop", "index": 5},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
     "usage": {"output_tokens": 42}},
    {"type": "message_stop"},
)

UPSTREAM_EVENTS: list[ir.Event] = [
    ir.MessageStart(id="msg_up", model="claude-sonnet-4-5",
                    usage=ir.Usage(input_tokens=20, output_tokens=1, cached_tokens=5, cache_write_tokens=3)),
    ir.BlockStart(0, "thinking"),
    ir.BlockDelta(0, "thinking", "Höhe "),
    ir.BlockDelta(0, "thinking", "🤔"),
    ir.BlockDelta(0, "signature", "EqQB==", origin="anthropic"),
    ir.BlockStop(0),
    ir.BlockStart(1, "text"),
    ir.BlockDelta(1, "text", "Hi "),
    ir.BlockDelta(1, "text", "there"),
    ir.BlockStop(1),
    ir.BlockStart(2, "tool_call", id="toolu_1", name="f"),
    ir.BlockDelta(2, "arguments", '{"a": '),
    ir.BlockDelta(2, "arguments", '"é"}'),
    ir.BlockStop(2),
    ir.BlockStart(3, "tool_call", id="toolu_2", name="g"),
    ir.BlockDelta(3, "arguments", "{}"),
    ir.BlockStop(3),
    ir.BlockStart(4, "redacted_thinking", data="R"),
    ir.BlockStop(4),
    ir.MessageDelta(stop_reason="tool_use",
                    usage=ir.Usage(input_tokens=20, output_tokens=42, cached_tokens=5, cache_write_tokens=3)),
    ir.MessageStop(),
]


def decode_chunks(chunks: list[bytes]) -> tuple[list[ir.Event], bool]:
    decoder = DIALECT.stream_decoder()
    events: list[ir.Event] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.close()
    return events, decoder.finished


def test_stream_decoder_events() -> None:
    assert decode_chunks([UPSTREAM]) == (UPSTREAM_EVENTS, True)


def test_stream_decoder_split_at_every_offset() -> None:
    for offset in range(len(UPSTREAM) + 1):
        assert decode_chunks([UPSTREAM[:offset], UPSTREAM[offset:]]) == (UPSTREAM_EVENTS, True), offset


def test_stream_decoder_byte_by_byte_and_crlf() -> None:
    assert decode_chunks([UPSTREAM[i:i + 1] for i in range(len(UPSTREAM))]) == (UPSTREAM_EVENTS, True)
    crlf = UPSTREAM.replace(b"\n", b"\r\n")
    assert decode_chunks([crlf[i:i + 7] for i in range(0, len(crlf), 7)]) == (UPSTREAM_EVENTS, True)


@settings(max_examples=100)
@given(st.lists(st.integers(0, len(UPSTREAM)), max_size=30))
def test_stream_decoder_random_splits(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(UPSTREAM)]
    chunks = [UPSTREAM[a:b] for a, b in itertools.pairwise(points)]
    assert decode_chunks(chunks) == (UPSTREAM_EVENTS, True)


def test_stream_decoder_output_collects_into_response() -> None:
    response = collect(UPSTREAM_EVENTS)
    assert response.parts == [ir.Thinking("Höhe 🤔", signature="EqQB==", origin="anthropic"), ir.Text("Hi there"),
                              ir.ToolCall(id="toolu_1", name="f", arguments='{"a": "é"}'),
                              ir.ToolCall(id="toolu_2", name="g", arguments="{}"),
                              ir.Thinking(signature="R", redacted=True)]


def test_stream_decoder_error_event() -> None:
    stream = sse({"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 1}}},
                 {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                 {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "par"}},
                 {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                 {"type": "message_stop"})
    events, finished = decode_chunks([stream])
    assert finished is True
    assert events[-2:] == [ir.BlockStop(0), ir.StreamError(ir.ErrorInfo(status=529, message="Overloaded",
                                                                        kind="overloaded"))]
    only_error = b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"boom"}}\n\n'
    assert decode_chunks([only_error]) == ([ir.StreamError(ir.ErrorInfo(status=500, message="boom"))], True)


def test_stream_decoder_synthesizes_what_is_missing() -> None:
    stream = sse({"type": "content_block_delta", "index": 3, "delta": {"type": "text_delta", "text": "orphan"}},
                 {"type": "content_block_delta", "index": 5,
                  "delta": {"type": "input_json_delta", "partial_json": "{"}},
                 {"type": "message_stop"})
    events, finished = decode_chunks([stream])
    assert finished is True
    assert events == [ir.MessageStart(id="", model=""), ir.BlockStart(0, "text"), ir.BlockDelta(0, "text", "orphan"),
                      ir.BlockStart(1, "tool_call", id="", name=""), ir.BlockDelta(1, "arguments", "{"),
                      ir.BlockStop(0), ir.BlockStop(1),
                      ir.MessageDelta(stop_reason="tool_use", usage=ir.Usage()), ir.MessageStop()]


def test_stream_decoder_truncated_stream_is_not_finished() -> None:
    cut = UPSTREAM[: UPSTREAM.index(b'event: content_block_stop\ndata: {"type": "content_block_stop", "index": 2}')]
    events, finished = decode_chunks([cut])
    assert finished is False
    assert events[-2:] == [ir.BlockDelta(1, "text", "there"), ir.BlockStop(1)]
    assert not any(isinstance(e, (ir.MessageDelta, ir.MessageStop)) for e in events)


def test_stream_decoder_last_frame_without_blank_line_and_garbage() -> None:
    stream = b": comment\n\ndata: not json\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\n" + sse(
        {"type": "message_start", "message": {"id": "m", "model": "x"}}) + b'data: {"type":"message_stop"}'
    events, finished = decode_chunks([stream])
    assert finished is True
    assert events == [ir.MessageStart(id="m", model="x"), ir.MessageDelta(stop_reason="end_turn", usage=ir.Usage()),
                      ir.MessageStop()]


payloads = st.fixed_dictionaries(
    {"type": st.sampled_from(["message_start", "content_block_start", "content_block_delta", "content_block_stop",
                              "message_delta", "message_stop", "error", "ping"]) | json_values},
    optional={"index": json_values | st.integers(0, 3), "message": json_values, "content_block": json_values,
              "delta": json_values | st.fixed_dictionaries({"type": st.sampled_from(list(
                  ["text_delta", "input_json_delta", "thinking_delta", "signature_delta"])), "text": json_values,
                  "partial_json": json_values}), "usage": json_values, "error": json_values})


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(payloads, max_size=12))
def test_stream_decoder_never_raises_and_stays_well_formed(items: list[dict[str, Any]]) -> None:
    data = b"".join(b"data: " + json.dumps(p).encode() + b"\n\n" for p in items)
    events, _ = decode_chunks([data])
    open_blocks: set[int] = set()
    seen: list[int] = []
    for i, event in enumerate(events):
        if isinstance(event, ir.MessageStart):
            assert i == 0
        elif isinstance(event, ir.BlockStart):
            assert event.index == len(seen)
            seen.append(event.index)
            open_blocks.add(event.index)
        elif isinstance(event, ir.BlockDelta):
            assert event.index in open_blocks
        elif isinstance(event, ir.BlockStop):
            open_blocks.remove(event.index)
        elif isinstance(event, (ir.MessageStop, ir.StreamError)):
            assert i == len(events) - 1
    assert not open_blocks


def test_encoder_output_decodes_to_the_same_events() -> None:
    encoder = DIALECT.stream_encoder(ir.Request(model="claude-sonnet-4-5"))
    wire = b"".join(encoder.encode(e) for e in UPSTREAM_EVENTS)
    events, finished = decode_chunks([wire])
    assert finished is True
    assert events == UPSTREAM_EVENTS


def test_response_events_through_the_encoder() -> None:
    response = DIALECT.decode_response(copy.deepcopy(RESPONSE))
    out = encode_all(list(response_events(response)))
    assert [name for name, _ in out].count("message_start") == 1
    assert [f[1]["index"] for f in out if f[0] == "content_block_start"] == [0, 1, 2, 3]
    assert out[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert out[-2][1]["usage"] == {"input_tokens": 10, "cache_creation_input_tokens": 20,
                                   "cache_read_input_tokens": 30, "output_tokens": 40,
                                   "output_tokens_details": {"thinking_tokens": 7}}


# -- other dialects' captures, decoded by their codecs and sent to Anthropic -----------------------------

FOREIGN_CAPTURES = [
    ("openai_chat", "qwen-code.json"), ("openai_chat", "qwen-code-memory-subagent.json"),
    ("openai_chat", "qwen-code-tool-result.json"), ("openai_chat", "sdk-openai-python-chat.json"),
    ("openai_responses", "codex.json"), ("openai_responses", "codex-unknown-model.json"),
    ("openai_responses", "codex-tool-result.json"), ("openai_responses", "sdk-openai-python-responses.json"),
    ("gemini", "gemini-cli.json"), ("gemini", "gemini-cli-router.json"), ("gemini", "gemini-cli-tool-result.json"),
    ("gemini", "sdk-google-genai-python.json"),
]
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


@pytest.mark.parametrize(("module", "name"), FOREIGN_CAPTURES)
def test_foreign_capture_encodes_to_a_valid_anthropic_request(module: str, name: str) -> None:
    codec = importlib.import_module(f"polyrelay.dialects.{module}").DIALECT
    request = codec.decode_request(capture(name))
    request.model = request.model or "claude-from-route"  # Gemini puts the model in the URL
    encoded = json.loads(json.dumps(DIALECT.encode_request(request)))
    assert DIALECT.decode_request(encoded).model == request.model
    assert isinstance(encoded["max_tokens"], int) and encoded["max_tokens"] > 0
    assert encoded["messages"] and all(m["content"] for m in encoded["messages"])
    assert {m["role"] for m in encoded["messages"]} <= {"user", "assistant", "system"}
    for tool in encoded.get("tools", []):
        assert NAME_PATTERN.match(tool["name"]) and isinstance(tool["input_schema"], dict)
    assert not ("temperature" in encoded and "top_p" in encoded)
    called: set[str] = set()
    for message in encoded["messages"]:
        for block in message["content"] if isinstance(message["content"], list) else []:
            assert block["type"] not in ("thinking", "redacted_thinking")  # foreign reasoning never reaches Claude
            assert block.get("text", "x") != ""
            if block["type"] == "tool_use":
                assert NAME_PATTERN.match(block["id"]) and isinstance(block["input"], dict)
                called.add(block["id"])
            if block["type"] == "tool_result":
                assert block["tool_use_id"] in called
    thinking = encoded.get("thinking")
    if thinking and thinking["type"] == "enabled":
        assert 1024 <= thinking["budget_tokens"] < encoded["max_tokens"]


# -- errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [b"", b"   ", b"<html>502 Bad Gateway</html>", b"\xff\xfe\x00", b"null", b"[]",
                                     b'{"error": []}', b'{"error": {"type": ["x"], "message": 5}}', b'"just a string"',
                                     b'{"type":"error"'])
def test_decode_error_accepts_garbage(garbage: bytes) -> None:
    error = DIALECT.decode_error(502, garbage)
    assert error.status == 502 and error.kind == "api_error" and error.message
    assert error.retry_after is None


def test_decode_error_anthropic_bodies() -> None:
    overloaded = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}'
    error = DIALECT.decode_error(529, overloaded)
    assert (error.status, error.kind, error.message, error.code) == (529, "overloaded", "Overloaded", None)
    # The body type wins over a generic status.
    assert DIALECT.decode_error(500, overloaded).kind == "overloaded"
    limited = DIALECT.decode_error(429, b'{"type":"error","error":{"type":"rate_limit_error",'
                                        b'"message":"Number of requests has exceeded your rate limit."}}')
    assert limited.kind == "rate_limit" and limited.retry_after is None
    assert DIALECT.decode_error(400, b'{"error":"plain message"}').message == "plain message"
    assert DIALECT.decode_error(404, b'{"error":{"message":"no","code":"model_not_found"}}').code == "model_not_found"


@pytest.mark.parametrize(("body_bytes", "seconds"), [
    (b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down","retry_after":12}}', 12.0),
    (b'{"error":{"type":"rate_limit_error","message":"Please try again in 1.5s."}}', 1.5),
    (b'{"error":{"type":"rate_limit_error","message":"retry after 250ms"}}', 0.25),
    (b"Too many requests, retry after 30 seconds", 30.0),
])
def test_decode_error_retry_hints(body_bytes: bytes, seconds: float) -> None:
    assert DIALECT.decode_error(429, body_bytes).retry_after == seconds


@settings(max_examples=200)
@given(st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()), st.integers(100, 599))
def test_decode_error_never_raises(data: bytes, status: int) -> None:
    assert DIALECT.decode_error(status, data).status == status


@pytest.mark.parametrize(("status", "error_type"), [
    (400, "invalid_request_error"), (401, "authentication_error"), (402, "billing_error"), (403, "permission_error"),
    (404, "not_found_error"), (408, "timeout_error"), (413, "request_too_large"), (422, "invalid_request_error"),
    (429, "rate_limit_error"), (500, "api_error"), (502, "api_error"), (503, "overloaded_error"),
    (504, "timeout_error"), (529, "overloaded_error"), (418, "invalid_request_error"),
])
def test_error_body_per_status(status: int, error_type: str) -> None:
    error = ir.ErrorInfo(status=status, message="m", code="some_code")
    assert DIALECT.error_body(error) == {"type": "error", "error": {"type": error_type, "message": "m"}}


def test_error_body_uses_kind_and_roundtrips() -> None:
    error = ir.ErrorInfo(status=400, message="quota", kind="billing")
    assert DIALECT.error_body(error)["error"]["type"] == "billing_error"
    unknown = ir.ErrorInfo(status=503, message="x", kind="brand_new_kind")
    assert DIALECT.error_body(unknown)["error"]["type"] == "overloaded_error"
    for kind in ir.ERROR_KINDS:
        wire = json.dumps(DIALECT.error_body(ir.ErrorInfo(status=500, message="x", kind=kind))).encode()
        assert DIALECT.decode_error(500, wire).kind == kind


def test_a_block_after_message_delta_is_dropped() -> None:
    # Found by the contract fuzz: the stop reason was already said, so a late block cannot be
    # carried without breaking the stream's shape for the client.
    from polyrelay.dialects import get_dialect

    wire = (b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"}}\n\n'
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":"late"}}\n\n'
            b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    decoder = get_dialect("anthropic").stream_decoder()
    events = decoder.feed(wire) + decoder.close()
    assert [type(e).__name__ for e in events] == ["MessageStart", "MessageDelta", "MessageStop"]
