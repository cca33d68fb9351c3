"""Tests for the Gemini generateContent codec (polyrelay.dialects.gemini)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyrelay import ir
from polyrelay.aggregate import collect, response_events
from polyrelay.dialects import get_dialect
from polyrelay.dialects.base import DialectError
from polyrelay.dialects.gemini import DIALECT, SKIP_SIGNATURE, clean_schema
from polyrelay.dialects.hints import parse_duration
from polyrelay.jsonutil import dumps

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"
GEMINI_CAPTURES = ["gemini-cli.json", "gemini-cli-router.json", "gemini-cli-tool-result.json",
                   "sdk-google-genai-python.json"]


def capture(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / name).read_text())["body"]


def sse(chunks: list[Any], sep: bytes = b"\r\n\r\n") -> bytes:
    return b"".join(b"data: " + json.dumps(c, ensure_ascii=False).encode() + sep for c in chunks)


def array(chunks: list[Any]) -> bytes:
    # Google's own framing: pretty-printed elements separated by "\n,\r\n".
    return b"[" + b"\n,\r\n".join(json.dumps(c, indent=2, ensure_ascii=False).encode() for c in chunks) + b"]"


def decode_stream(data: bytes, step: int | None = None) -> tuple[list[ir.Event], bool]:
    decoder = DIALECT.stream_decoder()
    events: list[ir.Event] = []
    if step is None:
        events += decoder.feed(data)
    else:
        for i in range(0, len(data), step):
            events += decoder.feed(data[i : i + step])
    events += decoder.close()
    return events, decoder.finished


def sse_payloads(data: bytes) -> list[Any]:
    frames = data.decode().split("\n\n")
    assert frames[-1] == ""
    assert all(f.startswith("data: ") for f in frames[:-1])
    return [json.loads(f[len("data: ") :]) for f in frames[:-1]]


def parts_of(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    return chunk["candidates"][0]["content"]["parts"]


# -- basics ---------------------------------------------------------------------


def test_registered_and_identity() -> None:
    assert get_dialect(ir.GEMINI) is DIALECT
    assert DIALECT.name == "gemini"
    assert DIALECT.keepalive_frame == b": keep-alive\n\n"


# -- captures ---------------------------------------------------------------------


def assert_request_round_trip(body: dict[str, Any]) -> tuple[ir.Request, dict[str, Any]]:
    original = copy.deepcopy(body)
    request = DIALECT.decode_request(body)
    assert body == original, "decoding must not mutate the client's body"
    encoded = DIALECT.encode_request(request)
    again = DIALECT.decode_request(encoded)
    assert "model" not in encoded
    # Tool schemas are cleaned for Gemini on the way out; everything else is identical.
    assert [(t.name, t.description, t.kind) for t in again.tools] == [(t.name, t.description, t.kind)
                                                                       for t in request.tools]
    for before, after in zip(request.tools, again.tools, strict=True):
        assert after.parameters == (clean_schema(before.parameters) if before.parameters is not None else None)
    if request.response_format and request.response_format.schema:
        assert again.response_format.schema == clean_schema(request.response_format.schema)
        again.response_format.schema = request.response_format.schema
    again.tools = request.tools
    assert again == request
    return request, encoded


@pytest.mark.parametrize("name", GEMINI_CAPTURES)
def test_capture_decodes_and_round_trips(name: str) -> None:
    body = capture(name)
    request, encoded = assert_request_round_trip(body)
    assert request.model == ""
    assert request.messages and request.system
    assert request.messages[-1].role == "user"
    assert len(encoded["contents"]) == len(body["contents"])
    decls = [d for entry in body.get("tools", []) for d in entry["functionDeclarations"]]
    assert [t.name for t in request.tools] == [d["name"] for d in decls]


def test_capture_gemini_cli_main_turn() -> None:
    request = DIALECT.decode_request(capture("gemini-cli.json"))
    assert request.temperature == 1 and request.top_p == 0.95 and request.top_k == 64
    assert request.thinking == ir.ThinkingConfig(effort="high", include_thoughts=True)
    assert [p.text for p in request.messages[0].parts][-1] == "say hi"
    assert request.system[0].text.startswith("You are Gemini CLI")
    read_file = next(t for t in request.tools if t.name == "read_file")
    assert read_file.parameters["properties"]["start_line"]["minimum"] == 1  # kept raw in the IR
    encoded = DIALECT.encode_request(request)
    assert encoded["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "HIGH", "includeThoughts": True}
    decl = encoded["tools"][0]["functionDeclarations"][2]
    assert decl["name"] == "read_file" and "parametersJsonSchema" not in decl
    assert decl["parameters"]["required"] == ["file_path"]


def test_capture_tool_result_pairs_call_and_response() -> None:
    request, encoded = assert_request_round_trip(capture("gemini-cli-tool-result.json"))
    call = request.messages[1].parts[0]
    result = request.messages[2].parts[0]
    assert call == ir.ToolCall(id="read_file_1795315639251_0", name="read_file",
                               arguments='{"file_path":"hello.txt"}', signature=SKIP_SIGNATURE,
                               signature_origin=ir.GEMINI)
    assert request.messages[1].role == "assistant"
    assert result == ir.ToolResult(call_id=call.id, content=[ir.Text("hello file\n")], name="read_file")
    assert request.thinking == ir.ThinkingConfig(budget=8192, include_thoughts=True)
    assert encoded["contents"][1]["parts"][0] == {
        "functionCall": {"name": "read_file", "args": {"file_path": "hello.txt"}, "id": call.id},
        "thoughtSignature": SKIP_SIGNATURE,
    }
    assert encoded["contents"][2] == {"role": "user", "parts": [{"functionResponse": {
        "name": "read_file", "response": {"result": "hello file\n"}, "id": call.id}}]}


def test_capture_router_structured_output() -> None:
    request = DIALECT.decode_request(capture("gemini-cli-router.json"))
    fmt = request.response_format
    assert fmt is not None and fmt.type == "json_schema"
    assert fmt.schema["properties"]["complexity_score"]["type"] == "INTEGER"
    encoded = DIALECT.encode_request(request)["generationConfig"]
    assert encoded["responseMimeType"] == "application/json"
    assert encoded["responseSchema"]["required"] == ["complexity_reasoning", "complexity_score"]


def test_capture_google_sdk_snake_case_schema() -> None:
    request = DIALECT.decode_request(capture("sdk-google-genai-python.json"))
    assert request.tools == [ir.Tool(name="get_weather", description="Get weather", parameters={
        "type": "object", "properties": {"city": {"type": "string"}}})]
    assert request.system == [ir.Text("terse")]
    assert request.thinking is None and request.extensions == {}


OTHER_CAPTURES = {
    "claude-code.json": ir.ANTHROPIC, "claude-code-tool-result.json": ir.ANTHROPIC,
    "sdk-anthropic-python.json": ir.ANTHROPIC,
    "codex.json": ir.OPENAI_RESPONSES, "codex-tool-result.json": ir.OPENAI_RESPONSES,
    "codex-unknown-model.json": ir.OPENAI_RESPONSES, "sdk-openai-python-responses.json": ir.OPENAI_RESPONSES,
    "qwen-code.json": ir.OPENAI_CHAT, "qwen-code-tool-result.json": ir.OPENAI_CHAT,
    "qwen-code-memory-subagent.json": ir.OPENAI_CHAT, "sdk-openai-python-chat.json": ir.OPENAI_CHAT,
}
GEMINI_TOP_LEVEL = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings",
                    "cachedContent", "labels"}
FORBIDDEN_SCHEMA_KEYS = {"$schema", "$ref", "$defs", "definitions", "additionalProperties", "anyOf", "oneOf", "allOf",
                         "const", "format", "default", "pattern", "minLength", "maxLength", "title", "nullable",
                         "exclusiveMinimum", "exclusiveMaximum", "propertyNames", "patternProperties", "examples"}


def check_schema(schema: dict[str, Any], where: str) -> None:
    bad = FORBIDDEN_SCHEMA_KEYS & set(schema) | {k for k in schema if k.startswith("x-")}
    assert not bad, f"{where}: {bad}"
    assert isinstance(schema.get("type", "object"), str), where
    assert all(isinstance(v, str) for v in schema.get("enum", [])), where
    for name, prop in schema.get("properties", {}).items():
        check_schema(prop, f"{where}.{name}")
    if isinstance(schema.get("items"), dict):
        check_schema(schema["items"], f"{where}[]")
    if str(schema.get("type")).lower() == "array":
        assert "items" in schema, where
    assert set(schema.get("required", [])) <= set(schema.get("properties", {})), where


def check_gemini_body(body: dict[str, Any]) -> None:
    """What a Gemini upstream insists on, checked on an encoded request."""
    assert set(body) <= GEMINI_TOP_LEVEL, set(body) - GEMINI_TOP_LEVEL
    calls: dict[str, str] = {}
    for content in body["contents"]:
        assert content["role"] in ("user", "model") and content["parts"]
        responses_done = False
        for part in content["parts"]:
            assert isinstance(part, dict) and part
            signature = part.get("thoughtSignature")
            assert signature is None or not signature.startswith("prx1."), "a wrapped signature leaked upstream"
            if "functionCall" in part:
                call = part["functionCall"]
                assert content["role"] == "model" and isinstance(call["args"], dict) and call["name"]
                assert signature, "Gemini 3 rejects a functionCall without thoughtSignature"
                calls[call["id"]] = call["name"]
            if "functionResponse" in part:
                response = part["functionResponse"]
                assert not responses_done, "a turn's responses must be together"
                assert calls.get(response["id"]) == response["name"], "functionResponse.name must be the call's"
                assert isinstance(response["response"], dict)
            elif any("functionResponse" in p for p in content["parts"]):
                responses_done = True
    for entry in body.get("tools", []):
        for decl in entry.get("functionDeclarations", []):
            check_schema(decl.get("parameters", {}), decl["name"])


def flat_texts(messages: list[ir.Message]) -> list[str]:
    return [p.text for m in messages for p in m.parts if isinstance(p, ir.Text)]


@pytest.mark.parametrize(("name", "dialect"), sorted(OTHER_CAPTURES.items()))
def test_other_dialect_capture_encodes_to_valid_gemini(name: str, dialect: str) -> None:
    request = get_dialect(dialect).decode_request(capture(name))  # that dialect's own codec, loaded lazily
    body = DIALECT.encode_request(request)
    check_gemini_body(body)
    again = DIALECT.decode_request(body)
    assert again.system == [ir.Text(t.text) for t in request.system]
    assert flat_texts(again.messages) == flat_texts(request.messages)
    functions = [t for t in request.tools if t.kind in ("function", "custom")]
    assert [(t.name, t.description) for t in again.tools] == [(t.name, t.description) for t in functions]
    sent_calls = [p for m in request.messages for p in m.parts if isinstance(p, ir.ToolCall)]
    got_calls = [p for m in again.messages for p in m.parts if isinstance(p, ir.ToolCall)]
    assert [(c.id, c.name) for c in got_calls] == [(c.id, c.name) for c in sent_calls]
    got_results = [p for m in again.messages for p in m.parts if isinstance(p, ir.ToolResult)]
    sent_results = [p for m in request.messages for p in m.parts if isinstance(p, ir.ToolResult)]
    assert sorted(r.call_id for r in got_results) == sorted(r.call_id for r in sent_results)
    names = {c.id: c.name for c in sent_calls}
    assert all(r.name == names[r.call_id] for r in got_results)
    if name.endswith("tool-result.json"):
        assert got_calls and got_results


# -- request decoding ---------------------------------------------------------------


def test_snake_case_request_is_read() -> None:
    body = {
        "contents": [{"role": "user", "parts": [
            {"text": "look"},
            {"inline_data": {"mime_type": "image/png", "data": "iVBOR"}},
            {"file_data": {"mime_type": "application/pdf", "file_uri": "gs://b/doc.pdf"}},
        ]}],
        "system_instruction": {"parts": [{"text": "be brief"}]},
        "tools": [{"function_declarations": [{"name": "f", "parameters": {"type": "object"}}]}],
        "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}},
        "generation_config": {"max_output_tokens": 50, "top_k": 3, "stop_sequences": ["END"],
                              "thinking_config": {"thinking_budget": 0}},
    }
    request = DIALECT.decode_request(body)
    assert request.messages[0].parts == [
        ir.Text("look"),
        ir.Image(media_type="image/png", data="iVBOR"),
        ir.File(media_type="application/pdf", url="gs://b/doc.pdf"),
    ]
    assert request.system == [ir.Text("be brief")]
    assert request.tools[0].parameters == {"type": "object"}
    assert request.tool_choice == ir.ToolChoice(mode="tool", name="f")
    assert (request.max_tokens, request.top_k, request.stop) == (50, 3, ["END"])
    assert request.thinking == ir.ThinkingConfig(enabled=False)
    assert request.extensions == {}
    encoded = DIALECT.encode_request(request)
    assert encoded["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}}
    assert encoded["contents"][0]["parts"][2] == {"fileData": {"mimeType": "application/pdf",
                                                               "fileUri": "gs://b/doc.pdf"}}
    assert encoded["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}
    assert encoded["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}


def test_calls_without_ids_get_ids_and_responses_pair_by_name() -> None:
    body = {"contents": [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [
            {"functionCall": {"name": "read", "args": {"p": "a"}}},
            {"functionCall": {"name": "read", "args": {"p": "b"}}},
            {"functionCall": {"name": "ls"}},
        ]},
        {"role": "function", "parts": [
            {"functionResponse": {"name": "ls", "response": {"output": "x"}}},
            {"functionResponse": {"name": "read", "response": {"content": "A"}}},
            {"functionResponse": {"name": "read", "response": {"error": "no such file"}}},
        ]},
    ]}
    request = DIALECT.decode_request(body)
    calls = request.messages[1].parts
    assert [c.id for c in calls] == ["call_1_0", "call_1_1", "call_1_2"]
    assert calls[2].arguments == "{}"
    results = request.messages[2].parts
    assert request.messages[2].role == "user" and request.messages[2].extras["gemini_role"] == "function"
    assert [(r.call_id, r.name, r.is_error) for r in results] == [
        ("call_1_2", "ls", False), ("call_1_0", "read", False), ("call_1_1", "read", True)]
    assert [r.content[0].text for r in results] == ["x", '{"content":"A"}', "no such file"]
    encoded = DIALECT.encode_request(request)
    turn = encoded["contents"][2]
    assert turn["role"] == "function"
    # Responses go back in call order, whatever order the client used.
    assert [p["functionResponse"]["id"] for p in turn["parts"]] == ["call_1_0", "call_1_1", "call_1_2"]
    assert [p["functionResponse"]["response"] for p in turn["parts"]] == [
        {"content": "A"}, {"error": "no such file"}, {"result": "x"}]
    # Read back: the same conversation, with results in call order and calls marked for Gemini 3.
    again = DIALECT.decode_request(encoded).messages
    assert again[2].parts == [results[1], results[2], results[0]]
    assert [c.signature for c in again[1].parts] == [SKIP_SIGNATURE] * 3
    assert [attrs.evolve(c, signature=None, signature_origin=None) for c in again[1].parts] == calls


def test_response_with_unknown_id_keeps_it() -> None:
    body = {"contents": [{"role": "user", "parts": [
        {"functionResponse": {"id": "toolu_1", "name": "f", "response": {"result": "ok"}}}]}]}
    result = DIALECT.decode_request(body).messages[0].parts[0]
    assert (result.call_id, result.name) == ("toolu_1", "f")


def test_thoughts_and_signatures_on_decode() -> None:
    wrapped = ir.wrap_signature(ir.ANTHROPIC, "EqQBCkYIBxgC")
    body = {"contents": [
        {"role": "user", "parts": [{"text": "q"}]},
        {"role": "model", "parts": [
            {"text": "pondering", "thought": True, "thoughtSignature": "gemsig"},
            {"text": "foreign", "thought": True, "thoughtSignature": wrapped},
            {"text": "answer", "thoughtSignature": "textsig"},
            {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "callsig"},
        ]},
    ]}
    parts = DIALECT.decode_request(body).messages[1].parts
    assert parts[0] == ir.Thinking(text="pondering", signature="gemsig", origin=ir.GEMINI)
    assert parts[1] == ir.Thinking(text="foreign", signature="EqQBCkYIBxgC", origin=ir.ANTHROPIC)
    assert parts[2] == ir.Text("answer", extras={"thought_signature": {"origin": ir.GEMINI, "value": "textsig"}})
    assert (parts[3].signature, parts[3].signature_origin) == ("callsig", ir.GEMINI)
    encoded = DIALECT.encode_request(DIALECT.decode_request(body))["contents"][1]["parts"]
    # The Anthropic thought cannot go to Gemini; Gemini's own signatures go back untouched.
    assert encoded == [
        {"text": "pondering", "thought": True, "thoughtSignature": "gemsig"},
        {"text": "answer", "thoughtSignature": "textsig"},
        {"functionCall": {"name": "f", "args": {}, "id": "call_1_3"}, "thoughtSignature": "callsig"},
    ]


def test_unknown_fields_and_parts_are_carried_for_gemini() -> None:
    body = {
        "contents": [{"role": "model", "parts": [
            {"text": "run this"},
            {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
            {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1\n"}},
            {"text": "done", "videoMetadata": {"fps": 2}},
        ]}],
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}],
        "cachedContent": "cachedContents/abc",
        "labels": {"team": "a"},
        "someFutureField": {"x": 1},
        "generationConfig": {"seed": 7, "candidateCount": 1, "responseModalities": ["TEXT"],
                             "thinkingConfig": {"thinkingBudget": 1024, "futureKnob": True}},
        "tools": [{"googleSearch": {}}, {"codeExecution": {}},
                  {"functionDeclarations": [{"name": "f", "behavior": "NON_BLOCKING"}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}},
    }
    request = DIALECT.decode_request(body)
    message = request.messages[0]
    assert message.parts == [ir.Text("run this"), ir.Text("done", extras={"gemini": {"videoMetadata": {"fps": 2}}})]
    assert [index for index, _ in message.extras["gemini_parts"]] == [1, 1]
    ext = request.extensions[ir.GEMINI]
    assert ext["safetySettings"] == body["safetySettings"] and ext["someFutureField"] == {"x": 1}
    assert ext["generationConfig"] == {"seed": 7, "candidateCount": 1, "responseModalities": ["TEXT"],
                                       "thinkingConfig": {"futureKnob": True}}
    assert ext["toolConfig"] == {"functionCallingConfig": {"mode": "VALIDATED"}}
    assert request.tool_choice == ir.ToolChoice(mode="auto")
    assert [(t.name, t.kind, t.raw) for t in request.tools[:2]] == [
        ("googleSearch", "googleSearch", {"googleSearch": {}}),
        ("codeExecution", "codeExecution", {"codeExecution": {}}),
    ]
    encoded = DIALECT.encode_request(request)
    assert encoded["contents"][0]["parts"] == body["contents"][0]["parts"]
    for key in ("safetySettings", "cachedContent", "labels", "someFutureField", "toolConfig"):
        assert encoded[key] == body[key]
    assert encoded["generationConfig"] == {"seed": 7, "candidateCount": 1, "responseModalities": ["TEXT"],
                                           "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True,
                                                              "futureKnob": True}}
    assert encoded["tools"] == [{"functionDeclarations": [{"name": "f", "behavior": "NON_BLOCKING"}]},
                                {"googleSearch": {}}, {"codeExecution": {}}]
    assert DIALECT.decode_request(encoded).extensions == request.extensions


def test_count_tokens_wrapper_and_string_system() -> None:
    body = {"generateContentRequest": {"model": "models/gemini-2.5-pro", "systemInstruction": "sys",
                                       "contents": [{"parts": [{"text": "hi"}]}]}}
    request = DIALECT.decode_request(body)
    assert request.model == "" and request.system == [ir.Text("sys")]
    assert request.messages == [ir.Message(role="user", parts=[ir.Text("hi")])]
    assert request.extensions == {}


@pytest.mark.parametrize(("mime", "schema", "expected"), [
    ("application/json", None, ir.ResponseFormat(type="json_object")),
    ("application/json", {"type": "object", "properties": {"a": {"type": "string"}}},
     ir.ResponseFormat(type="json_schema", schema={"type": "object", "properties": {"a": {"type": "string"}}})),
    ("text/plain", None, ir.ResponseFormat(type="text")),
    (None, None, None),
])
def test_response_format_decode(mime: str | None, schema: dict | None, expected: ir.ResponseFormat | None) -> None:
    config: dict[str, Any] = {}
    if mime:
        config["responseMimeType"] = mime
    if schema:
        config["responseJsonSchema"] = schema
    request = DIALECT.decode_request({"contents": [], "generationConfig": config})
    assert request.response_format == expected
    assert DIALECT.decode_request(DIALECT.encode_request(request)).response_format == expected


def test_enum_mime_type_is_gemini_only() -> None:
    config = {"responseMimeType": "text/x.enum", "responseSchema": {"type": "STRING", "enum": ["a", "b"]}}
    request = DIALECT.decode_request({"contents": [], "generationConfig": config})
    assert request.response_format is None
    assert request.extensions[ir.GEMINI]["generationConfig"] == config
    assert DIALECT.encode_request(request)["generationConfig"] == config


@pytest.mark.parametrize(("config", "choice", "raw_kept"), [
    ({"mode": "AUTO"}, ir.ToolChoice(mode="auto"), False),
    ({"mode": "none"}, ir.ToolChoice(mode="none"), False),
    ({"mode": "ANY"}, ir.ToolChoice(mode="required"), False),
    ({"mode": "ANY", "allowedFunctionNames": ["a"]}, ir.ToolChoice(mode="tool", name="a"), False),
    ({"mode": "ANY", "allowedFunctionNames": ["a", "b"]}, ir.ToolChoice(mode="required"), True),
    ({"mode": "VALIDATED"}, ir.ToolChoice(mode="auto"), True),
])
def test_tool_config_decode(config: dict, choice: ir.ToolChoice, raw_kept: bool) -> None:
    body = {"contents": [], "toolConfig": {"functionCallingConfig": config}}
    request = DIALECT.decode_request(body)
    assert request.tool_choice == choice
    assert ("toolConfig" in request.extensions.get(ir.GEMINI, {})) is raw_kept
    encoded = DIALECT.encode_request(request)["toolConfig"]["functionCallingConfig"]
    if raw_kept:
        assert encoded == config  # replayed exactly to a Gemini upstream
    else:
        assert encoded["mode"] == config["mode"].upper()


# -- request encoding from other dialects' IR -----------------------------------------


def foreign_request(**overrides: Any) -> ir.Request:
    """An IR request as another dialect's decoder would produce it."""
    fields: dict[str, Any] = dict(
        model="gemini-3-pro",
        system=[ir.Text("You are terse.")],
        messages=[
            ir.Message("user", [ir.Text("list and read")]),
            ir.Message("assistant", [
                ir.Thinking("I should call tools", signature="claude-sig", origin=ir.ANTHROPIC),
                ir.Thinking(signature="opaque", origin=ir.ANTHROPIC, redacted=True),
                ir.Text("Calling."),
                ir.ToolCall(id="toolu_A", name="ls", arguments='{"dir": "."}'),
                ir.ToolCall(id="toolu_B", name="read", arguments='{"path": "a.py"',  # truncated JSON
                            signature="sig", signature_origin=ir.OPENAI_RESPONSES),
            ]),
            # Results arrive as two messages in reverse call order (OpenAI chat style).
            ir.Message("user", [ir.ToolResult(call_id="toolu_B", content=[
                ir.Text("print(1)"), ir.Image(media_type="image/jpeg", data="/9j/")])]),
            ir.Message("user", [ir.ToolResult(call_id="toolu_A", content=[ir.Text('{"files": ["a.py"]}')])]),
            ir.Message("system", [ir.Text("Reminder: be careful")]),
            ir.Message("assistant", []),
        ],
        tools=[
            ir.Tool("ls", "List", {"type": "object", "properties": {"dir": {"type": ["string", "null"]}},
                                   "additionalProperties": False, "$schema": "x"}),
            ir.Tool("apply_patch", "Patch", kind="custom"),
            ir.Tool("web_search", kind="web_search_20250305", raw={"type": "web_search_20250305"}),
        ],
        tool_choice=ir.ToolChoice(mode="required"),
        max_tokens=1000, temperature=0.2, top_p=0.9, stop=["STOP!"],
        metadata={"user_id": "u"},
    )
    fields.update(overrides)
    return ir.Request(**fields)


def test_encode_foreign_request() -> None:
    body = DIALECT.encode_request(foreign_request())
    assert "model" not in body
    assert body["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
    contents = body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "user"]  # empty assistant turn dropped
    assert contents[1]["parts"] == [
        {"text": "Calling."},
        {"functionCall": {"name": "ls", "args": {"dir": "."}, "id": "toolu_A"}, "thoughtSignature": SKIP_SIGNATURE},
        {"functionCall": {"name": "read", "args": {}, "id": "toolu_B"}, "thoughtSignature": SKIP_SIGNATURE},
    ]
    # Both results in one content, in call order, names looked up from the calls, image after them.
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "ls", "response": {"files": ["a.py"]}, "id": "toolu_A"}},
        {"functionResponse": {"name": "read", "response": {"result": "print(1)"}, "id": "toolu_B"}},
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}},
    ]
    assert contents[3] == {"role": "user", "parts": [{"text": "Reminder: be careful"}]}
    decls = body["tools"][0]["functionDeclarations"]
    assert body["tools"] == [{"functionDeclarations": decls}]  # the Anthropic server tool is dropped
    assert decls[0] == {"name": "ls", "description": "List", "parameters": {
        "type": "object", "properties": {"dir": {"type": "string"}}, "description": "no additional properties"}}
    assert decls[1]["parameters"]["properties"] == {"input": {"type": "string"}}
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert body["generationConfig"] == {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 1000,
                                        "stopSequences": ["STOP!"]}


def test_custom_tool_call_and_error_result_encode() -> None:
    request = ir.Request(model="m", messages=[
        ir.Message("assistant", [ir.ToolCall(id="c1", name="apply_patch", arguments="*** Begin Patch", kind="custom")]),
        ir.Message("user", [ir.ToolResult(call_id="c1", content=[ir.Text("patch failed")], is_error=True),
                            ir.ToolResult(call_id="zz", name="other", content=[ir.Text('{"error": 1}')])]),
    ])
    contents = DIALECT.encode_request(request)["contents"]
    assert contents[0]["parts"][0]["functionCall"]["args"] == {"input": "*** Begin Patch"}
    assert contents[1]["parts"] == [
        {"functionResponse": {"name": "apply_patch", "response": {"error": "patch failed"}, "id": "c1"}},
        # A lone "error" key in a successful result would read back as a failure: wrapped instead.
        {"functionResponse": {"name": "other", "response": {"result": '{"error": 1}'}, "id": "zz"}},
    ]


def test_gemini_signature_round_trips_through_a_foreign_client() -> None:
    # A Gemini 3 answer signed on its text part, streamed to (say) an Anthropic
    # client, comes back as a text-less thinking block before the text.
    request = ir.Request(model="m", messages=[ir.Message("assistant", [
        ir.Thinking(signature="G1", origin=ir.GEMINI),
        ir.Text("hello"),
        ir.Thinking(text="why", signature="G2", origin=ir.GEMINI),
        ir.Thinking(signature="G3", origin=ir.GEMINI),
        ir.ToolCall(id="c", name="f", arguments="{}", signature="G4", signature_origin=ir.GEMINI),
        ir.Thinking(signature="G5", origin=ir.GEMINI),
    ])])
    parts = DIALECT.encode_request(request)["contents"][0]["parts"]
    assert parts == [
        {"text": "hello", "thoughtSignature": "G1"},
        {"text": "why", "thought": True, "thoughtSignature": "G2"},
        {"text": "", "thought": True, "thoughtSignature": "G3"},
        {"functionCall": {"name": "f", "args": {}, "id": "c"}, "thoughtSignature": "G4"},
        {"text": "", "thought": True, "thoughtSignature": "G5"},
    ]


def test_media_encoding() -> None:
    request = ir.Request(model="m", messages=[ir.Message("user", [
        ir.Image(url="data:image/webp;base64,UklG"),
        ir.Image(url="https://example.com/cat.png"),
        ir.File(media_type="application/pdf", data="JVBER", filename="a.pdf"),
        ir.File(file_id="file-abc"),
    ])])
    assert DIALECT.encode_request(request)["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/webp", "data": "UklG"}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBER"}},
    ]


@pytest.mark.parametrize(("thinking", "expected"), [
    (ir.ThinkingConfig(budget=2048), {"thinkingBudget": 2048, "includeThoughts": True}),
    (ir.ThinkingConfig(effort="low"), {"thinkingLevel": "LOW", "includeThoughts": True}),
    (ir.ThinkingConfig(effort="xhigh"), {"thinkingLevel": "HIGH", "includeThoughts": True}),
    (ir.ThinkingConfig(effort="auto"), {"thinkingBudget": -1, "includeThoughts": True}),
    (ir.ThinkingConfig(effort="none"), {"thinkingBudget": 0}),
    (ir.ThinkingConfig(enabled=False, include_thoughts=False), {"thinkingBudget": 0, "includeThoughts": False}),
    (ir.ThinkingConfig(adaptive=True), {"includeThoughts": True}),
    (ir.ThinkingConfig(budget=4096, effort="high", include_thoughts=False),
     {"thinkingBudget": 4096, "includeThoughts": False}),
])
def test_thinking_config_encode(thinking: ir.ThinkingConfig, expected: dict) -> None:
    body = DIALECT.encode_request(ir.Request(model="m", thinking=thinking))
    assert body["generationConfig"]["thinkingConfig"] == expected


def test_response_format_encode_cleans_schema() -> None:
    fmt = ir.ResponseFormat(type="json_schema", name="out", strict=True, schema={
        "type": "object", "properties": {"n": {"type": "integer", "default": 3}}, "additionalProperties": False})
    config = DIALECT.encode_request(ir.Request(model="m", response_format=fmt))["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseSchema": {
        "type": "object", "properties": {"n": {"type": "integer", "description": "default: 3"}},
        "description": "no additional properties"}}


# -- clean_schema ------------------------------------------------------------------------


def test_clean_schema_rules() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Args",
        "type": "object",
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x", "z"]}},
        "properties": {
            # Property names that are also keywords must survive.
            "format": {"type": "string", "format": "date-time", "minLength": 1},
            "title": {"const": "fixed"},
            "pattern": {"type": ["string", "null"], "pattern": "^a", "x-google-extra": 1},
            "point": {"$ref": "#/$defs/Point", "description": "where"},
            "missing": {"$ref": "#/$defs/Nope"},
            "choice": {"anyOf": [{"type": "null"}, {"type": "string"}, {"type": "object", "properties": {}}]},
            "both": {"allOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]},
                               {"properties": {"b": {"type": "integer"}}}]},
            "level": {"enum": [1, 2, 3], "type": "integer"},
            "flag": {"type": "boolean", "enum": [True, False]},
            "tags": {"type": "array", "minItems": 1},
            "legacy": {"type": "string", "required": True, "nullable": True, "deprecated": True},
            "_": {"type": "string"},
        },
        "required": ["format", "ghost", "_"],
        "additionalProperties": {"type": "string"},
        "patternProperties": {"^x": {"type": "string"}},
    }
    original = copy.deepcopy(schema)
    cleaned = clean_schema(schema)
    assert schema == original, "clean_schema must not modify its input"
    props = cleaned["properties"]
    assert list(props) == ["format", "title", "pattern", "point", "missing", "choice", "both", "level", "flag",
                           "tags", "legacy"]
    assert props["format"] == {"type": "string", "description": 'format: "date-time", minLength: 1'}
    assert props["title"] == {"enum": ["fixed"], "type": "string"}
    assert props["pattern"] == {"type": "string", "description": 'pattern: "^a"'}
    assert props["point"] == {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"],
                              "description": "where"}
    assert props["missing"] == {"description": "See: Nope", "type": "object"}
    assert props["choice"] == {"type": "object", "properties": {}}
    assert props["both"] == {"properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a"]}
    assert props["level"] == {"enum": ["1", "2", "3"], "type": "string"}
    assert props["flag"] == {"type": "boolean"}
    assert props["tags"] == {"type": "array", "description": "minItems: 1", "items": {"type": "string"}}
    assert props["legacy"] == {"type": "string"}
    assert cleaned["required"] == ["format", "legacy"]
    assert set(cleaned) == {"type", "properties", "required"}


def test_clean_schema_recursive_ref_is_bounded() -> None:
    tree = {"type": "object", "properties": {"root": {"$ref": "#/definitions/Node"}},
            "definitions": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/definitions/Node"}}}}}
    cleaned = clean_schema(tree)
    depth, node = 0, cleaned["properties"]["root"]
    while "child" in node.get("properties", {}):
        node, depth = node["properties"]["child"], depth + 1
    assert 5 <= depth <= 10
    assert node["description"] == "See: Node"


@pytest.mark.parametrize(("schema", "expected"), [
    ({}, {"type": "object", "properties": {}}),
    ({"type": "object"}, {"type": "object", "properties": {}}),
    ({"city": {"type": "string"}}, {"type": "object", "properties": {"city": {"type": "string"}}}),
    ({"type": "object", "properties": {"reason": {"type": "string",
                                                  "description": "Brief explanation of why you are calling this tool"}},
      "required": ["reason"]},
     {"type": "object", "properties": {}}),
    ({"type": "object", "properties": {"reason": {"type": "string", "description": "Why"}}},
     {"type": "object", "properties": {"reason": {"type": "string", "description": "Why"}}}),
    ({"type": "OBJECT", "properties": {"a": {"type": "STRING"}}},
     {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}),
    # Unknown keywords are dropped (Gemini answers "Unknown name"); numeric bounds stay.
    ({"type": "object", "strict": True, "propertyOrdering": ["a"], "properties": {
        "a": {"type": "integer", "foo": 1, "description": 5, "minimum": 0, "maximum": 9, "multipleOf": 3}}},
     {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 9, "multipleOf": 3}}}),
    ({"type": "object", "properties": ["a"], "required": "a", "items": 3},
     {"type": "object", "properties": {}}),
    ({"type": "array", "items": [{"type": "integer"}, {"type": "string"}]},
     {"type": "array", "items": {"type": "integer"}}),
])
def test_clean_schema_shapes(schema: dict, expected: dict) -> None:
    assert clean_schema(schema) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "properties", "items", "anyOf", "oneOf", "allOf", "$ref", "enum", "const",
                         "required", "description", "definitions", "$defs", "format", "x", "title"])
        | st.text(max_size=5),
        inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_clean_schema_never_fails_and_is_stable(schema: dict) -> None:
    cleaned = clean_schema(schema)
    assert isinstance(cleaned, dict) and "type" in cleaned
    json.dumps(cleaned)  # still plain JSON
    assert clean_schema(cleaned) == cleaned


# -- malformed requests ---------------------------------------------------------------------


@pytest.mark.parametrize(("body", "needle"), [
    (None, "JSON object"),
    ([], "JSON object"),
    ("contents", "JSON object"),
    (42, "JSON object"),
    ({}, "contents is required"),
    ({"contents": {"role": "user"}}, "contents must be an array"),
    ({"contents": ["hi"]}, "contents[0] must be an object"),
    ({"contents": [{"role": 1, "parts": []}]}, "contents[0].role"),
    ({"contents": [{"parts": "hi"}]}, "contents[0].parts must be an array"),
    ({"contents": [{"parts": [7]}]}, "contents[0].parts[0] must be an object"),
    ({"contents": [{"parts": [{"text": 5}]}]}, "contents[0].parts[0].text"),
    ({"contents": [{"parts": [{"text": "a", "thought": "yes"}]}]}, "thought must be a boolean"),
    ({"contents": [{"parts": [{"functionCall": {"args": {}}}]}]}, "functionCall.name is required"),
    ({"contents": [{"parts": [{"functionCall": {"name": "f", "args": [1]}}]}]}, "functionCall.args"),
    ({"contents": [{"parts": [{"functionCall": "f"}]}]}, "functionCall must be an object"),
    ({"contents": [{"parts": [{"functionResponse": None}]}]}, "functionResponse is required"),
    ({"contents": [{"parts": [{"inlineData": {"mimeType": 3}}]}]}, "inlineData.mimeType"),
    ({"contents": [{"parts": [{"text": "a", "thoughtSignature": 1}]}]}, "thoughtSignature"),
    ({"contents": [], "systemInstruction": 5}, "systemInstruction must be an object"),
    ({"contents": [], "systemInstruction": {"parts": {}}}, "systemInstruction.parts"),
    ({"contents": [], "tools": {}}, "tools must be an array"),
    ({"contents": [], "tools": [{"functionDeclarations": {}}]}, "functionDeclarations must be an array"),
    ({"contents": [], "tools": [{"functionDeclarations": [{"description": "x"}]}]}, "name is required"),
    ({"contents": [], "tools": [{"functionDeclarations": [{"name": "f", "parameters": "x"}]}]}, "parameters"),
    ({"contents": [], "toolConfig": []}, "toolConfig must be an object"),
    ({"contents": [], "toolConfig": {"functionCallingConfig": {"mode": 1}}}, "mode"),
    ({"contents": [], "generationConfig": []}, "generationConfig must be an object"),
    ({"contents": [], "generationConfig": {"temperature": "hot"}}, "temperature must be a number"),
    ({"contents": [], "generationConfig": {"maxOutputTokens": 1.5}}, "maxOutputTokens must be an integer"),
    ({"contents": [], "generationConfig": {"topK": True}}, "topK must be an integer"),
    ({"contents": [], "generationConfig": {"stopSequences": "END"}}, "stopSequences must be an array"),
    ({"contents": [], "generationConfig": {"stopSequences": [1]}}, "stopSequences"),
    ({"contents": [], "generationConfig": {"thinkingConfig": 1}}, "thinkingConfig must be an object"),
    ({"contents": [], "generationConfig": {"thinkingConfig": {"thinkingBudget": "lots"}}}, "thinkingBudget"),
    ({"contents": [], "generationConfig": {"responseSchema": []}}, "responseSchema"),
    ({"generateContentRequest": []}, "generateContentRequest must be an object"),
])
def test_malformed_requests_raise_dialect_error(body: Any, needle: str) -> None:
    with pytest.raises(DialectError) as info:
        DIALECT.decode_request(body)
    assert needle in info.value.message
    assert info.value.status == 400


def test_truncated_capture_structures_raise_dialect_error() -> None:
    body = capture("gemini-cli-tool-result.json")
    for mutate in (
        lambda b: b["contents"][1]["parts"][0]["functionCall"].pop("name"),
        lambda b: b["contents"][2].__setitem__("parts", "oops"),
        lambda b: b["tools"][0].__setitem__("functionDeclarations", None) or b["tools"].append(3),
        lambda b: b.pop("contents"),
    ):
        broken = copy.deepcopy(body)
        mutate(broken)
        with pytest.raises(DialectError):
            DIALECT.decode_request(broken)


any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=20,
)
part_like = st.fixed_dictionaries({}, optional={
    "text": any_json, "thought": any_json, "thoughtSignature": any_json, "inlineData": any_json,
    "fileData": any_json, "functionCall": any_json, "functionResponse": any_json, "executableCode": any_json,
})
request_like = st.fixed_dictionaries({}, optional={
    "contents": st.lists(st.fixed_dictionaries({}, optional={"role": any_json, "parts": st.lists(part_like | any_json,
                                                                                                max_size=3)})
                         | any_json, max_size=3) | any_json,
    "systemInstruction": any_json, "tools": any_json, "toolConfig": any_json, "generationConfig": any_json,
    "generateContentRequest": any_json,
})


@settings(max_examples=400, deadline=None)
@given(any_json | request_like)
def test_arbitrary_json_only_raises_dialect_error(body: Any) -> None:
    try:
        request = DIALECT.decode_request(body)
    except DialectError as exc:
        assert exc.message
        return
    # Whatever decodes must also encode (and decode again) without surprises.
    DIALECT.decode_request(DIALECT.encode_request(request))


# -- responses -------------------------------------------------------------------------------------

FULL_RESPONSE = {
    "candidates": [{
        "content": {"role": "model", "parts": [
            {"text": "Thinking about it", "thought": True},
            {"text": "Here you go.", "thoughtSignature": "TS1"},
            {"executableCode": {"language": "PYTHON", "code": "1+1"}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "TS2"},
        ]},
        "finishReason": "STOP",
        "index": 0,
        "safetyRatings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"}],
    }],
    "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 20, "thoughtsTokenCount": 30,
                      "cachedContentTokenCount": 40, "toolUsePromptTokenCount": 5, "totalTokenCount": 155},
    "modelVersion": "gemini-2.5-pro",
    "responseId": "resp-1",
    "createTime": "2026-01-01T00:00:00Z",
}


def test_decode_response() -> None:
    response = DIALECT.decode_response(FULL_RESPONSE)
    assert (response.id, response.model, response.stop_reason) == ("resp-1", "gemini-2.5-pro", "tool_use")
    assert response.parts == [
        ir.Thinking(text="Thinking about it", signature="TS1", origin=ir.GEMINI),
        ir.Text("Here you go."),
        ir.ToolCall(id="call_resp-1_1", name="get_weather", arguments='{"city":"Paris"}',
                    signature="TS2", signature_origin=ir.GEMINI),
    ]
    assert response.usage == ir.Usage(input_tokens=105, output_tokens=50, cached_tokens=40, reasoning_tokens=30)
    ext = response.extensions[ir.GEMINI]
    assert ext["candidate"] == {"safetyRatings": FULL_RESPONSE["candidates"][0]["safetyRatings"]}
    assert ext["createTime"] == "2026-01-01T00:00:00Z"
    assert ext["parts"] == [[2, {"executableCode": {"language": "PYTHON", "code": "1+1"}}]]


def test_encode_response_round_trip() -> None:
    response = DIALECT.decode_response(FULL_RESPONSE)
    body = DIALECT.encode_response(response)
    candidate = body["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    assert candidate["safetyRatings"] == FULL_RESPONSE["candidates"][0]["safetyRatings"]
    assert candidate["content"]["parts"][2] == {"executableCode": {"language": "PYTHON", "code": "1+1"}}
    assert body["usageMetadata"] == {"promptTokenCount": 105, "candidatesTokenCount": 20, "thoughtsTokenCount": 30,
                                     "cachedContentTokenCount": 40, "totalTokenCount": 155}
    assert (body["modelVersion"], body["responseId"], body["createTime"]) == ("gemini-2.5-pro", "resp-1",
                                                                              "2026-01-01T00:00:00Z")
    assert DIALECT.decode_response(body) == response


def test_encode_response_wraps_foreign_signatures() -> None:
    response = ir.Response(id="msg_1", model="claude-x", stop_reason="max_tokens", parts=[
        ir.Thinking("hmm", signature="anth", origin=ir.ANTHROPIC),
        ir.Thinking(signature="secret", origin=ir.ANTHROPIC, redacted=True),
        ir.Text("hi"),
        ir.ToolCall(id="toolu_1", name="f", arguments="not json", signature="g", signature_origin=ir.GEMINI),
    ], usage=ir.Usage(input_tokens=3, output_tokens=4))
    body = DIALECT.encode_response(response)
    assert body["candidates"][0]["content"]["parts"] == [
        {"text": "hmm", "thought": True, "thoughtSignature": "prx1.anthropic.anth"},
        {"text": "hi"},
        {"functionCall": {"name": "f", "args": {}, "id": "toolu_1"}, "thoughtSignature": "g"},
    ]
    assert body["candidates"][0]["finishReason"] == "STOP"  # a tool call was made
    assert body["modelVersion"] == "claude-x"
    replayed = DIALECT.decode_request({"contents": [body["candidates"][0]["content"]]}).messages[0].parts
    assert replayed[0] == ir.Thinking("hmm", signature="anth", origin=ir.ANTHROPIC)


@pytest.mark.parametrize(("finish", "stop"), [
    ("STOP", "end_turn"), ("MAX_TOKENS", "max_tokens"), ("SAFETY", "refusal"), ("RECITATION", "refusal"),
    ("BLOCKLIST", "refusal"), ("PROHIBITED_CONTENT", "refusal"), ("SPII", "refusal"), ("IMAGE_SAFETY", "refusal"),
    ("OTHER", "end_turn"), ("MALFORMED_FUNCTION_CALL", "end_turn"), ("FINISH_REASON_UNSPECIFIED", "end_turn"),
    ("SOMETHING_NEW", "end_turn"),
])
def test_finish_reason_decode(finish: str, stop: str) -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": finish}]}
    assert DIALECT.decode_response(body).stop_reason == stop


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "STOP"), ("stop_sequence", "STOP"), ("tool_use", "STOP"), ("pause_turn", "STOP"),
    ("max_tokens", "MAX_TOKENS"), ("context_window_exceeded", "MAX_TOKENS"), ("refusal", "SAFETY"), (None, "STOP"),
])
def test_finish_reason_encode(stop: str | None, finish: str) -> None:
    body = DIALECT.encode_response(ir.Response(id="r", model="m", parts=[ir.Text("x")], stop_reason=stop))
    assert body["candidates"][0]["finishReason"] == finish


def test_blocked_prompt_and_envelope_and_errors() -> None:
    blocked = DIALECT.decode_response({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {
        "promptTokenCount": 9}})
    assert (blocked.stop_reason, blocked.parts, blocked.usage.input_tokens) == ("refusal", [], 9)
    assert "content" not in DIALECT.encode_response(blocked)["candidates"][0]
    wrapped = DIALECT.decode_response({"response": {"candidates": [{"content": {"parts": [{"text": "a"}]},
                                                                    "finishReason": "STOP"}]}, "traceId": "t"})
    assert wrapped.parts == [ir.Text("a")]
    with pytest.raises(DialectError) as info:
        DIALECT.decode_response({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}})
    assert (info.value.status, info.value.message, info.value.code) == (429, "slow down", "RESOURCE_EXHAUSTED")
    for garbage in ("text", 3, None):
        with pytest.raises(DialectError):
            DIALECT.decode_response(garbage)


# -- stream decoding -------------------------------------------------------------------------------

STREAM_CHUNKS = [
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "Weighing ", "thought": True}]}, "index": 0}],
     "usageMetadata": {"promptTokenCount": 12, "cachedContentTokenCount": 4, "totalTokenCount": 12},
     "modelVersion": "gemini-2.5-pro", "responseId": "R1"},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "options ✓", "thought": True}]}, "index": 0}],
     "modelVersion": "gemini-2.5-pro", "responseId": "R1"},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "Grüße, ", "thoughtSignature": "SIG=="}]},
                     "index": 0}], "modelVersion": "gemini-2.5-pro", "responseId": "R1"},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "世界 \"quoted\" \\ {brace}]"}]}, "index": 0}],
     "modelVersion": "gemini-2.5-pro", "responseId": "R1"},
    {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "read", "args": {"path": "a]{b}.py"}}, "thoughtSignature": "CS"},
        {"functionCall": {"name": "ls", "args": {}, "id": "given-id"}}]}, "index": 0}],
     "modelVersion": "gemini-2.5-pro", "responseId": "R1"},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}],
     "usageMetadata": {"promptTokenCount": 12, "cachedContentTokenCount": 4, "candidatesTokenCount": 7,
                       "thoughtsTokenCount": 5, "totalTokenCount": 24},
     "modelVersion": "gemini-2.5-pro", "responseId": "R1"},
]

EXPECTED_EVENTS = [
    ir.MessageStart(id="R1", model="gemini-2.5-pro", usage=ir.Usage(input_tokens=12, cached_tokens=4)),
    ir.BlockStart(0, "thinking"),
    ir.BlockDelta(0, "thinking", "Weighing "),
    ir.BlockDelta(0, "thinking", "options ✓"),
    ir.BlockDelta(0, "signature", "SIG==", origin=ir.GEMINI),
    ir.BlockStop(0),
    ir.BlockStart(1, "text"),
    ir.BlockDelta(1, "text", "Grüße, "),
    ir.BlockDelta(1, "text", "世界 \"quoted\" \\ {brace}]"),
    ir.BlockStop(1),
    ir.BlockStart(2, "tool_call", id="call_R1_1", name="read"),
    ir.BlockDelta(2, "arguments", '{"path":"a]{b}.py"}'),
    ir.BlockDelta(2, "signature", "CS", origin=ir.GEMINI),
    ir.BlockStop(2),
    ir.BlockStart(3, "tool_call", id="given-id", name="ls"),
    ir.BlockDelta(3, "arguments", "{}"),
    ir.BlockStop(3),
    ir.MessageDelta(stop_reason="tool_use", usage=ir.Usage(input_tokens=12, output_tokens=12, cached_tokens=4,
                                                           reasoning_tokens=5)),
    ir.MessageStop(),
]


@pytest.mark.parametrize("framing", ["sse-crlf", "sse-lf", "array", "code-assist"])
def test_stream_decoder_events(framing: str) -> None:
    if framing == "sse-crlf":
        data = sse(STREAM_CHUNKS)
    elif framing == "sse-lf":
        data = sse(STREAM_CHUNKS, b"\n\n")
    elif framing == "array":
        data = array(STREAM_CHUNKS)
    else:
        data = sse([{"response": c, "traceId": "t1"} for c in STREAM_CHUNKS])
    events, finished = decode_stream(data)
    assert events == EXPECTED_EVENTS
    assert finished


@pytest.mark.parametrize("data", [sse(STREAM_CHUNKS), array(STREAM_CHUNKS)], ids=["sse", "array"])
def test_stream_decoder_split_at_every_offset(data: bytes) -> None:
    for cut in range(len(data) + 1):
        decoder = DIALECT.stream_decoder()
        events = decoder.feed(data[:cut]) + decoder.feed(data[cut:]) + decoder.close()
        assert events == EXPECTED_EVENTS, f"split at byte {cut}"
        assert decoder.finished


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([sse(STREAM_CHUNKS), array(STREAM_CHUNKS)]), st.lists(st.integers(1, 40), max_size=400))
def test_stream_decoder_arbitrary_splits(data: bytes, sizes: list[int]) -> None:
    decoder = DIALECT.stream_decoder()
    events, pos = [], 0
    for size in sizes:
        events += decoder.feed(data[pos : pos + size])
        pos += size
    events += decoder.feed(data[pos:]) + decoder.close()
    assert events == EXPECTED_EVENTS


def test_stream_matches_whole_response() -> None:
    events, _ = decode_stream(sse(STREAM_CHUNKS), step=7)
    merged = copy.deepcopy(STREAM_CHUNKS[-1])
    merged["candidates"][0]["content"]["parts"] = [p for c in STREAM_CHUNKS for p in parts_of(c)]
    assert collect(events) == DIALECT.decode_response(merged)
    assert collect(events) == DIALECT.decode_response(STREAM_CHUNKS)  # a collected array body


def test_stream_without_finish_reason_is_not_finished() -> None:
    events, finished = decode_stream(sse(STREAM_CHUNKS[:2]))
    assert not finished
    assert events[-1] == ir.BlockStop(0)
    assert not any(isinstance(e, (ir.MessageStop, ir.MessageDelta)) for e in events)


def test_stream_code_assist_traffic_usage_is_ignored() -> None:
    chunks = [{"response": {"candidates": [{"content": {"parts": [{"text": "a"}]}}],
                            "usageMetadata": {"trafficType": "ON_DEMAND"}}},
              {"response": {"candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "MAX_TOKENS"}],
                            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}}]
    events, finished = decode_stream(sse(chunks))
    assert finished
    assert events[0] == ir.MessageStart(id="", model="", usage=None)
    assert events[-2] == ir.MessageDelta(stop_reason="max_tokens", usage=ir.Usage(input_tokens=3, output_tokens=2))


ERROR = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}


@pytest.mark.parametrize("data", [
    sse([STREAM_CHUNKS[0], ERROR]),
    sse([STREAM_CHUNKS[0], [ERROR]]),
    array([STREAM_CHUNKS[0], ERROR]),
    b"[" + json.dumps(STREAM_CHUNKS[0]).encode() + b",\r\n" + json.dumps(ERROR).encode(),  # cut off after it
], ids=["sse", "sse-array-wrapped", "array", "array-truncated"])
def test_stream_error_chunk(data: bytes) -> None:
    events, finished = decode_stream(data)
    assert finished
    assert events[-2:] == [ir.BlockStop(0), ir.StreamError(ir.ErrorInfo(
        status=503, message="The model is overloaded.", kind="overloaded", code="UNAVAILABLE"))]


def test_stream_error_as_only_element_and_malformed_chunk() -> None:
    events, finished = decode_stream(array([ERROR]))
    assert finished and events == [ir.MessageStart(id="", model=""), ir.StreamError(ir.ErrorInfo(
        status=503, message="The model is overloaded.", code="UNAVAILABLE"))]
    events, finished = decode_stream(b'data: {"candidates": [\n\n')
    assert finished and isinstance(events[-1], ir.StreamError) and events[-1].error.status == 502


def test_stream_decoder_ignores_noise() -> None:
    data = b": keep-alive\n\n\r\n" + sse(STREAM_CHUNKS) + b"data: [DONE]\n\n"
    events, finished = decode_stream(data, step=3)
    assert events == EXPECTED_EVENTS and finished
    empty = DIALECT.stream_decoder()
    assert empty.feed(b"  \r\n") == [] and empty.close() == [] and not empty.finished


def assert_well_formed(events: list[ir.Event], finished: bool) -> None:
    """The decoder contract: one start, ordered indices, balanced blocks, one terminal at the end."""
    if not events:
        assert not finished
        return
    assert isinstance(events[0], ir.MessageStart)
    assert not any(isinstance(e, ir.MessageStart) for e in events[1:])
    open_blocks: set[int] = set()
    next_index = 0
    for position, event in enumerate(events[1:], start=1):
        if isinstance(event, ir.BlockStart):
            assert event.index == next_index
            next_index += 1
            open_blocks.add(event.index)
        elif isinstance(event, (ir.BlockDelta, ir.BlockStop)):
            assert event.index in open_blocks
            if isinstance(event, ir.BlockStop):
                open_blocks.remove(event.index)
        elif isinstance(event, ir.MessageDelta):
            assert not open_blocks and events[position + 1 :] == [ir.MessageStop()]
        else:
            assert position == len(events) - 1 and not open_blocks
    assert not open_blocks
    assert finished == isinstance(events[-1], (ir.MessageStop, ir.StreamError))


signatures = st.none() | st.sampled_from(["S1", "S2=="])
random_part = st.one_of(
    st.builds(lambda t, s, th: {"text": t, **({"thoughtSignature": s} if s else {}),
                                **({"thought": True} if th else {})},
              st.text(max_size=6), signatures, st.booleans()),
    st.builds(lambda n, a, s: {"functionCall": {"name": n, "args": a}, **({"thoughtSignature": s} if s else {})},
              st.sampled_from(["f", "g"]), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), signatures),
    st.just({"executableCode": {"code": "1"}}),
    any_json,
)
random_chunk = st.one_of(
    st.builds(lambda parts, finish, usage: {
        "candidates": [{"content": {"role": "model", "parts": parts}, **({"finishReason": finish} if finish else {})}],
        **({"usageMetadata": {"promptTokenCount": usage, "candidatesTokenCount": usage}} if usage else {}),
        "responseId": "R", "modelVersion": "m"},
        st.lists(random_part, max_size=4), st.none() | st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", "OTHER"]),
        st.none() | st.integers(0, 50)),
    st.just({"error": {"code": 500, "message": "x", "status": "INTERNAL"}}),
    st.just({"promptFeedback": {"blockReason": "OTHER"}, "responseId": "R"}),
    any_json,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(random_chunk, max_size=6), st.booleans(), st.integers(1, 30))
def test_stream_decoder_output_is_always_well_formed(chunks: list[Any], as_array: bool, step: int) -> None:
    data = array(chunks) if as_array else sse(chunks)
    whole, finished = decode_stream(data)
    assert_well_formed(whole, finished)
    assert decode_stream(data, step) == (whole, finished)


response_part = st.one_of(
    st.builds(ir.Text, st.text(min_size=1, max_size=8)),
    st.builds(lambda t, s: ir.Thinking(t, signature=s, origin=ir.GEMINI), st.text(max_size=8),
              st.text("abc=", min_size=1, max_size=6)),
    st.builds(lambda i, n, a: ir.ToolCall(id=f"c{i}", name=n, arguments=dumps(a).decode()),
              st.integers(0, 99), st.sampled_from(["f", "g"]), st.dictionaries(st.text(max_size=3), st.booleans())),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(response_part, max_size=6), st.sampled_from(["end_turn", "max_tokens", "refusal"]),
       st.integers(0, 1000), st.integers(0, 1000), st.booleans())
def test_stream_encoder_round_trips_any_response(parts: list[ir.Part], stop: str, tokens: int, reasoning: int,
                                                 sse_mode: bool) -> None:
    # Two text parts in a row become one text block on the wire: merge them up front.
    merged: list[ir.Part] = []
    for part in parts:
        if merged and isinstance(part, ir.Text) and isinstance(merged[-1], ir.Text):
            merged[-1] = ir.Text(merged[-1].text + part.text)
        else:
            merged.append(part)
    called = any(isinstance(p, ir.ToolCall) for p in merged)
    response = ir.Response(id="r1", model="client-model", parts=merged, stop_reason="tool_use" if called else stop,
                           usage=ir.Usage(input_tokens=tokens, output_tokens=tokens + reasoning,
                                          reasoning_tokens=reasoning))
    encoder = DIALECT.stream_encoder(REQUEST, sse=sse_mode)
    data = b"".join(encoder.encode(e) for e in response_events(response)) + encoder.finish()
    events, finished = decode_stream(data, step=13)
    assert_well_formed(events, finished)
    assert collect(events) == response


# -- stream encoding --------------------------------------------------------------------------------

REQUEST = ir.Request(model="client-model")

SCRIPT: list[ir.Event] = [
    ir.MessageStart(id="msg_9", model="upstream-model", usage=ir.Usage(input_tokens=50, cached_tokens=10)),
    ir.BlockStart(0, "thinking"),
    ir.BlockDelta(0, "thinking", "plan"),
    ir.BlockDelta(0, "signature", "anthsig", origin=ir.ANTHROPIC),
    ir.BlockStop(0),
    ir.BlockStart(1, "text"),
    ir.BlockDelta(1, "text", "Hi "),
    ir.BlockDelta(1, "text", ""),
    ir.BlockDelta(1, "text", "there"),
    ir.BlockStop(1),
    ir.BlockStart(2, "tool_call", id="toolu_1", name="read"),
    ir.BlockStart(3, "tool_call", id="toolu_2", name="ls"),
    ir.BlockDelta(2, "arguments", '{"pa'),
    ir.BlockDelta(3, "arguments", ""),
    ir.BlockDelta(2, "arguments", 'th": "a.py"}'),
    ir.BlockDelta(3, "arguments", '{"dir": "/"}'),
    ir.BlockStop(3),
    ir.BlockStop(2),
    ir.MessageDelta(stop_reason="max_tokens", usage=ir.Usage(output_tokens=30, reasoning_tokens=12)),
    ir.MessageStop(),
]

EXPECTED_PAYLOADS = [
    ([{"text": "plan", "thought": True}], None),
    ([{"text": "", "thought": True, "thoughtSignature": "prx1.anthropic.anthsig"}], None),
    ([{"text": "Hi "}], None),
    ([{"text": "there"}], None),
    ([{"functionCall": {"name": "ls", "args": {"dir": "/"}, "id": "toolu_2"}}], None),
    ([{"functionCall": {"name": "read", "args": {"path": "a.py"}, "id": "toolu_1"}}], None),
    ([{"text": ""}], "STOP"),  # max_tokens, but a tool call was made
]


def check_payloads(payloads: list[dict[str, Any]]) -> None:
    assert len(payloads) == len(EXPECTED_PAYLOADS)
    for payload, (parts, finish) in zip(payloads, EXPECTED_PAYLOADS, strict=True):
        assert list(payload) == ["candidates", "usageMetadata", "modelVersion", "responseId"]
        assert payload["modelVersion"] == "client-model" and payload["responseId"] == "msg_9"
        candidate = payload["candidates"][0]
        assert candidate["content"] == {"role": "model", "parts": parts}
        assert candidate["index"] == 0
        assert candidate.get("finishReason") == finish
    assert payloads[0]["usageMetadata"] == {"promptTokenCount": 50, "candidatesTokenCount": 0,
                                            "cachedContentTokenCount": 10, "totalTokenCount": 50}
    assert payloads[-1]["usageMetadata"] == {"promptTokenCount": 50, "candidatesTokenCount": 18,
                                             "thoughtsTokenCount": 12, "cachedContentTokenCount": 10,
                                             "totalTokenCount": 80}


def test_stream_encoder_sse_frames() -> None:
    encoder = DIALECT.stream_encoder(REQUEST)
    frames = [encoder.encode(e) for e in SCRIPT]
    # Nothing is written for starts, stops of text blocks, empty deltas or the message delta.
    assert [bool(f) for f in frames] == [False, False, True, True, False, False, True, False, True, False, False,
                                         False, False, False, False, False, True, True, False, True]
    assert all(f == b"" or (f.startswith(b"data: ") and f.endswith(b"\n\n") and f.count(b"\n\n") == 1)
               for f in frames)
    assert encoder.finish() == b""
    check_payloads(sse_payloads(b"".join(frames)))


def test_stream_encoder_array_mode() -> None:
    encoder = DIALECT.stream_encoder(REQUEST, sse=False)
    data = b"".join(encoder.encode(e) for e in SCRIPT) + encoder.finish()
    assert data.startswith(b"[{") and data.endswith(b"}]") and data.count(b"},\r\n{") == 6
    check_payloads(json.loads(data))
    assert encoder.finish() == b""  # idempotent
    # Our own decoder reads it back as the same conversation.
    events, finished = decode_stream(data, step=5)
    assert finished
    result = collect(events)
    assert [type(p) for p in result.parts] == [ir.Thinking, ir.Text, ir.ToolCall, ir.ToolCall]
    # Read as an upstream stream, the wrapped signature is opaque Gemini data (it is unwrapped
    # only when a client sends it back in a request).
    assert result.parts[0] == ir.Thinking("plan", signature="prx1.anthropic.anthsig", origin=ir.GEMINI)
    assert result.parts[2] == ir.ToolCall(id="toolu_2", name="ls", arguments='{"dir":"/"}')


def test_stream_encoder_empty_array_and_error() -> None:
    encoder = DIALECT.stream_encoder(REQUEST, sse=False)
    assert encoder.finish() == b"[]"
    assert json.loads(b"[]") == []
    error = ir.ErrorInfo(status=429, message="quota", retry_after=1.5)
    encoder = DIALECT.stream_encoder(REQUEST, sse=False)
    data = encoder.encode(ir.BlockDelta(0, "text", "partial")) + encoder.encode(ir.StreamError(error))
    data += encoder.encode(ir.MessageStop()) + encoder.finish()
    chunks = json.loads(data)
    assert parts_of(chunks[0]) == [{"text": "partial"}]
    assert chunks[1] == {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}}
    assert len(chunks) == 2  # nothing after the error


def test_stream_encoder_sse_error_frame() -> None:
    encoder = DIALECT.stream_encoder(REQUEST)
    frame = encoder.encode(ir.StreamError(ir.ErrorInfo(status=500, message="boom")))
    assert frame == b'data: {"error":{"code":500,"message":"boom","status":"INTERNAL"}}\n\n'
    assert encoder.encode(ir.BlockDelta(0, "text", "late")) == b""
    assert encoder.finish() == b""


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "STOP"), ("stop_sequence", "STOP"), ("max_tokens", "MAX_TOKENS"), ("refusal", "SAFETY"),
    ("pause_turn", "STOP"), ("context_window_exceeded", "MAX_TOKENS"), ("tool_use", "STOP"), (None, "STOP"),
])
def test_stream_encoder_stop_reasons(stop: str | None, finish: str) -> None:
    encoder = DIALECT.stream_encoder(REQUEST)
    data = b"".join(encoder.encode(e) for e in [
        ir.BlockStart(0, "text"), ir.BlockDelta(0, "text", "x"), ir.BlockStop(0),
        ir.MessageDelta(stop_reason=stop), ir.MessageStop()])
    payloads = sse_payloads(data)
    assert [p["candidates"][0].get("finishReason") for p in payloads] == [None, finish]
    assert all(p["modelVersion"] == "client-model" for p in payloads)
    assert payloads[0]["responseId"] == payloads[1]["responseId"] != ""  # synthesized once, then reused


def test_stream_encoder_unterminated_tool_call_is_flushed_at_stop() -> None:
    encoder = DIALECT.stream_encoder(REQUEST)
    data = b"".join(encoder.encode(e) for e in [
        ir.BlockStart(0, "tool_call", id="c", name="f"), ir.BlockDelta(0, "arguments", '{"a": 1}'),
        ir.BlockDelta(0, "signature", "gs", origin=ir.GEMINI), ir.MessageStop()])
    payloads = sse_payloads(data)
    assert parts_of(payloads[0]) == [{"functionCall": {"name": "f", "args": {"a": 1}, "id": "c"},
                                      "thoughtSignature": "gs"}]
    assert payloads[1]["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.parametrize("sse_mode", [True, False])
def test_stream_encode_then_decode_is_lossless(sse_mode: bool) -> None:
    response = DIALECT.decode_response(FULL_RESPONSE)
    response.extensions = {}
    response.model = "client-model"
    encoder = DIALECT.stream_encoder(REQUEST, sse=sse_mode)
    data = b"".join(encoder.encode(e) for e in response_events(response)) + encoder.finish()
    events, finished = decode_stream(data, step=11)
    assert finished
    assert collect(events) == response


# -- errors ------------------------------------------------------------------------------------------

CODE_ASSIST_429 = {"error": {
    "code": 429,
    "message": "You have exhausted your capacity on this model. Your quota will reset after 19h14m47s.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "QUOTA_EXHAUSTED",
         "domain": "cloudcode-pa.googleapis.com,",
         "metadata": {"uiMessage": "true", "model": "gemini-2.5-pro", "quotaResetDelay": "539.477544ms"}},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "68940s"},
    ],
}}


def test_decode_error_code_assist_quota() -> None:
    error = DIALECT.decode_error(429, json.dumps(CODE_ASSIST_429).encode())
    assert error == ir.ErrorInfo(status=429, message=CODE_ASSIST_429["error"]["message"], kind="rate_limit",
                                 code="QUOTA_EXHAUSTED", retry_after=68940.0)


def test_decode_error_retry_hint_fallbacks() -> None:
    body = copy.deepcopy(CODE_ASSIST_429)
    body["error"]["details"].pop()  # no RetryInfo: quotaResetDelay
    assert DIALECT.decode_error(429, json.dumps(body).encode()).retry_after == pytest.approx(0.539477544)
    body["error"]["details"][0]["metadata"].pop("quotaResetDelay")  # nothing structured: the message
    assert DIALECT.decode_error(429, json.dumps(body).encode()).retry_after == 19 * 3600 + 14 * 60 + 47
    studio = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                        "message": "You exceeded your current quota.\nPlease retry in 56.185908122s.",
                        "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []}]}}
    assert DIALECT.decode_error(429, json.dumps([studio]).encode()).retry_after == pytest.approx(56.185908122)
    plain = DIALECT.decode_error(429, b"Rate limited, reset after 30s")
    assert (plain.message, plain.retry_after, plain.kind) == ("Rate limited, reset after 30s", 30.0, "rate_limit")


def test_decode_error_shapes() -> None:
    bad_key = {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                         "status": "INVALID_ARGUMENT", "details": [
                             {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                              "domain": "googleapis.com"}]}}
    error = DIALECT.decode_error(400, json.dumps(bad_key).encode())
    assert (error.kind, error.code, error.retry_after) == ("invalid_request", "API_KEY_INVALID", None)
    overloaded = DIALECT.decode_error(503, json.dumps(ERROR).encode())
    assert (overloaded.kind, overloaded.code, overloaded.message) == ("overloaded", "UNAVAILABLE",
                                                                      "The model is overloaded.")


@pytest.mark.parametrize("body", [
    b"", b"   ", b"<html>502 Bad Gateway</html>", b"\xff\xfe\x00garbage", b"null", b"[]", b"[1, 2]", b"{}",
    b'{"error": "plain string"}', b'{"error": {"code": "x", "details": "nope", "message": 5}}', b'{"error": null}',
    b'{"error": {"details": [null, 1, {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": 5}]}}',
    b"[" * 5000,
])
def test_decode_error_garbage(body: bytes) -> None:
    error = DIALECT.decode_error(502, body)
    assert error.status == 502 and error.kind == "api_error"
    assert isinstance(error.message, str) and error.message
    assert error.retry_after is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | any_json.map(lambda v: json.dumps(v).encode()))
def test_decode_error_never_raises(body: bytes) -> None:
    error = DIALECT.decode_error(418, body)
    assert error.status == 418 and error.message


@pytest.mark.parametrize(("kind", "status", "name"), [
    ("invalid_request", 400, "INVALID_ARGUMENT"), ("authentication", 401, "UNAUTHENTICATED"),
    ("billing", 402, "PERMISSION_DENIED"), ("permission", 403, "PERMISSION_DENIED"), ("not_found", 404, "NOT_FOUND"),
    ("request_too_large", 413, "INVALID_ARGUMENT"), ("rate_limit", 429, "RESOURCE_EXHAUSTED"),
    ("api_error", 500, "INTERNAL"), ("overloaded", 503, "UNAVAILABLE"), ("overloaded", 529, "UNAVAILABLE"),
    ("timeout", 504, "DEADLINE_EXCEEDED"),
])
def test_error_body_per_kind(kind: str, status: int, name: str) -> None:
    error = ir.ErrorInfo(status=status, message="m")
    assert error.kind == kind
    assert DIALECT.error_body(error) == {"error": {"code": status, "message": "m", "status": name}}


def test_error_body_details_round_trip() -> None:
    error = ir.ErrorInfo(status=429, message="quota", code="rate_limit_exceeded", retry_after=0.84)
    body = DIALECT.error_body(error)
    assert body["error"]["details"] == [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "rate_limit_exceeded", "domain": "polyrelay"},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.84s"},
    ]
    assert DIALECT.decode_error(429, json.dumps(body).encode()) == error
    same = ir.ErrorInfo(status=404, message="no model", code="NOT_FOUND")
    assert "details" not in DIALECT.error_body(same)["error"]
    assert DIALECT.error_body(ir.ErrorInfo(status=418, message="x", kind="weird"))["error"]["status"] == \
        "INVALID_ARGUMENT"
    assert DIALECT.error_body(ir.ErrorInfo(status=599, message="x", kind="weird"))["error"]["status"] == "INTERNAL"


@pytest.mark.parametrize(("text", "seconds"), [
    ("0.84s", 0.84), ("56s", 56.0), ("0.847655010s", 0.84765501), ("539.477544ms", 0.539477544), ("1h2m3s", 3723.0),
    ("19h14m47s", 69287.0), ("1m", 60.0), ("250us", 0.00025), ("5s,", 5.0), ({"seconds": "3", "nanos": 500000000}, 3.5),
    ("", None), ("soon", None), ("5 s", None), ("1x", None), ("s", None), (None, None), (7, None),
])
def test_parse_duration(text: Any, seconds: float | None) -> None:
    result = parse_duration(text)
    assert result == (pytest.approx(seconds) if seconds is not None else None)

