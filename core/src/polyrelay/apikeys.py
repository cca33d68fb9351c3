"""API-key config entries, shared by every provider that takes keys.

CLIProxyAPI's ``gemini-api-key``, ``codex-api-key``, ``claude-api-key``
lists all have this shape; a provider declares its key with
:class:`ApiKeyEntry` as the item type and turns the entries into
credentials with :func:`credentials_from_entries`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

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


@attrs.define
class ApiKeyProvider:
    """The config side of a provider that takes a ``*-api-key`` list.

    A provider plugin's three config hooks delegate here: it owns
    ``section``, registers the provider built by ``build`` only when an
    enabled key exists (so ``/v1/models`` lists nothing unservable), adds
    the entries' model aliases, and turns entries into credentials.
    """

    name: str
    section: str
    build: Callable[[], Provider]

    def sections(self) -> dict[str, object]:
        """For ``config_sections``."""
        return {self.section: list[ApiKeyEntry]}

    def entries(self, config: Config) -> list[ApiKeyEntry]:
        """The enabled entries of the section."""
        return [e for e in config.sections.get(self.section) or [] if not e.disabled]

    def providers(self, config: Config) -> list[Provider]:
        """For ``register_providers``."""
        entries = self.entries(config)
        if not entries:
            return []
        provider = self.build()
        provider.models = [*provider.models, *alias_models(entries)]
        return [provider]

    def credentials(self, config: Config, provider: Provider) -> list[Credential]:
        """For ``config_credentials``: ``[]`` for other providers."""
        if provider.name != self.name:
            return []
        return credentials_from_entries(self.name, config.sections.get(self.section))
