"""The auth.openai.com side of the simulator: Codex's OAuth client and its deviceauth flow.

The authorization and token endpoints are the shared
:class:`~polyrelay.testing.oauth.OAuthServer`, set up the way
auth.openai.com treats Codex's client: form bodies, the extra authorize
parameters checked, rotating refresh tokens with ``refresh_token_reused``
on replay, an ``id_token`` in every answer whose claims name the account.

The device flow is OpenAI's own, not RFC 8628: ``POST
{deviceauth}/usercode`` with ``{"client_id"}`` gives ``device_auth_id``,
``user_code`` and ``interval``; ``POST {deviceauth}/token`` with
``{"device_auth_id", "user_code"}`` answers 403 until the user approves,
then an authorization code with the PKCE verifier the server chose, which
the client exchanges at the token endpoint with the ``deviceauth/callback``
redirect.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import attrs
from aiohttp import web

from polyrelay import jsonutil
from polyrelay.accounts import pkce_pair
from polyrelay.testing.oauth import Grant, OAuthServer

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
SCOPE = "openid email profile offline_access"
AUTHORIZE_PARAMS = {"scope": SCOPE, "prompt": "login", "id_token_add_organizations": "true",
                    "codex_cli_simplified_flow": "true"}
DEVICE_PATH = "/api/accounts/deviceauth"
DEVICE_REDIRECT = "https://auth.openai.com/deviceauth/callback"


@attrs.define
class Identity:
    """Who an account is, as the id token says."""

    email: str
    account_id: str
    plan: str = "plus"


@attrs.define
class DeviceAuth:
    """One pending deviceauth login."""

    device_auth_id: str
    user_code: str
    approved: bool = False
    polls: int = 0


class CodexAuthServer(OAuthServer):
    """auth.openai.com for Codex's client; ``on_token`` tells the backend about every access token issued."""

    def __init__(self, on_token: Callable[[str, Identity], None], id_token: Callable[[Identity], str],
                 device_interval: float = 0.05) -> None:
        super().__init__(CLIENT_ID, style="form", required_params=AUTHORIZE_PARAMS,
                         reuse_error="refresh_token_reused", answer_fields=self._id_token_field,
                         device_interval=device_interval)
        self._on_token = on_token
        self._id_token = id_token
        #: Account key → identity; logins create ``user<n>@example.com`` unless a test names the next one.
        self.identities: dict[str, Identity] = {}
        self.next_identity: Identity | None = None
        self.device_logins: dict[str, DeviceAuth] = {}
        self._last: Identity | None = None

    def routes(self) -> list[web.RouteDef]:
        """Authorize and token (shared), then OpenAI's deviceauth pair."""
        return [*super().routes(), web.post(f"{DEVICE_PATH}/usercode", self.usercode),
                web.post(f"{DEVICE_PATH}/token", self.device_poll)]

    def identity(self, account: str) -> Identity:
        """The identity behind an account key (made up on first sight)."""
        found = self.identities.get(account)
        if found is None:
            found = self.next_identity or Identity(f"user{len(self.identities) + 1}@example.com",
                                                   f"acct-{secrets.token_hex(6)}")
            self.next_identity = None
            self.identities[account] = found
        return found

    def _issue(self, account: str) -> tuple[str, str]:
        access, refresh = super()._issue(account)
        self._last = self.identity(account)
        self._on_token(access, self._last)
        return access, refresh

    def _id_token_field(self, kind: str, grant: dict[str, Any]) -> dict[str, Any]:
        return {"id_token": self._id_token(self._last)} if self._last is not None else {}

    def approve_device(self, user_code: str) -> None:
        """The user entered ``user_code`` at auth.openai.com/codex/device and approved."""
        for login in self.device_logins.values():
            if login.user_code == user_code:
                login.approved = True
                return
        raise KeyError(user_code)

    async def _json(self, request: web.Request) -> dict[str, Any] | None:
        try:
            data = jsonutil.loads(await request.read())
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    async def usercode(self, request: web.Request) -> web.Response:
        """Start a device login."""
        data = await self._json(request)
        if data is None or data.get("client_id") != CLIENT_ID:
            return web.json_response({"error": {"message": "Invalid client", "code": "invalid_client"}}, status=400)
        login = DeviceAuth(f"deviceauth_{secrets.token_hex(8)}",
                           f"{secrets.token_hex(2).upper()}-{secrets.token_hex(3).upper()}")
        self.device_logins[login.device_auth_id] = login
        return web.json_response({"device_auth_id": login.device_auth_id, "user_code": login.user_code,
                                  "interval": f"{self.device_interval:g}"})

    async def device_poll(self, request: web.Request) -> web.Response:
        """403 while pending; once approved, a code and the verifier to exchange it with."""
        data = await self._json(request) or {}
        login = self.device_logins.get(str(data.get("device_auth_id")))
        if login is None or data.get("user_code") != login.user_code:
            return web.json_response({"error": {"message": "Unknown device authorization",
                                                "code": "deviceauth_not_found"}}, status=404)
        login.polls += 1
        if not login.approved:
            return web.json_response({"error": {"message": "Device authorization is pending",
                                                "code": "deviceauth_authorization_pending"}}, status=403)
        del self.device_logins[login.device_auth_id]
        verifier, challenge = pkce_pair()
        code = f"code-{secrets.token_urlsafe(12)}"
        self.codes[code] = Grant(client_id=CLIENT_ID, scope=SCOPE, challenge=challenge, redirect_uri=DEVICE_REDIRECT,
                                 expires_at=time.time() + 600)
        return web.json_response({"authorization_code": code, "code_verifier": verifier,
                                  "code_challenge": challenge})
