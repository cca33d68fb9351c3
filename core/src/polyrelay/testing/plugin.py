"""A plugin object made of loose hook functions, for tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class FunctionPlugin:
    """Hook functions as one plugin object.

    pluggy keeps plugins in sets, so a plugin must be hashable (by
    identity), which ``types.SimpleNamespace`` is not.
    """

    def __init__(self, *functions: Callable[..., Any], **named: Callable[..., Any]) -> None:
        for function in functions:
            setattr(self, function.__name__, function)
        for name, function in named.items():
            setattr(self, name, function)

    def __repr__(self) -> str:
        hooks = sorted(name for name in vars(self) if not name.startswith("_"))
        return f"<FunctionPlugin {', '.join(hooks)}>"


def plugin_of(*functions: Callable[..., Any], **named: Callable[..., Any]) -> FunctionPlugin:
    """A plugin whose hooks are ``functions`` (by their ``__name__``) and ``named``."""
    return FunctionPlugin(*functions, **named)
