"""The dialect contract: one suite every codec passes alike (fsspec style).

:class:`DialectContract` holds the tests; each dialect's class below says
only what is its own (its dialect object, how its upstream frames a stream,
what its stream events look like).  So all four get the same fuzz
(arbitrary JSON to every decoder, arbitrary event streams, corrupted valid
bodies), the same split-anywhere checks and the same round trips.
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyrelay import aggregate, ir
from polyrelay.dialects import Dialect, DialectError, get_dialect
from polyrelay.dialects.base import looks_like_response
from polyrelay.dialects.errorbody import MESSAGE_LIMIT

# Each subclass runs the same test functions: differing_executors is the point, not a mistake.
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
words = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "Zs", "P")), min_size=1, max_size=12)
names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)


def assert_well_formed(events: list[ir.Event], finished: bool) -> None:
    """One start first, ordered indices, balanced blocks, one terminal at the end.

    An upstream error before anything else is the whole stream; a stream cut
    after its final delta ends there, unfinished.
    """
    if not events:
        assert not finished
        return
    if events == [events[0]] and isinstance(events[0], ir.StreamError):
        assert finished
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
            # the message is over: no block after it, at most further deltas and the stop
            assert not open_blocks
            assert all(isinstance(e, (ir.MessageDelta, ir.MessageStop, ir.StreamError)) for e in events[position + 1 :])
        else:
            assert position == len(events) - 1 and not open_blocks
    assert not open_blocks
    assert finished == isinstance(events[-1], (ir.MessageStop, ir.StreamError))


def decode(dialect: Dialect, chunks: list[bytes]) -> tuple[list[ir.Event], bool]:
    decoder = dialect.stream_decoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)] + decoder.close()
    return events, decoder.finished


def same_ids(events: list[ir.Event], wire: bytes) -> list[ir.Event]:
    """``events`` with tool-call ids the decoder made up (not on the wire) numbered instead.

    A call without an id gets a fresh random one, unique across a conversation;
    two decodes of one stream agree on everything else.
    """
    out: list[ir.Event] = []
    for event in events:
        if isinstance(event, ir.BlockStart) and event.id and event.id.encode() not in wire:
            event = attrs.evolve(event, id=f"made-up-{event.index}")
        out.append(event)
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found += paths(inner, (*prefix, i))
    return found


#: A conversation that exercises every part kind the IR shares across dialects.
RICH_REQUEST = ir.Request(
    model="some-model",
    system=[ir.Text("be brief")],
    messages=[
        ir.Message("user", [ir.Text("look"), ir.Image(media_type="image/png", data="iVBORw0KGgo=")]),
        ir.Message("assistant", [ir.Text("calling"), ir.ToolCall(id="call_1", name="lookup", arguments='{"q": "x"}'),
                                 ir.ToolCall(id="call_2", name="noargs", arguments="")]),
        ir.Message("user", [ir.ToolResult(call_id="call_1", name="lookup", content=[ir.Text("found")]),
                            ir.ToolResult(call_id="call_2", name="noargs", content=[ir.Text("ok")])]),
    ],
    tools=[ir.Tool("lookup", "find", {"type": "object", "properties": {"q": {"type": "string"}}}),
           ir.Tool("noargs", "nothing", {"type": "object", "properties": {}})],
    tool_choice=ir.ToolChoice("auto"),
    max_tokens=512,
    temperature=0.5,
    stop=["END"],
)


@st.composite
def responses(draw: st.DrawFn) -> ir.Response:
    """A complete answer: text and tool calls (arguments always an object), a stop reason, usage."""
    parts: list[ir.Part] = []
    if draw(st.booleans()):
        parts.append(ir.Text(draw(words)))
    for i in range(draw(st.integers(0, 2))):
        arguments = draw(st.dictionaries(names, st.integers(-99, 99) | words, max_size=3))
        parts.append(ir.ToolCall(id=f"call_{i}", name=draw(names), arguments=json.dumps(arguments)))
    called = any(isinstance(p, ir.ToolCall) for p in parts)
    stop = "tool_use" if called else draw(st.sampled_from(["end_turn", "max_tokens"]))
    usage = ir.Usage(input_tokens=draw(st.integers(1, 10**6)), output_tokens=draw(st.integers(1, 10**5)))
    return ir.Response(id="resp_1", model="some-model", parts=parts, stop_reason=stop, usage=usage)


def what_users_rely_on(response: ir.Response) -> tuple[Any, ...]:
    """Text, tool calls (arguments parsed), stop reason and token counts."""
    text = "".join(p.text for p in response.parts if isinstance(p, ir.Text))
    calls = [(p.name, json.loads(p.arguments or "{}")) for p in response.parts if isinstance(p, ir.ToolCall)]
    return text, calls, response.stop_reason, response.usage.input_tokens, response.usage.output_tokens


class DialectContract:
    """What every codec guarantees; a subclass names the dialect and its stream vocabulary."""

    name: ClassVar[str]
    #: Upstream stream payloads as arbitrary as the dialect's vocabulary allows (a strategy of dicts).
    stream_payloads: ClassVar[st.SearchStrategy[Any]]

    @property
    def dialect(self) -> Dialect:
        return get_dialect(self.name)

    def frame(self, payload: Any) -> bytes:
        """One upstream stream frame for ``payload`` (``data:`` only; named-event dialects override)."""
        return b"data: " + json.dumps(payload).encode() + b"\n\n"

    # -- fuzz: only DialectError escapes, and what decodes is usable ---------------------------------

    @FUZZ
    @given(json_values)
    def test_arbitrary_json_to_the_request_decoder(self, value: Any) -> None:
        try:
            self.dialect.decode_request(value)
        except DialectError as exc:
            assert exc.message and 400 <= exc.status < 500

    @FUZZ
    @given(json_values)
    def test_arbitrary_json_to_the_response_decoder(self, value: Any) -> None:
        try:
            self.dialect.decode_response(value)
        except DialectError as exc:
            assert exc.message and exc.status >= 400

    @FUZZ
    @given(st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()), st.integers(100, 599))
    def test_decode_error_never_raises(self, body: bytes, status: int) -> None:
        error = self.dialect.decode_error(status, body)
        assert isinstance(error, ir.ErrorInfo) and isinstance(error.message, str)
        assert 100 <= error.status <= 599

    @FUZZ
    @given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=5))
    def test_arbitrary_bytes_to_the_stream_decoder(self, data: bytes, cuts: list[int]) -> None:
        events, finished = decode(self.dialect, split(data, cuts))
        assert_well_formed(events, finished)

    @FUZZ
    @given(st.data())
    def test_arbitrary_event_streams_decode_well_formed(self, data: st.DataObject) -> None:
        payloads = data.draw(st.lists(self.stream_payloads, max_size=10))
        wire = b"".join(self.frame(p) for p in payloads)
        events, finished = decode(self.dialect, [wire])
        assert_well_formed(events, finished)
        cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=6))
        again, again_finished = decode(self.dialect, split(wire, cuts))
        assert (same_ids(again, wire), again_finished) == (same_ids(events, wire), finished)

    @FUZZ
    @given(st.data())
    def test_a_corrupted_valid_request_fails_cleanly_or_round_trips(self, data: st.DataObject) -> None:
        valid = json.loads(json.dumps(self.dialect.encode_request(RICH_REQUEST)))
        path = data.draw(st.sampled_from(paths(valid)[1:]))
        corrupted = copy.deepcopy(valid)
        target = corrupted
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = data.draw(json_values)
        try:
            request = self.dialect.decode_request(corrupted)
        except DialectError as exc:
            assert exc.message and exc.status == 400
            return
        # Whatever we accept, we can send on, and what we send is a body we accept again.
        encoded = json.loads(json.dumps(self.dialect.encode_request(request)))
        assert self.dialect.decode_request(encoded).model == request.model

    # -- round trips -------------------------------------------------------------------------------

    def test_a_request_round_trips(self) -> None:
        body = json.loads(json.dumps(self.dialect.encode_request(RICH_REQUEST)))
        first = self.dialect.decode_request(body)
        again = self.dialect.decode_request(json.loads(json.dumps(self.dialect.encode_request(first))))
        assert again == first
        assert first.model == (RICH_REQUEST.model if self.dialect.model_in_body else "")
        texts = [p.text for m in first.messages for p in m.parts if isinstance(p, ir.Text)]
        assert "look" in texts and "calling" in texts
        calls = {p.name: p for m in first.messages for p in m.parts if isinstance(p, ir.ToolCall)}
        assert json.loads(calls["lookup"].arguments) == {"q": "x"}
        # a tool call with no arguments is the empty object in every dialect
        assert calls["noargs"].arguments == "{}"
        results = [p for m in first.messages for p in m.parts if isinstance(p, ir.ToolResult)]
        assert [r.call_id for r in results] == [calls["lookup"].id, calls["noargs"].id]

    @FUZZ
    @given(responses())
    def test_a_complete_response_round_trips(self, response: ir.Response) -> None:
        body = json.loads(json.dumps(self.dialect.encode_response(response)))
        assert what_users_rely_on(self.dialect.decode_response(body)) == what_users_rely_on(response)

    @FUZZ
    @given(responses())
    def test_every_complete_response_passes_the_pass_through_check(self, response: ir.Response) -> None:
        # a same-dialect answer is forwarded after this check alone: a real one must never fail it
        body = json.loads(json.dumps(self.dialect.encode_response(response)))
        assert looks_like_response(self.dialect, body)

    def test_an_error_body_or_a_stray_object_fails_the_pass_through_check(self) -> None:
        error = self.dialect.error_body(ir.ErrorInfo(429, "slow down", kind="rate_limit", retry_after=3))
        blank = dict.fromkeys(self.dialect.response_fields, "")
        for body in ({}, {"unexpected": True}, [1, 2], "text", None, error, blank):
            assert not looks_like_response(self.dialect, body), body

    @FUZZ
    @given(responses(), st.lists(st.integers(0, 10**6), max_size=8))
    def test_a_stream_round_trips_split_anywhere(self, response: ir.Response, cuts: list[int]) -> None:
        # include_usage: a Chat client only gets the usage chunk when it asks for it
        encoder = self.dialect.stream_encoder(ir.Request(model=response.model, stream=True, include_usage=True))
        wire = b"".join(encoder.encode(e) for e in aggregate.response_events(response)) + encoder.finish()
        whole, finished = decode(self.dialect, [wire])
        assert finished
        assert_well_formed(whole, finished)
        assert decode(self.dialect, split(wire, cuts)) == (whole, finished)
        assert decode(self.dialect, [wire[i:i + 1] for i in range(len(wire))]) == (whole, finished)
        assert what_users_rely_on(aggregate.collect(whole)) == what_users_rely_on(response)

    def test_a_call_without_arguments_is_the_empty_object_everywhere(self) -> None:
        response = ir.Response(id="resp_1", model="m", parts=[ir.ToolCall(id="call_1", name="f", arguments="")],
                               stop_reason="tool_use")
        whole = self.dialect.decode_response(json.loads(json.dumps(self.dialect.encode_response(response))))
        encoder = self.dialect.stream_encoder(ir.Request(model="m", stream=True))
        wire = b"".join(encoder.encode(e) for e in aggregate.response_events(response)) + encoder.finish()
        streamed = aggregate.collect(decode(self.dialect, [wire])[0])
        assert [p.arguments for p in whole.parts] == [p.arguments for p in streamed.parts] == ["{}"]

    @FUZZ
    @given(st.integers(400, 599), words)
    def test_an_error_body_round_trips(self, status: int, message: str) -> None:
        error = ir.ErrorInfo(status, message)
        back = self.dialect.decode_error(status, json.dumps(self.dialect.error_body(error)).encode())
        assert (back.status, back.message, back.kind) == (status, message, error.kind)

    @pytest.mark.parametrize("status", [429, 502, 503])
    def test_an_unstructured_error_body_reads_the_same_in_every_dialect(self, status: int) -> None:
        # A load balancer's HTML page: the client sees its start, cut to one length, with the status kept.
        page = "<html><body>Bad gateway. Please try again in 7s." + "x" * 5000 + "</body></html>"
        error = self.dialect.decode_error(status, page.encode())
        assert error.status == status
        assert error.message == page[:MESSAGE_LIMIT]
        assert error.retry_after == 7.0

    @pytest.mark.parametrize("body", [b"", b"   \n", b"[]"])
    def test_an_empty_error_body_names_the_status(self, body: bytes) -> None:
        error = self.dialect.decode_error(503, body)
        assert (error.status, error.message) == (503, "upstream returned HTTP 503")

    def test_an_error_object_in_a_one_element_array_is_read(self) -> None:
        # Some proxies wrap the dialect's own error body in an array.
        own = json.dumps([self.dialect.error_body(ir.ErrorInfo(429, "slow down"))]).encode()
        error = self.dialect.decode_error(429, own)
        assert (error.status, error.message, error.kind) == (429, "slow down", "rate_limit")

    # Not 403: the OpenAI error shapes (CLIProxyAPI's) write a permission error with the code
    # insufficient_quota, which reads back as a quota 429 in Chat and Responses.
    @FUZZ
    @given(st.sampled_from([400, 401, 404, 429, 500, 503]), words)
    def test_an_in_stream_error_ends_the_stream_with_it(self, status: int, message: str) -> None:
        encoder = self.dialect.stream_encoder(ir.Request(model="m", stream=True))
        error = ir.ErrorInfo(status, message)
        wire = encoder.encode(ir.MessageStart(id="msg_1", model="m")) + encoder.encode(ir.StreamError(error))
        events, finished = decode(self.dialect, [wire])
        assert finished and isinstance(events[-1], ir.StreamError)
        back = events[-1].error
        assert back.message == message and back.status // 100 == status // 100
        if status < 500:  # what steers a retry: a client fault, bad auth, no such model, a rate limit
            assert back.kind == error.kind


# -- the four dialects ------------------------------------------------------------------------------

_ANTHROPIC_EVENTS = ["message_start", "content_block_start", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop", "error", "ping"]


class TestAnthropicContract(DialectContract):
    name = ir.ANTHROPIC
    stream_payloads = st.fixed_dictionaries(
        {"type": st.sampled_from(_ANTHROPIC_EVENTS) | json_values},
        optional={"index": json_values | st.integers(0, 3), "message": json_values, "content_block": json_values,
                  "delta": json_values | st.fixed_dictionaries({"type": st.sampled_from(
                      ["text_delta", "input_json_delta", "thinking_delta", "signature_delta"]), "text": json_values,
                      "partial_json": json_values}), "usage": json_values, "error": json_values})

    def frame(self, payload: Any) -> bytes:
        """Anthropic names every event after its payload's type (decoders read either)."""
        kind = payload.get("type") if isinstance(payload, dict) else None
        named = b"event: " + kind.encode() + b"\n" if isinstance(kind, str) and kind.isidentifier() else b""
        return named + super().frame(payload)


_CHAT_CHUNK = st.fixed_dictionaries(
    {"choices": st.lists(st.fixed_dictionaries({}, optional={
        "index": st.integers(0, 2) | json_values,
        "delta": json_values | st.fixed_dictionaries({}, optional={
            "role": st.sampled_from(["assistant"]) | json_values, "content": st.text(max_size=5) | json_values,
            "reasoning_content": st.text(max_size=5) | json_values,
            "tool_calls": json_values | st.lists(st.fixed_dictionaries({}, optional={
                "index": st.integers(0, 2) | json_values, "id": st.sampled_from(["c1", "c2"]) | json_values,
                "type": st.just("function"),
                "function": json_values | st.fixed_dictionaries({}, optional={
                    "name": st.sampled_from(["f", "g"]) | json_values,
                    "arguments": st.sampled_from(['{"a":', "1}", ""]) | json_values})}), max_size=2)}),
        "finish_reason": st.sampled_from(["stop", "length", "tool_calls", None]) | json_values}), max_size=2)
     | json_values},
    optional={"id": json_values, "model": json_values, "object": st.just("chat.completion.chunk"),
              "usage": json_values | st.fixed_dictionaries({"prompt_tokens": json_values,
                                                            "completion_tokens": json_values}),
              "error": json_values})


class TestOpenAIChatContract(DialectContract):
    name = ir.OPENAI_CHAT
    stream_payloads = _CHAT_CHUNK | st.just("[DONE]")

    def frame(self, payload: Any) -> bytes:
        """Chat ends its stream with a bare ``data: [DONE]``."""
        return b"data: [DONE]\n\n" if payload == "[DONE]" else super().frame(payload)


_RESPONSES_EVENTS = [
    "response.created", "response.output_item.added", "response.output_item.done", "response.output_text.delta",
    "response.content_part.done", "response.function_call_arguments.delta", "response.function_call_arguments.done",
    "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta", "response.completed",
    "response.incomplete", "response.failed", "error", "response.web_search_call.searching"]


class TestOpenAIResponsesContract(DialectContract):
    name = ir.OPENAI_RESPONSES
    stream_payloads = st.fixed_dictionaries(
        {"type": st.sampled_from(_RESPONSES_EVENTS) | json_values},
        optional={"output_index": st.integers(0, 3) | json_values, "content_index": st.integers(0, 2) | json_values,
                  "item_id": st.sampled_from(["a", "b"]) | json_values, "delta": st.text(max_size=5) | json_values,
                  "item": json_values | st.fixed_dictionaries({"type": st.sampled_from(
                      ["message", "reasoning", "function_call", "custom_tool_call"])}, optional={
                      "call_id": json_values, "name": json_values, "arguments": json_values, "content": json_values,
                      "summary": json_values, "encrypted_content": json_values}),
                  "response": json_values, "part": json_values, "arguments": json_values})

    def frame(self, payload: Any) -> bytes:
        """Responses names every event after its payload's type."""
        kind = payload.get("type") if isinstance(payload, dict) else None
        named = b"event: " + kind.encode() + b"\n" if isinstance(kind, str) and kind.replace(".", "_").isidentifier() \
            else b""
        return named + super().frame(payload)


_GEMINI_PART = st.one_of(
    st.builds(lambda t, s, th: {"text": t, **({"thoughtSignature": s} if s else {}),
                                **({"thought": True} if th else {})},
              st.text(max_size=6), st.none() | st.sampled_from(["S1", "S2=="]), st.booleans()),
    st.builds(lambda n, a: {"functionCall": {"name": n, "args": a}},
              st.sampled_from(["f", "g"]) | json_values, json_values),
    st.just({"executableCode": {"code": "1"}}),
    json_values,
)


class TestGeminiContract(DialectContract):
    name = ir.GEMINI
    stream_payloads = st.one_of(
        st.builds(lambda parts, finish, usage: {
            "candidates": [{"content": {"role": "model", "parts": parts},
                            **({"finishReason": finish} if finish else {})}],
            **({"usageMetadata": usage} if usage is not None else {}), "responseId": "R", "modelVersion": "m"},
            st.lists(_GEMINI_PART, max_size=4),
            st.none() | st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", "OTHER"]) | json_values,
            st.none() | json_values | st.fixed_dictionaries({"promptTokenCount": json_values,
                                                              "candidatesTokenCount": json_values})),
        st.fixed_dictionaries({"response": json_values}, optional={"traceId": json_values}),
        st.just({"error": {"code": 500, "message": "x", "status": "INTERNAL"}}),
        json_values,
    )
