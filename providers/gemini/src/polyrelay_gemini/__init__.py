"""polyrelay provider: Gemini through AI Studio keys and Google accounts.

Wire facts: https://ai.google.dev/api/generate-content (endpoints, ``x-goog-api-key``),
https://ai.google.dev/gemini-api/docs/rate-limits (``RetryInfo``, per-day quotas reset at midnight
Pacific time), https://ai.google.dev/gemini-api/docs/troubleshooting (``API_KEY_INVALID``); for
Code Assist accounts, google-gemini/gemini-cli packages/core/src/code_assist/ and CLIProxyAPI's
gemini-cli executor (router-for-me/CLIProxyAPI, before its removal in 78ba8ba73).

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
need validation, invalid keys, per-day AI Studio quotas) are read in
:mod:`.quota`.

.. code-block:: yaml

    gemini-api-key:
      - api-key: AIzaSy...
        base-url: https://generativelanguage.googleapis.com/v1beta   # optional
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from polyrelay import Config, Credential, Provider, Verdict, hookimpl, ir
from polyrelay.accounts.plugin import AccountProviderPlugin
from polyrelay.types import ClientRequest, Refresher, UpstreamRequest
from polyrelay_gemini import accounts
from polyrelay_gemini.accounts import NAME, ProjectCredential

if TYPE_CHECKING:
    from polyrelay.accounts import LoginFlow
    from polyrelay.demo import DemoBackend

# Account, quota, login and demo modules are imported in the hook that uses them (docs/architecture.md).

SECTION = "gemini-api-key"
API_BASE = "https://generativelanguage.googleapis.com/v1beta"
#: Every address the provider uses; ``upstream-urls: {gemini: {...}}`` moves any of them.
URLS = {
    "api": API_BASE,
    "code-assist": "https://cloudcode-pa.googleapis.com/v1internal",
    "oauth-authorize": "https://accounts.google.com/o/oauth2/auth",
    "oauth-token": accounts.TOKEN_URI,
    "userinfo": "https://www.googleapis.com/oauth2/v1/userinfo?alt=json",
    "projects": "https://cloudresourcemanager.googleapis.com/v1/projects",
}
MODELS = ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-3-pro-preview",
          "gemini-3-flash-preview")
#: Each model's dated preview siblings, in the order CLIProxyAPI's Gemini CLI executor tried them
#: (``cliPreviewFallbackOrder``) when ``quota-exceeded.switch-preview-model`` is on.  CLIProxyAPI
#: commented them out in 3ce1b4159 as outdated: Google may answer them with a 404 today, and then the
#: client gets the usual 429 of the model it asked for.
PREVIEWS = {
    "gemini-2.5-pro": ("gemini-2.5-pro-preview-05-06", "gemini-2.5-pro-preview-06-05"),
    "gemini-2.5-flash": ("gemini-2.5-flash-preview-04-17", "gemini-2.5-flash-preview-05-20"),
    "gemini-2.5-flash-lite": ("gemini-2.5-flash-lite-preview-06-17",),
}
_VERSIONED = re.compile(r"/v1(alpha|beta)?\d*$")


async def count_tokens(request: ClientRequest, credential: Credential, session: aiohttp.ClientSession,
                       provider: Provider) -> int | None:
    """Code Assist's ``countTokens`` for an account (:func:`.codeassist.count_tokens`)."""
    from polyrelay_gemini import codeassist

    return await codeassist.count_tokens(request, credential, session, provider)


class Gemini(AccountProviderPlugin):
    """AI Studio keys through the core's defaults; Google accounts through Code Assist."""

    name = NAME
    dialect = ir.GEMINI
    urls = URLS
    models = MODELS
    previews = PREVIEWS
    api_key_section = SECTION
    account_type = accounts.FILE_TYPE

    def account_credential(self, path: Path, data: dict[str, Any]) -> list[Credential] | None:
        """One credential per Cloud project the file lists."""
        found = accounts.credentials_from_file(data, path)
        return None if found is None else list(found)

    def refresher(self) -> Refresher:
        """Google's refresh grant, once per login (:func:`.accounts.refresh`)."""
        return accounts.refresh

    def login_flow(self) -> LoginFlow:
        """``polyrelay login gemini``."""
        from polyrelay_gemini import login

        return login.login_flow(URLS)

    def build_provider(self, config: Config) -> Provider:
        """The provider, counting tokens upstream for accounts."""
        provider = super().build_provider(config)
        provider.count_tokens = count_tokens
        return provider

    def credentials(self, config: Config) -> list[Credential]:
        """One credential per enabled key; a version-less ``base-url`` (CLIProxyAPI's form) gets ``/v1beta``."""
        credentials = super().credentials(config)
        for credential in credentials:
            base = (credential.base_url or "").rstrip("/")
            if base and not _VERSIONED.search(base):
                credential.base_url = f"{base}/v1beta"
        return credentials

    @hookimpl
    def translate_request(self, provider: Provider, request: ClientRequest,
                          credential: Credential) -> UpstreamRequest | None:
        """Code Assist for an account's project; the core's AI Studio default for a key."""
        if isinstance(credential, ProjectCredential):
            from polyrelay_gemini import codeassist

            return codeassist.generate_request(provider, request, credential)
        return None

    @hookimpl
    def classify_response(self, status: int, body: bytes) -> Verdict | None:
        """Google's error details (see :mod:`.quota`); ``None`` leaves the rest to the core's default."""
        from polyrelay_gemini import quota

        return quota.classify(status, body)

    @hookimpl
    def demo_backends(self) -> list[DemoBackend]:
        """The Gemini API simulator in ``polyrelay serve --demo``."""
        from polyrelay_gemini.demo import demo_backend

        return [demo_backend(self)]


plugin = Gemini()
