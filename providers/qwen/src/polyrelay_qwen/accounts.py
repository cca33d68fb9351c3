"""Qwen OAuth accounts: the device login, the stored file, the API base, refresh.

Qwen Code logged in with the RFC 8628 device grant plus PKCE against
``chat.qwen.ai`` (Qwen Code's ``packages/core/src/qwen/qwenOAuth2.ts``); the
token answer's ``resource_url`` names the API host the account is served
from (a bare host such as ``portal.qwen.ai``).  Qwen ended the free OAuth
tier on 2026-04-15 (Qwen Code's ``docs/configuration/auth.md``); tokens
people still hold are served while Qwen accepts them, and the subscription
to use instead is the Coding Plan.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from polyrelay import Credential
from polyrelay.accounts import (
    AccountFile,
    DeviceLogin,
    LoginContext,
    LoginError,
    LoginFlow,
    LoginOption,
    OAuthRefresh,
    apply_tokens,
    file_credential,
    rfc3339,
)

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
FREE_TIER_NOTICE = ("Note: Qwen ended the free Qwen OAuth tier on 2026-04-15; new requests on such accounts are "
                    "refused. Tokens you still hold are served while Qwen accepts them. For a Qwen subscription use "
                    "a Coding Plan key (qwen-coding-plan in config.yaml).")
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


async def account_file(ctx: LoginContext, tokens: Mapping[str, Any]) -> AccountFile:
    """``qwen-<name>.json`` with CLIProxyAPI's fields (Qwen's answer names no email: the user's ``--name`` does)."""
    access, refresh = tokens.get("access_token"), tokens.get("refresh_token")
    if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
        raise LoginError("the token answer lacks access_token or refresh_token")
    name = ctx.option("name")
    if not name:
        name = await ctx.ask("Name for this account (an email or any label):") or ""
    name = name.strip()
    if not name:
        raise LoginError("no account name: pass --name NAME")
    expires_in = tokens.get("expires_in")
    seconds = float(expires_in) if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) else 0.0
    now = time.time()
    data: dict[str, Any] = {
        "access_token": access,
        "refresh_token": refresh,
        "resource_url": tokens.get("resource_url") or "",
        "email": name,
        "last_refresh": rfc3339(now),
        "expired": rfc3339(now + seconds) if seconds else "",
        "type": "qwen",
    }
    return AccountFile(name=f"qwen-{name}.json", data=data)


def login_flow() -> LoginFlow:
    """``polyrelay login qwen``: the device grant with PKCE, form bodies, Qwen Code's request id header."""
    return LoginFlow(
        provider="qwen",
        client_id=CLIENT_ID,
        scopes=SCOPES,
        urls=dict(URLS),
        account=account_file,
        device=DeviceLogin(style="form", pkce=True, interval=5.0, slow_down_step=5.0, limit=10 * 60.0,
                           headers={"x-request-id": str(uuid.uuid4())}),
        token_style="form",
        default="device",
        options=[LoginOption("--name", "the account's name in the auth dir (qwen-<name>.json)")],
        notice=FREE_TIER_NOTICE,
        description="Log in to a Qwen OAuth account (device flow) and store it in the auth dir.",
    )
