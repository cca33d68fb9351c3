"""Building the plugin manager and resolving per-provider implementations.

Plugins are found through the ``polyrelay`` entry-point group.  An entry
point's name is the import name of what it loads (``polyrelay_gemini =
"polyrelay_gemini:plugin"``, the core's ``polyrelay.openai_compat``), so the
name ``polyrelay plugins`` prints is one a user can also find on disk.  Two
environment variables narrow which load, by that name:

* ``POLYRELAY_PLUGINS`` — comma-separated allow-list;
* ``POLYRELAY_DISABLE_PLUGINS`` — comma-separated block-list.

Every hook call goes through pluggy, so ``pm.trace`` and
``pm.add_hookcall_monitoring`` see all of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import pluggy

from polyrelay import defaults, hookspecs, ir
from polyrelay.types import ClientRequest, Credential, Provider, StreamItem, StreamState, UpstreamRequest, Verdict

if TYPE_CHECKING:
    from polyrelay.config import Config

ENTRY_POINT_GROUP = "polyrelay"
DEFAULTS_NAME = "polyrelay.defaults"
hookimpl = pluggy.HookimplMarker("polyrelay")


class PluginLoadError(RuntimeError):
    """A plugin could not be imported or registered."""


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus the distribution each entry-point plugin came from.

    pluggy records distributions only for its own loader; ours honours the
    allow/block lists and refuses duplicate names, so it keeps the record itself.
    """

    def __init__(self) -> None:
        super().__init__("polyrelay")
        #: entry-point name → (distribution name, version)
        self.distributions: dict[str, tuple[str, str]] = {}
        #: How many hook-call monitors are active (``add_hookcall_monitoring``, ``enable_tracing``).
        self.monitors = 0

    def add_hookcall_monitoring(
        self,
        before: Callable[[str, Sequence[pluggy.HookImpl], Mapping[str, object]], None],
        after: Callable[[pluggy.Result[object], str, Sequence[pluggy.HookImpl], Mapping[str, object]], None],
    ) -> Callable[[], None]:
        """pluggy's monitoring; while any is active, bound per-provider calls go through pluggy too."""
        undo = super().add_hookcall_monitoring(before, after)
        self.monitors += 1

        def undo_and_count() -> None:
            undo()
            self.monitors -= 1

        return undo_and_count


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _origin(ep: EntryPoint) -> str:
    dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "an unknown distribution"
    return f"{ep.value!r} from {dist}"


def _unique_entry_points() -> list[EntryPoint]:
    """The group's entry points; two with one name is a start-up error naming both."""
    seen: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        first = seen.setdefault(ep.name, ep)
        if first is not ep and first.value != ep.value:
            raise PluginLoadError(
                f"two plugins are named {ep.name!r}: {_origin(first)} and {_origin(ep)}; uninstall one"
            )
    return list(seen.values())


def make_plugin_manager(
    environ: Mapping[str, str] | None = None, extra_plugins: list[tuple[str, object]] | None = None
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
    pm.register(defaults, name=DEFAULTS_NAME)
    for ep in _unique_entry_points():
        if ep.name in block or (allow is not None and ep.name not in allow):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # any import failure is fatal and must name the plugin
            raise PluginLoadError(f"plugin {ep.name!r} ({ep.value}) failed to import: {exc!r}") from exc
        _register(pm, plugin, ep.name)
        if ep.dist is not None:
            pm.distributions[ep.name] = (ep.dist.name, ep.dist.version)
    for name, plugin in extra_plugins or []:
        _register(pm, plugin, name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(str(exc)) from exc
    return pm


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    try:
        hash(plugin)
    except TypeError:
        raise PluginLoadError(
            f"plugin {name!r} is a {type(plugin).__name__}, which is not hashable; pluggy keeps plugins in sets "
            "(use a module, a class instance, or polyrelay.testing.plugin_of(...) in tests)"
        ) from None
    if pm.get_plugin(name) is not None:
        raise PluginLoadError(f"two plugins are named {name!r}")
    try:
        pm.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:  # the same object twice, or a malformed hook
        raise PluginLoadError(f"plugin {name!r} cannot be registered: {exc}") from exc


def plugin_distributions(pm: pluggy.PluginManager) -> list[tuple[str, str, str]]:
    """``(plugin name, distribution, version)`` for every registered plugin."""
    dists = pm.distributions if isinstance(pm, PluginManager) else {}
    rows = []
    for name, _plugin in pm.list_name_plugin():
        project, version = dists.get(name, ("polyrelay (built in)", ""))
        rows.append((name, project, version))
    return sorted(rows)


# -- per-provider hooks ------------------------------------------------------------


class RequestTranslator(Protocol):
    """``translate_request`` of one provider, the core's default behind it."""

    def __call__(self, *, provider: Provider, request: ClientRequest, credential: Credential) -> UpstreamRequest:
        ...


class ChunkTranslator(Protocol):
    """``translate_chunk`` of one provider, the core's default behind it."""

    def __call__(self, *, provider: Provider, stream: StreamState, data: bytes) -> list[StreamItem]:
        ...


class ResponseClassifier(Protocol):
    """``classify_response`` of one provider, the core's default behind it."""

    def __call__(
        self, *, provider: Provider, status: int, headers: Mapping[str, str], body: bytes, error: ir.ErrorInfo | None
    ) -> Verdict:
        ...


class ResponseObserver(Protocol):
    """``observe_response`` of one provider (no default: most providers observe nothing)."""

    def __call__(self, *, provider: Provider, credential: Credential, status: int,
                 headers: Mapping[str, str]) -> Any:
        ...


@attrs.define
class Binding:
    """A provider with its own hook implementations resolved once.

    Each field is a hook narrowed to two implementations: that of the plugin
    which registered the provider, then (``trylast``, and whenever the
    plugin's returns ``None``) the core's default.  So a streamed chunk never
    fans out over every installed plugin.
    """

    provider: Provider
    translate_request: RequestTranslator
    translate_chunk: ChunkTranslator
    classify_response: ResponseClassifier
    observe_response: ResponseObserver


class NarrowedHook:
    """One hook limited to one plugin and the core's defaults, with pluggy's ``firstresult`` semantics.

    The calls are pluggy's own (a subset hook caller) whenever pluggy could
    observe the difference: while a hook-call monitor or tracer is active, or
    when an implementation is a wrapper.  Otherwise the two functions are
    called directly: per stream chunk pluggy's dispatch costs several times
    the call itself (see ``docs/hooks.md``).
    """

    __slots__ = ("_caller", "_direct", "_pm")

    def __init__(self, pm: pluggy.PluginManager, hook: str, plugin: object) -> None:
        keep = {id(plugin), id(pm.get_plugin(DEFAULTS_NAME))}
        self._caller = pm.subset_hook_caller(hook, [p for p in pm.get_plugins() if id(p) not in keep])
        impls = self._caller.get_hookimpls()
        # Only our manager counts monitors; a plain pluggy one always gets pluggy's calls.
        self._pm = pm if isinstance(pm, PluginManager) else None
        plain = self._pm is not None and not any(i.hookwrapper or i.wrapper for i in impls)
        # pluggy calls the stored list back to front (tryfirst first, trylast last).
        self._direct = [(i.function, i.argnames, i.kwargnames) for i in reversed(impls)] if plain else None

    def __call__(self, **kwargs: Any) -> Any:
        direct = self._direct
        if direct is None or self._pm is None or self._pm.monitors:
            return self._caller(**kwargs)
        for function, argnames, kwargnames in direct:
            args = [kwargs[name] for name in argnames]
            # Like pluggy, a parameter with a default gets the value when the caller passes one.
            named = {name: kwargs[name] for name in kwargnames if name in kwargs}
            result = function(*args, **named) if named else function(*args)
            if result is not None:
                return result
        return None


def bind(pm: pluggy.PluginManager, provider: Provider) -> Binding:
    """Resolve the implementations that serve ``provider``."""
    plugin = provider.plugin
    return Binding(
        provider=provider,
        translate_request=NarrowedHook(pm, "translate_request", plugin),
        translate_chunk=NarrowedHook(pm, "translate_chunk", plugin),
        classify_response=NarrowedHook(pm, "classify_response", plugin),
        observe_response=NarrowedHook(pm, "observe_response", plugin),
    )


# -- broadcast hooks with their answerers ------------------------------------------------


def call_each(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """``(plugin name, result)`` from every implementation of ``hook``, each called through pluggy."""
    implementers = [impl.plugin for impl in getattr(pm.hook, hook).get_hookimpls()]
    results: list[tuple[str, Any]] = []
    for plugin in implementers:
        others = [p for p in pm.get_plugins() if p is not plugin]
        answer = pm.subset_hook_caller(hook, others)(**kwargs)
        results.append((_name_of(pm, plugin), answer[0] if answer else None))
    return results


def _name_of(pm: pluggy.PluginManager, plugin: object) -> str:
    return pm.get_name(plugin) or repr(plugin)


def collect_providers(pm: pluggy.PluginManager, config: Config | None) -> list[Provider]:
    """Every provider the plugins register, tagged with its plugin."""
    providers: list[Provider] = []
    seen: dict[str, str] = {}
    for plugin_name, registered in call_each(pm, "register_providers", config=config):
        for provider in registered or []:
            if provider.name in seen:
                raise PluginLoadError(
                    f"provider {provider.name!r} registered by both {seen[provider.name]!r} and {plugin_name!r}"
                )
            seen[provider.name] = plugin_name
            # The core's own copy, tagged: the plugin's object is never changed.
            providers.append(attrs.evolve(provider, plugin=pm.get_plugin(plugin_name)))
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
