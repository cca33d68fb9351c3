"""Building the plugin manager and resolving per-provider implementations.

Plugins are found through the ``polyrelay`` entry-point group.  Two
environment variables narrow which load:

* ``POLYRELAY_PLUGINS`` — comma-separated allow-list of entry-point names;
* ``POLYRELAY_DISABLE_PLUGINS`` — comma-separated block-list.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import attrs
import pluggy

from polyrelay import defaults, hookspecs
from polyrelay.types import Provider

ENTRY_POINT_GROUP = "polyrelay"
hookimpl = pluggy.HookimplMarker("polyrelay")


class PluginLoadError(RuntimeError):
    """A plugin could not be imported or registered."""


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus the distribution each entry-point plugin came from.

    pluggy records distributions only for its own loader; ours honours the
    allow/block lists, so it keeps the record itself.
    """

    def __init__(self) -> None:
        super().__init__("polyrelay")
        #: entry-point name → (distribution name, version)
        self.distributions: dict[str, tuple[str, str]] = {}


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def make_plugin_manager(
    environ: dict[str, str] | None = None, extra_plugins: list[tuple[str, object]] = ()
) -> PluginManager:
    """A plugin manager with the core's hooks, the defaults and every allowed plugin.

    ``extra_plugins`` registers ``(name, plugin)`` pairs directly (tests,
    embedding applications).
    """
    environ = os.environ if environ is None else environ
    allow = _names(environ.get("POLYRELAY_PLUGINS"))
    block = _names(environ.get("POLYRELAY_DISABLE_PLUGINS")) or set()

    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    pm.register(defaults, name="polyrelay.defaults")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in block or (allow is not None and ep.name not in allow):
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # any import failure is fatal and must name the plugin
            raise PluginLoadError(f"plugin {ep.name!r} ({ep.value}) failed to import: {exc!r}") from exc
        pm.register(plugin, name=ep.name)
        if ep.dist is not None:
            pm.distributions[ep.name] = (ep.dist.name, ep.dist.version)
    for name, plugin in extra_plugins:
        pm.register(plugin, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(str(exc)) from exc
    return pm


def plugin_distributions(pm: pluggy.PluginManager) -> list[tuple[str, str, str]]:
    """``(plugin name, distribution, version)`` for every registered plugin."""
    dists = pm.distributions if isinstance(pm, PluginManager) else {}
    rows = []
    for name, _plugin in pm.list_name_plugin():
        project, version = dists.get(name, ("polyrelay (built in)", ""))
        rows.append((name, project, version))
    return sorted(rows)


@attrs.define
class Binding:
    """A provider with its own hook implementations resolved once.

    The per-request and per-chunk paths call these functions directly.
    """

    provider: Provider
    translate_request: Callable[..., Any]
    translate_chunk: Callable[..., Any]
    classify_response: Callable[..., Any]


def _caller(impl: pluggy.HookImpl) -> Callable[..., Any]:
    """Call one implementation with keyword arguments, passing only those it declares."""
    function, argnames = impl.function, impl.argnames

    def call(**kwargs: Any) -> Any:
        return function(*[kwargs[name] for name in argnames])

    return call


def _resolve(pm: pluggy.PluginManager, hook: str, plugin: object, default: Callable[..., Any]) -> Callable[..., Any]:
    """The provider plugin's own implementation, falling back to the core's default."""
    own = next(
        (_caller(impl) for impl in getattr(pm.hook, hook).get_hookimpls() if impl.plugin is plugin),
        None,
    )
    if own is None or plugin is defaults:
        return default

    def call(**kwargs: Any) -> Any:
        result = own(**kwargs)
        return default(**kwargs) if result is None else result

    return call


def bind(pm: pluggy.PluginManager, provider: Provider) -> Binding:
    """Resolve the implementations that serve ``provider``."""
    plugin = provider.plugin
    return Binding(
        provider=provider,
        translate_request=_resolve(pm, "translate_request", plugin, defaults.translate_request),
        translate_chunk=_resolve(pm, "translate_chunk", plugin, defaults.translate_chunk),
        classify_response=_resolve(pm, "classify_response", plugin, defaults.classify_response),
    )


def call_each(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """``(plugin name, result)`` from every implementation of ``hook``."""
    return [(impl.plugin_name, _caller(impl)(**kwargs)) for impl in getattr(pm.hook, hook).get_hookimpls()]


def collect_providers(pm: pluggy.PluginManager, config: Any) -> list[Provider]:
    """Every provider the plugins register, tagged with its plugin."""
    providers: list[Provider] = []
    seen: dict[str, str] = {}
    for impl in pm.hook.register_providers.get_hookimpls():
        for provider in _caller(impl)(config=config) or []:
            if provider.name in seen:
                raise PluginLoadError(
                    f"provider {provider.name!r} registered by both {seen[provider.name]!r} and {impl.plugin_name!r}"
                )
            seen[provider.name] = impl.plugin_name
            provider.plugin = impl.plugin
            providers.append(provider)
    return providers


def collect_config_sections(pm: pluggy.PluginManager) -> dict[str, Any]:
    """Every plugin-owned config key and its type."""
    sections: dict[str, Any] = {}
    owners: dict[str, str] = {}
    for plugin_name, declared in call_each(pm, "config_sections"):
        for key, kind in (declared or {}).items():
            if key in sections:
                raise PluginLoadError(f"config key {key!r} claimed by both {owners[key]!r} and {plugin_name!r}")
            sections[key] = kind
            owners[key] = plugin_name
    return sections
