"""The four dialect codecs, looked up by name.

Each module exposes ``DIALECT``, an object satisfying
:class:`polyrelay.dialects.base.Dialect`.
"""

from __future__ import annotations

import importlib
from functools import cache

from polyrelay import ir
from polyrelay.dialects.base import Dialect, DialectError, StreamDecoder, StreamEncoder

__all__ = ["Dialect", "DialectError", "StreamDecoder", "StreamEncoder", "get_dialect"]

_MODULES = {
    ir.ANTHROPIC: "polyrelay.dialects.anthropic",
    ir.OPENAI_CHAT: "polyrelay.dialects.openai_chat",
    ir.OPENAI_RESPONSES: "polyrelay.dialects.openai_responses",
    ir.GEMINI: "polyrelay.dialects.gemini",
}


@cache
def get_dialect(name: str) -> Dialect:
    """The codec for dialect ``name`` (one of :data:`polyrelay.ir.DIALECTS`)."""
    try:
        module = _MODULES[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; known: {', '.join(_MODULES)}") from None
    return importlib.import_module(module).DIALECT
