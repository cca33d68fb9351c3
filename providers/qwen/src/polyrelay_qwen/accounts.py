"""Qwen OAuth accounts: the stored file, the API base, refresh (the login is in ``login.py``).

Qwen Code logged in with the RFC 8628 device grant plus PKCE against
``chat.qwen.ai`` (Qwen Code's ``packages/core/src/qwen/qwenOAuth2.ts``); the
token answer's ``resource_url`` names the API host the account is served
from (a bare host such as ``portal.qwen.ai``).  Qwen ended the free OAuth
tier on 2026-04-15 (Qwen Code's ``docs/configuration/auth.md``); tokens
people still hold are served while Qwen accepts them, and the subscription
to use instead is the Coding Plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from polyrelay import Credential
from polyrelay.accounts import OAuthRefresh, apply_tokens, file_credential

CLIENT_ID = "f0304373b74a44d2b584a3fb70ca9e56"
SCOPES = ["openid", "profile", "email", "model.completion"]
URLS = {
    "portal": "https://portal.qwen.ai/v1",
    "oauth-device": "https://chat.qwen.ai/api/v1/oauth2/device/code",
    "oauth-token": "https://chat.qwen.ai/api/v1/oauth2/token",
}
#: What Qwen Code sends to the portal (its ``DashScopeOpenAICompatibleProvider`` headers).
USER_AGENT = "QwenCode/0.14.2 (linux; x64)"
PORTAL_HEADERS = {
    "user-agent": USER_AGENT,
    "x-dashscope-useragent": USER_AGENT,
    "x-dashscope-authtype": "qwen-oauth",
    "x-dashscope-cachecontrol": "enable",
}
DISCONTINUED_REASON = "Qwen ended the Qwen OAuth free tier on 2026-04-15; use a Coding Plan key"


def api_base(resource_url: Any) -> str | None:
    """The API base a token's ``resource_url`` names: scheme and ``/v1`` added when missing."""
    if not isinstance(resource_url, str) or not resource_url.strip():
        return None
    base = resource_url.strip().rstrip("/")
    if "://" not in base:
        base = f"https://{base}"
    return base if base.endswith("/v1") else f"{base}/v1"


def account_credential(provider: str, path: Path, data: dict[str, Any]) -> Credential:
    """A ``type: "qwen"`` file as a credential; its base from ``resource_url`` (else the portal, at request time)."""
    credential = file_credential(provider, path, data)
    credential.base_url = api_base(data.get("resource_url"))
    return credential


def apply_answer(credential: Credential, answer: Mapping[str, Any]) -> None:
    """A token answer into the credential and its file; a new ``resource_url`` moves the account."""
    apply_tokens(credential, answer)
    resource_url = answer.get("resource_url")
    if isinstance(resource_url, str) and resource_url:
        credential.data["resource_url"] = resource_url
        credential.base_url = api_base(resource_url)


def refresher() -> OAuthRefresh:
    """The provider's ``refresh``: the form refresh grant at ``oauth-token``."""
    return OAuthRefresh(CLIENT_ID, style="form", apply=apply_answer)
