"""Claude Pro/Max accounts: Anthropic's OAuth client, the login flow, the stored file, refresh.

Source: router-for-me/CLIProxyAPI internal/auth/claude/anthropic_auth.go and token.go (client id, endpoints,
JSON token bodies, the stored file's field names).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from polyrelay.accounts import (
    AccountFile,
    BrowserLogin,
    LoginContext,
    LoginError,
    LoginFlow,
    OAuthRefresh,
    rfc3339,
)
from polyrelay.types import Credential

CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
SCOPES = ["user:profile", "user:inference", "user:sessions:claude_code", "user:mcp_servers", "user:file_upload"]
API_BASE = "https://api.anthropic.com"
AUTHORIZE_URL = "https://claude.ai/oauth/authorize"
TOKEN_URL = "https://platform.claude.com/v1/oauth/token"
CALLBACK_PORT = 54545
#: The headers Claude Code's own token requests carry (an axios client).
TOKEN_HEADERS = {"accept": "application/json, text/plain, */*", "user-agent": "axios/1.15.2"}
#: Claude Code refreshes 4 h before the (8 h) token expires.
REFRESH_LEAD = 4 * 3600.0

URLS = {"api": API_BASE, "oauth-authorize": AUTHORIZE_URL, "oauth-token": TOKEN_URL}


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


def refresh_fields(credential: Credential, client_id: str) -> dict[str, Any]:
    """Claude's refresh grant (JSON), with the scope string Claude Code sends."""
    return {"client_id": client_id, "grant_type": "refresh_token", "refresh_token": credential.refresh_token or "",
            "scope": " ".join(SCOPES)}


def refresher() -> OAuthRefresh:
    """The provider's ``refresh``: JSON refresh grant at ``oauth-token``."""
    return OAuthRefresh(CLIENT_ID, style="json", fields=refresh_fields, headers=dict(TOKEN_HEADERS))


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
