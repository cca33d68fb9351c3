"""Google's side of a Gemini CLI login, as a fake: accounts, the consent screen, tokens, userinfo (§3.1).

:class:`GoogleAccounts` holds the accounts a test creates and every token
it issued.  It answers the three OAuth endpoints the way Google does:

* ``GET /o/oauth2/auth`` checks the authorization request (Gemini CLI's
  client id, the three scopes, ``access_type=offline``, ``prompt=consent``,
  ``state``, PKCE S256) and, as the user's browser would after consent,
  redirects to ``redirect_uri`` with a one-time ``code`` and the ``state``
  (or ``error=access_denied`` when the test says the user refuses);
* ``POST /token`` (form) exchanges a code (redirect URI, client secret and
  ``code_verifier`` checked) and refreshes, with ``invalid_grant`` for a
  revoked or unknown refresh token; access tokens last ``token_lifetime``;
* ``GET /oauth2/v1/userinfo`` (and ``v2``) names the token's account.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

import attrs

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


@attrs.define
class Token:
    email: str
    expires_at: float


def oauth_error(code: str, description: str, status: int = 400) -> Reply:
    """Google's OAuth error answer."""
    return Reply(status=status, body={"error": code, "error_description": description})


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class GoogleAccounts:
    """Accounts, codes and tokens; the OAuth endpoints' answers."""

    def __init__(self, token_lifetime: float = 3599.0) -> None:
        self.token_lifetime = token_lifetime
        self.accounts: dict[str, GoogleAccount] = {}
        self.tokens: dict[str, Token] = {}
        #: code → (email, redirect_uri, code_challenge)
        self.codes: dict[str, tuple[str, str, str]] = {}
        #: Who signs in at the consent screen; None: the user refuses.
        self.signing_in: str | None = None
        self.refreshes = 0
        self.revoked: set[str] = set()

    def add(self, email: str, projects: list[str] | None = None, **fields: Any) -> GoogleAccount:
        """Create an account (``fields`` as :class:`GoogleAccount`'s)."""
        account = GoogleAccount(email=email, refresh_token=f"1//sim-refresh-{next(_serial)}-{secrets.token_hex(8)}",
                                projects=list(projects or []), **fields)
        if account.onboarded and not account.project:
            account.project = account.projects[0] if account.projects else f"managed-{next(_serial)}"
        self.accounts[email] = account
        self.signing_in = self.signing_in or email
        return account

    def issue(self, email: str, lifetime: float | None = None) -> str:
        """A fresh access token for ``email`` (negative ``lifetime``: already expired)."""
        token = f"ya29.sim-{next(_serial)}-{secrets.token_hex(12)}"
        self.tokens[token] = Token(email, time.time() + (self.token_lifetime if lifetime is None else lifetime))
        return token

    def account_for(self, recorded: Recorded) -> GoogleAccount | None:
        """The account whose live access token the request carries."""
        header = recorded.headers.get("authorization", "")
        token = self.tokens.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None
        if token is None or token.expires_at <= time.time():
            return None
        return self.accounts.get(token.email)

    # -- endpoints ---------------------------------------------------------------

    def authorize(self, recorded: Recorded) -> Reply:
        """The consent screen: check the request, then redirect back as the browser would."""
        query = recorded.query
        wanted = {"client_id": CLIENT_ID, "response_type": "code", "access_type": "offline", "prompt": "consent",
                  "code_challenge_method": "S256"}
        wrong = [k for k, v in wanted.items() if query.get(k) != v]
        if set(query.get("scope", "").split(" ")) != set(SCOPES):
            wrong.append("scope")
        for name in ("redirect_uri", "state", "code_challenge"):
            if not query.get(name):
                wrong.append(name)
        if wrong:
            return Reply(status=400, body=f"Error 400: invalid_request ({', '.join(sorted(wrong))})".encode(),
                         headers={"content-type": "text/html"})
        redirect, state = query["redirect_uri"], query["state"]
        if self.signing_in is None:
            return Reply(status=302, body=b"", headers={
                "location": f"{redirect}?{urlencode({'error': 'access_denied', 'state': state})}"})
        code = f"4/sim-code-{secrets.token_hex(10)}"
        self.codes[code] = (self.signing_in, redirect, query["code_challenge"])
        return Reply(status=302, body=b"", headers={
            "location": f"{redirect}?{urlencode({'state': state, 'code': code, 'scope': query['scope']})}"})

    def token(self, recorded: Recorded) -> Reply:
        """``POST /token``: the code exchange and the refresh grant (form-encoded)."""
        if not recorded.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return oauth_error("invalid_request", "Invalid content type")
        form = {k: v[0] for k, v in parse_qs(recorded.body.decode()).items()}
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return oauth_error("invalid_client", "The OAuth client was not found.", 401)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._exchange(form)
        if grant == "refresh_token":
            return self._refresh(form)
        return oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant}")

    def _exchange(self, form: dict[str, str]) -> Reply:
        found = self.codes.pop(form.get("code", ""), None)
        if found is None:
            return oauth_error("invalid_grant", "Malformed auth code.")
        email, redirect, challenge = found
        if form.get("redirect_uri") != redirect:
            return oauth_error("redirect_uri_mismatch", "Bad Request")
        if _challenge(form.get("code_verifier", "")) != challenge:
            return oauth_error("invalid_grant", "Invalid code verifier.")
        account = self.accounts[email]
        return Reply.json(self._grant(email, refresh_token=account.refresh_token))

    def _refresh(self, form: dict[str, str]) -> Reply:
        token = form.get("refresh_token", "")
        account = next((a for a in self.accounts.values() if a.refresh_token == token), None)
        if account is None or token in self.revoked:
            return oauth_error("invalid_grant", "Token has been expired or revoked.")
        self.refreshes += 1
        return Reply.json(self._grant(account.email))

    def _grant(self, email: str, refresh_token: str = "") -> dict[str, Any]:
        answer: dict[str, Any] = {"access_token": self.issue(email), "expires_in": int(self.token_lifetime),
                                  "scope": " ".join(SCOPES), "token_type": "Bearer",
                                  "id_token": f"eyJhbGciOiJSUzI1NiJ9.sim-{next(_serial)}.sig"}
        if refresh_token:
            answer["refresh_token"] = refresh_token
        return answer

    def userinfo(self, recorded: Recorded) -> Reply:
        """``GET /oauth2/v1/userinfo``: the signed-in user's address."""
        account = self.account_for(recorded)
        if account is None:
            return Reply(status=401, body={"error": {"code": 401, "message": "Request is missing required "
                                                     "authentication credential.", "status": "UNAUTHENTICATED"}})
        return Reply.json({"id": str(abs(hash(account.email)) % 10**20), "email": account.email,
                           "verified_email": True, "picture": "https://lh3.googleusercontent.com/a/sim"})

    def projects(self, recorded: Recorded) -> Reply:
        """``GET /v1/projects`` (Cloud Resource Manager): the signed-in user's projects."""
        account = self.account_for(recorded)
        if account is None:
            return Reply(status=401, body={"error": {"code": 401, "message": "Request is missing required "
                                                     "authentication credential.", "status": "UNAUTHENTICATED"}})
        return Reply.json({"projects": [{"projectId": p, "name": p, "lifecycleState": "ACTIVE"}
                                        for p in account.projects]})
