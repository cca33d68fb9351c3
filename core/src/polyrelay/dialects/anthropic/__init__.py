"""The Anthropic Messages dialect (``/v1/messages``) ↔ the IR.

Conventions used for what the IR cannot say:

* Part extras: ``cache_control`` (a dict) sits at ``extras["cache_control"]``
  because other dialects (OpenAI-compatible caches) mean the same thing by it;
  every other unknown key of a block sits in ``extras["anthropic"]`` and is
  written back only by this codec.  Keys of other dialects are never emitted.
* Block types the IR has no part for (server tool blocks, ``container_upload``,
  ``search_result``...) are kept verbatim with their position in
  ``extras["anthropic_blocks"]`` of the message / tool result, or under
  ``extensions["anthropic"]["_blocks"]`` of a response, and re-inserted at the
  same position by this codec only.
* Top-level request keys the IR has no field for go to
  ``extensions["anthropic"]`` verbatim; keys starting with ``_`` there are this
  codec's own bookkeeping, never request fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.dialects.anthropic.dialect import DIALECT, AnthropicDialect
from polyrelay.dialects.anthropic.wire import NAME, STOP_REASON_FROM_IR, STOP_REASON_TO_IR
from polyrelay.exports import lazy_exports

if TYPE_CHECKING:
    from polyrelay.dialects.anthropic.stream import AnthropicStreamDecoder, AnthropicStreamEncoder

# The codec modules load on first use: a request that passes through never needs them.
__getattr__, __dir__ = lazy_exports(__name__, {"stream": ("AnthropicStreamDecoder", "AnthropicStreamEncoder")})

__all__ = ["DIALECT", "NAME", "STOP_REASON_FROM_IR", "STOP_REASON_TO_IR", "AnthropicDialect", "AnthropicStreamDecoder",
           "AnthropicStreamEncoder"]
