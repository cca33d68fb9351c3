"""The OpenAI Responses codec: captures, requests, responses, streams, errors."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyrelay import ir
from polyrelay.aggregate import collect
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.openai_responses import DIALECT
from polyrelay.sse import SSEParser

NAME = ir.OPENAI_RESPONSES
CAPTURES = Path(__file__).parent.parent / "fixtures" / "captures"
OWN_CAPTURES = ["codex.json", "codex-tool-result.json", "codex-unknown-model.json", "sdk-openai-python-responses.json"]
OTHER_CAPTURES = {
    ir.ANTHROPIC: ["claude-code.json", "claude-code-tool-result.json", "sdk-anthropic-python.json"],
    ir.OPENAI_CHAT: ["qwen-code.json", "qwen-code-memory-subagent.json", "qwen-code-tool-result.json",
                     "sdk-openai-python-chat.json"],
    ir.GEMINI: ["gemini-cli.json", "gemini-cli-router.json", "gemini-cli-tool-result.json",
                "sdk-google-genai-python.json"],
}
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def capture(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / name).read_text())["body"]


def frames(data: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    """Parse SSE bytes into (event name, data) pairs."""
    parser = SSEParser()
    return [(e.event, json.loads(e.data)) for e in parser.feed(data) + parser.close()]


def sse(*events: dict[str, Any], sequence: bool = True) -> bytes:
    """An upstream stream: ``event:`` + ``data:`` frames (Codex may omit sequence_number)."""
    out = []
    for n, data in enumerate(events):
        if sequence:
            data = {**data, "sequence_number": n}
        out.append(f"event: {data['type']}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n")
    return "".join(out).encode()


def decode_stream(*chunks: bytes) -> list[ir.Event]:
    decoder = DIALECT.stream_decoder()
    events: list[ir.Event] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.close()
    assert decoder.finished
    return events


def encode_stream(events: list[ir.Event], request: ir.Request | None = None, **kw: Any) -> bytes:
    encoder = DIALECT.stream_encoder(request or ir.Request(model="client-model"), **kw)
    return b"".join(encoder.encode(e) for e in events) + encoder.finish()


def strict_as_sent(request: ir.Request) -> ir.Request:
    """Function tools without ``strict`` are re-sent with strict false (see encoder)."""
    tools = [attrs.evolve(t, strict=False) if t.kind == "function" and t.strict is None else t
             for t in request.tools]
    return attrs.evolve(request, tools=tools)


# -- captures ------------------------------------------------------------------


@pytest.mark.parametrize("name", OWN_CAPTURES)
def test_capture_round_trip_is_lossless(name: str) -> None:
    request = DIALECT.decode_request(capture(name))
    again = DIALECT.decode_request(DIALECT.encode_request(request))
    assert again == strict_as_sent(request)


@pytest.mark.parametrize("name", ["codex.json", "codex-tool-result.json", "codex-unknown-model.json"])
def test_codex_capture_re_encodes_to_the_same_body(name: str) -> None:
    body = capture(name)
    assert DIALECT.encode_request(DIALECT.decode_request(body)) == body


def test_codex_capture_decodes() -> None:
    request = DIALECT.decode_request(capture("codex.json"))
    assert request.model == "gpt-5.5" and request.stream
    # the system prompt is the leading developer messages; no instructions field
    assert request.system[0].text.startswith("You are Codex")
    assert any("<skills_instructions>" in t.text for t in request.system)
    assert [m.role for m in request.messages] == ["user"]
    assert request.messages[0].parts[-1] == ir.Text("say hi", extras={NAME: {"item": {
        "id": "msg_01a20125-92ed-7842-b25b-30921f1dc809"}}})
    kinds = {t.name: t.kind for t in request.tools}
    assert kinds["exec_command"] == "function" and kinds["apply_patch"] == "custom"
    assert kinds["tool_search"] == "tool_search" and kinds["web_search"] == "web_search"
    patch = next(t for t in request.tools if t.name == "apply_patch")
    assert patch.raw is not None and patch.raw["format"]["syntax"] == "lark"
    exec_tool = next(t for t in request.tools if t.name == "exec_command")
    assert exec_tool.strict is False and exec_tool.parameters is not None
    assert "cmd" in exec_tool.parameters["properties"]
    assert request.tool_choice == ir.ToolChoice(mode="auto", parallel=True)
    assert request.thinking == ir.ThinkingConfig(effort="medium", include_thoughts=False)
    ext = request.extensions[NAME]
    assert ext["store"] is False and ext["include"] == ["reasoning.encrypted_content"]
    assert ext["text"] == {"verbosity": "low"} and "client_metadata" in ext and "prompt_cache_key" in ext


def test_codex_tool_result_capture_decodes() -> None:
    request = DIALECT.decode_request(capture("codex-tool-result.json"))
    assert [m.role for m in request.messages] == ["user", "assistant", "user"]
    (call,) = request.messages[1].parts
    assert isinstance(call, ir.ToolCall)
    assert call.id == "call_c432eb6da9f84912bd2060e1" and call.name == "exec_command"
    assert json.loads(call.arguments) == {"cmd": "echo hello-from-tool"}
    assert call.extras[NAME]["item"] == {"status": "completed", "id": "fc_9b2c236e39514dd98d9c9a15"}
    (result,) = request.messages[2].parts
    assert isinstance(result, ir.ToolResult) and result.call_id == call.id
    assert isinstance(result.content[0], ir.Text) and "hello-from-tool" in result.content[0].text
    assert request.thinking == ir.ThinkingConfig(summary="auto", include_thoughts=True)


def test_namespace_tool_is_kept_whole() -> None:
    request = DIALECT.decode_request(capture("codex-unknown-model.json"))
    namespace = next(t for t in request.tools if t.kind == "namespace")
    assert namespace.name == "multi_agent_v1"
    assert namespace.raw is not None and namespace.raw["tools"][0]["name"] == "close_agent"


def test_sdk_capture_decodes() -> None:
    request = DIALECT.decode_request(capture("sdk-openai-python-responses.json"))
    assert [t.text for t in request.system] == ["terse"]
    assert request.messages == [ir.Message("user", [ir.Text("say hi", extras={NAME: {"item": {}}})])]
    assert request.tools[0].name == "get_weather" and request.tools[0].strict is None
    body = DIALECT.encode_request(request)
    assert body["instructions"] == "terse"
    assert body["input"] == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "say hi"}]}]
    assert body["tools"][0]["strict"] is False


@pytest.mark.parametrize("dialect,name", [(d, n) for d, names in OTHER_CAPTURES.items() for n in names])
def test_other_dialect_captures_encode_to_valid_responses_requests(dialect: str, name: str) -> None:
    from polyrelay.dialects import get_dialect

    request = get_dialect(dialect).decode_request(capture(name))
    body = DIALECT.encode_request(request)
    assert body["model"] == request.model
    roles = {item.get("role") for item in body["input"] if item["type"] == "message"}
    assert roles <= {"user", "assistant", "developer", "system"}
    # every function_call_output answers a function_call sent before it
    seen: set[str] = set()
    for item in body["input"]:
        if item["type"] == "function_call":
            json.loads(item["arguments"])
            seen.add(item["call_id"])
        if item["type"] == "function_call_output":
            assert item["call_id"] in seen
        # a foreign thinking signature never reaches a Responses upstream
        if item["type"] == "reasoning":
            pytest.fail(f"reasoning item from a {dialect} request: {item}")
    assert all(t["type"] in ("function", "custom") for t in body.get("tools", []))
    again = DIALECT.decode_request(body)
    texts = [p.text for m in request.messages for p in m.parts if isinstance(p, ir.Text)]
    assert [p.text for m in again.messages for p in m.parts if isinstance(p, ir.Text)] == texts
    assert "".join(t.text for t in again.system) == "\n\n".join(t.text for t in request.system)


# -- request decoding ------------------------------------------------------------


def test_items_merge_by_role_and_unknown_items_keep_their_place() -> None:
    body = {
        "model": "m",
        "input": [
            {"role": "developer", "content": "sys"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "q"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "a"},
                                                             {"type": "summary_text", "text": "b"}],
             "encrypted_content": "ENC"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "t"}]},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin"},
            {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "r"}]},
            {"type": "custom_tool_call_output", "call_id": "c2", "output": "done"},
            {"type": "message", "role": "system", "content": "late"},
        ],
    }
    request = DIALECT.decode_request(body)
    assert [t.text for t in request.system] == ["sys"]
    assert [m.role for m in request.messages] == ["user", "assistant", "user", "system"]
    thinking, text, call, custom = request.messages[1].parts
    assert thinking == ir.Thinking(text="a\n\nb", signature="ENC", origin=NAME, extras={NAME: {"item": {"id": "rs_1"}}})
    assert isinstance(text, ir.Text) and text.text == "t"
    assert isinstance(call, ir.ToolCall) and call.kind == "function"
    assert isinstance(custom, ir.ToolCall) and custom.kind == "custom" and custom.arguments == "*** Begin"
    assert request.messages[1].extras[NAME]["items"] == [[2, body["input"][4]]]
    results = request.messages[2].parts
    assert [(r.call_id, r.kind) for r in results if isinstance(r, ir.ToolResult)] == [
        ("c1", "function"), ("c2", "custom")]
    assert request.messages[3].extras == {}
    assert request.messages[3].parts[0].extras[NAME]["item"] == {"role": "system"}
    # and back: same items, same order
    assert DIALECT.encode_request(request)["input"] == [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sys"}]},
        body["input"][1],
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "a\n\nb"}], "encrypted_content": "ENC",
         "id": "rs_1"},
        body["input"][3], body["input"][4], body["input"][5], body["input"][6], body["input"][7], body["input"][8],
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "late"}]},
    ]


def test_request_parameters_map() -> None:
    body = {
        "model": "m", "input": "hi", "instructions": "be brief", "max_output_tokens": 100, "temperature": 0.2,
        "top_p": 0.9, "metadata": {"k": "v"}, "user": "u1", "previous_response_id": "resp_0",
        "reasoning": {"effort": "high", "summary": "detailed"},
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True},
                 "verbosity": "high"},
        "tool_choice": {"type": "function", "name": "f"}, "parallel_tool_calls": False,
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "defer_loading": True}],
    }
    request = DIALECT.decode_request(body)
    assert (request.max_tokens, request.temperature, request.top_p) == (100, 0.2, 0.9)
    assert request.metadata == {"k": "v"}
    assert request.thinking == ir.ThinkingConfig(effort="high", summary="detailed", include_thoughts=True)
    assert request.response_format == ir.ResponseFormat("json_schema", {"type": "object"}, "out", True)
    assert request.tool_choice == ir.ToolChoice(mode="tool", name="f", parallel=False)
    assert request.extensions[NAME] == {"user": "u1", "previous_response_id": "resp_0", "text": {"verbosity": "high"}}
    encoded = DIALECT.encode_request(request)
    assert encoded["tools"] == [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False,
                                 "defer_loading": True}]
    assert {k: v for k, v in encoded.items() if k not in ("input", "tools", "stream")} == {
        k: v for k, v in body.items() if k not in ("input", "tools")}


def test_hosted_tool_choice_is_carried_for_responses_only() -> None:
    choice = {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]}
    request = DIALECT.decode_request({"model": "m", "tool_choice": choice})
    assert request.tool_choice == ir.ToolChoice(mode="auto")
    assert DIALECT.encode_request(request)["tool_choice"] == choice
    request.extensions.clear()
    assert DIALECT.encode_request(request)["tool_choice"] == "auto"


def test_images_and_files_decode_and_encode() -> None:
    content = [
        {"type": "input_image", "image_url": "data:image/jpeg;base64,QUJD", "detail": "high"},
        {"type": "input_image", "image_url": "https://x/y.png"},
        {"type": "input_image", "file_id": "file_1"},
        {"type": "input_file", "file_data": "data:application/pdf;base64,UERG", "filename": "a.pdf"},
        {"type": "input_audio", "input_audio": {"data": "x"}},  # no IR form: dropped
    ]
    request = DIALECT.decode_request({"model": "m", "input": [{"role": "user", "content": content}]})
    a, b, c, d = request.messages[0].parts
    assert (a.media_type, a.data, a.extras[NAME]["part"]) == ("image/jpeg", "QUJD", {"detail": "high"})
    assert isinstance(b, ir.Image) and b.url == "https://x/y.png"
    assert isinstance(c, ir.Image) and c.extras[NAME]["part"] == {"file_id": "file_1"}
    assert isinstance(d, ir.File) and (d.media_type, d.data, d.filename) == ("application/pdf", "UERG", "a.pdf")
    assert DIALECT.encode_request(request)["input"][0]["content"] == content[:4]


@pytest.mark.parametrize("encrypted,origin,signature", [
    ("ENC", NAME, "ENC"),
    (ir.wrap_signature(ir.ANTHROPIC, "SIG"), ir.ANTHROPIC, "SIG"),
    (ir.wrap_signature(ir.GEMINI, "G"), ir.GEMINI, "G"),
])
def test_reasoning_signature_origin_from_client(encrypted: str, origin: str, signature: str) -> None:
    item = {"type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}], "encrypted_content": encrypted}
    request = DIALECT.decode_request({"model": "m", "input": [item]})
    (thinking,) = request.messages[0].parts
    assert isinstance(thinking, ir.Thinking) and (thinking.origin, thinking.signature) == (origin, signature)
    encoded = DIALECT.encode_request(request)["input"]
    # only our own signature goes back upstream; a foreign one is dropped with its item
    assert encoded == ([item] if origin == NAME else [])


def test_redacted_thinking_survives_a_responses_client() -> None:
    response = ir.Response(id="msg_1", model="m", parts=[
        ir.Thinking(redacted=True, signature="DATA", origin=ir.ANTHROPIC), ir.Text("hi")])
    output = DIALECT.encode_response(response)["output"]
    assert output[0]["summary"] == [] and output[0]["encrypted_content"].startswith("prx1.anthropic.")
    replay = DIALECT.decode_request({"model": "m", "input": output})
    thinking = replay.messages[0].parts[0]
    assert isinstance(thinking, ir.Thinking)
    assert (thinking.redacted, thinking.signature, thinking.origin) == (True, "DATA", ir.ANTHROPIC)


def test_foreign_ir_encodes_to_responses_conventions() -> None:
    request = ir.Request(
        model="up",
        system=[ir.Text("one"), ir.Text("two")],
        messages=[
            ir.Message("user", [ir.Text("look"), ir.Image(media_type="image/png", data="AAA")]),
            ir.Message("assistant", [ir.Thinking("t", signature="S", origin=ir.ANTHROPIC), ir.Text("ok"),
                                     ir.ToolCall(id="toolu_1", name="f", arguments='{"x":1}'),
                                     ir.ToolCall(id="toolu_2", name="g", arguments="")]),
            ir.Message("user", [ir.ToolResult("toolu_1", [ir.Text("a"), ir.Text("b")], is_error=True),
                                ir.ToolResult("toolu_2", [ir.Text("c"), ir.Image(url="https://i")])]),
            ir.Message("system", [ir.Text("reminder")]),
        ],
        tools=[ir.Tool("f", parameters={"type": "object"}), ir.Tool("web_search", kind="web_search_20250305",
                                                                   raw={"type": "web_search_20250305"})],
        thinking=ir.ThinkingConfig(budget=2000, include_thoughts=True),
        stop=["END"],
        tool_choice=ir.ToolChoice(mode="required", parallel=False),
    )
    body = DIALECT.encode_request(request)
    assert body["instructions"] == "one\n\ntwo"
    assert body["input"] == [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"}, {"type": "input_image", "image_url": "data:image/png;base64,AAA"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
        {"type": "function_call", "call_id": "toolu_1", "name": "f", "arguments": '{"x":1}'},
        {"type": "function_call", "call_id": "toolu_2", "name": "g", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "a\nb"},
        {"type": "function_call_output", "call_id": "toolu_2", "output": [
            {"type": "input_text", "text": "c"}, {"type": "input_image", "image_url": "https://i"}]},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "reminder"}]},
    ]
    assert body["tools"] == [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False}]
    assert body["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert (body["tool_choice"], body["parallel_tool_calls"]) == ("required", False)
    assert "stop" not in body


@pytest.mark.parametrize("thinking,wire", [
    (ir.ThinkingConfig(enabled=False), {"effort": "none"}),
    # Thinking on and nothing said about showing it (Anthropic, Gemini clients): ask for a summary.
    (ir.ThinkingConfig(effort="max"), {"effort": "xhigh", "summary": "auto"}),
    (ir.ThinkingConfig(budget=-1), {"summary": "auto"}),
    (ir.ThinkingConfig(budget=100000), {"effort": "xhigh", "summary": "auto"}),
    (ir.ThinkingConfig(adaptive=True, effort="low"), {"effort": "low", "summary": "auto"}),
    (ir.ThinkingConfig(effort="low", include_thoughts=False), {"effort": "low"}),
])
def test_reasoning_config_encoding(thinking: ir.ThinkingConfig, wire: dict[str, Any]) -> None:
    assert DIALECT.encode_request(ir.Request(model="m", thinking=thinking))["reasoning"] == wire


# -- malformed requests ------------------------------------------------------------


@pytest.mark.parametrize("body,message", [
    ([], "JSON object"),
    ("x", "JSON object"),
    (None, "JSON object"),
    ({}, "model is required"),
    ({"model": 3}, "model must be a string"),
    ({"model": "m", "input": 5}, "input must be"),
    ({"model": "m", "input": [3]}, "input[0] must be an object"),
    ({"model": "m", "input": [{}]}, "input[0] needs a type or a role"),
    ({"model": "m", "input": [{"type": 1}]}, "input[0].type must be a string"),
    ({"model": "m", "input": [{"role": 1, "content": "x"}]}, "input[0].role must be a string"),
    ({"model": "m", "input": [{"role": "user", "content": 7}]}, "input[0].content must be a string or an array"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]}, "content[0].text is required"),
    ({"model": "m", "input": [{"role": "user", "content": [1]}]}, "content[0] must be an object"),
    ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id is required"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]},
     "arguments must be a string"),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c"}]}, "output must be"),
    ({"model": "m", "input": [{"type": "reasoning", "summary": "x"}]}, "summary must be an array"),
    ({"model": "m", "tools": {}}, "tools must be an array"),
    ({"model": "m", "tools": [{"type": "function"}]}, "tools[0].name is required"),
    ({"model": "m", "tools": ["f"]}, "tools[0] must be an object"),
    ({"model": "m", "tool_choice": "sometimes"}, "tool_choice must be"),
    ({"model": "m", "tool_choice": 1}, "tool_choice must be"),
    ({"model": "m", "parallel_tool_calls": "yes"}, "parallel_tool_calls must be a boolean"),
    ({"model": "m", "reasoning": "high"}, "reasoning must be an object"),
    ({"model": "m", "reasoning": {"effort": 1}}, "reasoning.effort must be a string"),
    ({"model": "m", "max_output_tokens": True}, "max_output_tokens must be an integer"),
    ({"model": "m", "temperature": "hot"}, "temperature must be a number"),
    ({"model": "m", "text": {"format": {"type": "json_schema", "schema": []}}}, "text.format.schema must be"),
    ({"model": "m", "instructions": ["x"]}, "instructions must be a string"),
    ({"model": "m", "metadata": []}, "metadata must be an object"),
])
def test_malformed_requests_raise_dialect_error(body: Any, message: str) -> None:
    with pytest.raises(DialectError) as caught:
        DIALECT.decode_request(body)
    assert message in caught.value.message and caught.value.status == 400


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
item_like = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["message", "function_call", "function_call_output", "reasoning", "custom_tool_call",
                             "custom_tool_call_output", "web_search_call"]) | json_values,
    "role": st.sampled_from(["user", "assistant", "developer", "system", "tool"]) | json_values,
    "content": json_values, "call_id": json_values, "name": json_values, "arguments": json_values,
    "output": json_values, "summary": json_values, "encrypted_content": json_values, "input": json_values,
})
request_like = st.fixed_dictionaries({"model": st.just("m") | json_values}, optional={
    "input": st.lists(item_like, max_size=4) | json_values, "tools": json_values, "tool_choice": json_values,
    "reasoning": json_values, "text": json_values, "instructions": json_values, "max_output_tokens": json_values,
})


@FUZZ
@given(st.one_of(json_values, request_like))
def test_arbitrary_json_never_raises_anything_but_dialect_error(body: Any) -> None:
    try:
        request = DIALECT.decode_request(body)
    except DialectError as exc:
        assert exc.message
        return
    # what decodes also encodes and decodes again to the same thing
    again = DIALECT.decode_request(DIALECT.encode_request(request))
    assert again == strict_as_sent(request)


# -- complete responses ------------------------------------------------------------

RESPONSE = {
    "id": "resp_1", "object": "response", "created_at": 1775555723, "status": "completed", "error": None,
    "incomplete_details": None, "model": "gpt-5.4",
    "output": [
        {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "plan"}],
         "encrypted_content": "gAAA"},
        {"id": "ws_1", "type": "web_search_call", "status": "completed", "action": {"type": "search"}},
        {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "Hi", "annotations": []}]},
        {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1", "name": "f",
         "arguments": "{\"a\":1}"},
    ],
    "usage": {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 40}, "output_tokens": 30,
              "output_tokens_details": {"reasoning_tokens": 12}, "total_tokens": 130},
    "parallel_tool_calls": True,
}


def test_response_decodes_and_round_trips() -> None:
    response = DIALECT.decode_response(RESPONSE)
    assert (response.id, response.model, response.stop_reason) == ("resp_1", "gpt-5.4", "tool_use")
    assert response.usage == ir.Usage(input_tokens=100, output_tokens=30, cached_tokens=40, reasoning_tokens=12)
    thinking, text, call = response.parts
    assert isinstance(thinking, ir.Thinking) and (thinking.text, thinking.signature, thinking.origin) == (
        "plan", "gAAA", NAME)
    assert isinstance(text, ir.Text) and text.text == "Hi"
    assert isinstance(call, ir.ToolCall) and (call.id, call.name, call.arguments) == ("call_1", "f", '{"a":1}')
    assert DIALECT.encode_response(response) == RESPONSE
    assert DIALECT.decode_response(DIALECT.encode_response(response)) == response


@pytest.mark.parametrize("status,details,error,stop", [
    ("completed", None, None, "end_turn"),
    ("incomplete", {"reason": "max_output_tokens"}, None, "max_tokens"),
    ("incomplete", {"reason": "content_filter"}, None, "refusal"),
    ("failed", None, {"code": "context_length_exceeded", "message": "too long"}, "context_window_exceeded"),
])
def test_response_status_maps_to_stop_reason(status: str, details: Any, error: Any, stop: str) -> None:
    body = {"id": "r", "model": "m", "status": status, "incomplete_details": details, "error": error,
            "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "x"}]}]}
    response = DIALECT.decode_response(body)
    assert response.stop_reason == stop
    encoded = DIALECT.encode_response(response)
    assert (encoded["status"], encoded["incomplete_details"]) == (status, details)
    assert (encoded["error"] or {}).get("code") == (error or {}).get("code")


def test_encode_response_from_foreign_ir() -> None:
    response = ir.Response(id="msg_01", model="client-model", stop_reason="max_tokens", parts=[
        ir.Thinking("why", signature="SIG", origin=ir.ANTHROPIC), ir.Text("a"), ir.Text("b"),
        ir.ToolCall(id="toolu_1", name="f", arguments="{}", signature="G", signature_origin=ir.GEMINI),
    ], usage=ir.Usage(input_tokens=5, output_tokens=7, cache_write_tokens=2))
    body = DIALECT.encode_response(response)
    assert body["id"] == "resp_msg_01" and body["model"] == "client-model" and body["object"] == "response"
    # a tool call was made: completed, whatever the upstream said
    assert body["status"] == "completed" and body["incomplete_details"] is None
    assert body["output"] == [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "why"}],
         "encrypted_content": "prx1.anthropic.SIG", "id": "rs_msg_01_0"},
        {"type": "message", "role": "assistant", "id": "msg_msg_01_1", "status": "completed", "content": [
            {"type": "output_text", "text": "a", "annotations": []},
            {"type": "output_text", "text": "b", "annotations": []}]},
        {"type": "function_call", "call_id": "toolu_1", "name": "f", "arguments": "{}", "id": "fc_msg_01_2",
         "status": "completed"},
    ]
    assert body["usage"] == {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 7,
                             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 12}


@pytest.mark.parametrize("body", [None, [], "x", {"output": "x"}, {"output": [{"type": "function_call"}]}])
def test_malformed_response_raises_dialect_error(body: Any) -> None:
    with pytest.raises(DialectError):
        DIALECT.decode_response(body)


# -- stream encoding ---------------------------------------------------------------

SCRIPT: list[ir.Event] = [
    ir.MessageStart(id="msg_9", model="upstream-model", usage=ir.Usage(input_tokens=50, cached_tokens=20)),
    ir.BlockStart(0, "thinking"),
    ir.BlockDelta(0, "thinking", "Let me "),
    ir.BlockDelta(0, "thinking", "think."),
    ir.BlockDelta(0, "signature", "SIG", origin=ir.ANTHROPIC),
    ir.BlockStop(0),
    ir.BlockStart(1, "text"),
    ir.BlockDelta(1, "text", "Héllo "),
    ir.BlockDelta(1, "text", "wörld"),
    ir.BlockStop(1),
    ir.BlockStart(2, "tool_call", id="call_a", name="read"),
    ir.BlockStart(3, "tool_call", id="call_b", name="grep"),
    ir.BlockDelta(2, "arguments", '{"pa'),
    ir.BlockDelta(3, "arguments", '{"q":'),
    ir.BlockDelta(2, "arguments", 'th":"a"}'),
    ir.BlockDelta(3, "arguments", '"x"}'),
    ir.BlockStop(2),
    ir.BlockStop(3),
    ir.MessageDelta(stop_reason="end_turn", usage=ir.Usage(input_tokens=50, output_tokens=9, cached_tokens=20,
                                                            reasoning_tokens=4)),
    ir.MessageStop(),
]


def test_stream_encoder_wire_order() -> None:
    out = frames(encode_stream(SCRIPT))
    assert [name for name, _ in out] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.output_item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed",
    ]
    assert all(data["type"] == name for name, data in out)
    assert [data["sequence_number"] for _, data in out] == list(range(len(out)))
    created = out[0][1]["response"]
    assert created["model"] == "client-model" and created["status"] == "in_progress" and created["output"] == []
    assert created["id"] == "resp_msg_9" and out[1][1]["response"]["id"] == "resp_msg_9"

    added = [d for n, d in out if n == "response.output_item.added"]
    assert [(d["output_index"], d["item"]["type"]) for d in added] == [
        (0, "reasoning"), (1, "message"), (2, "function_call"), (3, "function_call")]
    assert added[2]["item"]["call_id"] == "call_a" and added[3]["item"]["name"] == "grep"
    args = {}
    for name, data in out:
        if name == "response.function_call_arguments.delta":
            args[data["item_id"]] = args.get(data["item_id"], "") + data["delta"]
    assert args == {added[2]["item"]["id"]: '{"path":"a"}', added[3]["item"]["id"]: '{"q":"x"}'}

    done = [d["item"] for n, d in out if n == "response.output_item.done"]
    assert done[0] == {"id": added[0]["item"]["id"], "type": "reasoning",
                       "summary": [{"type": "summary_text", "text": "Let me think."}],
                       "encrypted_content": "prx1.anthropic.SIG"}
    assert done[1]["content"] == [{"type": "output_text", "text": "Héllo wörld", "annotations": []}]
    assert done[1]["status"] == "completed"
    assert [d["arguments"] for d in done[2:]] == ['{"path":"a"}', '{"q":"x"}']

    final = out[-1][1]["response"]
    assert final["status"] == "completed" and final["model"] == "client-model"
    assert final["output"] == done
    assert final["usage"] == {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 20}, "output_tokens": 9,
                              "output_tokens_details": {"reasoning_tokens": 4}, "total_tokens": 59}


def test_stream_encoder_matches_complete_response_encoding() -> None:
    collected = collect(SCRIPT, model="client-model")
    final = frames(encode_stream(SCRIPT))[-1][1]["response"]
    whole = DIALECT.encode_response(attrs.evolve(collected, id="msg_9"))
    strip = [{k: v for k, v in item.items() if k != "id"} for item in whole["output"]]
    assert [{k: v for k, v in item.items() if k != "id"} for item in final["output"]] == strip
    assert final["usage"] == whole["usage"]


@pytest.mark.parametrize("stop,calls,event,status,detail", [
    ("end_turn", False, "response.completed", "completed", None),
    ("stop_sequence", False, "response.completed", "completed", None),
    ("pause_turn", False, "response.completed", "completed", None),
    ("tool_use", True, "response.completed", "completed", None),
    ("max_tokens", False, "response.incomplete", "incomplete", {"reason": "max_output_tokens"}),
    ("refusal", False, "response.incomplete", "incomplete", {"reason": "content_filter"}),
    ("max_tokens", True, "response.completed", "completed", None),  # a tool call wins
    (None, False, "response.completed", "completed", None),
])
def test_stream_encoder_terminal_per_stop_reason(stop: str | None, calls: bool, event: str, status: str,
                                                  detail: Any) -> None:
    script: list[ir.Event] = [ir.MessageStart(id="r", model="u"), ir.BlockStart(0, "text"),
                              ir.BlockDelta(0, "text", "x"), ir.BlockStop(0)]
    if calls:
        script += [ir.BlockStart(1, "tool_call", id="c", name="f"), ir.BlockDelta(1, "arguments", "{}"),
                   ir.BlockStop(1)]
    script += [ir.MessageDelta(stop_reason=stop, usage=ir.Usage(output_tokens=1)), ir.MessageStop()]
    name, data = frames(encode_stream(script))[-1]
    assert name == event
    assert (data["response"]["status"], data["response"]["incomplete_details"]) == (status, detail)


def test_stream_encoder_context_window_stop_fails() -> None:
    script = [ir.MessageStart(id="r", model="u"), ir.MessageDelta(stop_reason="context_window_exceeded"),
              ir.MessageStop()]
    name, data = frames(encode_stream(script))[-1]
    assert name == "response.failed" and data["response"]["error"]["code"] == "context_length_exceeded"


def test_stream_encoder_error_and_nothing_after_it() -> None:
    encoder = DIALECT.stream_encoder(ir.Request(model="cm"))
    encoder.encode(ir.MessageStart(id="r", model="u"))
    encoder.encode(ir.BlockStart(0, "text"))
    error = ir.ErrorInfo(status=429, message="Slow down.", retry_after=2.5)
    raw = encoder.encode(ir.StreamError(error))
    assert encoder.encode(ir.MessageStop()) == b"" and encoder.finish() == b""
    ((name, data),) = frames(raw)
    assert name == "response.failed" and data["sequence_number"] == 4
    assert data["response"]["status"] == "failed" and data["response"]["model"] == "cm"
    assert data["response"]["error"] == {"code": "rate_limit_exceeded",
                                         "message": "Slow down. Please try again in 2.5s."}
    coded = ir.ErrorInfo(status=400, message="too long", code="context_length_exceeded")
    (_, data), = frames(encode_stream([ir.StreamError(coded)]))[-1:]
    assert data["response"]["error"] == {"code": "context_length_exceeded", "message": "too long"}


def test_stream_encoder_synthesizes_start_and_blocks() -> None:
    out = frames(encode_stream([ir.BlockDelta(0, "text", "hi"), ir.BlockStop(0), ir.MessageStop()]))
    names = [n for n, _ in out]
    assert names[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert names.count("response.created") == 1 and out[0][1]["response"]["id"].startswith("resp_")
    assert out[-1][1]["response"]["output"][0]["content"][0]["text"] == "hi"


def test_stream_encoder_custom_tool_and_redacted_thinking() -> None:
    out = frames(encode_stream([
        ir.MessageStart(id="r", model="u"),
        ir.BlockStart(0, "redacted_thinking", data="OPAQUE"), ir.BlockStop(0),
        ir.BlockStart(1, "tool_call", id="c", name="apply_patch", tool_kind="custom"),
        ir.BlockDelta(1, "arguments", "*** Begin"), ir.BlockStop(1), ir.MessageStop()]))
    names = [n for n, _ in out]
    assert "response.custom_tool_call_input.delta" in names and "response.custom_tool_call_input.done" in names
    output = out[-1][1]["response"]["output"]
    assert output[0]["encrypted_content"] == ir.wrap_signature(ir.ANTHROPIC, "redacted:OPAQUE")
    assert output[1]["type"] == "custom_tool_call" and output[1]["input"] == "*** Begin"


def test_stream_encoder_ndjson_mode() -> None:
    raw = encode_stream(SCRIPT, sse=False)
    lines = raw.split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line)["type"] for line in lines[:-1])
    assert json.loads(lines[-2])["type"] == "response.completed"


def test_stream_encoder_output_decodes_back() -> None:
    events = decode_stream(encode_stream(SCRIPT))
    response = collect(events)
    expected = collect(SCRIPT)
    assert [type(p) for p in response.parts] == [type(p) for p in expected.parts]
    assert response.parts[1:] == expected.parts[1:]
    assert response.stop_reason == "tool_use" and response.usage == expected.usage


# -- stream decoding ---------------------------------------------------------------

API_STREAM = sse(
    {"type": "response.created", "response": {"id": "resp_1", "object": "response", "status": "in_progress",
                                              "model": "gpt-5.4-mini-2026-03-17", "output": [], "usage": None}},
    {"type": "response.in_progress", "response": {"id": "resp_1", "status": "in_progress"}},
    {"type": "response.output_item.added", "output_index": 0, "item": {"id": "rs_1", "type": "reasoning",
                                                                       "summary": []}},
    {"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "output_index": 0, "summary_index": 0,
     "part": {"type": "summary_text", "text": ""}},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "output_index": 0, "summary_index": 0,
     "delta": "**Plän** ✓"},
    {"type": "response.reasoning_summary_text.done", "item_id": "rs_1", "output_index": 0, "summary_index": 0,
     "text": "**Plän** ✓"},
    {"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "output_index": 0, "summary_index": 1,
     "part": {"type": "summary_text", "text": ""}},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "output_index": 0, "summary_index": 1,
     "delta": "more"},
    {"type": "response.output_item.done", "output_index": 0, "item": {
        "id": "rs_1", "type": "reasoning", "encrypted_content": "gAAAAB",
        "summary": [{"type": "summary_text", "text": "**Plän** ✓"}, {"type": "summary_text", "text": "more"}]}},
    {"type": "response.output_item.added", "output_index": 1, "item": {
        "id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}},
    {"type": "response.content_part.added", "item_id": "msg_1", "output_index": 1, "content_index": 0,
     "part": {"type": "output_text", "text": "", "annotations": []}},
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "content_index": 0,
     "delta": "日本", "logprobs": []},
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "content_index": 0,
     "delta": "語 🎉", "logprobs": []},
    {"type": "response.output_text.done", "item_id": "msg_1", "output_index": 1, "content_index": 0,
     "text": "日本語 🎉"},
    {"type": "response.content_part.done", "item_id": "msg_1", "output_index": 1, "content_index": 0,
     "part": {"type": "output_text", "text": "日本語 🎉", "annotations": []}},
    {"type": "response.output_item.done", "output_index": 1, "item": {
        "id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": "日本語 🎉", "annotations": []}]}},
    {"type": "response.output_item.added", "output_index": 2, "item": {
        "id": "fc_1", "type": "function_call", "status": "in_progress", "arguments": "", "call_id": "call_1",
        "name": "get_weather"}},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 2, "delta": "{\"city\":"},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 2, "delta": "\"Oslo\"}"},
    {"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 2,
     "arguments": "{\"city\":\"Oslo\"}"},
    {"type": "response.output_item.done", "output_index": 2, "item": {
        "id": "fc_1", "type": "function_call", "status": "completed", "arguments": "{\"city\":\"Oslo\"}",
        "call_id": "call_1", "name": "get_weather"}},
    {"type": "response.completed", "response": {
        "id": "resp_1", "status": "completed", "model": "gpt-5.4-mini-2026-03-17", "output": [],
        "usage": {"input_tokens": 20, "input_tokens_details": {"cached_tokens": 8}, "output_tokens": 15,
                  "output_tokens_details": {"reasoning_tokens": 6}, "total_tokens": 35}}},
)

API_EVENTS: list[ir.Event] = [
    ir.MessageStart(id="resp_1", model="gpt-5.4-mini-2026-03-17"),
    ir.BlockStart(0, "thinking"),
    ir.BlockDelta(0, "thinking", "**Plän** ✓"),
    ir.BlockDelta(0, "thinking", "\n\n"),
    ir.BlockDelta(0, "thinking", "more"),
    ir.BlockDelta(0, "signature", "gAAAAB", origin=NAME),
    ir.BlockStop(0),
    ir.BlockStart(1, "text"),
    ir.BlockDelta(1, "text", "日本"),
    ir.BlockDelta(1, "text", "語 🎉"),
    ir.BlockStop(1),
    ir.BlockStart(2, "tool_call", id="call_1", name="get_weather"),
    ir.BlockDelta(2, "arguments", "{\"city\":"),
    ir.BlockDelta(2, "arguments", "\"Oslo\"}"),
    ir.BlockStop(2),
    ir.MessageDelta(stop_reason="tool_use", usage=ir.Usage(input_tokens=20, output_tokens=15, cached_tokens=8,
                                                           reasoning_tokens=6)),
    ir.MessageStop(),
]

# Codex: no sequence_number, items only in output_item.done, completed with empty output.
CODEX_STREAM = sse(
    {"type": "response.created", "response": {"id": "resp_c", "model": "gpt-5.1-codex"}},
    {"type": "response.output_item.done", "output_index": 0, "item": {
        "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi ✓"}]}},
    {"type": "response.output_item.done", "output_index": 1, "item": {
        "type": "custom_tool_call", "call_id": "call_p", "name": "apply_patch", "input": "*** Begin Patch"}},
    {"type": "response.completed", "response": {"id": "resp_c", "status": "completed", "output": [],
                                                "usage": {"input_tokens": 3, "output_tokens": 2}}},
    sequence=False,
).replace(b"\n", b"\r\n")

CODEX_EVENTS: list[ir.Event] = [
    ir.MessageStart(id="resp_c", model="gpt-5.1-codex"),
    ir.BlockStart(0, "text"), ir.BlockDelta(0, "text", "hi ✓"), ir.BlockStop(0),
    ir.BlockStart(1, "tool_call", id="call_p", name="apply_patch", tool_kind="custom"),
    ir.BlockDelta(1, "arguments", "*** Begin Patch"), ir.BlockStop(1),
    ir.MessageDelta(stop_reason="tool_use", usage=ir.Usage(input_tokens=3, output_tokens=2)),
    ir.MessageStop(),
]


@pytest.mark.parametrize("stream,expected", [(API_STREAM, API_EVENTS), (CODEX_STREAM, CODEX_EVENTS)])
def test_stream_decoder_events(stream: bytes, expected: list[ir.Event]) -> None:
    assert decode_stream(stream) == expected


@pytest.mark.parametrize("stream,expected", [(API_STREAM, API_EVENTS), (CODEX_STREAM, CODEX_EVENTS)])
def test_stream_decoder_split_at_every_offset(stream: bytes, expected: list[ir.Event]) -> None:
    for cut in range(len(stream) + 1):
        assert decode_stream(stream[:cut], stream[cut:]) == expected, cut


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, len(API_STREAM)), max_size=12))
def test_stream_decoder_any_splits(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(API_STREAM)]
    assert decode_stream(*(API_STREAM[a:b] for a, b in itertools.pairwise(bounds))) == API_EVENTS


def test_stream_decoder_incomplete_and_completed_only_output() -> None:
    events = decode_stream(sse(
        {"type": "response.completed", "response": {"id": "r", "model": "m", "status": "completed",
                                                    "output": RESPONSE["output"], "usage": RESPONSE["usage"]}}))
    # item ids (extras) do not travel in stream events; everything else does
    assert collect(events).parts == [attrs.evolve(p, extras={}) for p in DIALECT.decode_response(RESPONSE).parts]
    assert isinstance(events[0], ir.MessageStart) and events[-2] == ir.MessageDelta(
        stop_reason="tool_use", usage=DIALECT.decode_response(RESPONSE).usage)
    events = decode_stream(sse(
        {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "cut"},
        {"type": "response.incomplete", "response": {"status": "incomplete",
                                                     "incomplete_details": {"reason": "max_output_tokens"}}}))
    assert events == [ir.MessageStart(id="", model=""), ir.BlockStart(0, "text"), ir.BlockDelta(0, "text", "cut"),
                      ir.BlockStop(0), ir.MessageDelta(stop_reason="max_tokens", usage=ir.Usage()), ir.MessageStop()]


@pytest.mark.parametrize("data,status,code,message", [
    ({"type": "error", "error": {"type": "invalid_request_error", "code": "context_length_exceeded", "param": "input",
                                 "message": "Your input exceeds the context window of this model."}},
     400, "context_length_exceeded", "Your input exceeds the context window of this model."),
    ({"type": "error", "code": "server_error", "message": "boom", "param": None}, 500, "server_error", "boom"),
    ({"type": "response.failed", "response": {"status": "failed", "error": {
        "code": "rate_limit_exceeded", "message": "Please try again in 1.5s."}}},
     429, "rate_limit_exceeded", "Please try again in 1.5s."),
])
def test_stream_decoder_errors(data: dict[str, Any], status: int, code: str, message: str) -> None:
    decoder = DIALECT.stream_decoder()
    events = decoder.feed(sse({"type": "response.created", "response": {"id": "r", "model": "m"}},
                              {"type": "response.output_text.delta", "output_index": 0, "delta": "x"}, data))
    assert decoder.finished
    assert [type(e) for e in events] == [ir.MessageStart, ir.BlockStart, ir.BlockDelta, ir.BlockStop, ir.StreamError]
    error = events[-1].error  # type: ignore[union-attr]
    assert (error.status, error.code, error.message) == (status, code, message)
    if code == "rate_limit_exceeded":
        assert error.retry_after == 1.5
    # nothing after the terminal event
    assert decoder.feed(sse({"type": "response.completed", "response": {}})) == []


def test_stream_decoder_unfinished_and_junk() -> None:
    decoder = DIALECT.stream_decoder()
    events = decoder.feed(b': keep-alive\n\ndata: [DONE]\n\nevent: response.created\ndata: {"response":{"id":"r"}}')
    assert events == [] and not decoder.finished
    assert decoder.close() == [ir.MessageStart(id="r", model="")] and not decoder.finished


frame_like = st.fixed_dictionaries({"type": st.sampled_from([
    "response.created", "response.output_item.added", "response.output_item.done", "response.output_text.delta",
    "response.content_part.done", "response.function_call_arguments.delta", "response.function_call_arguments.done",
    "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta", "response.completed",
    "response.incomplete", "response.failed", "error", "response.web_search_call.searching"]) | json_values},
    optional={"output_index": st.integers(0, 3) | json_values, "content_index": st.integers(0, 2) | json_values,
              "item_id": st.sampled_from(["a", "b"]) | json_values, "delta": st.text(max_size=5) | json_values,
              "item": json_values | st.fixed_dictionaries({"type": st.sampled_from(
                  ["message", "reasoning", "function_call", "custom_tool_call"])}, optional={
                  "call_id": json_values, "name": json_values, "arguments": json_values, "content": json_values,
                  "summary": json_values, "encrypted_content": json_values}),
              "response": json_values, "part": json_values, "arguments": json_values})


@FUZZ
@given(st.lists(frame_like, max_size=10))
def test_stream_decoder_survives_arbitrary_events(events: list[dict[str, Any]]) -> None:
    decoder = DIALECT.stream_decoder()
    out = decoder.feed("".join(f"data: {json.dumps(e)}\n\n" for e in events).encode()) + decoder.close()
    # well formed: one start first, blocks started before use and stopped once, indices in order
    assert sum(isinstance(e, ir.MessageStart) for e in out) == (1 if out else 0)
    assert not out or isinstance(out[0], ir.MessageStart)
    started: list[int] = []
    open_: set[int] = set()
    for event in out:
        if isinstance(event, ir.BlockStart):
            assert event.index == len(started)
            started.append(event.index)
            open_.add(event.index)
        elif isinstance(event, ir.BlockDelta):
            assert event.index in open_
        elif isinstance(event, ir.BlockStop):
            open_.remove(event.index)
    if decoder.finished:
        assert not open_ and isinstance(out[-1], (ir.MessageStop, ir.StreamError))


# -- errors ------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"   ", b"<html>502 Bad Gateway</html>", b"\xff\xfe", b"[1,2]", b"null",
                                  b'{"error": null}', b'{"error": 5}', b'"just a string"'])
def test_decode_error_accepts_garbage(body: bytes) -> None:
    error = DIALECT.decode_error(502, body)
    assert error.status == 502 and error.kind == "api_error" and error.message
    assert error.retry_after is None


def test_decode_error_shapes() -> None:
    openai = DIALECT.decode_error(429, json.dumps({"error": {
        "message": "Rate limit reached. Please try again in 250ms.", "type": "tokens",
        "param": None, "code": "rate_limit_exceeded"}}).encode())
    assert (openai.kind, openai.code, openai.retry_after) == ("rate_limit", "rate_limit_exceeded", 0.25)
    usage = DIALECT.decode_error(429, json.dumps({"error": {
        "type": "usage_limit_reached", "message": "The usage limit has been reached", "plan_type": "plus",
        "resets_at": int(time.time()) + 999, "resets_in_seconds": 600}}).encode())
    assert (usage.code, usage.retry_after) == ("usage_limit_reached", 600)
    assert usage.message == "The usage limit has been reached"
    reset_at = DIALECT.decode_error(429, json.dumps({"error": {
        "type": "usage_limit_reached", "resets_at": int(time.time()) + 100}}).encode())
    assert reset_at.retry_after is not None and 95 <= reset_at.retry_after <= 100
    detail = DIALECT.decode_error(400, b'{"detail":"Unsupported parameter: max_output_tokens"}')
    assert (detail.kind, detail.message, detail.code) == ("invalid_request", "Unsupported parameter: max_output_tokens",
                                                          None)
    assert DIALECT.decode_error(422, b'{"detail":[{"loc":["body"]}]}').message == '[{"loc":["body"]}]'
    assert DIALECT.decode_error(429, b"Please try again in 1m30s").retry_after == 90
    assert DIALECT.decode_error(429, b'{"error":{"message":"try again in 20 seconds"}}').retry_after == 20
    overloaded = DIALECT.decode_error(503, b'{"error":{"code":"server_is_overloaded","message":"busy"}}')
    assert (overloaded.kind, overloaded.code) == ("overloaded", "server_is_overloaded")


@pytest.mark.parametrize("status,etype,code", [
    (400, "invalid_request_error", None),
    (401, "authentication_error", "invalid_api_key"),
    (402, "invalid_request_error", None),
    (403, "permission_error", "insufficient_quota"),
    (404, "invalid_request_error", "model_not_found"),
    (413, "invalid_request_error", None),
    (429, "rate_limit_error", "rate_limit_exceeded"),
    (500, "server_error", "internal_server_error"),
    (502, "server_error", "internal_server_error"),
    (503, "server_error", "server_is_overloaded"),
    (504, "server_error", "internal_server_error"),
])
def test_error_body_per_status(status: int, etype: str, code: str | None) -> None:
    body = DIALECT.error_body(ir.ErrorInfo(status=status, message="m"))
    assert body == {"error": {"message": "m", "type": etype, "param": None, "code": code}}
    assert DIALECT.error_body(ir.ErrorInfo(status=status, message="m", code="mine"))["error"]["code"] == "mine"


def test_dialect_surface() -> None:
    from polyrelay.dialects import get_dialect

    assert get_dialect(NAME) is DIALECT and DIALECT.name == NAME
    assert DIALECT.keepalive_frame == b": keep-alive\n\n"
    assert DIALECT.stream_decoder() is not DIALECT.stream_decoder()
