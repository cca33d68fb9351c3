"""The Anthropic dialect object: the codec facade and the per-dialect facts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from polyrelay import ir
from polyrelay.dialects.anthropic.wire import API_VERSION, NAME
from polyrelay.dialects.base import (
    CodecFacade,
    content_field_problem,
    json_error_frame,
)
from polyrelay.sse import SSEEvent

if TYPE_CHECKING:  # codecs load on first use: finding a request's dialect asks only these facts
    from polyrelay.dialects.anthropic.stream import AnthropicStreamDecoder, AnthropicStreamEncoder


class AnthropicDialect(CodecFacade):
    """Anthropic Messages: ``POST /v1/messages`` requests, responses, SSE streams and errors."""

    label = "Anthropic"
    name = NAME
    keepalive_frame = b'event: ping\ndata: {"type":"ping"}\n\n'
    #: Anthropic's SDKs send ``anthropic-version`` on every request, ``/v1/models`` included.
    marker_headers: tuple[str, ...] = ("anthropic-version",)
    model_in_body: bool = True
    # https://docs.anthropic.com/en/api/versioning and /en/api/beta-headers: the client's choice wins.
    forwarded_headers: tuple[str, ...] = ("anthropic-beta", "anthropic-version")
    prompt_fields: tuple[str, ...] = ("system", "messages", "tools")
    response_fields: tuple[str, ...] = ("id", "content", "usage")

    def read_request(self, body: dict[str, Any]) -> ir.Request:
        """A request body known to be an object → IR request."""
        from polyrelay.dialects.anthropic.request import decode_request_body

        return decode_request_body(body)

    def read_response(self, body: Any) -> ir.Response:
        """Any upstream response body → IR response."""
        from polyrelay.dialects.anthropic.response import decode_response_body

        return decode_response_body(body)

    def claims_path(self, path: str) -> bool:
        """``/v1/messages`` and ``/v1/messages/count_tokens``."""
        return path.startswith("/v1/messages")

    def auth_headers(self, secret: str) -> dict[str, str]:
        """``x-api-key`` plus the API version every request must name (https://docs.anthropic.com/en/api/versioning)."""
        return {"x-api-key": secret, "anthropic-version": API_VERSION}

    def upstream_path(self, model: str, stream: bool) -> str:
        """``/v1/messages``: the model and the stream flag travel in the body."""
        return "/v1/messages"

    def passes_through(self, stream: bool, sse: bool) -> bool:
        """Always: Anthropic streams only SSE."""
        return True

    def shape_problem(self, data: dict[str, Any]) -> str | None:
        """``messages`` must be an array."""
        return content_field_problem(data, "messages", (list,))

    def frame_kind(self, event: SSEEvent) -> tuple[bool, bool]:
        """``message_stop`` ends a stream, ``error`` ends it failed."""
        return event.event in ("message_stop", "error"), event.event == "error"

    def passthrough_error_frame(self, error: ir.ErrorInfo) -> bytes:
        """``event: error`` with the error body, as the API sends mid-stream."""
        return json_error_frame(self, error, "error")

    def token_count_body(self, tokens: int) -> dict[str, Any]:
        """``/v1/messages/count_tokens``: ``{"input_tokens": n}``."""
        return {"input_tokens": tokens}

    def models_body(self, models: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """Anthropic's paged list (one page: ``has_more`` false)."""
        data = [self.model_entry(m, owner) for m, owner in models]
        return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}

    def model_entry(self, model: str, owner: str) -> dict[str, Any]:
        """One ``model`` object (no creation date is known: the epoch)."""
        return {"type": "model", "id": model, "display_name": model, "created_at": "1970-01-01T00:00:00Z"}

    def encode_request(self, request: ir.Request) -> dict[str, Any]:
        """IR request → body for an Anthropic upstream (``max_tokens`` always set)."""
        from polyrelay.dialects.anthropic.request import encode_request_body

        return encode_request_body(request)

    def encode_response(self, response: ir.Response) -> dict[str, Any]:
        """IR response → Anthropic message JSON for a client."""
        from polyrelay.dialects.anthropic.response import encode_response_body

        return encode_response_body(response)

    def stream_decoder(self) -> AnthropicStreamDecoder:
        """A fresh decoder for one upstream SSE stream."""
        from polyrelay.dialects.anthropic.stream import AnthropicStreamDecoder

        return AnthropicStreamDecoder()

    def stream_encoder(self, request: ir.Request, *, sse: bool = True) -> AnthropicStreamEncoder:
        """A fresh encoder for one client stream (``sse`` is ignored: Anthropic only streams SSE)."""
        from polyrelay.dialects.anthropic.stream import AnthropicStreamEncoder

        return AnthropicStreamEncoder(request)

    def decode_error(self, status: int, body: bytes) -> ir.ErrorInfo:
        """An upstream error body (any bytes, JSON or not) → canonical error."""
        from polyrelay.dialects.anthropic.errors import error_info
        from polyrelay.dialects.errorbody import read_error_body

        read = read_error_body(status, body)
        if not isinstance(read.payload, dict):
            return read.plain()
        return error_info(read.payload, status, read.fallback)

    def error_body(self, error: ir.ErrorInfo) -> dict[str, Any]:
        """Canonical error → ``{"type":"error","error":{"type","message"}}``."""
        from polyrelay.dialects.anthropic.errors import error_object

        return {"type": "error", "error": error_object(error)}


DIALECT = AnthropicDialect()
