"""``polyrelay login claude``: the browser flow and the account file it stores.

Imported only by :meth:`ClaudePlugin.login_flow`, so that a serving gateway
loads none of the login machinery.  Source: router-for-me/CLIProxyAPI
internal/auth/claude/anthropic_auth.go and token.go (the stored file's field
names, the profile endpoint).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from polyrelay.accounts import AccountFile, BrowserLogin, LoginContext, LoginError, LoginFlow, rfc3339
from polyrelay_claude.oauth import CALLBACK_PORT, CLIENT_ID, SCOPES, TOKEN_HEADERS, URLS


def _text(mapping: Any, *keys: str) -> str:
    if not isinstance(mapping, Mapping):
        return ""
    for key in keys:
        value = mapping.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


async def _profile(ctx: LoginContext, access_token: str) -> Mapping[str, Any]:
    """``GET {api}/api/oauth/profile``, for a token answer that names no account."""
    headers = {"authorization": f"Bearer {access_token}", "anthropic-beta": "oauth-2025-04-20",
               "accept": "application/json"}
    try:
        async with ctx.session.get(f"{ctx.urls['api'].rstrip('/')}/api/oauth/profile", headers=headers) as response:
            if response.status != 200:
                raise LoginError(f"the profile endpoint answered {response.status}")
            data = await response.json(content_type=None)
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise LoginError(f"cannot read the account profile ({exc.__class__.__name__})") from None
    return data if isinstance(data, Mapping) else {}


async def account_file(ctx: LoginContext, tokens: Mapping[str, Any]) -> AccountFile:
    """``claude-<email>.json`` with CLIProxyAPI's field names."""
    access = _text(tokens, "access_token")
    refresh = _text(tokens, "refresh_token")
    if not access or not refresh:
        raise LoginError("the token answer lacks access_token or refresh_token")
    account, organization = tokens.get("account"), tokens.get("organization")
    if not _text(account, "email_address", "email"):
        profile = await _profile(ctx, access)
        account, organization = profile.get("account"), profile.get("organization") or organization
    email = _text(account, "email_address", "email")
    if not email:
        raise LoginError("neither the token answer nor the profile names the account's email")
    now = time.time()
    expires_in = tokens.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) else 0.0
    data = {
        "type": "claude",
        "email": email,
        "access_token": access,
        "refresh_token": refresh,
        "account_uuid": _text(account, "uuid"),
        "organization_uuid": _text(organization, "uuid"),
        "organization_name": _text(organization, "name"),
        "last_refresh": rfc3339(now),
        "expired": rfc3339(now + lifetime),
    }
    return AccountFile(f"claude-{email}.json", data)


def login_flow() -> LoginFlow:
    """``polyrelay login claude``: authorization code + PKCE, ``code=true``, JSON exchange with ``state``."""
    return LoginFlow(
        provider="claude",
        client_id=CLIENT_ID,
        scopes=SCOPES,
        urls=dict(URLS),
        account=account_file,
        token_style="json",
        token_headers=dict(TOKEN_HEADERS),
        browser=BrowserLogin(port=CALLBACK_PORT, redirect_path="/callback", authorize_params={"code": "true"},
                             send_state=True),
        description="Log in to a Claude Pro/Max account (Anthropic OAuth) and store it in the auth dir.",
    )
