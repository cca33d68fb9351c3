"""OpenAI Chat Completions codec (``/v1/chat/completions``; Qwen and DashScope too).

The wire format is https://platform.openai.com/docs/api-reference/chat; the
Qwen additions (``reasoning_content``, ``enable_thinking``, ``thinking_budget``)
are DashScope's, https://www.alibabacloud.com/help/en/model-studio/deep-thinking.

Conventions of this package:

* Whatever the chat wire has and the IR cannot say is kept under the key
  ``"openai-chat"``: top-level fields in ``Request.extensions``/``Response.extensions``,
  part and message leftovers in ``extras["openai-chat"]``.  Only this codec reads
  them back, so they never reach another dialect's upstream.
* For parts, ``extras["openai-chat"]`` holds wire keys to merge back into the
  encoded part; a dict value merges into the part's inner object
  (``image_url``, ``file``, ``function``).
* For messages and tool results it holds ``{"fields": {...}, "extra_parts": [...]}``:
  unknown message keys, and content parts the IR has no type for
  (``input_audio``, ``refusal``...) with their original position.
* Chat has no place for thinking signatures; they are dropped both ways.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.dialects.openai_chat.dialect import DIALECT, OpenAIChatDialect
from polyrelay.dialects.openai_chat.wire import FINISH_TO_STOP, NAME, STOP_TO_FINISH
from polyrelay.exports import lazy_exports

if TYPE_CHECKING:
    from polyrelay.dialects.openai_chat.stream import ChatStreamDecoder, ChatStreamEncoder

# The codec modules load on first use: a request that passes through never needs them.
__getattr__, __dir__ = lazy_exports(__name__, {"stream": ("ChatStreamDecoder", "ChatStreamEncoder")})

__all__ = ["DIALECT", "FINISH_TO_STOP", "NAME", "STOP_TO_FINISH", "ChatStreamDecoder", "ChatStreamEncoder",
           "OpenAIChatDialect"]
