"""polyrelay provider: OpenAI's models through ChatGPT accounts and OpenAI API keys.

Two kinds of credential serve the same models from one pool:

* **ChatGPT (Codex) accounts** — ``type: "codex"`` auth files (CLIProxyAPI's,
  or written by ``polyrelay login codex``).  They are served by the ChatGPT
  backend (``upstream-urls.codex.chatgpt``), which only streams and has its
  own body rules and headers (:mod:`polyrelay_codex.chatgpt`), usage limits
  (:mod:`polyrelay_codex.limits`) and rotating refresh tokens
  (:mod:`polyrelay_codex.account`).
* **API keys** — the ``codex-api-key`` list, served by the public Responses
  API (``upstream-urls.codex.api``) with the core's defaults.

.. code-block:: yaml

    codex-api-key:
      - api-key: sk-proj-...
        base-url: https://api.openai.com/v1   # optional
        priority: -1                          # spend subscriptions first
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyrelay import (
    ClientRequest,
    Credential,
    Provider,
    Refresher,
    StreamItem,
    StreamState,
    UpstreamRequest,
    Verdict,
    get_dialect,
    hookimpl,
    ir,
)
from polyrelay.accounts.plugin import AccountProviderPlugin
from polyrelay.defaults import upstream_body
from polyrelay_codex import account

if TYPE_CHECKING:
    from polyrelay.accounts import LoginFlow
    from polyrelay.demo import DemoBackend

# Account, quota, login and demo modules are imported in the hook that uses them (docs/architecture.md).

NAME = "codex"
SECTION = "codex-api-key"
API_BASE = "https://api.openai.com/v1"
URLS = {
    "api": API_BASE,
    "chatgpt": "https://chatgpt.com/backend-api/codex",
    "oauth-authorize": "https://auth.openai.com/oauth/authorize",
    "oauth-token": "https://auth.openai.com/oauth/token",
    "oauth-device": "https://auth.openai.com/api/accounts/deviceauth",
}
MODELS = ("gpt-5", "gpt-5-codex", "gpt-5.1", "gpt-5.1-codex", "gpt-5-mini")
#: Where translate_request leaves the stand-in → original map for translate_chunk.
RESTORE = "codex.restore"
#: The account stream's state in ``StreamState.extra``.
STREAM = "codex.stream"


class Codex(AccountProviderPlugin):
    """Keys through the core's defaults; accounts through the ChatGPT backend."""

    name = NAME
    dialect = ir.OPENAI_RESPONSES
    urls = URLS
    models = MODELS
    api_key_section = SECTION
    account_type = account.TYPE

    def account_credential(self, path: Path, data: dict[str, Any]) -> Credential | None:
        """A ``type: "codex"`` file (CLIProxyAPI's fields; the account id from the id token if missing)."""
        return account.credential(data, path)

    def refresher(self) -> Refresher:
        """The form-body refresh with Codex's client id, rotating refresh tokens."""
        return account.refresh

    def login_flow(self) -> LoginFlow:
        """``polyrelay login codex`` (browser, or ``--device``)."""
        from polyrelay_codex import login

        return login.login_flow(URLS)

    @hookimpl
    def translate_request(
        self, provider: Provider, request: ClientRequest, credential: Credential
    ) -> UpstreamRequest | None:
        """Accounts go to the ChatGPT backend, always streamed; keys get the core's default."""
        if credential.kind != "oauth":
            return None
        from polyrelay_codex import chatgpt

        body, parsed, restore = chatgpt.chatgpt_body(upstream_body(provider, request, stream=True))
        headers = chatgpt.chatgpt_headers(credential, request.headers, parsed)
        upstream = UpstreamRequest(url=f"{provider.url('chatgpt')}/responses", body=body, headers=headers,
                                   stream=True)
        if restore:
            upstream.context[RESTORE] = restore
        return upstream

    @hookimpl
    def translate_chunk(self, provider: Provider, stream: StreamState, data: bytes) -> list[StreamItem] | None:
        """An account's stream: shortened names put back, the final output filled in (keys: the default)."""
        if stream.credential.kind != "oauth" or not (stream.passthrough or stream.extra.get(RESTORE)):
            return None
        fixer = stream.extra.get(STREAM)
        if fixer is None:
            from polyrelay_codex.stream import AccountStream

            fixer = stream.extra[STREAM] = AccountStream(stream.extra.get(RESTORE) or {})
        fed: list[StreamItem] = [*stream.decoder.feed(data)]
        return fixer.fix(fed)

    @hookimpl
    def observe_response(self, credential: Credential, headers: Mapping[str, str]) -> None:
        """The ``x-codex-*`` usage windows of every answer, kept on the account."""
        if credential.kind == "oauth":
            from polyrelay_codex import limits

            limits.record_usage(credential, headers)

    @hookimpl
    def classify_response(
        self, provider: Provider, status: int, headers: Mapping[str, str], body: bytes, error: ir.ErrorInfo | None
    ) -> Verdict | None:
        """Usage limits, plans without Codex and overload; the core's default for the rest."""
        from polyrelay_codex import limits

        decoded = error or get_dialect(provider.dialect).decode_error(status, body)
        return limits.classify(decoded, headers, body)

    @hookimpl
    def demo_backends(self) -> list[DemoBackend]:
        """The Responses API simulator in ``polyrelay serve --demo``."""
        from polyrelay_codex.demo import demo_backend

        return [demo_backend(self)]


plugin = Codex()
