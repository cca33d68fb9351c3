"""A fault-injecting upstream that speaks all four dialects, on loopback.

:class:`FaultUpstream` answers every dialect's endpoint (``/v1/messages``,
``/chat/completions``, ``/responses``, ``/models/{m}:generateContent`` and
``:streamGenerateContent``) under any prefix.  With an empty script it
answers correctly, in the dialect the path names, streamed when the request
asks for a stream; each :meth:`~polyrelay.testing.Simulator.push` chooses the
behaviour of one request instead, from the builders below:

* :func:`accept_and_hang` — the connection is accepted, headers never come;
* :func:`hang_after_headers` — a 200 and its headers, then silence;
* :func:`slow_drip` — a body written one byte at a time;
* :func:`garbage_body` — a 200 ``application/json`` answer that is not JSON;
* :func:`garbage_frames` — a 200 event stream whose frames are not JSON;
* :func:`error_first` — a stream whose first frame is the dialect's error;
* :func:`error_after_first_frame` — content, then an in-stream error quoting
  whatever the test puts in the message (a key, say).

:func:`fault_plugin` registers one provider per upstream dialect in front of
a running upstream (``fault-<dialect>``, model ``fault-<dialect>-model``, two
keys each), for tests that go through every upstream dialect.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import attrs
import pluggy
from aiohttp import web

from polyrelay import ir
from polyrelay.dialects import get_dialect
from polyrelay.testing.simulator import Recorded, Reply, Simulator
from polyrelay.types import Credential, ModelInfo, Provider

hookimpl = pluggy.HookimplMarker("polyrelay")

#: Long enough that only a deadline or a disconnect ends the wait.
FOREVER = 3600.0
TEXT = "Hello from the fault upstream."
#: A reply body meaning "the correct answer for the request", played after the reply's delay.
LATE = object()


def dialect_of(path: str) -> str:
    """The dialect an upstream endpoint path belongs to."""
    if path.endswith("/messages"):
        return ir.ANTHROPIC
    if path.endswith("/chat/completions"):
        return ir.OPENAI_CHAT
    if path.endswith("/responses"):
        return ir.OPENAI_RESPONSES
    if ":generateContent" in path or ":streamGenerateContent" in path:
        return ir.GEMINI
    raise ValueError(f"no dialect serves {path!r}")


def _events(model: str, text: str) -> list[ir.Event]:
    return [
        ir.MessageStart(id="msg_fault1", model=model, usage=ir.Usage(input_tokens=3)),
        ir.BlockStart(0, "text"),
        ir.BlockDelta(0, "text", text),
        ir.BlockStop(0),
        ir.MessageDelta(stop_reason="end_turn", usage=ir.Usage(input_tokens=3, output_tokens=5)),
        ir.MessageStop(),
    ]


def stream_frames(dialect: str, model: str = "fault-model", text: str = TEXT) -> list[bytes]:
    """A whole, correct stream in ``dialect``, one frame per event (empty encodings dropped)."""
    encoder = get_dialect(dialect).stream_encoder(ir.Request(model=model, stream=True))
    frames = [encoder.encode(event) for event in _events(model, text)]
    return [f for f in [*frames, encoder.finish()] if f]


def content_frames(dialect: str, model: str = "fault-model", text: str = TEXT) -> list[bytes]:
    """The frames up to and including the first text delta: content the client has already seen."""
    encoder = get_dialect(dialect).stream_encoder(ir.Request(model=model, stream=True))
    frames = [encoder.encode(event) for event in _events(model, text)[:3]]
    return [f for f in frames if f]


def error_frames(dialect: str, error: ir.ErrorInfo, model: str = "fault-model") -> list[bytes]:
    """The frames ``dialect`` ends a stream with when it fails (its own in-stream error)."""
    encoder = get_dialect(dialect).stream_encoder(ir.Request(model=model, stream=True))
    frames = [encoder.encode(ir.StreamError(error)), encoder.finish()]
    return [f for f in frames if f]


def complete_body(dialect: str, model: str = "fault-model", text: str = TEXT) -> dict[str, Any]:
    """A correct complete answer in ``dialect``."""
    response = ir.Response(id="msg_fault1", model=model, parts=[ir.Text(text)],
                           usage=ir.Usage(input_tokens=3, output_tokens=5))
    return get_dialect(dialect).encode_response(response)


# -- behaviours (one per request, pushed in order) -------------------------------


def accept_and_hang(seconds: float = FOREVER) -> Reply:
    """Accept the request, then send nothing at all for ``seconds`` (then the correct answer)."""
    return Reply(delay=seconds, body=LATE)


def hang_after_headers(seconds: float = FOREVER, event_stream: bool = True) -> Reply:
    """Send a 200 and its headers, then nothing for ``seconds``."""
    kind = "text/event-stream" if event_stream else "application/json"
    return Reply(chunks=[], hold=seconds, headers={"content-type": kind})


def slow_drip(body: bytes, interval: float = 1.0, event_stream: bool = True) -> Reply:
    """Write ``body`` one byte every ``interval`` seconds after a 200."""
    kind = "text/event-stream" if event_stream else "application/json"
    return Reply(chunks=[body[i:i + 1] for i in range(len(body))], interval=interval, headers={"content-type": kind})


def garbage_body(body: bytes = b"<html><body>502 Bad Gateway</body></html>") -> Reply:
    """A 200 labelled ``application/json`` whose body is not JSON."""
    return Reply(body=body)


def garbage_frames(frames: Iterable[bytes] = (b"data: <html>oops</html>\n\n", b"data: {not json\n\n")) -> Reply:
    """A 200 event stream whose frames are not JSON objects."""
    return Reply.sse(list(frames))


def error_first(dialect: str, error: ir.ErrorInfo) -> Reply:
    """A 200 stream whose very first frame is ``dialect``'s in-stream error."""
    return Reply.sse(error_frames(dialect, error))


def error_after_first_frame(dialect: str, message: str, status: int = 500, interval: float = 0.0) -> Reply:
    """A 200 stream: content first, then ``dialect``'s in-stream error saying ``message``."""
    error = ir.ErrorInfo(status, message)
    return Reply.sse([*content_frames(dialect), *error_frames(dialect, error)], interval=interval)


class FaultUpstream(Simulator):
    """Every dialect's endpoint; correct answers unless a fault is pushed."""

    def routes(self) -> list[web.RouteDef]:
        """One catch-all route: the path says the dialect."""
        return [web.route("*", "/{tail:.*}", self.handle)]

    def check(self, recorded: Recorded) -> Reply | None:
        """Accept everything; remember the request for a late correct answer."""
        self._current = recorded
        return None

    async def play(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        """Play ``reply``; a :data:`LATE` body is the correct answer after the reply's delay."""
        if reply.body is LATE:
            late = self.default_reply(self._current)
            reply = attrs.evolve(late, delay=reply.delay)
        return await super().play(request, reply)

    def default_reply(self, recorded: Recorded) -> Reply:
        """A correct answer in the dialect of the path, streamed when asked to."""
        dialect = dialect_of(recorded.path)
        body = recorded.json() if recorded.body else {}
        model = body.get("model") or recorded.path.rpartition("/models/")[2].partition(":")[0] or "fault-model"
        streamed = ":streamGenerateContent" in recorded.path if dialect == ir.GEMINI else bool(body.get("stream"))
        if streamed:
            return Reply.sse(stream_frames(dialect, model))
        return Reply.json(complete_body(dialect, model))

    async def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is being answered; False if one still is after ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.active and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return not self.active


def fault_model(dialect: str) -> str:
    """The client model name :func:`fault_plugin` routes to the ``dialect`` upstream."""
    return f"fault-{dialect}-model"


def fault_plugin(upstream: FaultUpstream, dialects: Iterable[str] = ir.DIALECTS, keys: int = 2) -> object:
    """A plugin registering ``fault-<dialect>`` providers in front of ``upstream`` (for ``extra_plugins``)."""
    chosen = list(dialects)

    class FaultPlugin:
        @hookimpl
        def register_providers(self) -> list[Provider]:
            return [Provider(name=f"fault-{d}", dialect=d, urls={"api": upstream.base_url},
                             models=[ModelInfo(fault_model(d))]) for d in chosen]

        @hookimpl
        def config_credentials(self, provider: Provider) -> list[Credential]:
            if not provider.name.startswith("fault-"):
                return []
            name = provider.name
            return [Credential(id=f"{name}-{n}", provider=name, secret=f"sk-fault-{name}-{n}") for n in range(keys)]

    return FaultPlugin()
