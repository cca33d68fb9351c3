"""polyrelay: a self-hosted LLM API gateway.

Everything a provider plugin needs is importable from here: ``hookimpl``
to mark hook implementations, :class:`ProviderPlugin` (a one-provider
plugin with its config hooks built in), the types plugins and core hand
each other, the internal representation ``ir``, the dialect codecs
(``get_dialect``) and the core's default behaviour (``defaults``) to call
from a hook of your own; ``join_path``/``path_segment`` to put values in an
upstream URL, ``secrets`` to register a token the core should scrub.  Test tools live in :mod:`polyrelay.testing`.

The names load on first use (:mod:`polyrelay.exports`), so that the
``polyrelay`` command can set the collector's start-up thresholds before
the bulk of the code is imported (:mod:`polyrelay.collector` says why).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.exports import lazy_exports

if TYPE_CHECKING:
    from polyrelay import defaults, ir, jsonutil, secrets
    from polyrelay.apikeys import ApiKeyEntry, ModelEntry, ProviderPlugin, alias_models, credentials_from_entries
    from polyrelay.config import Config
    from polyrelay.credentials import AUTH_COOLDOWN
    from polyrelay.dialects import get_dialect
    from polyrelay.plugins import PluginLoadError, hookimpl
    from polyrelay.types import (
        ClientRequest,
        Credential,
        ModelInfo,
        Provider,
        Refresher,
        StreamItem,
        StreamState,
        UpstreamRequest,
        Verdict,
        redact,
    )
    from polyrelay.urls import join_path, path_segment

__version__ = "0.1.0"

#: Each submodule and the names exported from it (mirrors the imports above;
#: a test checks both against ``__all__``).
_HOMES = {
    "apikeys": ("ApiKeyEntry", "ModelEntry", "ProviderPlugin", "alias_models", "credentials_from_entries"),
    "config": ("Config",),
    "credentials": ("AUTH_COOLDOWN",),
    "dialects": ("get_dialect",),
    "plugins": ("PluginLoadError", "hookimpl"),
    "types": ("ClientRequest", "Credential", "ModelInfo", "Provider", "Refresher", "StreamItem", "StreamState",
              "UpstreamRequest", "Verdict", "redact"),
    "urls": ("join_path", "path_segment"),
} | {module: (module,) for module in ("defaults", "ir", "jsonutil", "secrets")}

__all__ = [
    "AUTH_COOLDOWN",
    "ApiKeyEntry",
    "ClientRequest",
    "Config",
    "Credential",
    "ModelEntry",
    "ModelInfo",
    "PluginLoadError",
    "Provider",
    "ProviderPlugin",
    "Refresher",
    "StreamItem",
    "StreamState",
    "UpstreamRequest",
    "Verdict",
    "__version__",
    "alias_models",
    "credentials_from_entries",
    "defaults",
    "get_dialect",
    "hookimpl",
    "ir",
    "join_path",
    "jsonutil",
    "path_segment",
    "redact",
    "secrets",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
