"""polyrelay provider: Claude through Anthropic API keys and Claude Pro/Max accounts.

Wire facts: https://docs.anthropic.com/en/api/messages, https://docs.anthropic.com/en/api/errors
(529 ``overloaded_error``) and https://docs.anthropic.com/en/api/rate-limits (``retry-after``).

Keys (``claude-api-key``) get the core's defaults: ``x-api-key`` plus
``anthropic-version`` on ``{base}/v1/messages``, byte-exact pass-through
for Anthropic clients, codec translation for the others.  Accounts
(``claude-*.json`` files of ``type: "claude"`` in the auth dir, written by
``polyrelay login claude`` or CLIProxyAPI) get what a subscription token
needs (:mod:`polyrelay_claude.request`), refresh (:mod:`polyrelay_claude.oauth`)
and the subscription quota rules (:mod:`polyrelay_claude.quota`).  Both
kinds serve the same models from one pool; ``priority`` orders them.

.. code-block:: yaml

    claude-api-key:
      - api-key: sk-ant-api03-...
        priority: 0          # accounts (priority 0 by default, or set in the file) go first at a higher one
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import aiohttp

from polyrelay import ir, jsonutil
from polyrelay.accounts.plugin import AccountProviderPlugin
from polyrelay.config import Config
from polyrelay.plugins import hookimpl
from polyrelay.types import ClientRequest, Credential, Provider, UpstreamRequest, Verdict
from polyrelay_claude import oauth

if TYPE_CHECKING:
    from polyrelay.accounts import LoginFlow, OAuthRefresh
    from polyrelay.demo import DemoBackend

# Account, quota, login and demo modules are imported in the hook that uses them (docs/architecture.md).

NAME = "claude"
SECTION = "claude-api-key"
API_BASE = oauth.API_BASE
MODELS = ("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6")


async def count_tokens(request: ClientRequest, credential: Credential, session: aiohttp.ClientSession,
                       provider: Provider) -> int | None:
    """``/v1/messages/count_tokens`` upstream (with the OAuth betas for an account); None if it cannot count."""
    from polyrelay_claude.request import count_request

    upstream = count_request(provider, request, credential)
    async with session.post(upstream.url, data=upstream.body, headers=upstream.headers) as response:
        if response.status != 200:
            return None
        answer = jsonutil.loads(await response.read())
    tokens = answer.get("input_tokens") if isinstance(answer, dict) else None
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None


class Claude(AccountProviderPlugin):
    """Anthropic keys and Claude subscription accounts in one pool."""

    name = NAME
    dialect = ir.ANTHROPIC
    urls = oauth.URLS
    models = MODELS
    api_key_section = SECTION
    account_type = "claude"
    refresh_lead = oauth.REFRESH_LEAD

    def refresher(self) -> OAuthRefresh:
        """Claude's JSON refresh grant."""
        return oauth.refresher()

    def login_flow(self) -> LoginFlow:
        """``polyrelay login claude``."""
        from polyrelay_claude import login

        return login.login_flow()

    def build_provider(self, config: Config) -> Provider:
        """The provider, counting tokens upstream."""
        provider = super().build_provider(config)
        provider.count_tokens = count_tokens
        return provider

    @hookimpl
    def translate_request(self, provider: Provider, request: ClientRequest,
                          credential: Credential) -> UpstreamRequest | None:
        """Accounts need Claude Code's shape; keys take the core's default (None)."""
        if credential.kind != "oauth":
            return None
        from polyrelay_claude.request import oauth_request

        return oauth_request(provider, request, credential)

    @hookimpl
    def classify_response(self, provider: Provider, status: int, headers: Mapping[str, str],
                          body: bytes) -> Verdict | None:
        """Unified subscription limits, 529 and 403 (see :mod:`polyrelay_claude.quota`)."""
        from polyrelay_claude import quota

        return quota.classify(provider, status, headers, body)

    @hookimpl
    def demo_backends(self) -> list[DemoBackend]:
        """The Anthropic Messages simulator in ``polyrelay serve --demo``."""
        from polyrelay_claude.demo import demo_backend

        return [demo_backend(self)]


plugin = Claude()
