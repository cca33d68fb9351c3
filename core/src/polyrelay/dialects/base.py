"""What a dialect codec is: the contract the four codecs implement.

A codec turns one wire format into the internal representation
(:mod:`polyrelay.ir`) and back, for requests, complete responses, streams
and errors.  Codecs are pure: no I/O, no globals; per-stream state lives in
the decoder and encoder objects they hand out.

Below the contract sit the few helpers every codec needs the same way (fault
guarding, stream usage, the shared fact helpers).  The rest of the codec kit:
field readers in :mod:`polyrelay.dialects.fields`, data URLs in
:mod:`polyrelay.dialects.media`, retry hints in :mod:`polyrelay.dialects.hints`,
the OpenAI error shape in :mod:`polyrelay.dialects.openai_errors`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Protocol

import attrs

from polyrelay import ir, jsonutil, sse


class DialectError(Exception):
    """A client body this dialect cannot accept; becomes a 4xx in its shape."""

    def __init__(self, message: str, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def to_error(self) -> ir.ErrorInfo:
        """The canonical error this fault is reported as."""
        return ir.ErrorInfo(status=self.status, message=self.message, code=self.code)


class UpstreamFailure(DialectError):
    """A well-formed upstream body that reports a failure (Gemini puts errors in a 200 body).

    Not a malformed body: it keeps its own status and message through
    :func:`reraise_as_dialect_error`, even when that restates other faults.
    """


@contextmanager
def reraise_as_dialect_error(what: str, status: int = 400, *, restate: bool = False) -> Iterator[None]:
    """Make any exception in the block a :class:`DialectError` naming ``what``.

    Codecs read arbitrary JSON: a shape nobody foresaw must still end as a clean
    ``status`` in the dialect's error shape, not as a 500 with a traceback.  A
    :class:`DialectError` raised in the block already says what is wrong and
    passes unchanged, unless ``restate``: then it too gets ``status`` and
    ``what`` in front, for a response decoder whose field readers (shared with
    request decoding) raise 400s that are really the upstream's fault.
    """
    try:
        yield
    except UpstreamFailure:
        raise
    except DialectError as exc:
        if not restate:
            raise
        raise DialectError(f"{what}: {exc.message}", status=status) from exc
    except Exception as exc:
        raise DialectError(f"{what}: {type(exc).__name__}: {exc}", status=status) from exc


class CodecFacade:
    """The decode-check-reraise template every dialect object inherits.

    Decoders read arbitrary JSON; the facade checks the outer shape, runs the
    dialect's reader and turns any fault into a :class:`DialectError`: a 400
    for a client's request, a 502 for an upstream's response (restated, since
    the field readers a response shares with requests raise 400s).
    """

    #: How messages name the dialect ("malformed <label> request: ...").
    label: ClassVar[str]

    def read_request(self, body: dict[str, Any]) -> ir.Request:
        """The dialect's reader of a request body known to be an object."""
        raise NotImplementedError

    def read_response(self, body: Any) -> ir.Response:
        """The dialect's reader of any upstream response body."""
        raise NotImplementedError

    def decode_request(self, body: Any) -> ir.Request:
        """Parsed JSON body → IR request; any fault is a :class:`DialectError` (400)."""
        if not isinstance(body, dict):
            raise DialectError("request body must be a JSON object")
        with reraise_as_dialect_error(f"malformed {self.label} request"):
            return self.read_request(body)

    def decode_response(self, body: Any) -> ir.Response:
        """Complete upstream JSON response → IR response; any fault is a :class:`DialectError` (502)."""
        with reraise_as_dialect_error(f"malformed {self.label} response", status=502, restate=True):
            return self.read_response(body)


def merge_usage(old: ir.Usage | None, new: ir.Usage) -> ir.Usage:
    """Stream usage is cumulative: a later non-zero figure replaces the earlier one.

    A final usage event may repeat only some figures (output tokens), so a zero
    means "not said again", never "dropped to zero".
    """
    if old is None:
        return new
    # Every field, so a figure added to ir.Usage later is merged without a change here.
    return ir.Usage(**{f.name: getattr(new, f.name) or getattr(old, f.name) for f in attrs.fields(ir.Usage)})


class StreamDecoder(Protocol):
    """Turns raw upstream stream bytes into IR events, statefully."""

    @property
    def finished(self) -> bool:
        """True once the upstream's own terminal event arrived (normal end or error)."""
        ...

    def feed(self, data: bytes) -> list[ir.Event]:
        """Consume bytes split anywhere; return the events they complete."""
        ...

    def close(self) -> list[ir.Event]:
        """The upstream body ended: flush what is buffered."""
        ...


class StreamEncoder(Protocol):
    """Turns IR events into this dialect's stream frames, statefully."""

    def encode(self, event: ir.Event) -> bytes:
        """Frames for one event (may be ``b""``)."""
        ...

    def finish(self) -> bytes:
        """Bytes that close the stream if nothing terminal was written yet."""
        ...


class Dialect(Protocol):
    """One wire format, both directions, and every fact the rest of core needs about it.

    Core modules never branch on a dialect's name: they ask its object (the
    facts below), so a new dialect is one package, not edits across core.
    """

    #: One of :data:`polyrelay.ir.DIALECTS`.
    name: str
    #: A frame the client ignores, sent while the upstream is silent.
    keepalive_frame: bytes
    #: Request headers that mark a client of this dialect on a shared path (``/v1/models``).
    marker_headers: tuple[str, ...]
    #: Whether the request body names the model (Gemini's travels in the URL path).
    model_in_body: bool
    #: Client request headers sent on to an upstream of the same dialect (beta flags, API version).
    forwarded_headers: tuple[str, ...]
    #: Top-level request fields that hold the prompt, for the local token estimate.
    prompt_fields: tuple[str, ...]
    #: Top-level fields of a complete response (its id, content, usage): a real answer has at least
    #: one of them non-empty, which a body passed through unread is checked for.
    response_fields: tuple[str, ...]

    def claims_path(self, path: str) -> bool:
        """Whether a client request to ``path`` speaks this dialect."""
        ...

    def auth_headers(self, secret: str) -> dict[str, str]:
        """The headers that present an API key ``secret`` to an upstream of this dialect."""
        ...

    def upstream_path(self, model: str, stream: bool) -> str:
        """The endpoint path under an API base; a model in it is one percent-encoded segment."""
        ...

    def passes_through(self, stream: bool, sse: bool) -> bool:
        """Whether a same-dialect client body and stream can be forwarded as they are."""
        ...

    def shape_problem(self, data: dict[str, Any]) -> str | None:
        """A cheap check of the body's main field; a message when it is missing or mistyped."""
        ...

    def frame_kind(self, event: sse.SSEEvent) -> tuple[bool, bool]:
        """``(terminal, is_error)`` for one upstream stream event, read without parsing JSON."""
        ...

    def passthrough_error_frame(self, error: ir.ErrorInfo) -> bytes:
        """The terminal in-stream error frame for a client stream of this dialect."""
        ...

    def token_count_body(self, tokens: int) -> dict[str, Any]:
        """The body of this dialect's token-count answer for ``tokens`` input tokens."""
        ...

    def models_body(self, models: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """The model-list body for ``(model, owner)`` rows."""
        ...

    def model_entry(self, model: str, owner: str) -> dict[str, Any]:
        """One model as this dialect's model-list entry (also the body of a single-model GET)."""
        ...

    def decode_request(self, body: Any) -> ir.Request:
        """Parsed JSON body → IR request; raises :class:`DialectError`."""
        ...

    def encode_request(self, request: ir.Request) -> dict[str, Any]:
        """IR request → JSON body for an upstream of this dialect."""
        ...

    def decode_response(self, body: Any) -> ir.Response:
        """Complete upstream JSON response → IR response."""
        ...

    def encode_response(self, response: ir.Response) -> dict[str, Any]:
        """IR response → complete JSON body for a client of this dialect."""
        ...

    def stream_decoder(self) -> StreamDecoder:
        """A fresh decoder for one upstream stream."""
        ...

    def stream_encoder(self, request: ir.Request, *, sse: bool = True) -> StreamEncoder:
        """A fresh encoder for one client stream; echoes ``request.model``."""
        ...

    def decode_error(self, status: int, body: bytes) -> ir.ErrorInfo:
        """An upstream error body of this dialect → canonical error."""
        ...

    def error_body(self, error: ir.ErrorInfo) -> dict[str, Any]:
        """Canonical error → this dialect's error JSON body."""
        ...


# -- helpers for the dialect facts -----------------------------------------------------------------


def bearer_auth(secret: str) -> dict[str, str]:
    """``Authorization: Bearer``, the OpenAI-style way to present an API key."""
    return {"authorization": f"Bearer {secret}"}


def content_field_problem(
    data: dict[str, Any], field: str, types: tuple[type, ...], *, required: bool = True
) -> str | None:
    """Why ``data[field]`` is unusable (missing when ``required``, or not of ``types``), or None."""
    value = data.get(field)
    if value is None:
        return f"the {field!r} field is required" if required else None
    if not isinstance(value, types):
        kinds = " or ".join("an array" if t is list else "a string" for t in types)
        return f"the {field!r} field must be {kinds}"
    return None


def looks_like_response(dialect: Dialect, data: Any) -> bool:
    """Whether parsed JSON ``data`` is a complete response of ``dialect``, judged without decoding it.

    Codecs read leniently (unknown fields kept, missing ones defaulted), so
    ``{}`` or an error object would decode as an empty answer; a real one
    names at least one of the dialect's :attr:`Dialect.response_fields`.
    """
    return isinstance(data, dict) and any(data.get(field) for field in dialect.response_fields)


def json_error_frame(dialect: Dialect, error: ir.ErrorInfo, event: str | None = None) -> bytes:
    """An SSE frame holding the dialect's error body (named ``event`` when the dialect names events)."""
    return sse.frame(jsonutil.dumps(dialect.error_body(error)), event)


def openai_models_body(models: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``GET /v1/models`` in OpenAI's list shape (Chat Completions and Responses share it)."""
    return {"object": "list", "data": [openai_model_entry(m, owner) for m, owner in models]}


def openai_model_entry(model: str, owner: str) -> dict[str, Any]:
    """One OpenAI ``model`` object."""
    return {"id": model, "object": "model", "created": 0, "owned_by": owner}
