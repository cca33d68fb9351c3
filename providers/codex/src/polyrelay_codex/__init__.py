"""polyrelay provider: OpenAI API keys on the Responses API (wire notes §3.4).

The upstream speaks the OpenAI Responses dialect, so the core's defaults
send ``Authorization: Bearer`` to ``{base}/responses`` (streamed or not),
pass Codex CLI's bodies through and read OpenAI's retry hints (the
``retry-after`` header, "Please try again in 1.5s").  One signal is OpenAI's
own, a 429 ``insufficient_quota`` (the account's credit is spent), and the
core's default already cools the whole key for it.

.. code-block:: yaml

    codex-api-key:
      - api-key: sk-proj-...
        base-url: https://api.openai.com/v1   # optional
"""

from __future__ import annotations

from polyrelay import ModelInfo, Provider, hookimpl, ir
from polyrelay.apikeys import ApiKeyProvider
from polyrelay.config import Config
from polyrelay.types import Credential

NAME = "codex"
SECTION = "codex-api-key"
API_BASE = "https://api.openai.com/v1"
MODELS = ("gpt-5", "gpt-5-codex", "gpt-5.1", "gpt-5.1-codex", "gpt-5-mini")


KEYS = ApiKeyProvider(NAME, SECTION, lambda: Provider(name=NAME, dialect=ir.OPENAI_RESPONSES, urls={"api": API_BASE},
                                                      models=[ModelInfo(m) for m in MODELS]))


@hookimpl
def config_sections() -> dict[str, object]:
    """This plugin owns the ``codex-api-key`` list."""
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
from polyrelay_codex.demo import demo_backends as demo_backends  # noqa: E402
