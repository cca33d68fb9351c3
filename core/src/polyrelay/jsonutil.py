"""JSON in one place, so the hot path can change encoder without a hunt.

orjson is used when installed (it is a declared dependency); the stdlib is
the fallback so a bare checkout still imports.
"""

from __future__ import annotations

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


def too_deep(body: bytes, value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` (parsed from ``body``) nests containers deeper than ``limit``."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # too few brackets to nest that deep: the common case costs two scans in C
    level: list[Any] = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        nested: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            nested.extend(c for c in children if isinstance(c, dict | list))
        level = nested
    return False
