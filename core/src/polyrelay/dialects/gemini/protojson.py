"""Proto JSON as Google reads it: camelCase or snake_case keys, and carried-over fields."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from polyrelay.dialects.fields import usage_count
from polyrelay.jsonutil import dumps


@cache
def snake(name: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), name)


@cache
def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


@cache
def _spellings(known: tuple[str, ...]) -> frozenset[str]:
    return frozenset(known) | {snake(k) for k in known}


def field_of(obj: dict[str, Any], name: str) -> Any:
    """``obj[name]`` under its camelCase or snake_case spelling."""
    if name in obj:
        return obj[name]
    return obj.get(snake(name))


def has_field(obj: dict[str, Any], name: str) -> bool:
    return name in obj or snake(name) in obj


def unknown_keys(obj: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    names = _spellings(known)
    return {k: v for k, v in obj.items() if k not in names}


def count_of(meta: dict[str, Any], name: str) -> int:
    """A usage counter under either spelling."""
    return usage_count(field_of(meta, name))


def merge_missing(target: dict[str, Any], extra: dict[str, Any]) -> None:
    """Merge carried-over fields in without overriding what was computed."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_missing(target[key], value)
        else:
            target.setdefault(key, value)


def json_text(value: Any) -> str:
    """Compact JSON text; the stdlib takes over for what orjson refuses (integers past 64 bits)."""
    try:
        return dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
