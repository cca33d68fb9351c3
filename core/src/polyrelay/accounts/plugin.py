"""The base class of a provider plugin with subscription accounts.

:class:`AccountProviderPlugin` adds to :class:`~polyrelay.apikeys.ProviderPlugin`
the two account hooks (``credential_from_file`` for the provider's auth-file
``type``, ``login_flows``) and wires the refresher into the provider::

    class Claude(AccountProviderPlugin):
        name = "claude"
        dialect = ir.ANTHROPIC
        urls = {"api": ..., "oauth-authorize": ..., "oauth-token": ...}
        api_key_section = "claude-api-key"     # keys and accounts in one pool
        account_type = "claude"

        def refresher(self): return OAuthRefresh(CLIENT_ID, style="json")
        def login_flow(self): return LoginFlow(...)

The provider is always registered: an account can be logged in while the
gateway runs, and must then serve without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from polyrelay.accounts.authdir import file_credential
from polyrelay.apikeys import ProviderPlugin
from polyrelay.config import Config
from polyrelay.plugins import hookimpl
from polyrelay.types import Credential, Provider, Refresher

if TYPE_CHECKING:
    from polyrelay.accounts.flows import LoginFlow  # loaded by ``polyrelay login`` only


class AccountProviderPlugin(ProviderPlugin):
    """A one-provider plugin whose accounts are auth-dir files (and optionally keys)."""

    #: The auth files' ``type`` (CLIProxyAPI's value: ``"claude"``, ``"codex"`` …).
    account_type: ClassVar[str]
    #: Refresh this many seconds before a token expires (``refresh-lead-seconds`` overrides).
    refresh_lead: ClassVar[float] = 300.0

    # -- what a subclass overrides ----------------------------------------------

    def serves(self, config: Config) -> bool:
        """Always: accounts may appear in the auth dir at any time."""
        return True

    def account_credential(self, path: Path, data: dict[str, Any]) -> Credential | list[Credential] | None:
        """One auth file of :attr:`account_type` as a credential (default: a flat CLIProxyAPI file),
        or several when the file holds several rotation members (the projects of a Google login)."""
        return file_credential(self.name, path, data)

    def refresher(self) -> Refresher | None:
        """The provider's ``refresh`` (usually an :class:`~polyrelay.accounts.OAuthRefresh`)."""
        return None

    def login_flow(self) -> LoginFlow | None:
        """What ``polyrelay login <name>`` runs (None: no login)."""
        return None

    def build_provider(self, config: Config) -> Provider:
        """The base provider plus the account type, refresher and refresh lead."""
        provider = super().build_provider(config)
        provider.credential_types = (self.account_type,)
        provider.refresh = self.refresher()
        provider.refresh_lead = self.refresh_lead
        return provider

    # -- the hooks ----------------------------------------------------------------

    @hookimpl
    def credential_from_file(self, data: dict[str, Any], path: Path) -> Credential | list[Credential] | None:
        """:meth:`account_credential` for files of :attr:`account_type`."""
        return self.account_credential(path, data) if data.get("type") == self.account_type else None

    @hookimpl
    def login_flows(self) -> list[LoginFlow]:
        """:meth:`login_flow`, when there is one."""
        flow = self.login_flow()
        return [flow] if flow is not None else []
