"""polyrelay provider: OpenAI API keys on the Responses API (wire notes §3.4).

The upstream speaks the OpenAI Responses dialect, so the core's defaults
send ``Authorization: Bearer`` to ``{base}/responses`` (streamed or not),
pass Codex CLI's bodies through and read OpenAI's retry hints (the
``retry-after`` header, "Please try again in 1.5s").  One signal is OpenAI's
own: a 429 ``insufficient_quota`` means the account's credit is spent, for
every model at once and until someone pays, so it retires the key rather
than backing one model off for a second.

.. code-block:: yaml

    codex-api-key:
      - api-key: sk-proj-...
        base-url: https://api.openai.com/v1   # optional
"""

from __future__ import annotations

from polyrelay import ModelInfo, Provider, Verdict, hookimpl, ir
from polyrelay.apikeys import ApiKeyEntry, credentials_from_entries
from polyrelay.config import Config
from polyrelay.credentials import AUTH_COOLDOWN
from polyrelay.dialects import get_dialect
from polyrelay.types import Credential

NAME = "codex"
SECTION = "codex-api-key"
API_BASE = "https://api.openai.com/v1"
MODELS = ("gpt-5", "gpt-5-codex", "gpt-5.1", "gpt-5.1-codex", "gpt-5-mini")
#: Error codes that mean the whole account is out of credit.
QUOTA_CODES = frozenset({"insufficient_quota"})


@hookimpl
def config_sections() -> dict[str, object]:
    """This plugin owns the ``codex-api-key`` list (CLIProxyAPI's key and fields)."""
    return {SECTION: list[ApiKeyEntry]}


@hookimpl
def register_providers(config: Config) -> list[Provider]:
    """The ``codex`` provider, only when a key is configured (so no unservable model is listed)."""
    if not any(not e.disabled for e in config.sections.get(SECTION) or []):
        return []
    return [Provider(name=NAME, dialect=ir.OPENAI_RESPONSES, urls={"api": API_BASE},
                     models=[ModelInfo(m) for m in MODELS])]


@hookimpl
def config_credentials(config: Config, provider: Provider) -> list[Credential]:
    """One credential per enabled ``codex-api-key`` entry."""
    if provider.name != NAME:
        return []
    return credentials_from_entries(NAME, config.sections.get(SECTION))


@hookimpl
def classify_response(status: int, body: bytes) -> Verdict | None:
    """An exhausted account cools the key for every model; other answers get the core's default."""
    if status != 429:
        return None
    error = get_dialect(ir.OPENAI_RESPONSES).decode_error(status, body)
    if error.code not in QUOTA_CODES:
        return None
    return Verdict("next", error, scope="credential", cooldown=error.retry_after or AUTH_COOLDOWN)
