"""polyrelay provider: Claude through Anthropic API keys.

Wire facts: https://docs.anthropic.com/en/api/messages, https://docs.anthropic.com/en/api/errors
(529 ``overloaded_error``) and https://docs.anthropic.com/en/api/rate-limits (``retry-after``).

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

from polyrelay import ProviderPlugin, ir

NAME = "claude"
SECTION = "claude-api-key"
API_BASE = "https://api.anthropic.com"
MODELS = ("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6")


class Claude(ProviderPlugin):
    """Anthropic API keys; the core's defaults do the rest."""

    name = NAME
    dialect = ir.ANTHROPIC
    urls = {"api": API_BASE}
    models = MODELS
    api_key_section = SECTION


plugin = Claude()
