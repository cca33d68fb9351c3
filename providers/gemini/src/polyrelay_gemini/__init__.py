"""polyrelay provider: Gemini through AI Studio keys and Google accounts (wire notes §3.1, §3.2).

Two kinds of credential serve the same models from one pool:

* ``gemini-api-key`` entries (AI Studio).  The upstream speaks the Gemini
  dialect, so the core's defaults build the request (``x-goog-api-key``,
  ``{base}/models/{model}:generateContent``); a ``base-url`` written
  CLIProxyAPI's way (the bare host) gets ``/v1beta``.
* Google accounts logged in the way Gemini CLI logs in, ``type: "gemini"``
  auth files (CLIProxyAPI's), one rotation member per Cloud project
  (:mod:`.accounts`), served by Code Assist in its envelope
  (:mod:`.codeassist`, :mod:`.envelope`).

Google's error details (rate limit or daily quota, credits, projects that
need validation, invalid keys) are read in :mod:`.quota`.

.. code-block:: yaml

    gemini-api-key:
      - api-key: AIzaSy...
        base-url: https://generativelanguage.googleapis.com/v1beta   # optional
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from polyrelay import ModelInfo, Provider, Verdict, hookimpl, ir
from polyrelay.apikeys import ApiKeyProvider, alias_models
from polyrelay.config import Config
from polyrelay.types import ClientRequest, Credential, UpstreamRequest
from polyrelay_gemini import accounts, codeassist, quota
from polyrelay_gemini.accounts import NAME, ProjectCredential

SECTION = "gemini-api-key"
API_BASE = "https://generativelanguage.googleapis.com/v1beta"
#: Every address the provider uses; ``upstream-urls: {gemini: {...}}`` moves any of them.
URLS = {
    "api": API_BASE,
    "code-assist": codeassist.CODE_ASSIST,
    "oauth-authorize": "https://accounts.google.com/o/oauth2/auth",
    "oauth-token": accounts.TOKEN_URI,
    "userinfo": "https://www.googleapis.com/oauth2/v1/userinfo?alt=json",
}
MODELS = ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-3-pro-preview",
          "gemini-3-flash-preview")
_VERSIONED = re.compile(r"/v1(alpha|beta)?\d*$")


def build_provider() -> Provider:
    """The gemini provider with its default addresses and models."""
    return Provider(name=NAME, dialect=ir.GEMINI, urls=dict(URLS), models=[ModelInfo(m) for m in MODELS],
                    credential_types=(accounts.FILE_TYPE,))


KEYS = ApiKeyProvider(NAME, SECTION, build_provider)


@hookimpl
def config_sections() -> dict[str, object]:
    """This plugin owns the ``gemini-api-key`` list."""
    return KEYS.sections()


@hookimpl
def register_providers(config: Config) -> list[Provider]:
    """The provider, always: Google accounts may arrive in the auth dir at any time."""
    provider = build_provider()
    provider.models = [*provider.models, *alias_models(KEYS.entries(config))]
    return [provider]


@hookimpl
def config_credentials(config: Config, provider: Provider) -> list[Credential]:
    """One credential per enabled key; a version-less ``base-url`` (CLIProxyAPI's form) gets ``/v1beta``."""
    credentials = KEYS.credentials(config, provider)
    for credential in credentials:
        base = (credential.base_url or "").rstrip("/")
        if base and not _VERSIONED.search(base):
            credential.base_url = f"{base}/v1beta"
    return credentials


@hookimpl
def credential_from_file(data: dict[str, Any], path: Path) -> list[Credential] | None:
    """A ``type: "gemini"`` file: one credential per Cloud project it lists."""
    found = accounts.credentials_from_file(data, path)
    return None if found is None else list(found)


@hookimpl
def translate_request(provider: Provider, request: ClientRequest, credential: Credential) -> UpstreamRequest | None:
    """Code Assist for an account's project; the core's AI Studio default for a key."""
    if isinstance(credential, ProjectCredential):
        return codeassist.generate_request(provider, request, credential)
    return None


@hookimpl
def classify_response(status: int, body: bytes) -> Verdict | None:
    """Google's error details (see :mod:`.quota`); ``None`` leaves the rest to the core's default."""
    return quota.classify(status, body)
