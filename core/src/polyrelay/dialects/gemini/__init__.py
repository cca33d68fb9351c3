"""Gemini generateContent codec (``ir.GEMINI``).

The wire format is Google's ``GenerateContentRequest`` / ``GenerateContentResponse``
(https://ai.google.dev/api/generate-content; the Code Assist envelope is the
one the Gemini CLI speaks, https://github.com/google-gemini/gemini-cli,
``packages/core/src/code_assist``).  Things worth knowing before reading on:

* The body carries no model (it is in the URL path), so decoded requests have
  ``model=""`` and encoded requests never write one.
* Google accepts camelCase and snake_case keys alike (proto JSON); we read
  both and always write camelCase.
* Function calls have no reliable ids and function responses are matched by
  *name*, so ids are synthesized on the way in and names are looked up (never
  parsed out of ids) on the way out.
* Streams come as SSE ``data:`` frames (``alt=sse``) or as one JSON array that
  is streamed element by element; the decoder accepts both, and also unwraps
  the Code Assist envelope ``{"response": {...}, "traceId": ...}``.
* What the IR cannot say is kept under the ``"gemini"`` key: unknown request
  fields in ``request.extensions["gemini"]``, unknown part keys in
  ``part.extras["gemini"]`` / ``["gemini_inner"]``, parts with no IR meaning
  (``executableCode``...) in ``message.extras["gemini_parts"]``.

The field-by-field mapping is in ``docs/translation.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.dialects.gemini.dialect import DIALECT, GeminiDialect
from polyrelay.dialects.gemini.wire import SKIP_SIGNATURE
from polyrelay.exports import lazy_exports

if TYPE_CHECKING:
    from polyrelay.dialects.gemini.schema import clean_schema
    from polyrelay.dialects.gemini.stream import GeminiStreamDecoder, GeminiStreamEncoder

# The codec modules load on first use: a request that passes through never needs them.
__getattr__, __dir__ = lazy_exports(__name__, {"schema": ("clean_schema",),
                                               "stream": ("GeminiStreamDecoder", "GeminiStreamEncoder")})

__all__ = ["DIALECT", "SKIP_SIGNATURE", "GeminiDialect", "GeminiStreamDecoder", "GeminiStreamEncoder", "clean_schema"]
