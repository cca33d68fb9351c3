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
