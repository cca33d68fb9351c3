"""Google's side of a Gemini CLI login, as a fake: accounts, the consent screen, tokens, userinfo.

The OAuth endpoints are the core's :class:`~polyrelay.testing.oauth.OAuthServer`
set up the way Google runs them: ``/o/oauth2/auth`` wants Gemini CLI's
client id, its three scopes, ``access_type=offline``, ``prompt=consent``,
``state`` and PKCE S256; ``/token`` takes form bodies with the client
secret, answers with ``scope`` and an ``id_token``, and keeps refresh tokens
(Google does not rotate them).  What is Google's own is here: the accounts a
test creates (keyed by address), ``userinfo`` and the Cloud project list.
"""

from __future__ import annotations

import itertools
from typing import Any

import attrs
from aiohttp import web

from polyrelay.testing.oauth import OAuthServer
from polyrelay.testing.simulator import Recorded, Reply
from polyrelay_gemini.accounts import CLIENT_ID, CLIENT_SECRET, SCOPES

_serial = itertools.count(1)


@attrs.define
class GoogleAccount:
    """One Google user and what Code Assist knows about them.

    ``projects`` are the Cloud projects the user may bill to; ``project`` the
    Code Assist project once onboarded (a free-tier account gets a managed
    one); ``ineligible`` an ``ineligibleTiers`` entry when Google refuses
    the account.
    """

    email: str
    refresh_token: str = attrs.field(repr=False)
    projects: list[str] = attrs.field(factory=list)
    tier: str = "free-tier"
    onboarded: bool = True
    project: str = ""
    ineligible: dict[str, Any] | None = None


class GoogleOAuth(OAuthServer):
    """The core's OAuth server with Google's settings, and the scope check Google makes."""

    def __init__(self, token_lifetime: int) -> None:
        super().__init__(
            CLIENT_ID, style="form", authorize_path="/o/oauth2/auth", token_path="/token",
            required_params={"access_type": "offline", "prompt": "consent"}, client_secret=CLIENT_SECRET,
            access_prefix="ya29.sim-", refresh_prefix="1//sim-", expires_in=token_lifetime, rotate=False,
            answer_fields=lambda _kind, _grant: {"scope": " ".join(SCOPES),
                                                 "id_token": f"eyJhbGciOiJSUzI1NiJ9.sim-{next(_serial)}.sig"},
        )

    async def authorize(self, request: web.Request) -> web.Response:
        """Google refuses a consent request that does not ask for exactly the scopes Gemini CLI asks for."""
        if set(request.query.get("scope", "").split(" ")) != set(SCOPES):
            return web.Response(status=400, text="Error 400: invalid_scope")
        return await super().authorize(request)


def _unauthenticated() -> Reply:
    return Reply(status=401, body={"error": {"code": 401, "message": "Request is missing required authentication "
                                             "credential.", "status": "UNAUTHENTICATED"}})


class GoogleAccounts:
    """The accounts a test creates, their tokens (:attr:`oauth`), userinfo and projects."""

    def __init__(self, token_lifetime: int = 3599) -> None:
        self.oauth = GoogleOAuth(token_lifetime)
        self.accounts: dict[str, GoogleAccount] = {}

    @property
    def refreshes(self) -> int:
        """Refresh grants answered so far."""
        return self.oauth.refresh_count

    def add(self, email: str, projects: list[str] | None = None, **fields: Any) -> GoogleAccount:
        """Create an account (``fields`` as :class:`GoogleAccount`'s); the first one signs in at the consent page."""
        _, refresh = self.oauth.seed(email)
        account = GoogleAccount(email=email, refresh_token=refresh, projects=list(projects or []), **fields)
        if account.onboarded and not account.project:
            account.project = account.projects[0] if account.projects else f"managed-{next(_serial)}"
        self.accounts[email] = account
        self.oauth.signing_in = self.oauth.signing_in or email
        return account

    def issue(self, email: str, live: bool = True) -> str:
        """Another access token for ``email`` (``live=False``: one that has already expired)."""
        access, refresh = self.oauth.seed(email)
        self.oauth.refresh_tokens.pop(refresh, None)  # the account keeps its one refresh token
        if not live:
            self.oauth.access_tokens.discard(access)
        return access

    def revoke(self, email: str) -> None:
        """The user removed the app's access: the refresh token is dead (``invalid_grant``)."""
        self.oauth.refresh_tokens.pop(self.accounts[email].refresh_token, None)

    def account_for(self, recorded: Recorded) -> GoogleAccount | None:
        """The account whose live access token the request carries."""
        header = recorded.headers.get("authorization", "")
        owner = self.oauth.owner(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None
        return self.accounts.get(owner) if owner else None

    def userinfo(self, recorded: Recorded) -> Reply:
        """``GET /oauth2/v1/userinfo``: the signed-in user's address."""
        account = self.account_for(recorded)
        if account is None:
            return _unauthenticated()
        return Reply.json({"id": str(sum(map(ord, account.email)) * 7919), "email": account.email,
                           "verified_email": True, "picture": "https://lh3.googleusercontent.com/a/sim"})

    def projects(self, recorded: Recorded) -> Reply:
        """``GET /v1/projects`` (Cloud Resource Manager): the signed-in user's projects."""
        account = self.account_for(recorded)
        if account is None:
            return _unauthenticated()
        return Reply.json({"projects": [{"projectId": p, "name": p, "lifecycleState": "ACTIVE"}
                                        for p in account.projects]})
