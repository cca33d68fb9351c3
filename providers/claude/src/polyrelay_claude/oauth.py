"""Claude Pro/Max accounts: Anthropic's OAuth client and refresh (the login is in ``login.py``).

Source: router-for-me/CLIProxyAPI internal/auth/claude/anthropic_auth.go and token.go (client id, endpoints,
JSON token bodies).
"""

from __future__ import annotations

from typing import Any

from polyrelay.accounts import OAuthRefresh
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


def refresh_fields(credential: Credential, client_id: str) -> dict[str, Any]:
    """Claude's refresh grant (JSON), with the scope string Claude Code sends."""
    return {"client_id": client_id, "grant_type": "refresh_token", "refresh_token": credential.refresh_token or "",
            "scope": " ".join(SCOPES)}


def refresher() -> OAuthRefresh:
    """The provider's ``refresh``: JSON refresh grant at ``oauth-token``."""
    return OAuthRefresh(CLIENT_ID, style="json", fields=refresh_fields, headers=dict(TOKEN_HEADERS))
