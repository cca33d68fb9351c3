"""Property-based fuzzing of the HTTP surface (issue 8, "Done means").

hypothesis writes requests for every route (bodies with deep nesting, huge
numbers, odd unicode and hostile model names; odd paths and methods) and
sends them over loopback to the real gateway, in front of the fault
upstream speaking all four dialects.  For every request:

* no 5xx unless the upstream sent one (it never does here);
* every error is JSON in the dialect the path speaks;
* an upstream request, if one was made, went to exactly the dialect's
  endpoint, with the model as one path segment.

The gateway runs in a thread with its own event loop, so hypothesis drives
plain synchronous requests; the example count is bounded for ``make test``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from polyrelay import ir, jsonutil
from polyrelay.dialects import dialect_for_path
from polyrelay.testing import run_gateway
from polyrelay.testing.clients import is_error_shape, request_for
from polyrelay.testing.faults import FaultUpstream, fault_model, fault_plugin

EXAMPLES = int(os.environ.get("POLYRELAY_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="POLYRELAY_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
#: Each upstream dialect's endpoint under the fault upstream's root.
ENDPOINTS = {ir.ANTHROPIC: "/v1/messages", ir.OPENAI_CHAT: "/chat/completions", ir.OPENAI_RESPONSES: "/responses"}


class Served:
    """The gateway and the fault upstream, on a loop in a thread of their own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.upstream = FaultUpstream()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with self.upstream, run_gateway(extra_plugins=[("fault", fault_plugin(self.upstream, keys=1))]) as gw:
            self.port = gw.config.port
            self.ready.set()
            await self._stop.wait()

    def __enter__(self) -> Served:
        self._thread.start()
        assert self.ready.wait(30), "the gateway did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, str, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheader("content-type") or "", response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with Served() as running:
        yield running


# -- what hypothesis draws -------------------------------------------------------------------

HOSTILE = ["../../../v1beta/cachedContents#", "x?alt=json&key=ATTACKER#", "..", "a/b", "%2e%2e", "a%2Fb",
           "a\x00b", "a\r\nx: 1", " ", "\u202e", "ü", ":generateContent", "a#b", "."]
model_tails = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+@:-]{0,20}", fullmatch=True),
)
known_models = st.sampled_from([fault_model(d) for d in ir.DIALECTS])
models = st.one_of(
    known_models, known_models,  # half the requests routable, so half reach the upstream's checks
    st.builds(lambda d, tail: f"fault-{d}/{tail}", st.sampled_from(ir.DIALECTS), model_tails),
    model_tails,
)
huge_numbers = st.one_of(st.integers(min_value=-(10**40), max_value=10**40), st.sampled_from([1e30, -1e308, 1e308]),
                         st.floats(allow_nan=False, allow_infinity=False))
odd_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
leaves = st.one_of(st.none(), st.booleans(), huge_numbers, odd_text)
json_values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(odd_text, inner, max_size=3)), max_leaves=12)
#: Fields each dialect reads, where a wrong value must end as a 400, not a 500.
FIELDS = {
    ir.ANTHROPIC: ["max_tokens", "messages", "system", "tools", "tool_choice", "temperature", "thinking", "stream",
                   "metadata", "stop_sequences", "top_k"],
    ir.OPENAI_CHAT: ["max_tokens", "max_completion_tokens", "messages", "tools", "tool_choice", "temperature",
                     "stream", "stop", "response_format", "reasoning_effort", "n", "stream_options"],
    ir.OPENAI_RESPONSES: ["input", "instructions", "tools", "tool_choice", "max_output_tokens", "reasoning",
                          "text", "stream", "temperature", "include"],
    ir.GEMINI: ["contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings"],
}
#: The generationConfig fields a Gemini client may send numbers in.
GEMINI_NUMBERS = ["maxOutputTokens", "temperature", "topK", "topP", "thinkingConfig"]


def nested(depth: int, kind: str) -> str:
    return ("[" * depth + "1" + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """One client request: dialect, route, model, body bytes, headers."""
    dialect = draw(st.sampled_from(ir.DIALECTS))
    model = draw(models)
    stream = draw(st.booleans())
    path, headers, body = request_for(dialect, "MODEL", "hello", stream)
    if dialect == ir.GEMINI:
        action = "streamGenerateContent?alt=sse" if stream else draw(st.sampled_from(["generateContent",
                                                                                       "countTokens"]))
        prefix = draw(st.sampled_from(["/v1beta/models/", "/v1/models/"]))
        path = f"{prefix}{quote(model, safe='')}:{action}"
    else:
        body["model"] = model
        if draw(st.booleans()) and dialect in (ir.ANTHROPIC, ir.OPENAI_RESPONSES):
            path += "/count_tokens" if dialect == ir.ANTHROPIC else "/input_tokens"
    for field in draw(st.lists(st.sampled_from(FIELDS[dialect]), max_size=2, unique=True)):
        body[field] = draw(json_values)
    if dialect == ir.GEMINI and draw(st.booleans()):
        body["generationConfig"] = {draw(st.sampled_from(GEMINI_NUMBERS)): draw(huge_numbers)}
    raw = json.dumps(body, ensure_ascii=draw(st.booleans()))
    if draw(st.integers(0, 4)) == 0:  # deep nesting, spliced in raw: no encoder nests that deep
        depth = draw(st.integers(min_value=50, max_value=1100))
        raw = raw[:-1] + f', "x_deep": {nested(depth, draw(st.sampled_from(["list", "dict"])))}' + "}"
    return {"dialect": dialect, "path": path, "model": model, "stream": stream, "body": raw.encode("utf-8",
            "surrogatepass"), "headers": {**headers, "content-type": "application/json"}}


def expected_upstream_path(client_model: str) -> tuple[str, str] | None:
    """``(upstream dialect, decoded path without action)`` a routed model must reach, or None if unroutable."""
    for dialect in ir.DIALECTS:
        if client_model == fault_model(dialect):
            upstream_model = client_model
        elif client_model.startswith(f"fault-{dialect}/"):
            upstream_model = client_model.partition("/")[2]
        else:
            continue
        return dialect, ENDPOINTS.get(dialect) or f"/models/{upstream_model}"
    return None


# -- the properties ------------------------------------------------------------------------


def check_answer(served: Served, dialect: str, status: int, content_type: str, raw: bytes, before: int) -> None:
    assert status < 500, (status, raw[:500])
    if status >= 400:
        assert content_type.startswith("application/json"), (status, content_type, raw[:200])
        assert is_error_shape(dialect, status, json.loads(raw)), raw[:500]


def check_upstream(served: Served, before: int, model: str, stream: bool) -> None:
    made = served.upstream.requests[before:]
    assert len(made) <= 1
    if not made:
        return
    expected = expected_upstream_path(model)
    assert expected is not None, f"{model!r} is routed nowhere, yet reached the upstream at {made[0].raw_path}"
    dialect, path = expected
    recorded = made[0]
    if dialect != ir.GEMINI:
        assert recorded.raw_path == path
        return
    action = ":streamGenerateContent" if recorded.raw_path.endswith(":streamGenerateContent") else ":generateContent"
    # The decoded path is the template with the model in it, and the raw path has exactly the
    # template's segments: the model is one segment, whatever it contains.
    assert recorded.path == path + action
    assert recorded.raw_path.count("/") == 2 and recorded.raw_path.startswith("/models/")
    assert recorded.query in ({}, {"alt": "sse"})


@FUZZ
@given(request=requests())
def test_dialect_routes_never_500_and_never_steer_the_upstream(served: Served, request: dict[str, Any]) -> None:
    before = len(served.upstream.requests)
    status, content_type, raw = served.send("POST", request["path"], request["body"], request["headers"])
    event(f"status {status}, upstream called: {len(served.upstream.requests) > before}")
    check_answer(served, dialect_for_path(request["path"], {}).name, status, content_type, raw, before)
    check_upstream(served, before, request["model"], request["stream"])


segments = st.one_of(st.sampled_from(["v1", "v1beta", "models", "messages", "chat", "responses", "..", "%2e%2e",
                                      "count_tokens", ":generateContent", "%00", "%ff"]),
                     st.text(st.characters(codec="ascii", exclude_characters="/?#"), max_size=8).map(quote))


@FUZZ
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]),
       parts=st.lists(segments, min_size=1, max_size=5), body=st.one_of(st.none(), json_values.map(json.dumps)))
def test_any_path_and_method_answers_in_a_dialect(served: Served, method: str, parts: list[str],
                                                  body: str | None) -> None:
    path = "/" + "/".join(parts)
    before = len(served.upstream.requests)
    data = None if body is None else body.encode()
    with contextlib.suppress(http.client.RemoteDisconnected):  # a path h11 refuses before any route
        status, content_type, raw = served.send(method, path, data, {"content-type": "application/json"})
        if method != "HEAD":
            check_answer(served, dialect_for_path(path, {}).name, status, content_type, raw, before)
    # A request without a valid model in a dialect's shape never reaches an upstream from here.
    for recorded in served.upstream.requests[before:]:
        assert recorded.raw_path in ENDPOINTS.values() or recorded.raw_path.startswith("/models/")


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


tricky_text = st.text(st.sampled_from(list('[]{}"\\:,ab \u00e9')), max_size=8)
tricky_json = st.recursive(st.one_of(st.none(), st.integers(), tricky_text),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(tricky_text, inner, max_size=3)), max_leaves=30)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(value=tricky_json, limit=st.integers(0, 6), ascii_only=st.booleans())
def test_the_depth_check_matches_the_depth_of_what_was_parsed(value: Any, limit: int, ascii_only: bool) -> None:
    """Brackets and quotes inside strings never fool the check."""
    parsed = jsonutil.loads(json.dumps(value, ensure_ascii=ascii_only).encode())
    assert jsonutil.too_deep(parsed, limit) == (depth_of(value) > limit)


def test_the_depth_check_counts_containers_not_brackets_in_strings() -> None:
    assert not jsonutil.too_deep(jsonutil.loads(b'"[[[[{{{{"'), 0)
    assert not jsonutil.too_deep(jsonutil.loads(b'["]]]]", "[[[["]'), 1)
    assert jsonutil.too_deep(jsonutil.loads(b'[["\\\\\\""]]'), 1)  # a string of a backslash and a quote
    assert jsonutil.too_deep(jsonutil.loads(b'{"a": [1, {"b": {}}]}'), 3)  # four levels: object, array, object, object
    assert not jsonutil.too_deep(jsonutil.loads(b'{"a": [1, {"b": {}}]}'), 4)
