"""The four dialect codecs, looked up by name or by the path a client called.

Each module exposes ``DIALECT``, an object satisfying
:class:`polyrelay.dialects.base.Dialect`: the codec and every per-dialect
fact (paths, auth header, frames, bodies) the rest of core asks about.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache

from polyrelay import ir
from polyrelay.dialects.base import Dialect, DialectError, StreamDecoder, StreamEncoder

__all__ = ["Dialect", "DialectError", "StreamDecoder", "StreamEncoder", "all_dialects", "dialect_for_path",
           "get_dialect"]

# Order matters for dialect_for_path: the first dialect that claims a path wins.
_MODULES = {
    ir.ANTHROPIC: "polyrelay.dialects.anthropic",
    ir.OPENAI_CHAT: "polyrelay.dialects.openai_chat",
    ir.OPENAI_RESPONSES: "polyrelay.dialects.openai_responses",
    ir.GEMINI: "polyrelay.dialects.gemini",
}
#: The dialect of a request nothing else identifies (``GET /v1/models`` without marker headers).
DEFAULT_DIALECT = ir.OPENAI_CHAT


@cache
def get_dialect(name: str) -> Dialect:
    """The codec for dialect ``name`` (one of :data:`polyrelay.ir.DIALECTS`)."""
    try:
        module = _MODULES[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; known: {', '.join(_MODULES)}") from None
    dialect: Dialect = importlib.import_module(module).DIALECT
    return dialect


@cache
def all_dialects() -> tuple[Dialect, ...]:
    """Every dialect, in lookup order."""
    return tuple(get_dialect(name) for name in _MODULES)


def dialect_for_path(path: str, headers: Mapping[str, str]) -> Dialect:
    """The dialect a client request speaks: by its path, else by marker headers, else OpenAI Chat."""
    dialects = all_dialects()
    for dialect in dialects:
        if dialect.claims_path(path):
            return dialect
    for dialect in dialects:
        if any(name in headers for name in dialect.marker_headers):
            return dialect
    return get_dialect(DEFAULT_DIALECT)
