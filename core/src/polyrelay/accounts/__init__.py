"""Subscription accounts: login flows, the auth dir, refresh and the disabled state.

What a provider with OAuth accounts uses (see docs/writing-a-provider.md):

* :class:`LoginFlow` with :class:`BrowserLogin` and/or :class:`DeviceLogin`,
  returned from the ``login_flows`` hook, gives ``polyrelay login <provider>``;
* :func:`file_credential` turns a CLIProxyAPI-style account file into a
  credential (in ``credential_from_file``);
* :class:`OAuthRefresh` is a ready ``Provider.refresh`` for a token endpoint
  (:func:`apply_tokens` folds an answer into the file; :class:`RefreshRejected`
  disables the account);
* :func:`post_token`, :func:`poll`, :func:`pkce_pair` and :func:`rfc3339` for
  the parts a provider does itself.

The names load on first use (:mod:`polyrelay.exports`): a serving gateway
needs the auth dir and refresh, and never loads the login flows.
"""

from typing import TYPE_CHECKING

from polyrelay.exports import lazy_exports

if TYPE_CHECKING:
    from polyrelay.accounts.authdir import SkippedFile, file_credential, read_auth_file
    from polyrelay.accounts.device import poll
    from polyrelay.accounts.flows import (
        AccountFile,
        BrowserLogin,
        DeviceLogin,
        InputLines,
        LoginContext,
        LoginError,
        LoginFlow,
        LoginOption,
    )
    from polyrelay.accounts.oauth import (
        OAuthRefresh,
        RefreshRejected,
        TokenError,
        apply_tokens,
        parse_time,
        pkce_challenge,
        pkce_pair,
        post_token,
        rfc3339,
        standard_refresh_fields,
    )

#: Each submodule and the names exported from it (mirrors the imports above; a test checks both against
#: ``__all__``).
_HOMES = {
    "authdir": ("SkippedFile", "file_credential", "read_auth_file"),
    "device": ("poll",),
    "flows": ("AccountFile", "BrowserLogin", "DeviceLogin", "InputLines", "LoginContext", "LoginError", "LoginFlow",
              "LoginOption"),
    "oauth": ("OAuthRefresh", "RefreshRejected", "TokenError", "apply_tokens", "parse_time", "pkce_challenge",
              "pkce_pair", "post_token", "rfc3339", "standard_refresh_fields"),
}

__all__ = [
    "AccountFile",
    "BrowserLogin",
    "DeviceLogin",
    "InputLines",
    "LoginContext",
    "LoginError",
    "LoginFlow",
    "LoginOption",
    "OAuthRefresh",
    "RefreshRejected",
    "SkippedFile",
    "TokenError",
    "apply_tokens",
    "file_credential",
    "parse_time",
    "pkce_challenge",
    "pkce_pair",
    "poll",
    "post_token",
    "read_auth_file",
    "rfc3339",
    "standard_refresh_fields",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
