"""polyrelay provider: Claude through Anthropic API keys.

The upstream speaks the Anthropic Messages dialect, so the core's defaults
do all the work: ``x-api-key`` plus ``anthropic-version`` on
``{base}/v1/messages``, byte-exact pass-through for Anthropic clients (their
``anthropic-beta`` header included), codec translation for the others, and
``retry-after`` / ``rate_limit_error`` / 529 ``overloaded_error`` handling.

.. code-block:: yaml

    claude-api-key:
      - api-key: sk-ant-api03-...
      - api-key: sk-ant-api03-...
        base-url: https://anthropic-proxy.example   # optional, replaces https://api.anthropic.com
"""

from __future__ import annotations

from polyrelay import ModelInfo, Provider, hookimpl, ir
from polyrelay.apikeys import ApiKeyProvider
from polyrelay.config import Config
from polyrelay.types import Credential

NAME = "claude"
SECTION = "claude-api-key"
API_BASE = "https://api.anthropic.com"
MODELS = ("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6")


KEYS = ApiKeyProvider(NAME, SECTION, lambda: Provider(name=NAME, dialect=ir.ANTHROPIC, urls={"api": API_BASE},
                                                      models=[ModelInfo(m) for m in MODELS]))


@hookimpl
def config_sections() -> dict[str, object]:
    """This plugin owns the ``claude-api-key`` list."""
    return KEYS.sections()


@hookimpl
def register_providers(config: Config) -> list[Provider]:
    """The provider, when at least one key is configured."""
    return KEYS.providers(config)


@hookimpl
def config_credentials(config: Config, provider: Provider) -> list[Credential]:
    """One credential per enabled key."""
    return KEYS.credentials(config, provider)


# The demo hook lives in its own module; importing it here registers it with this plugin.
from polyrelay_claude.demo import demo_backends as demo_backends  # noqa: E402
