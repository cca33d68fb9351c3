"""The per-dialect facts core asks the dialect objects about.

Each fact is checked against the wire: frames a fact classifies are the
ones the dialect's own encoder writes, error frames decode back to the
error they carry, and every path a client calls resolves to its dialect.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from polyrelay import ir, sse
from polyrelay.dialects import all_dialects, dialect_for_path, get_dialect

ALL = [pytest.param(d, id=d.name) for d in all_dialects()]


def test_every_dialect_is_reachable_by_name_in_order() -> None:
    assert [d.name for d in all_dialects()] == list(ir.DIALECTS)
    assert all(get_dialect(d.name) is d for d in all_dialects())


# -- paths ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "headers", "expected"), [
    ("/v1/messages", {}, ir.ANTHROPIC),
    ("/v1/messages/count_tokens", {}, ir.ANTHROPIC),
    ("/v1/chat/completions", {}, ir.OPENAI_CHAT),
    ("/v1/responses", {}, ir.OPENAI_RESPONSES),
    ("/v1/responses/input_tokens", {}, ir.OPENAI_RESPONSES),
    ("/v1beta/models/gemini-2.5-pro:generateContent", {}, ir.GEMINI),
    ("/v1beta/models", {}, ir.GEMINI),
    ("/v1/models/gemini-2.5-pro:streamGenerateContent", {}, ir.GEMINI),
    # a model GET without a method is OpenAI's (or Anthropic's, by its version header)
    ("/v1/models/gpt-4o", {}, ir.OPENAI_CHAT),
    ("/v1/models", {}, ir.OPENAI_CHAT),
    ("/v1/models", {"anthropic-version": "2023-06-01"}, ir.ANTHROPIC),
    # the path wins over a marker header
    ("/v1/chat/completions", {"anthropic-version": "2023-06-01"}, ir.OPENAI_CHAT),
    ("/elsewhere", {}, ir.OPENAI_CHAT),
])
def test_dialect_for_path(path: str, headers: dict[str, str], expected: str) -> None:
    assert dialect_for_path(path, headers).name == expected


@pytest.mark.parametrize(("name", "stream", "path"), [
    (ir.ANTHROPIC, False, "/v1/messages"),
    (ir.ANTHROPIC, True, "/v1/messages"),
    (ir.OPENAI_CHAT, True, "/chat/completions"),
    (ir.OPENAI_RESPONSES, False, "/responses"),
    (ir.GEMINI, False, "/models/gemini-2.5-pro:generateContent"),
    (ir.GEMINI, True, "/models/gemini-2.5-pro:streamGenerateContent?alt=sse"),
])
def test_upstream_path(name: str, stream: bool, path: str) -> None:
    assert get_dialect(name).upstream_path("gemini-2.5-pro", stream) == path


@pytest.mark.parametrize("model", ["../../v1/files", "a/b", "x?key=1", "m#f", "p%2F", "tuned models/x:y"])
def test_a_model_in_the_gemini_path_is_one_encoded_segment(model: str) -> None:
    path = get_dialect(ir.GEMINI).upstream_path(model, False)
    segment, _, action = path.removeprefix("/models/").rpartition(":")
    assert action == "generateContent"
    assert "/" not in segment and "?" not in segment and "#" not in segment
    from urllib.parse import unquote
    assert unquote(segment) == model


def test_only_gemini_keeps_the_model_out_of_the_body() -> None:
    assert {d.name: d.model_in_body for d in all_dialects()} == {
        ir.ANTHROPIC: True, ir.OPENAI_CHAT: True, ir.OPENAI_RESPONSES: True, ir.GEMINI: False}
    # and its encoder agrees: no model field in the body it writes
    body = get_dialect(ir.GEMINI).encode_request(ir.Request(model="m", messages=[ir.Message("user", [ir.Text("hi")])]))
    assert "model" not in body


# -- headers -------------------------------------------------------------------------------------------


def test_auth_headers() -> None:
    assert get_dialect(ir.ANTHROPIC).auth_headers("sk-1") == {"x-api-key": "sk-1", "anthropic-version": "2023-06-01"}
    assert get_dialect(ir.OPENAI_CHAT).auth_headers("sk-1") == {"authorization": "Bearer sk-1"}
    assert get_dialect(ir.OPENAI_RESPONSES).auth_headers("sk-1") == {"authorization": "Bearer sk-1"}
    assert get_dialect(ir.GEMINI).auth_headers("sk-1") == {"x-goog-api-key": "sk-1"}


def test_forwarded_and_marker_headers() -> None:
    assert get_dialect(ir.ANTHROPIC).forwarded_headers == ("anthropic-beta", "anthropic-version")
    assert get_dialect(ir.ANTHROPIC).marker_headers == ("anthropic-version",)
    for name in (ir.OPENAI_CHAT, ir.OPENAI_RESPONSES, ir.GEMINI):
        assert get_dialect(name).forwarded_headers == ()
        assert get_dialect(name).marker_headers == ()


# -- pass-through --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ALL)
def test_passes_through(dialect: Any) -> None:
    assert dialect.passes_through(False, False)
    assert dialect.passes_through(True, True)
    # Gemini's JSON-array stream (no alt=sse) is re-encoded: upstreams are asked for SSE
    assert dialect.passes_through(True, False) is (dialect.name != ir.GEMINI)


# -- body shape ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "data", "problem"), [
    (ir.ANTHROPIC, {"messages": []}, None),
    (ir.ANTHROPIC, {}, "the 'messages' field is required"),
    (ir.ANTHROPIC, {"messages": "hi"}, "the 'messages' field must be an array"),
    (ir.OPENAI_CHAT, {"messages": [{}]}, None),
    (ir.OPENAI_CHAT, {"messages": None}, "the 'messages' field is required"),
    (ir.OPENAI_CHAT, {"messages": {}}, "the 'messages' field must be an array"),
    (ir.OPENAI_RESPONSES, {}, None),  # a previous_response_id continuation has no input
    (ir.OPENAI_RESPONSES, {"input": "hi"}, None),
    (ir.OPENAI_RESPONSES, {"input": []}, None),
    (ir.OPENAI_RESPONSES, {"input": 3}, "the 'input' field must be an array or a string"),
    (ir.GEMINI, {"contents": []}, None),
    (ir.GEMINI, {}, "the 'contents' field is required"),
    (ir.GEMINI, {"generateContentRequest": {"contents": []}}, None),  # countTokens' wrapped form
    (ir.GEMINI, {"contents": {"parts": []}}, "the 'contents' field must be an array"),
])
def test_shape_problem(name: str, data: dict[str, Any], problem: str | None) -> None:
    assert get_dialect(name).shape_problem(data) == problem


@pytest.mark.parametrize("dialect", ALL)
def test_a_body_with_a_shape_problem_is_one_the_codec_rejects_too(dialect: Any) -> None:
    from polyrelay.dialects import DialectError
    field = {ir.ANTHROPIC: "messages", ir.OPENAI_CHAT: "messages", ir.OPENAI_RESPONSES: "input",
             ir.GEMINI: "contents"}[dialect.name]
    body = {"model": "m", field: 42}
    assert dialect.shape_problem(body)
    with pytest.raises(DialectError):
        dialect.decode_request(body)


# -- stream frames -------------------------------------------------------------------------------------


def _events(data: bytes) -> list[sse.SSEEvent]:
    parser = sse.SSEParser()
    return parser.feed(data) + parser.close()


def _stream(dialect: Any, events: list[ir.Event]) -> bytes:
    encoder = dialect.stream_encoder(ir.Request(model="m", stream=True))
    return b"".join(encoder.encode(e) for e in events) + encoder.finish()


_NORMAL: list[ir.Event] = [
    ir.MessageStart(id="msg_1", model="m"),
    ir.BlockStart(0, "text"),
    ir.BlockDelta(0, "text", "hello"),
    ir.BlockStop(0),
    ir.MessageDelta(stop_reason="end_turn", usage=ir.Usage(input_tokens=3, output_tokens=1)),
    ir.MessageStop(),
]


@pytest.mark.parametrize("dialect", ALL)
def test_frame_kind_finds_the_end_of_an_encoded_stream(dialect: Any) -> None:
    kinds = [dialect.frame_kind(e) for e in _events(_stream(dialect, _NORMAL))]
    assert kinds, "the encoder wrote frames"
    terminal_at = [i for i, (terminal, _) in enumerate(kinds) if terminal]
    # The terminal frame is the last frame that means something (Chat's [DONE] follows its last chunk).
    assert terminal_at and terminal_at[-1] == len(kinds) - 1
    assert not any(is_error for _, is_error in kinds)


@pytest.mark.parametrize("dialect", ALL)
def test_frame_kind_finds_an_encoded_in_stream_error(dialect: Any) -> None:
    error = ir.ErrorInfo(429, "slow down", code="rate_limit_exceeded")
    stream = _stream(dialect, [ir.MessageStart(id="msg_1", model="m"), ir.StreamError(error)])
    kinds = [dialect.frame_kind(e) for e in _events(stream)]
    assert kinds[-1] == (True, True)
    assert not any(is_error for _, is_error in kinds[:-1])


@pytest.mark.parametrize("dialect", ALL)
def test_passthrough_error_frame_is_terminal_and_decodes_to_its_error(dialect: Any) -> None:
    error = ir.ErrorInfo(429, "slow down", code="rate_limit_exceeded")
    frame = dialect.passthrough_error_frame(error)
    [event] = _events(frame)
    assert dialect.frame_kind(event) == (True, True)
    decoder = dialect.stream_decoder()
    decoded = decoder.feed(frame) + decoder.close()
    errors = [e.error for e in decoded if isinstance(e, ir.StreamError)]
    assert errors and errors[0].message == "slow down"
    assert errors[0].kind == "rate_limit"


@pytest.mark.parametrize(("name", "raw", "kind"), [
    (ir.ANTHROPIC, b'event: message_stop\ndata: {"type":"message_stop"}\n\n', (True, False)),
    (ir.ANTHROPIC, b'event: error\ndata: {"type":"error"}\n\n', (True, True)),
    (ir.ANTHROPIC, b'event: ping\ndata: {"type":"ping"}\n\n', (False, False)),
    (ir.OPENAI_CHAT, b"data: [DONE]\n\n", (True, False)),
    (ir.OPENAI_CHAT, b'data: {"error":{"message":"x"}}\n\n', (True, True)),
    (ir.OPENAI_CHAT, b'data: {"id":"c","choices":[{"finish_reason":"stop"}]}\n\n', (False, False)),
    (ir.OPENAI_RESPONSES, b"event: response.completed\ndata: {}\n\n", (True, False)),
    (ir.OPENAI_RESPONSES, b"event: response.incomplete\ndata: {}\n\n", (True, False)),
    (ir.OPENAI_RESPONSES, b"event: response.failed\ndata: {}\n\n", (True, True)),
    (ir.OPENAI_RESPONSES, b"event: error\ndata: {}\n\n", (True, True)),
    (ir.OPENAI_RESPONSES, b"event: response.output_text.delta\ndata: {}\n\n", (False, False)),
    (ir.GEMINI, b'data: {"candidates":[{"finishReason":"STOP"}]}\n\n', (True, False)),
    (ir.GEMINI, b'data: {"error":{"code":429}}\n\n', (True, True)),
    (ir.GEMINI, b'data: {"candidates":[{"content":{}}]}\n\n', (False, False)),
])
def test_frame_kind_on_upstream_frames(name: str, raw: bytes, kind: tuple[bool, bool]) -> None:
    [event] = _events(raw)
    assert get_dialect(name).frame_kind(event) == kind


def test_passthrough_error_frame_shapes() -> None:
    error = ir.ErrorInfo(500, "boom")
    anthropic = _events(get_dialect(ir.ANTHROPIC).passthrough_error_frame(error))[0]
    assert anthropic.event == "error" and json.loads(anthropic.data)["type"] == "error"
    responses = _events(get_dialect(ir.OPENAI_RESPONSES).passthrough_error_frame(error))[0]
    assert responses.event == "error"
    assert json.loads(responses.data) == {"type": "error", "code": "internal_server_error", "message": "boom",
                                          "param": None}
    for name in (ir.OPENAI_CHAT, ir.GEMINI):
        event = _events(get_dialect(name).passthrough_error_frame(error))[0]
        assert event.event is None
        assert json.loads(event.data) == get_dialect(name).error_body(error)


@pytest.mark.parametrize("dialect", ALL)
def test_keepalive_frame_is_ignored_by_the_dialects_own_decoder(dialect: Any) -> None:
    decoder = dialect.stream_decoder()
    assert decoder.feed(dialect.keepalive_frame * 3) == []
    assert not decoder.finished


# -- bodies --------------------------------------------------------------------------------------------


def test_token_count_bodies() -> None:
    assert get_dialect(ir.ANTHROPIC).token_count_body(7) == {"input_tokens": 7}
    assert get_dialect(ir.OPENAI_CHAT).token_count_body(7) == {"input_tokens": 7}
    assert get_dialect(ir.OPENAI_RESPONSES).token_count_body(7) == {"object": "response.input_tokens",
                                                                    "input_tokens": 7}
    assert get_dialect(ir.GEMINI).token_count_body(7) == {
        "totalTokens": 7, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 7}]}


def test_prompt_fields_name_fields_the_codec_reads() -> None:
    assert get_dialect(ir.ANTHROPIC).prompt_fields == ("system", "messages", "tools")
    assert get_dialect(ir.OPENAI_CHAT).prompt_fields == ("messages", "tools")
    assert get_dialect(ir.OPENAI_RESPONSES).prompt_fields == ("input", "instructions", "tools")
    assert get_dialect(ir.GEMINI).prompt_fields == ("contents", "systemInstruction", "tools")


ROWS = [("model-a", "alpha"), ("model-b", "beta")]


def test_models_bodies() -> None:
    assert get_dialect(ir.ANTHROPIC).models_body(ROWS) == {
        "data": [{"type": "model", "id": "model-a", "display_name": "model-a", "created_at": "1970-01-01T00:00:00Z"},
                 {"type": "model", "id": "model-b", "display_name": "model-b", "created_at": "1970-01-01T00:00:00Z"}],
        "has_more": False, "first_id": "model-a", "last_id": "model-b"}
    assert get_dialect(ir.ANTHROPIC).models_body([]) == {"data": [], "has_more": False, "first_id": None,
                                                         "last_id": None}
    openai = {"object": "list", "data": [{"id": "model-a", "object": "model", "created": 0, "owned_by": "alpha"},
                                         {"id": "model-b", "object": "model", "created": 0, "owned_by": "beta"}]}
    assert get_dialect(ir.OPENAI_CHAT).models_body(ROWS) == openai
    assert get_dialect(ir.OPENAI_RESPONSES).models_body(ROWS) == openai
    methods = ["generateContent", "streamGenerateContent", "countTokens"]
    assert get_dialect(ir.GEMINI).models_body(ROWS) == {"models": [
        {"name": "models/model-a", "displayName": "model-a", "supportedGenerationMethods": methods},
        {"name": "models/model-b", "displayName": "model-b", "supportedGenerationMethods": methods}]}
    assert get_dialect(ir.GEMINI).model_entry("model-a", "alpha") == {
        "name": "models/model-a", "displayName": "model-a", "supportedGenerationMethods": methods}
