"""The Gemini dialect object: the codec facade and the per-dialect facts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from polyrelay import ir
from polyrelay.dialects.base import CodecFacade, content_field_problem, json_error_frame
from polyrelay.sse import KEEPALIVE_COMMENT, SSEEvent
from polyrelay.urls import path_segment

if TYPE_CHECKING:  # codecs load on first use: finding a request's dialect asks only these facts
    from polyrelay.dialects.gemini.stream import GeminiStreamDecoder, GeminiStreamEncoder


class GeminiDialect(CodecFacade):
    """The Gemini generateContent codec (see the module docstring)."""

    label = "Gemini"
    name = ir.GEMINI
    keepalive_frame = KEEPALIVE_COMMENT
    marker_headers: tuple[str, ...] = ()
    model_in_body: bool = False
    forwarded_headers: tuple[str, ...] = ()
    prompt_fields: tuple[str, ...] = ("contents", "systemInstruction", "tools")
    response_fields: tuple[str, ...] = ("responseId", "candidates", "usageMetadata")

    def read_request(self, body: dict[str, Any]) -> ir.Request:
        """A request body known to be an object → IR request."""
        from polyrelay.dialects.gemini.request import decode_request_body

        return decode_request_body(body)

    def read_response(self, body: Any) -> ir.Response:
        """Any upstream response body → IR response."""
        from polyrelay.dialects.gemini.response import decode_response_body

        return decode_response_body(body)

    def claims_path(self, path: str) -> bool:
        """``/v1beta/...``, and ``/v1/models/<model>:<method>`` (the ``:`` tells it from OpenAI's model GET)."""
        return path.startswith("/v1beta") or (path.startswith("/v1/models/") and ":" in path)

    def auth_headers(self, secret: str) -> dict[str, str]:
        """``x-goog-api-key`` (https://ai.google.dev/gemini-api/docs/api-key)."""
        return {"x-goog-api-key": secret}

    def upstream_path(self, model: str, stream: bool) -> str:
        """``/models/<model>:generateContent`` or ``:streamGenerateContent?alt=sse``.

        The model is one percent-encoded path segment, so a client's model name
        can never reach another path or a query.
        """
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/models/{path_segment(model)}:{action}"

    def passes_through(self, stream: bool, sse: bool) -> bool:
        """Unless the client streams the JSON-array form: upstreams are always asked for SSE."""
        return sse or not stream

    def shape_problem(self, data: dict[str, Any]) -> str | None:
        """``contents`` must be an array; countTokens may wrap it in ``generateContentRequest``."""
        return content_field_problem(data, "contents", (list,), required="generateContentRequest" not in data)

    def frame_kind(self, event: SSEEvent) -> tuple[bool, bool]:
        """An ``{"error": ...}`` chunk ends a stream failed; the chunk carrying ``finishReason`` is the last."""
        if event.data.startswith('{"error"'):
            return True, True
        return '"finishReason"' in event.data, False

    def passthrough_error_frame(self, error: ir.ErrorInfo) -> bytes:
        """An unnamed ``data:`` frame holding the google.rpc.Status error body."""
        return json_error_frame(self, error)

    def token_count_body(self, tokens: int) -> dict[str, Any]:
        """``countTokens``: ``totalTokens`` and the per-modality breakdown (all text)."""
        return {"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}

    def models_body(self, models: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """``GET /v1beta/models``: ``{"models": [...]}``."""
        return {"models": [self.model_entry(m, owner) for m, owner in models]}

    def model_entry(self, model: str, owner: str) -> dict[str, Any]:
        """One ``Model`` resource (https://ai.google.dev/api/models#Model)."""
        return {"name": f"models/{model}", "displayName": model,
                "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]}

    def encode_request(self, request: ir.Request) -> dict[str, Any]:
        """IR request → generateContent body (no model: it belongs in the URL)."""
        from polyrelay.dialects.gemini.request import encode_request_body

        return encode_request_body(request)

    def encode_response(self, response: ir.Response) -> dict[str, Any]:
        """IR response → GenerateContentResponse (``modelVersion`` = ``response.model``)."""
        from polyrelay.dialects.gemini.response import encode_response_body

        return encode_response_body(response)

    def stream_decoder(self) -> GeminiStreamDecoder:
        """A fresh decoder for one upstream stream (SSE or JSON array)."""
        from polyrelay.dialects.gemini.stream import GeminiStreamDecoder

        return GeminiStreamDecoder()

    def stream_encoder(self, request: ir.Request, *, sse: bool = True) -> GeminiStreamEncoder:
        """A fresh encoder: SSE (``alt=sse``) or a streamed JSON array."""
        from polyrelay.dialects.gemini.stream import GeminiStreamEncoder

        return GeminiStreamEncoder(request, sse=sse)

    def decode_error(self, status: int, body: bytes) -> ir.ErrorInfo:
        """Upstream error body (google.rpc.Status, maybe in a one-element array) → canonical error."""
        from polyrelay.dialects.gemini.errors import decode_error_body

        return decode_error_body(status, body)

    def error_body(self, error: ir.ErrorInfo) -> dict[str, Any]:
        """Canonical error → ``{"error": {code, message, status, details?}}``."""
        from polyrelay.dialects.gemini.errors import error_body_for

        return error_body_for(error)


DIALECT = GeminiDialect()
