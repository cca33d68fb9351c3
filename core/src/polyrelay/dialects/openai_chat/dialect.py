"""The Chat Completions dialect object: the codec facade and the per-dialect facts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from polyrelay import ir
from polyrelay.dialects.base import (
    CodecFacade,
    bearer_auth,
    content_field_problem,
    json_error_frame,
    openai_model_entry,
    openai_models_body,
)
from polyrelay.dialects.openai_chat.wire import NAME
from polyrelay.sse import SSEEvent

if TYPE_CHECKING:  # codecs load on first use: finding a request's dialect asks only these facts
    from polyrelay.dialects.openai_chat.stream import ChatStreamDecoder, ChatStreamEncoder


class OpenAIChatDialect(CodecFacade):
    """OpenAI Chat Completions, both directions (see the module docstring)."""

    label = "Chat Completions"
    name = NAME
    keepalive_frame = b": keep-alive\n\n"
    marker_headers: tuple[str, ...] = ()
    model_in_body: bool = True
    forwarded_headers: tuple[str, ...] = ()
    prompt_fields: tuple[str, ...] = ("messages", "tools")
    response_fields: tuple[str, ...] = ("id", "choices", "usage")

    def read_request(self, body: dict[str, Any]) -> ir.Request:
        """A request body known to be an object → IR request."""
        from polyrelay.dialects.openai_chat.request import decode_request_body

        return decode_request_body(body)

    def read_response(self, body: Any) -> ir.Response:
        """Any upstream response body → IR response."""
        from polyrelay.dialects.openai_chat.response import decode_response_body

        return decode_response_body(body)

    def claims_path(self, path: str) -> bool:
        """``/v1/chat/completions``."""
        return path.startswith("/v1/chat")

    def auth_headers(self, secret: str) -> dict[str, str]:
        """``Authorization: Bearer`` (https://platform.openai.com/docs/api-reference/authentication)."""
        return bearer_auth(secret)

    def upstream_path(self, model: str, stream: bool) -> str:
        """``/chat/completions`` under the ``/v1`` base: model and stream flag travel in the body."""
        return "/chat/completions"

    def passes_through(self, stream: bool, sse: bool) -> bool:
        """Always: Chat Completions streams only SSE."""
        return True

    def shape_problem(self, data: dict[str, Any]) -> str | None:
        """``messages`` must be an array."""
        return content_field_problem(data, "messages", (list,))

    def frame_kind(self, event: SSEEvent) -> tuple[bool, bool]:
        """``data: [DONE]`` ends a stream; a chunk that is an ``{"error": ...}`` object ends it failed."""
        if event.data == "[DONE]":
            return True, False
        is_error = event.data.startswith('{"error"')
        return is_error, is_error

    def passthrough_error_frame(self, error: ir.ErrorInfo) -> bytes:
        """An unnamed ``data:`` frame holding the error body, as OpenAI sends mid-stream."""
        return json_error_frame(self, error)

    def token_count_body(self, tokens: int) -> dict[str, Any]:
        """Chat has no token-count endpoint of its own: ``{"input_tokens": n}`` like its siblings."""
        return {"input_tokens": tokens}

    def models_body(self, models: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """OpenAI's ``{"object": "list", "data": [...]}``."""
        return openai_models_body(models)

    def model_entry(self, model: str, owner: str) -> dict[str, Any]:
        """One OpenAI ``model`` object."""
        return openai_model_entry(model, owner)

    def encode_request(self, request: ir.Request) -> dict[str, Any]:
        """IR request → upstream chat completions body."""
        from polyrelay.dialects.openai_chat.request import encode_request_body

        return encode_request_body(request)

    def encode_response(self, response: ir.Response) -> dict[str, Any]:
        """IR response → ``chat.completion`` body."""
        from polyrelay.dialects.openai_chat.response import encode_response_body

        return encode_response_body(response)

    def stream_decoder(self) -> ChatStreamDecoder:
        """A fresh decoder for one upstream stream."""
        from polyrelay.dialects.openai_chat.stream import ChatStreamDecoder

        return ChatStreamDecoder()

    def stream_encoder(self, request: ir.Request, *, sse: bool = True) -> ChatStreamEncoder:
        """A fresh encoder for one client stream."""
        from polyrelay.dialects.openai_chat.stream import ChatStreamEncoder

        return ChatStreamEncoder(request, sse=sse)

    def decode_error(self, status: int, body: bytes) -> ir.ErrorInfo:
        """Upstream error body (OpenAI, DashScope, vLLM shapes, or garbage) → canonical error."""
        from polyrelay.dialects.errorbody import read_error_body
        from polyrelay.dialects.openai_chat.errors import error_fields, error_info

        read = read_error_body(status, body)
        message, code, type_ = error_fields(read.payload)
        return error_info(status, message or read.fallback, code, type_)

    def error_body(self, error: ir.ErrorInfo) -> dict[str, Any]:
        """Canonical error → ``{"error":{"message","type","param","code"}}``."""
        from polyrelay.dialects import openai_errors

        return {"error": openai_errors.error_object(error)}


DIALECT = OpenAIChatDialect()
