"""Built-in provider: any OpenAI-compatible upstream listed in the config.

The worked example of a provider plugin.  It declares a config section,
registers one provider per entry and one credential per key; request
building, streaming, translation and error handling all come from the
core's defaults, because the upstream speaks a public dialect.

.. code-block:: yaml

    openai-compatibility:
      - name: openrouter
        base-url: https://openrouter.ai/api/v1
        api-key-entries:
          - api-key: sk-or-...
        models:
          - name: moonshotai/kimi-k2       # sent upstream
            alias: kimi-k2                 # what clients ask for
"""

from __future__ import annotations

import attrs

from polyrelay import ir
from polyrelay.apikeys import ApiKeyEntry, ModelEntry, credentials_from_entries
from polyrelay.config import Config
from polyrelay.plugins import hookimpl
from polyrelay.types import Credential, ModelInfo, Provider

SECTION = "openai-compatibility"


@attrs.define
class Upstream:
    name: str
    base_url: str
    api_key_entries: list[ApiKeyEntry] = attrs.field(factory=list)
    models: list[ModelEntry] = attrs.field(factory=list)
    headers: dict[str, str] = attrs.field(factory=dict)
    disabled: bool = False


@hookimpl
def config_sections() -> dict[str, object]:
    """This plugin owns the ``openai-compatibility`` list."""
    return {SECTION: list[Upstream]}


@hookimpl
def register_providers(config: Config) -> list[Provider]:
    """One provider per enabled entry, serving its models under their aliases."""
    return [
        Provider(
            name=entry.name,
            dialect=ir.OPENAI_CHAT,
            urls={"api": entry.base_url},
            models=[ModelInfo(id=m.alias or m.name, upstream=m.name) for m in entry.models],
            headers=dict(entry.headers),
        )
        for entry in config.sections.get(SECTION) or []
        if not entry.disabled
    ]


@hookimpl
def config_credentials(config: Config, provider: Provider) -> list[Credential]:
    """One credential per ``api-key-entries`` item of the provider's entry."""
    entry = next((e for e in config.sections.get(SECTION) or [] if e.name == provider.name), None)
    if entry is None:
        return []
    return credentials_from_entries(provider.name, entry.api_key_entries)
