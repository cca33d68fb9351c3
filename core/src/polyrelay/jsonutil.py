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


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether parsed JSON ``value`` nests containers deeper than ``limit``.

    Walks one level at a time and looks only at containers, never into
    strings: for a 1 MB coding-tool body this costs a fraction of a
    millisecond (a regex pass over the bytes cost 8 ms), and it stops at
    the level past the limit.
    """
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(limit):
        if not level:
            return False
        inner = []
        for container in level:
            # orjson builds exact dicts and lists: the type test is the cheap one
            for item in container.values() if type(container) is dict else container:
                if type(item) is dict or type(item) is list:
                    inner.append(item)
        level = inner
    return bool(level)
