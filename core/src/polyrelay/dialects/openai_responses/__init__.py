"""The OpenAI Responses dialect (``POST /v1/responses``, Codex CLI, chatgpt.com codex).

The wire format is https://platform.openai.com/docs/api-reference/responses
(stream events: https://platform.openai.com/docs/api-reference/responses-streaming);
the Codex backend's variations are those the Codex CLI sends and reads
(https://github.com/openai/codex, ``codex-rs``).  Shape of the codec:

* A request's ``input`` is a flat list of items; adjacent items of the same
  role become one IR message (a ``function_call`` joins the assistant message
  before it, a ``function_call_output`` lands in a user message).
* What the IR cannot say is kept under the dialect's own key, so another
  dialect's encoder never sees it by accident: ``extras["openai-responses"]``
  on parts, messages and tools, ``extensions["openai-responses"]`` on the
  request and response.  Inside a part's extras, ``"item"`` holds the item's
  leftover keys (``id``, ``status``...) on the first part of each item, which
  also marks where an item starts, and ``"part"`` the content part's leftovers.
  A message's ``"items"`` lists ``[part position, raw item]`` for item types
  the IR has no part for (``web_search_call``...), re-emitted in place.
* Reasoning ``encrypted_content`` is the thinking signature; it only goes
  back to a Responses upstream, and reaches a Responses client wrapped when
  another provider issued it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.dialects.openai_responses.dialect import DIALECT, OpenAIResponsesDialect
from polyrelay.dialects.openai_responses.wire import NAME
from polyrelay.exports import lazy_exports

if TYPE_CHECKING:
    from polyrelay.dialects.openai_responses.stream_decoder import ResponsesStreamDecoder
    from polyrelay.dialects.openai_responses.stream_encoder import ResponsesStreamEncoder

# The codec modules load on first use: a request that passes through never needs them.
__getattr__, __dir__ = lazy_exports(__name__, {"stream_decoder": ("ResponsesStreamDecoder",),
                                               "stream_encoder": ("ResponsesStreamEncoder",)})

__all__ = ["DIALECT", "NAME", "OpenAIResponsesDialect", "ResponsesStreamDecoder", "ResponsesStreamEncoder"]
