"""API-key config entries and the base class of a one-provider plugin.

CLIProxyAPI's ``gemini-api-key``, ``codex-api-key``, ``claude-api-key``
lists all have the shape of :class:`ApiKeyEntry`.  :class:`ProviderPlugin`
is a plugin object that carries the three config hooks such a provider
needs, so a provider that takes keys is its constants::

    class Codex(ProviderPlugin):
        name = "codex"
        dialect = ir.OPENAI_RESPONSES
        urls = {"api": "https://api.openai.com/v1"}
        models = ("gpt-5", "gpt-5-codex")
        api_key_section = "codex-api-key"

    plugin = Codex()          # the entry point: polyrelay_codex = "polyrelay_codex:plugin"

Hooks of its own (``classify_response``, ``credential_from_file`` …) are
methods of the subclass marked ``@hookimpl``; they belong to the same plugin
object, so the per-provider hooks are bound to the provider it registers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from polyrelay.plugins import hookimpl
from polyrelay.types import Credential, ModelInfo, Provider

if TYPE_CHECKING:
    from polyrelay.config import Config

@attrs.define
class ModelEntry:
    """A model an entry serves: ``name`` upstream, ``alias`` what clients may ask for."""

    name: str
    alias: str = ""

    @classmethod
    def from_string(cls, name: str) -> ModelEntry:
        """``models: [gemini-2.5-pro]`` is short for ``models: [{name: gemini-2.5-pro}]``."""
        return cls(name=name)


@attrs.define
class ApiKeyEntry:
    """One key of a ``*-api-key`` list (CLIProxyAPI's field names)."""

    api_key: str = attrs.field(repr=False)
    base_url: str = ""
    proxy_url: str = ""
    headers: dict[str, str] = attrs.field(factory=dict)
    #: Only these models (None = every model of the provider), CLIProxyAPI's
    #: ``[{name, alias}]`` form or plain names.
    models: list[ModelEntry] | None = None
    excluded_models: list[str] = attrs.field(factory=list)
    priority: int = 0
    #: Share of picks among equal-priority credentials (weighted strategies).
    weight: int = 1
    disabled: bool = False


def credentials_from_entries(provider: str, entries: list[ApiKeyEntry] | None) -> list[Credential]:
    """One credential per enabled entry, with stable ids ``<provider>#<n>``."""
    return [
        Credential(
            id=f"{provider}#{index}",
            provider=provider,
            secret=entry.api_key,
            base_url=entry.base_url or None,
            proxy_url=entry.proxy_url or None,
            headers=dict(entry.headers),
            models=None if entry.models is None else [m.name for m in entry.models],
            excluded_models=list(entry.excluded_models),
            priority=entry.priority,
            weight=entry.weight,
        )
        for index, entry in enumerate(entries or [])
        if not entry.disabled
    ]


def alias_models(entries: list[ApiKeyEntry] | None) -> list[ModelInfo]:
    """The aliases the entries declare, as models a provider serves under another name."""
    seen: dict[str, ModelInfo] = {}
    for entry in entries or []:
        for model in entry.models or []:
            if model.alias and not entry.disabled:
                seen.setdefault(model.alias, ModelInfo(id=model.alias, upstream=model.name))
    return list(seen.values())


class ProviderPlugin:
    """A plugin that registers one provider, optionally fed by a ``*-api-key`` list.

    Subclass it and set the class attributes; register an instance.  The
    provider is registered only when :meth:`serves` says so (by default:
    an enabled key exists, so ``/v1/models`` lists nothing unservable), with
    the entries' model aliases added.  To change what a hook does, override
    the plain method it calls (:meth:`build_provider`, :meth:`serves`,
    :meth:`credentials`); overriding a hook method itself without
    ``@hookimpl`` is refused at class creation, because pluggy would then
    silently drop the hook.
    """

    #: The provider's name (``Provider.name``, ``upstream-urls`` key, credential ids).
    name: ClassVar[str]
    #: The wire dialect the upstream speaks (``polyrelay.ir.GEMINI`` …).
    dialect: ClassVar[str]
    #: Upstream addresses: ``"api"`` at least (``upstream-urls`` overrides each).
    urls: ClassVar[Mapping[str, str]]
    #: The models served with no configuration, by upstream name.
    models: ClassVar[tuple[str, ...]] = ()
    #: Model → its preview siblings (``ModelInfo.previews``), for ``quota-exceeded.switch-preview-model``.
    previews: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: The config key of the API-key list, or None for a provider without keys.
    api_key_section: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Any class between this one and the subclass may add hooks: check against all of them.
        super().__init_subclass__(**kwargs)
        for name, method in cls.__dict__.items():
            inherited = [getattr(base, name, None) for base in cls.__mro__[1:]]
            if any(hasattr(m, "polyrelay_impl") for m in inherited) and not hasattr(method, "polyrelay_impl"):
                raise TypeError(f"{cls.__name__}.{name} overrides a hook without @hookimpl; pluggy would ignore it")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} plugin for provider {self.name!r}>"

    # -- what a subclass overrides ----------------------------------------------

    def key_entries(self, config: Config) -> list[ApiKeyEntry]:
        """The enabled entries of the API-key list."""
        if self.api_key_section is None:
            return []
        return [e for e in config.sections.get(self.api_key_section) or [] if not e.disabled]

    def serves(self, config: Config) -> bool:
        """Whether to register the provider at all (by default: an enabled key exists)."""
        return bool(self.key_entries(config))

    def build_provider(self, config: Config) -> Provider:
        """The provider object: the class constants plus the key entries' aliases."""
        return Provider(
            name=self.name,
            dialect=self.dialect,
            urls=dict(self.urls),
            models=[*(ModelInfo(m, previews=self.previews.get(m, ())) for m in self.models),
                    *alias_models(self.key_entries(config))],
        )

    def credentials(self, config: Config) -> list[Credential]:
        """The config file's credentials for this provider: one per enabled key."""
        if self.api_key_section is None:
            return []
        return credentials_from_entries(self.name, config.sections.get(self.api_key_section))

    # -- the hooks ----------------------------------------------------------------

    @hookimpl
    def config_sections(self) -> dict[str, object]:
        """The API-key list, when the provider takes keys."""
        return {} if self.api_key_section is None else {self.api_key_section: list[ApiKeyEntry]}

    @hookimpl
    def register_providers(self, config: Config) -> list[Provider]:
        """The provider, when :meth:`serves`."""
        return [self.build_provider(config)] if self.serves(config) else []

    @hookimpl
    def config_credentials(self, config: Config, provider: Provider) -> list[Credential]:
        """:meth:`credentials` for this plugin's provider, ``[]`` for any other."""
        return self.credentials(config) if provider.name == self.name else []
