"""``polyrelay login codex``: what Codex's login is, for the core's login machinery.

The browser flow is the core's (PKCE S256, ``state``, loopback callback,
paste fallback) with Codex's client, scopes, the extra authorize
parameters auth.openai.com expects from Codex CLI and the registered
redirect ``http://localhost:1455/auth/callback``.

``--device`` is OpenAI's own deviceauth flow rather than RFC 8628, so it
is run here: ask ``{oauth-device}/usercode`` for a user code, show it with
the verification address, poll ``{oauth-device}/token`` (403/404 mean "not
yet") at the server's interval for up to 15 minutes, then exchange the
authorization code it hands back, with the PKCE verifier the server chose
and the ``deviceauth/callback`` redirect.
"""

from __future__ import annotations

import contextlib
import time
import webbrowser
from collections.abc import Mapping
from typing import Any

from polyrelay.accounts import (
    AccountFile,
    BrowserLogin,
    DeviceLogin,
    LoginContext,
    LoginError,
    LoginFlow,
    TokenError,
    poll,
    post_token,
)
from polyrelay_codex.account import CLIENT_ID, account_data, claims, file_name

SCOPES = ["openid", "email", "profile", "offline_access"]
CALLBACK_PORT = 1455
AUTHORIZE_PARAMS = {"prompt": "login", "id_token_add_organizations": "true", "codex_cli_simplified_flow": "true",
                    "originator": "codex_cli_rs"}
DEVICE_PAGE = "https://auth.openai.com/codex/device"
DEVICE_REDIRECT = "https://auth.openai.com/deviceauth/callback"
DEVICE_LIMIT = 15 * 60.0
DEVICE_INTERVAL = 5.0
#: The poll answers that mean the user has not approved yet.
PENDING_STATUSES = (403, 404)


async def account_file(ctx: LoginContext, tokens: Mapping[str, Any]) -> AccountFile:
    """The auth file for a token answer: named by the id token's e-mail and plan."""
    data = account_data(tokens)
    found = claims(str(data.get("id_token") or ""))
    if not found.account_id or not data.get("access_token"):
        raise LoginError("the token answer carries no ChatGPT account (no id_token with chatgpt_account_id)")
    ctx.say(f"Logged in as {found.email or found.account_id}" + (f" ({found.plan})" if found.plan else ""))
    return AccountFile(file_name(found.email, found.plan), data)


def _seconds(value: Any, default: float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if seconds > 0 else default


async def device_tokens(flow: LoginFlow, ctx: LoginContext, open_browser: bool) -> dict[str, Any]:
    """Run the deviceauth flow to its code exchange; the token answer."""
    base = ctx.urls["oauth-device"].rstrip("/")
    try:
        grant = await post_token(ctx.session, f"{base}/usercode", {"client_id": flow.client_id}, "json")
    except TokenError as exc:
        raise LoginError(f"the device login could not start ({exc})") from None
    device_auth_id = grant.get("device_auth_id")
    user_code = grant.get("user_code") or grant.get("usercode")
    if not isinstance(device_auth_id, str) or not isinstance(user_code, str):
        raise LoginError("the device endpoint's answer lacks device_auth_id or user_code")
    ctx.say(f"Open {DEVICE_PAGE} and enter the code {user_code}")
    if open_browser:
        with contextlib.suppress(Exception):
            webbrowser.open(DEVICE_PAGE)
    fields = {"device_auth_id": device_auth_id, "user_code": user_code}

    async def attempt() -> dict[str, Any] | None:
        try:
            return await post_token(ctx.session, f"{base}/token", fields, "json")
        except TokenError as exc:
            if exc.status in PENDING_STATUSES:
                return None
            raise LoginError(f"the device login failed ({exc})") from None

    ctx.say("Waiting for approval…")
    approved = await poll(attempt, _seconds(grant.get("interval"), DEVICE_INTERVAL),
                          time.monotonic() + DEVICE_LIMIT, DEVICE_INTERVAL)
    code, verifier = approved.get("authorization_code"), approved.get("code_verifier")
    if not isinstance(code, str) or not isinstance(verifier, str):
        raise LoginError("the approved device login carries no authorization_code or code_verifier")
    exchange = {"grant_type": "authorization_code", "client_id": flow.client_id, "code": code,
                "redirect_uri": DEVICE_REDIRECT, "code_verifier": verifier}
    try:
        return await post_token(ctx.session, ctx.urls[flow.token_url], exchange, flow.token_style)
    except TokenError as exc:
        raise LoginError(f"the token endpoint refused the code ({exc})") from None


def login_flow(urls: Mapping[str, str]) -> LoginFlow:
    """Codex's login: the browser flow by default, ``--device`` for the deviceauth flow."""
    return LoginFlow(
        provider="codex", client_id=CLIENT_ID, scopes=SCOPES,
        urls={k: urls[k] for k in ("oauth-authorize", "oauth-token", "oauth-device")},
        account=account_file,
        browser=BrowserLogin(port=CALLBACK_PORT, redirect_path="/auth/callback", authorize_params=AUTHORIZE_PARAMS),
        device=DeviceLogin(device_url="oauth-device", limit=DEVICE_LIMIT, run=device_tokens),
        description="Log in to a ChatGPT account (Plus, Pro, Team …) the way Codex CLI does.",
    )
