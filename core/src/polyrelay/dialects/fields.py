"""Reading untrusted JSON: one field reader, one error style, one number rule.

Every codec reads client bodies and upstream answers through these, so a
fault reads the same in every dialect: ``<path> is required`` or
``<path> must be <kind>``, as a :class:`~polyrelay.dialects.base.DialectError`
(400).  Paths are written the way the body spells them (``tools[0].name``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

from polyrelay.dialects.base import DialectError

#: What a field may hold, and the words a 400 message uses for it.
STRING: Final = "a string"
OBJECT: Final = "an object"
ARRAY: Final = "an array"
INTEGER: Final = "an integer"
NUMBER: Final = "a number"
BOOLEAN: Final = "a boolean"


def is_int(value: Any) -> bool:
    """An integer that is not a boolean (``True`` is an int in Python, never in JSON)."""
    return isinstance(value, int) and not isinstance(value, bool)


_CHECKS: dict[str, Callable[[Any], bool]] = {
    STRING: lambda v: isinstance(v, str),
    OBJECT: lambda v: isinstance(v, dict),
    ARRAY: lambda v: isinstance(v, list),
    INTEGER: is_int,
    NUMBER: lambda v: is_int(v) or isinstance(v, float),
    BOOLEAN: lambda v: isinstance(v, bool),
}

#: The largest count any upstream takes: Gemini's proto fields are int32, and a bigger number
#: than our encoders can write must fail at decode as a 400, not later as a 500.
MAX_COUNT: Final = 2**31 - 1


def at(where: str, key: str) -> str:
    """The path of ``key`` inside the object at ``where`` (``""`` is the body; a trailing ``.`` is allowed)."""
    if not where or where.endswith("."):
        return where + key
    return f"{where}.{key}"


def checked(raw: Any, kind: str, path: str, *, required: bool = False) -> Any:
    """``raw`` checked against ``kind``; null counts as absent (None, or a 400 when ``required``)."""
    if raw is None:
        if required:
            raise DialectError(f"{path} is required")
        return None
    if not _CHECKS[kind](raw):
        raise DialectError(f"{path} must be {kind}")
    return raw


def field(obj: dict[str, Any], key: str, kind: str, where: str = "", *, required: bool = False) -> Any:
    """``obj[key]`` checked against ``kind`` (see :func:`checked`); ``where`` is the path of ``obj``."""
    return checked(obj.get(key), kind, at(where, key), required=required)


def obj(raw: Any, path: str, *, required: bool = False) -> dict[str, Any]:
    """An object, ``{}`` when absent."""
    found: dict[str, Any] | None = checked(raw, OBJECT, path, required=required)
    return {} if found is None else found


def arr(raw: Any, path: str) -> list[Any]:
    """An array, ``[]`` when absent."""
    found: list[Any] | None = checked(raw, ARRAY, path)
    return [] if found is None else found


def dict_or_empty(raw: Any) -> dict[str, Any]:
    """``raw`` if it is an object, else ``{}``: for optional upstream parts nobody relies on."""
    return raw if isinstance(raw, dict) else {}


def str_or_none(raw: Any) -> str | None:
    """``raw`` if it is a string: JSON may put a list where a name belongs, and lists cannot key a table."""
    return raw if isinstance(raw, str) else None


def integer(raw: Any, path: str, *, minimum: int = 0, maximum: int = MAX_COUNT, required: bool = False) -> int | None:
    """A whole number in ``[minimum, maximum]``, or None when absent (a 400 when ``required``).

    One rule for every codec: ``3`` and ``3.0`` are the same integer (proto JSON
    writes either), ``3.7`` and ``true`` are not integers, and a number outside
    the range (``-5`` tokens, ``1e30``) is refused here rather than sent on.
    """
    if raw is None:
        if required:
            raise DialectError(f"{path} is required")
        return None
    if isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        raw = int(raw)
    if not is_int(raw):
        raise DialectError(f"{path} must be {INTEGER}")
    if not minimum <= raw <= maximum:
        raise DialectError(f"{path} must be between {minimum} and {maximum}")
    result: int = raw
    return result


def token_count(raw: Any, path: str, *, required: bool = False) -> int | None:
    """A client's token limit (``max_tokens`` and its kin): an integer of at least 1."""
    return integer(raw, path, minimum=1, required=required)


def thinking_budget(raw: Any, path: str, *, required: bool = False) -> int | None:
    """A reasoning budget in tokens: ``0`` is off and ``-1`` lets the model decide (the IR's meaning)."""
    return integer(raw, path, minimum=-1, required=required)


def usage_count(raw: Any) -> int:
    """A token figure from an upstream's usage report; anything odd counts as 0 rather than failing a stream.

    Whole numbers only, the same rule as :func:`integer` (``3.7`` is odd), and
    bounded so that the figure can be encoded again for the client.
    """
    if isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        raw = int(raw)
    if not is_int(raw) or not 0 < raw <= 2**63 - 1:
        return 0
    result: int = raw
    return result


def number(raw: Any, path: str) -> float | None:
    """A finite JSON number (``true`` is not one), or None when absent."""
    found: float | None = checked(raw, NUMBER, path)
    if isinstance(found, float) and not math.isfinite(found):
        raise DialectError(f"{path} must be {NUMBER}")
    return found


def index_or_none(raw: Any) -> int | None:
    """A block or choice index from an upstream stream payload (``true`` is an int in Python, not an index)."""
    return raw if is_int(raw) and raw >= 0 else None
