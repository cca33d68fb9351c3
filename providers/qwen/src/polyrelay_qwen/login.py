"""``polyrelay login qwen``: the device flow and the account file it stores.

Imported only by :meth:`QwenPlugin.login_flow`, so that a serving gateway
loads none of the login machinery.  The flow is Qwen Code's
(``packages/core/src/qwen/qwenOAuth2.ts``): RFC 8628 plus PKCE, form bodies.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from polyrelay.accounts import AccountFile, DeviceLogin, LoginContext, LoginError, LoginFlow, LoginOption, rfc3339
from polyrelay_qwen.accounts import CLIENT_ID, SCOPES, URLS

FREE_TIER_NOTICE = ("Note: Qwen ended the free Qwen OAuth tier on 2026-04-15; new requests on such accounts are "
                    "refused. Tokens you still hold are served while Qwen accepts them. For a Qwen subscription use "
                    "a Coding Plan key (qwen-coding-plan in config.yaml).")

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
