"""JSON in one place, so the hot path can change encoder without a hunt.

orjson is used when installed (it is a declared dependency); the stdlib is
the fallback so a bare checkout still imports.
"""

from __future__ import annotations

import re
from typing import Any

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        """Serialize compactly to UTF-8 bytes."""
        return orjson.dumps(obj)

    def loads(data: bytes | str) -> Any:
        """Parse JSON; raises ``ValueError`` on bad input."""
        return orjson.loads(data)

except ImportError:  # pragma: no cover - exercised only without orjson
    import json

    def dumps(obj: Any) -> bytes:
        """Serialize compactly to UTF-8 bytes."""
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(data: bytes | str) -> Any:
        """Parse JSON; raises ``ValueError`` on bad input."""
        return json.loads(data)


#: How deep a client's JSON may nest.  orjson parses 1,024 levels but
#: serialises 254, and the codecs recurse through tool schemas: one limit,
#: checked where a body is parsed, keeps every later step inside both.
#: Real requests stay far below it (a deep tool schema is a dozen levels).
MAX_DEPTH = 64


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_ALL_BUT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_SQUARE = bytes.maketrans(b"{}", b"[]")


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON in ``body`` (already parsed, so well formed) nests deeper than ``limit``.

    Works on the bytes at C speed: strings removed, everything but brackets
    removed, then one innermost ``[]`` level peeled per pass.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # too few brackets to nest that deep: the common case costs two scans
    structure = _STRING.sub(b"", body).translate(_SQUARE, _ALL_BUT_BRACKETS)
    for _ in range(limit):
        if not structure:
            return False
        structure = structure.replace(b"[]", b"")
    return bool(structure)
