"""A provider of any dialect fed by a ``*-api-key`` list, for tests.

:func:`keyed_provider` is what a real provider plugin is (a
:class:`~polyrelay.ProviderPlugin` with a key list), minus the provider: the
test chooses the dialect, the models and the keys, and points ``base-url``
at a simulator (:class:`~polyrelay.testing.faults.FaultUpstream`, say).
Keys come from the config file, as users' keys do, so they take the same
path (config → credentials → scrubber) as in production.
"""

from __future__ import annotations

from collections.abc import Mapping

from polyrelay import jsonutil
from polyrelay.apikeys import ProviderPlugin


def keyed_provider(
    name: str, dialect: str, models: list[str], previews: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[str, ProviderPlugin]:
    """An ``extra_plugins`` entry: provider ``name`` speaking ``dialect``, keys in ``<name>-api-key``;
    ``previews`` declares models' preview siblings (``ModelInfo.previews``)."""
    attributes = {"name": name, "dialect": dialect, "urls": {"api": "http://127.0.0.1:9"},
                  "models": tuple(models), "previews": dict(previews or {}), "api_key_section": f"{name}-api-key"}
    plugin_class = type(f"Keyed_{name}", (ProviderPlugin,), attributes)
    return name, plugin_class()


def key_config(name: str, base_url: str, keys: list[str]) -> str:
    """Config YAML for :func:`keyed_provider` ``name``: one entry per key, all at ``base_url``."""
    lines = [f"{name}-api-key:"]
    for key in keys:
        lines += [f"  - api-key: {jsonutil.dumps(key).decode()}", f"    base-url: {base_url}"]
    return "\n".join(lines) + "\n"
