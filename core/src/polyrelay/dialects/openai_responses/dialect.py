"""The Responses dialect object: the codec facade and the per-dialect facts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from polyrelay import ir
from polyrelay.dialects.base import (
    CodecFacade,
    bearer_auth,
    content_field_problem,
    openai_model_entry,
    openai_models_body,
)
from polyrelay.dialects.openai_responses.wire import ERROR_TYPES, NAME
from polyrelay.jsonutil import dumps
from polyrelay.sse import KEEPALIVE_COMMENT, SSEEvent, frame

#: Stream events that end a Responses stream normally, and those that end it failed
#: (https://platform.openai.com/docs/api-reference/responses-streaming).
_DONE_EVENTS = frozenset({"response.completed", "response.incomplete"})


_FAILED_EVENTS = frozenset({"response.failed", "error"})

if TYPE_CHECKING:  # codecs load on first use: finding a request's dialect asks only these facts
    from polyrelay.dialects.openai_responses.stream_decoder import ResponsesStreamDecoder
    from polyrelay.dialects.openai_responses.stream_encoder import ResponsesStreamEncoder


class OpenAIResponsesDialect(CodecFacade):
    """The OpenAI Responses codec (see the module docstring)."""

    label = "Responses"
    name = NAME
    keepalive_frame = KEEPALIVE_COMMENT
    marker_headers: tuple[str, ...] = ()
    model_in_body: bool = True
    forwarded_headers: tuple[str, ...] = ()
    prompt_fields: tuple[str, ...] = ("input", "instructions", "tools")
    response_fields: tuple[str, ...] = ("id", "output", "usage")

    def read_request(self, body: dict[str, Any]) -> ir.Request:
        """A request body known to be an object → IR request."""
        from polyrelay.dialects.openai_responses.request import decode_request_body

        return decode_request_body(body)

    def read_response(self, body: Any) -> ir.Response:
        """Any upstream response body → IR response."""
        from polyrelay.dialects.openai_responses.response import decode_response_body

        return decode_response_body(body)

    def claims_path(self, path: str) -> bool:
        """``/v1/responses`` and ``/v1/responses/input_tokens``."""
        return path.startswith("/v1/responses")

    def auth_headers(self, secret: str) -> dict[str, str]:
        """``Authorization: Bearer`` (https://platform.openai.com/docs/api-reference/authentication)."""
        return bearer_auth(secret)

    def upstream_path(self, model: str, stream: bool) -> str:
        """``/responses`` under the ``/v1`` base: model and stream flag travel in the body."""
        return "/responses"

    def passes_through(self, stream: bool, sse: bool) -> bool:
        """Always: Responses streams only SSE."""
        return True

    def shape_problem(self, data: dict[str, Any]) -> str | None:
        """``input`` may be absent (a ``previous_response_id`` continuation), else a string or an array."""
        return content_field_problem(data, "input", (list, str), required=False)

    def frame_kind(self, event: SSEEvent) -> tuple[bool, bool]:
        """By event name: completed / incomplete end a stream, failed / error end it failed."""
        kind = event.event or ""
        failed = kind in _FAILED_EVENTS
        return failed or kind in _DONE_EVENTS, failed

    def passthrough_error_frame(self, error: ir.ErrorInfo) -> bytes:
        """``event: error`` with ``{"type": "error", "code", "message", "param"}``, the streaming error event."""
        inner = self.error_body(error)["error"]
        payload = {"type": "error", "code": inner.get("code"), "message": inner.get("message"), "param": None}
        return frame(dumps(payload), "error")

    def token_count_body(self, tokens: int) -> dict[str, Any]:
        """``/v1/responses/input_tokens``: ``{"object": "response.input_tokens", "input_tokens": n}``."""
        return {"object": "response.input_tokens", "input_tokens": tokens}

    def models_body(self, models: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """OpenAI's ``{"object": "list", "data": [...]}``."""
        return openai_models_body(models)

    def model_entry(self, model: str, owner: str) -> dict[str, Any]:
        """One OpenAI ``model`` object."""
        return openai_model_entry(model, owner)

    def encode_request(self, request: ir.Request) -> dict[str, Any]:
        """IR request → JSON body for a Responses upstream."""
        from polyrelay.dialects.openai_responses.request import encode_request_body

        return encode_request_body(request)

    def encode_response(self, response: ir.Response) -> dict[str, Any]:
        """IR response → response object for a Responses client."""
        from polyrelay.dialects.openai_responses.response import encode_response_body

        return encode_response_body(response)

    def stream_decoder(self) -> ResponsesStreamDecoder:
        """A fresh decoder for one upstream SSE stream."""
        from polyrelay.dialects.openai_responses.stream_decoder import ResponsesStreamDecoder

        return ResponsesStreamDecoder()

    def stream_encoder(self, request: ir.Request, *, sse: bool = True) -> ResponsesStreamEncoder:
        """A fresh encoder; ``sse=False`` writes one JSON event per line."""
        from polyrelay.dialects.openai_responses.stream_encoder import ResponsesStreamEncoder

        return ResponsesStreamEncoder(request, sse)

    def decode_error(self, status: int, body: bytes) -> ir.ErrorInfo:
        """Upstream error body (OpenAI, Codex, or garbage) → ErrorInfo."""
        from polyrelay.dialects.openai_responses.errors import decode_error_body

        return decode_error_body(status, body)

    def error_body(self, error: ir.ErrorInfo) -> dict[str, Any]:
        """ErrorInfo → ``{"error": {message, type, param, code}}``."""
        from polyrelay.dialects import openai_errors

        return {"error": openai_errors.error_object(error, ERROR_TYPES)}


DIALECT = OpenAIResponsesDialect()
