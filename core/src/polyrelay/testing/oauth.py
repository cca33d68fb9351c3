"""A configurable OAuth 2.0 authorization server for provider simulators.

One implementation of what every account provider's upstream does, set up
with that provider's field names: the authorization endpoint (parameters
checked like the real server, then a 302 to the ``redirect_uri`` with
``code`` and ``state``, or ``error=access_denied`` when told to deny), the
token endpoint (JSON or form bodies; the code exchange verifies the PKCE
verifier, the redirect URI and, when required, ``state``; refresh rotates
the refresh token and answers ``invalid_grant`` to a reused one) and the
device endpoints of RFC 8628 (pending, ``slow_down`` when polled too fast,
approve / deny / expire by user code).

A provider simulator keeps an :class:`OAuthServer` and adds its
:meth:`OAuthServer.routes` to its own; :meth:`OAuthServer.valid` tells the
API side which access tokens are live.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import attrs
from aiohttp import web

from polyrelay import jsonutil
from polyrelay.accounts.oauth import pkce_challenge

#: Extra fields for a token answer: ``(grant kind, the grant's record)`` → fields.
AnswerFields = Callable[[str, dict[str, Any]], dict[str, Any]]


@attrs.define
class Grant:
    """An issued authorization code or device code and what it was bound to."""

    client_id: str
    scope: str
    challenge: str | None = None
    redirect_uri: str = ""
    state: str = ""
    user_code: str = ""
    status: str = "pending"  # device: pending | approved | denied | expired
    expires_at: float = 0.0
    last_poll: float = 0.0
    interval: float = 0.0
    used: bool = False
    polls: list[float] = attrs.field(factory=list)


class OAuthServer:
    """The OAuth side of a simulated provider (paths and field names configurable)."""

    def __init__(
        self,
        client_id: str,
        *,
        style: str = "form",
        authorize_path: str = "/oauth/authorize",
        token_path: str = "/oauth/token",
        device_path: str = "/oauth/device/code",
        required_params: dict[str, str] | None = None,
        require_state_in_exchange: bool = False,
        require_pkce: bool = True,
        client_secret: str | None = None,
        access_prefix: str = "at-",
        refresh_prefix: str = "rt-",
        expires_in: int = 3600,
        answer_fields: AnswerFields | None = None,
        reuse_error: str = "invalid_grant",
        rotate: bool = True,
        device_interval: float = 0.05,
        device_expires_in: int = 600,
        token_delay: float = 0.0,
    ) -> None:
        self.client_id = client_id
        self.style = style
        self.authorize_path = authorize_path
        self.token_path = token_path
        self.device_path = device_path
        self.required_params = dict(required_params or {})
        self.require_state_in_exchange = require_state_in_exchange
        self.require_pkce = require_pkce
        self.client_secret = client_secret
        self.access_prefix = access_prefix
        self.refresh_prefix = refresh_prefix
        self.expires_in = expires_in
        self.answer_fields = answer_fields or (lambda _kind, _grant: {})
        self.reuse_error = reuse_error
        self.rotate = rotate
        self.device_interval = device_interval
        self.device_expires_in = device_expires_in
        #: Seconds each token answer takes (lets concurrent 401s pile up).
        self.token_delay = token_delay
        #: Deny the next authorization (the user clicked "cancel").
        self.deny_next = False
        #: Answer ``slow_down`` to this many device polls.
        self.slow_down = 0
        self.codes: dict[str, Grant] = {}
        self.devices: dict[str, Grant] = {}
        #: Live access tokens and the one live refresh token per account.
        self.access_tokens: set[str] = set()
        #: Whose each access token is (account key), for an API side that serves per account.
        self.owners: dict[str, str] = {}
        #: The account key the next code exchange logs in (None: a fresh ``acct-N``).
        self.signing_in: str | None = None
        self.refresh_tokens: dict[str, str] = {}  # refresh token → account key
        self.retired: set[str] = set()
        #: Every token-endpoint request body, in order; refreshes counted apart.
        self.token_requests: list[dict[str, Any]] = []
        self.refresh_count = 0
        #: Scripted token-endpoint failures ``(status, body)`` for the next requests.
        self.failures: list[tuple[int, dict[str, Any]]] = []
        self._serial = itertools.count(1)

    def routes(self) -> list[web.RouteDef]:
        """The authorization, token and device endpoints."""
        return [web.get(self.authorize_path, self.authorize), web.post(self.token_path, self.token),
                web.post(self.device_path, self.device_code)]

    # -- what tests and simulators ask -----------------------------------------

    def valid(self, access_token: str) -> bool:
        """Whether ``access_token`` was issued and is live."""
        return access_token in self.access_tokens

    def owner(self, access_token: str) -> str | None:
        """The account a live ``access_token`` belongs to (None: not live)."""
        return self.owners.get(access_token) if self.valid(access_token) else None

    def seed(self, account: str = "acct-1") -> tuple[str, str]:
        """Issue tokens without a login (for auth files a test writes); ``(access, refresh)``."""
        return self._issue(account)

    def expire_all_access(self) -> None:
        """Every access token stops working (their expiry passed)."""
        self.access_tokens.clear()

    def approve(self, user_code: str) -> None:
        """The user approved the device login with ``user_code``."""
        self._device_by_user(user_code).status = "approved"

    def deny(self, user_code: str) -> None:
        """The user refused the device login."""
        self._device_by_user(user_code).status = "denied"

    def expire(self, user_code: str) -> None:
        """The device code ran out before approval."""
        self._device_by_user(user_code).status = "expired"

    def _device_by_user(self, user_code: str) -> Grant:
        for grant in self.devices.values():
            if grant.user_code == user_code:
                return grant
        raise KeyError(user_code)

    def _issue(self, account: str) -> tuple[str, str]:
        n = next(self._serial)
        access = f"{self.access_prefix}{n:04d}-{secrets.token_hex(8)}"
        refresh = f"{self.refresh_prefix}{n:04d}-{secrets.token_hex(8)}"
        self.access_tokens.add(access)
        self.owners[access] = account
        self.refresh_tokens[refresh] = account
        return access, refresh

    # -- endpoints ---------------------------------------------------------------

    @staticmethod
    def _error(status: int, error: str, description: str = "") -> web.Response:
        body: dict[str, Any] = {"error": error}
        if description:
            body["error_description"] = description
        return web.json_response(body, status=status)

    async def authorize(self, request: web.Request) -> web.Response:
        """Check the parameters, then redirect to the client with a code (or the denial)."""
        params = dict(request.query)
        problem = None
        if params.get("client_id") != self.client_id:
            problem = "unknown client_id"
        elif params.get("response_type") != "code":
            problem = "response_type must be code"
        elif not params.get("redirect_uri", "").startswith(("http://localhost:", "http://127.0.0.1:")):
            problem = "redirect_uri is not registered"
        elif not params.get("state"):
            problem = "state is required"
        elif self.require_pkce and (params.get("code_challenge_method") != "S256" or not params.get("code_challenge")):
            problem = "PKCE S256 is required"
        for key, value in self.required_params.items():
            if problem is None and params.get(key) != value:
                problem = f"parameter {key} must be {value!r}"
        if problem:
            return web.Response(status=400, text=f"Invalid authorization request: {problem}")
        redirect = params["redirect_uri"]
        if self.deny_next:
            self.deny_next = False
            answer = {"error": "access_denied", "error_description": "The user denied the request",
                      "state": params["state"]}
        else:
            code = f"code-{secrets.token_urlsafe(12)}"
            self.codes[code] = Grant(client_id=self.client_id, scope=params.get("scope", ""),
                                     challenge=params.get("code_challenge"), redirect_uri=redirect,
                                     state=params["state"], expires_at=time.time() + 600)
            answer = {"code": code, "state": params["state"]}
        raise web.HTTPFound(f"{redirect}?{urlencode(answer)}")

    async def _fields(self, request: web.Request) -> dict[str, Any] | None:
        if self.style == "json":
            if not request.content_type.endswith("json"):
                return None
            try:
                data = jsonutil.loads(await request.read())
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
        if request.content_type != "application/x-www-form-urlencoded":
            return None
        return dict(await request.post())

    async def token(self, request: web.Request) -> web.Response:
        """The token endpoint: authorization_code, refresh_token and the device grant."""
        fields = await self._fields(request)
        if fields is None:
            return self._error(400, "invalid_request", f"the body must be {self.style}")
        self.token_requests.append(fields)
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        if self.failures:
            status, body = self.failures.pop(0)
            return web.json_response(body, status=status)
        if fields.get("client_id") != self.client_id:
            return self._error(401, "invalid_client", "unknown client")
        if self.client_secret is not None and fields.get("client_secret") != self.client_secret:
            return self._error(401, "invalid_client", "client authentication failed")
        grant_type = fields.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange(fields)
        if grant_type == "refresh_token":
            return self._refresh(fields)
        if grant_type == "urn:ietf:params:oauth:grant-type:device_code":
            return self._device_token(fields)
        return self._error(400, "unsupported_grant_type")

    def _answer(self, kind: str, grant: dict[str, Any], account: str, refresh: bool = True) -> web.Response:
        access, new_refresh = self._issue(account)
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in}
        if refresh:
            body["refresh_token"] = new_refresh
        else:
            self.refresh_tokens.pop(new_refresh, None)
        body.update(self.answer_fields(kind, grant))
        return web.json_response(body)

    def _exchange(self, fields: dict[str, Any]) -> web.Response:
        grant = self.codes.get(str(fields.get("code")))
        if grant is None or grant.used or grant.expires_at < time.time():
            return self._error(400, "invalid_grant", "Invalid or expired authorization code")
        if fields.get("redirect_uri") != grant.redirect_uri:
            return self._error(400, "invalid_grant", "redirect_uri does not match the authorization request")
        if self.require_pkce:
            verifier = fields.get("code_verifier")
            if not isinstance(verifier, str) or pkce_challenge(verifier) != grant.challenge:
                return self._error(400, "invalid_grant", "code_verifier does not match the code_challenge")
        if self.require_state_in_exchange and fields.get("state") != grant.state:
            return self._error(400, "invalid_request", "state does not match")
        grant.used = True
        return self._answer("authorization_code", attrs.asdict(grant),
                            account=self.signing_in or f"acct-{len(self.codes)}")

    def _refresh(self, fields: dict[str, Any]) -> web.Response:
        token = str(fields.get("refresh_token"))
        account = self.refresh_tokens.get(token)
        if account is None:
            reused = token in self.retired
            return self._error(400, self.reuse_error if reused else "invalid_grant",
                               "Refresh token has already been used" if reused else "Invalid refresh token")
        self.refresh_count += 1
        if self.rotate:
            del self.refresh_tokens[token]
            self.retired.add(token)
            return self._answer("refresh_token", {"refresh_token": token}, account)
        response = self._answer("refresh_token", {"refresh_token": token}, account, refresh=False)
        return response

    async def device_code(self, request: web.Request) -> web.Response:
        """RFC 8628 §3.1: a device code and a user code."""
        fields = await self._fields(request)
        if fields is None or fields.get("client_id") != self.client_id:
            return self._error(400, "invalid_client", "unknown client")
        if self.require_pkce and (fields.get("code_challenge_method") != "S256" or not fields.get("code_challenge")):
            return self._error(400, "invalid_request", "PKCE S256 is required")
        device_code = f"dc-{secrets.token_urlsafe(16)}"
        user_code = f"{secrets.randbelow(10**4):04d}-{secrets.randbelow(10**4):04d}"
        self.devices[device_code] = Grant(client_id=self.client_id, scope=str(fields.get("scope", "")),
                                          challenge=fields.get("code_challenge"), user_code=user_code,
                                          expires_at=time.time() + self.device_expires_in,
                                          interval=self.device_interval)
        verification = f"{request.scheme}://{request.host}/device"
        return web.json_response({
            "device_code": device_code, "user_code": user_code, "verification_uri": verification,
            "verification_uri_complete": f"{verification}?user_code={user_code}",
            "expires_in": self.device_expires_in, "interval": self.device_interval})

    def _device_token(self, fields: dict[str, Any]) -> web.Response:
        grant = self.devices.get(str(fields.get("device_code")))
        if grant is None:
            return self._error(400, "invalid_grant", "unknown device code")
        now = time.monotonic()
        too_fast = grant.last_poll and now - grant.last_poll < grant.interval * 0.9
        grant.last_poll = now
        if grant.status == "expired" or grant.expires_at < time.time():
            return self._error(400, "expired_token", "The device code has expired")
        if grant.status == "denied":
            return self._error(400, "access_denied", "The user denied the request")
        if self.require_pkce:
            verifier = fields.get("code_verifier")
            if not isinstance(verifier, str) or pkce_challenge(verifier) != grant.challenge:
                return self._error(400, "invalid_grant", "code_verifier does not match the code_challenge")
        if self.slow_down > 0:
            self.slow_down -= 1
            too_fast = True
        grant.polls.append(now)
        if too_fast:
            grant.interval += 5 if grant.interval >= 1 else grant.interval
            return self._error(400, "slow_down", "polling too fast")
        if grant.status != "approved" or grant.used:
            return self._error(400, "authorization_pending", "The user has not yet approved")
        grant.used = True
        return self._answer("device_code", attrs.asdict(grant), account=f"device-{grant.user_code}")
