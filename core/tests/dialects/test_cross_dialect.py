"""Translation between every pair of dialects, by property.

Generated conversations go A → IR → B → IR; generated event streams are
encoded in A, split anywhere, decoded, re-encoded in B and decoded again.
What a user relies on must survive each trip: text, the system prompt, tool
names, tool arguments (as parsed JSON), which result answers which call,
stop reason and usage.
"""

from __future__ import annotations

import itertools
import json

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyrelay import aggregate, ir
from polyrelay.dialects import get_dialect

PAIRS = list(itertools.product(ir.DIALECTS, repeat=2))
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

words = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "Zs", "P")), min_size=1, max_size=30)
words = words.filter(lambda s: s.strip() == s and s.strip())
names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | words,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=6,
)
arguments = st.dictionaries(names, json_values, max_size=4)


@st.composite
def conversations(draw: st.DrawFn) -> ir.Request:
    """A user/assistant conversation with parallel tool calls and their results."""
    tool_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    messages = [ir.Message("user", [ir.Text(draw(words))])]
    for turn in range(draw(st.integers(0, 3))):
        calls = [
            ir.ToolCall(id=f"call_{turn}_{i}", name=draw(st.sampled_from(tool_names)),
                        arguments=json.dumps(draw(arguments)))
            for i in range(draw(st.integers(0, 3)))
        ]
        assistant_text = draw(st.one_of(st.none(), words))
        parts: list[ir.Part] = ([ir.Text(assistant_text)] if assistant_text else []) + calls
        if not parts:
            parts = [ir.Text("ok")]
        messages.append(ir.Message("assistant", parts))
        if calls:
            messages.append(ir.Message("user", [ir.ToolResult(call_id=c.id, content=[ir.Text(draw(words))])
                                                for c in calls]))
        else:
            messages.append(ir.Message("user", [ir.Text(draw(words))]))
    return ir.Request(
        model="some-model",
        system=[ir.Text(draw(words))],
        messages=messages,
        tools=[ir.Tool(name=n, description=f"tool {n}",
                       parameters={"type": "object", "properties": {"x": {"type": "string"}}})
               for n in tool_names],
        max_tokens=draw(st.integers(1, 4096)),
        temperature=draw(st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0]))),
    )


def summary(request: ir.Request) -> dict:
    """What must survive translation, independent of how a dialect groups it."""
    calls: dict[str, ir.ToolCall] = {}
    texts, call_list, results = [], [], []
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, ir.Text):
                texts.append(part.text)
            elif isinstance(part, ir.ToolCall):
                calls[part.id] = part
                call_list.append((part.name, json.loads(part.arguments or "{}")))
            elif isinstance(part, ir.ToolResult):
                paired = calls.get(part.call_id)
                content = "".join(c.text for c in part.content if isinstance(c, ir.Text))
                results.append((paired.name if paired else None, paired and json.loads(paired.arguments or "{}"),
                                _unwrap(content)))
    return {
        "system": "\n\n".join(t.text for t in request.system).strip(),
        "texts": [t.strip() for t in texts],
        "calls": call_list,
        "results": results,
        "tools": sorted(t.name for t in request.tools),
    }


def _unwrap(text: str) -> str:
    """Gemini wraps a plain result as {"result": text}; reading it back may give that JSON."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict) and set(value) in ({"result"}, {"output"}, {"content"}):
        return str(next(iter(value.values())))
    return text


def through(request: ir.Request, dialect: str) -> ir.Request:
    """Encode for an upstream of ``dialect`` and decode it back, via real JSON."""
    codec = get_dialect(dialect)
    wire = json.loads(json.dumps(codec.encode_request(request)))
    decoded = codec.decode_request(wire)
    if dialect == ir.GEMINI:
        decoded.model = request.model  # Gemini carries the model in the URL
    return decoded


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
@SETTINGS
@given(request=conversations())
def test_requests_survive_a_to_ir_to_b(a: str, b: str, request: ir.Request) -> None:
    expected = summary(request)
    result = summary(through(through(request, a), b))
    assert result["system"] == expected["system"]
    assert result["tools"] == expected["tools"]
    assert result["calls"] == expected["calls"]
    assert result["results"] == expected["results"], "each result must still answer its own call"
    assert "\n".join(result["texts"]).split() == "\n".join(expected["texts"]).split()


@st.composite
def responses(draw: st.DrawFn) -> ir.Response:
    """A complete answer: optional text, optional parallel tool calls, a stop reason, usage."""
    parts: list[ir.Part] = []
    text = draw(st.one_of(st.none(), words))
    if text:
        parts.append(ir.Text(text))
    for i in range(draw(st.integers(0, 3))):
        parts.append(ir.ToolCall(id=f"call_{i}", name=draw(names), arguments=json.dumps(draw(arguments))))
    if not parts:
        parts.append(ir.Text("done"))
    has_calls = any(isinstance(p, ir.ToolCall) for p in parts)
    stop = "tool_use" if has_calls else draw(st.sampled_from(["end_turn", "max_tokens"]))
    usage = ir.Usage(input_tokens=draw(st.integers(1, 10**6)), output_tokens=draw(st.integers(1, 10**5)))
    return ir.Response(id="msg_1", model="m", parts=parts, stop_reason=stop, usage=usage)


def response_summary(response: ir.Response) -> dict:
    return {
        "text": "".join(p.text for p in response.parts if isinstance(p, ir.Text)),
        "calls": [(p.name, json.loads(p.arguments or "{}")) for p in response.parts if isinstance(p, ir.ToolCall)],
        "stop": response.stop_reason,
        "usage": (response.usage.input_tokens, response.usage.output_tokens),
    }


def stream_through(events: list[ir.Event], dialect: str, cuts: list[int]) -> list[ir.Event]:
    """Encode events as ``dialect`` frames, split the bytes at ``cuts``, decode them back."""
    request = ir.Request(model="client-model", stream=True, include_usage=True)
    encoder = get_dialect(dialect).stream_encoder(request)
    data = b"".join(encoder.encode(e) for e in events) + encoder.finish()
    points = sorted({c % (len(data) + 1) for c in cuts})
    decoder = get_dialect(dialect).stream_decoder()
    out: list[ir.Event] = []
    for start, end in zip([0, *points], [*points, len(data)], strict=True):
        out.extend(decoder.feed(data[start:end]))
    out.extend(decoder.close())
    assert decoder.finished, f"{dialect} decoder did not see the terminal event it encoded"
    return out


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
@SETTINGS
@given(response=responses(), cuts=st.lists(st.integers(0, 10**6), max_size=6),
       cuts_b=st.lists(st.integers(0, 10**6), max_size=6))
def test_streams_survive_a_to_ir_to_b_at_any_split(a, b, response, cuts, cuts_b):
    events = list(aggregate.response_events(response))
    via_a = stream_through(events, a, cuts)
    via_b = stream_through(via_a, b, cuts_b)
    for got in (aggregate.collect(via_a), aggregate.collect(via_b)):
        assert response_summary(got) == response_summary(response)
    starts = [e for e in via_b if isinstance(e, ir.MessageStart)]
    assert len(starts) == 1, "exactly one message start"
    assert isinstance(via_b[-1], ir.MessageStop), "a terminal event ends every stream"


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
@SETTINGS
@given(response=responses())
def test_complete_responses_survive_a_to_ir_to_b(a, b, response):
    result = response
    for dialect in (a, b):
        codec = get_dialect(dialect)
        result = codec.decode_response(json.loads(json.dumps(codec.encode_response(attrs.evolve(result)))))
    assert response_summary(result) == response_summary(response)


@pytest.mark.parametrize("dialect", ir.DIALECTS)
def test_an_error_mid_stream_is_terminal_in_every_dialect(dialect):
    request = ir.Request(model="m", stream=True)
    encoder = get_dialect(dialect).stream_encoder(request)
    events = [ir.MessageStart(id="x", model="m"), ir.BlockStart(0, "text"), ir.BlockDelta(0, "text", "par"),
              ir.StreamError(ir.ErrorInfo(529, "Overloaded", kind="overloaded"))]
    data = b"".join(encoder.encode(e) for e in events) + encoder.finish()
    decoder = get_dialect(dialect).stream_decoder()
    decoded = decoder.feed(data) + decoder.close()
    errors = [e for e in decoded if isinstance(e, ir.StreamError)]
    assert len(errors) == 1 and "Overloaded" in errors[0].error.message
    assert decoder.finished
    assert not any(isinstance(e, ir.MessageStop) for e in decoded), "an error is not a normal end"
