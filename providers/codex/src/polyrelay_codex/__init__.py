"""polyrelay provider: OpenAI API keys on the Responses API.

Wire facts: https://platform.openai.com/docs/api-reference/responses and
https://platform.openai.com/docs/guides/error-codes (``insufficient_quota``).

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

from polyrelay import ProviderPlugin, ir

NAME = "codex"
SECTION = "codex-api-key"
API_BASE = "https://api.openai.com/v1"
MODELS = ("gpt-5", "gpt-5-codex", "gpt-5.1", "gpt-5.1-codex", "gpt-5-mini")


class Codex(ProviderPlugin):
    """OpenAI API keys; the core's defaults do the rest."""

    name = NAME
    dialect = ir.OPENAI_RESPONSES
    urls = {"api": API_BASE}
    models = MODELS
    api_key_section = SECTION


plugin = Codex()
