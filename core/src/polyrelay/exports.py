"""Package names imported on first use (PEP 562).

A package lists where each of its names lives and gets a module
``__getattr__`` and ``__dir__`` from :func:`lazy_exports`; its
``TYPE_CHECKING`` imports tell type checkers the same.  Used where an import
of the package must stay light: ``polyrelay`` itself (the command sets the
collector's start-up thresholds first, :mod:`polyrelay.collector`) and
``polyrelay.accounts`` (a serving gateway needs refresh, not login).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping


def lazy_exports(
    package: str, homes: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: each exported name imported from its module when first read.

    ``homes`` maps a submodule (relative to ``package``) to the names
    imported from it; a name equal to its submodule's is the submodule itself.
    """
    namespace = sys.modules[package].__dict__
    home_of = {name: module for module, names in homes.items() for name in names}

    def __getattr__(name: str) -> object:
        home = home_of.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(f"{package}.{home}")
        value = module if home == name else getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(home_of))

    return __getattr__, __dir__
