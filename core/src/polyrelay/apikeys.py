"""API-key config entries, shared by every provider that takes keys.

CLIProxyAPI's ``gemini-api-key``, ``codex-api-key``, ``claude-api-key``
lists all have this shape; a provider declares its key with
:class:`ApiKeyEntry` as the item type and turns the entries into
credentials with :func:`credentials_from_entries`.
"""

from __future__ import annotations

import attrs

from polyrelay.types import Credential


@attrs.define
class ApiKeyEntry:
    """One key of a ``*-api-key`` list (CLIProxyAPI's field names)."""

    api_key: str = attrs.field(repr=False)
    base_url: str = ""
    proxy_url: str = ""
    headers: dict[str, str] = attrs.field(factory=dict)
    #: Only these client model names (None = every model of the provider).
    models: list[str] | None = None
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
            models=entry.models,
            excluded_models=list(entry.excluded_models),
            priority=entry.priority,
        )
        for index, entry in enumerate(entries or [])
        if not entry.disabled
    ]
