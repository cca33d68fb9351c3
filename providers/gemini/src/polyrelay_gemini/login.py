"""``polyrelay login gemini``: what is Google's in the login; the OAuth flow itself is the core's.

After the browser flow (Gemini CLI's client, ``access_type=offline``,
``prompt=consent``, PKCE, the registered ``http://localhost:8085/oauth2callback``)
the token answer becomes an account:

1. the address from ``userinfo``;
2. ``loadCodeAssist`` tells the tier: onboarded (``currentTier``), not yet,
   or refused (``ineligibleTiers``: the login fails with Google's reason and
   link);
3. the project: ``--project-id``, else the one Code Assist already has,
   else (tiers that bill a project of the user's) the user's Cloud projects,
   picked at the terminal when there are several; a free-tier account sends
   none and gets a managed one;
4. ``onboardUser`` with the default tier when not onboarded, polled until
   the long-running operation is ``done``; the project it returns is the
   one stored.

The file is CLIProxyAPI's ``gemini-<email>-<project>.json``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from polyrelay import jsonutil
from polyrelay.accounts import AccountFile, BrowserLogin, LoginContext, LoginError, LoginFlow, LoginOption, rfc3339
from polyrelay.urls import join_path
from polyrelay_gemini.accounts import CLIENT_ID, CLIENT_SECRET, FILE_TYPE, NAME, SCOPES, TOKEN_URI
from polyrelay_gemini.codeassist import headers

CALLBACK_PORT = 8085
METADATA = {"ideType": "IDE_UNSPECIFIED", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}
#: How often the onboarding operation is polled, and for how long at most.
POLL_INTERVAL = 2.0
POLL_LIMIT = 60.0
CALL_TIMEOUT = 30.0
FREE_TIER = "free-tier"


def login_flow(urls: Mapping[str, str]) -> LoginFlow:
    """The Gemini CLI login, with the provider's default addresses."""
    return LoginFlow(
        provider=NAME, client_id=CLIENT_ID, scopes=list(SCOPES), urls=dict(urls), account=build_account,
        browser=BrowserLogin(port=CALLBACK_PORT, redirect_path="/oauth2callback",
                             authorize_params={"access_type": "offline", "prompt": "consent"},
                             exchange_fields={"client_secret": CLIENT_SECRET}),
        options=[LoginOption("--project-id", "the Google Cloud project to use (default: Code Assist's own, or "
                             "the one you pick)")],
        description="Log in to a Google account the way Gemini CLI does, and set up Code Assist for it.",
    )


async def build_account(ctx: LoginContext, tokens: Mapping[str, Any]) -> AccountFile:
    """The token answer → a CLIProxyAPI ``gemini`` auth file, with the account onboarded."""
    access = tokens.get("access_token")
    if not isinstance(access, str) or not access:
        raise LoginError("Google's token answer carries no access_token")
    if not isinstance(tokens.get("refresh_token"), str):
        raise LoginError("Google gave no refresh token; remove polyrelay's access at "
                         "https://myaccount.google.com/permissions and log in again")
    google = Google(ctx.session, ctx.urls, access)
    email = await google.email()
    requested = ctx.option("project_id") or ""
    project = await setup(ctx, google, requested)
    expires_in = tokens.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, int | float) else 3599.0
    token = {"access_token": access, "token_type": str(tokens.get("token_type") or "Bearer"),
             "refresh_token": tokens["refresh_token"], "expiry": rfc3339(time.time() + lifetime),
             "token_uri": TOKEN_URI, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "scopes": list(SCOPES),
             "universe_domain": "googleapis.com"}
    if isinstance(tokens.get("id_token"), str):
        token["id_token"] = tokens["id_token"]
    data = {"token": token, "project_id": project, "email": email, "auto": not requested, "checked": True,
            "type": FILE_TYPE}
    ctx.say(f"Logged in as {email}; Code Assist project {project}.")
    return AccountFile(name=f"gemini-{email}-{project}.json", data=data)


class Google:
    """The calls a login makes with the new token (userinfo, Code Assist setup, the project list)."""

    def __init__(self, session: aiohttp.ClientSession, urls: Mapping[str, str], token: str) -> None:
        self.session = session
        self.urls = urls
        self.token = token

    async def call(self, method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One JSON call; a Google error becomes a :class:`LoginError` with Google's message."""
        try:
            async with self.session.request(
                method, url, data=None if body is None else jsonutil.dumps(body),
                headers=headers(self.token, "", False), timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT),
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise LoginError(f"{_where(url)} unreachable ({exc.__class__.__name__})") from None
        try:
            data = jsonutil.loads(raw) if raw.strip() else {}
        except ValueError:
            data = None
        if status >= 400 or not isinstance(data, dict):
            raise LoginError(f"{_where(url)} answered {status}: {_message(data) or 'no readable answer'}")
        return data

    async def email(self) -> str:
        """The signed-in address."""
        email = (await self.call("GET", self.urls["userinfo"])).get("email")
        if not isinstance(email, str) or not email:
            raise LoginError("Google's userinfo answer names no email address")
        return email

    async def load(self, project: str) -> dict[str, Any]:
        """``loadCodeAssist``: the account's tiers and project."""
        body: dict[str, Any] = {"metadata": dict(METADATA)}
        if project:
            body["cloudaicompanionProject"] = project
        return await self.call("POST", f"{self.urls['code-assist']}:loadCodeAssist", body)

    async def onboard(self, tier: str, project: str) -> str:
        """``onboardUser`` polled until done; the project the operation returns."""
        body: dict[str, Any] = {"tierId": tier, "metadata": dict(METADATA)}
        if project and tier != FREE_TIER:  # the free tier refuses a project (Precondition Failed)
            body["cloudaicompanionProject"] = project
        url = f"{self.urls['code-assist']}:onboardUser"
        deadline = time.monotonic() + POLL_LIMIT
        operation = await self.call("POST", url, body)
        while not operation.get("done"):
            if time.monotonic() + POLL_INTERVAL > deadline:
                raise LoginError(f"Code Assist onboarding did not finish within {POLL_LIMIT:g} s; try again")
            await asyncio.sleep(POLL_INTERVAL)
            name = operation.get("name")
            operation = await self.call("GET", join_path(self.urls["code-assist"], *name.split("/"))) \
                if isinstance(name, str) and name.startswith("operations/") else await self.call("POST", url, body)
        if isinstance(operation.get("error"), dict):
            raise LoginError(f"Code Assist onboarding failed: {_message(operation)}")
        found = _project_id((operation.get("response") or {}).get("cloudaicompanionProject"))
        if not found:
            raise LoginError("Code Assist onboarding finished without a project; pass --project-id")
        return found

    async def projects(self) -> list[str]:
        """The Cloud projects the account can use."""
        found = (await self.call("GET", self.urls["projects"])).get("projects") or []
        return [str(p["projectId"]) for p in found if isinstance(p, dict) and p.get("projectId")]


async def setup(ctx: LoginContext, google: Google, requested: str) -> str:
    """Tier and project, onboarding the account when needed; the Code Assist project to store."""
    loaded = await google.load(requested)
    current = loaded.get("currentTier")
    allowed = [t for t in loaded.get("allowedTiers") or [] if isinstance(t, dict)]
    refused = [t for t in loaded.get("ineligibleTiers") or [] if isinstance(t, dict)]
    if not isinstance(current, dict) and (not allowed or any(t.get("reasonCode") == "VALIDATION_REQUIRED"
                                                              for t in refused)):
        raise LoginError(_refusal(refused))
    known = _project_id(loaded.get("cloudaicompanionProject"))
    if isinstance(current, dict):
        if requested or known:
            return requested or known
        tier = current
    else:
        tier = next((t for t in allowed if t.get("isDefault")), {"id": "legacy-tier"})
    tier_id = str(tier.get("id") or "legacy-tier")
    project = requested or known
    if not project and tier_id != FREE_TIER:
        project = await _pick(ctx, await google.projects())
    if isinstance(current, dict):
        return project
    ctx.say(f"Setting up Code Assist ({tier_id}); this can take a minute.")
    return await google.onboard(tier_id, project)


async def _pick(ctx: LoginContext, projects: list[str]) -> str:
    """One of the user's projects: the only one, or the one they choose (never waits without a terminal)."""
    if not projects:
        raise LoginError("this account has no Google Cloud project to bill Code Assist to; create one, or pass "
                         "--project-id")
    if len(projects) == 1:
        return projects[0]
    ctx.say("This account has several Google Cloud projects:")
    for n, project in enumerate(projects, 1):
        ctx.say(f"  {n}. {project}")
    answer = await ctx.ask(f"Which one should Code Assist use? [1-{len(projects)}] ")
    if answer is None:
        raise LoginError(f"several projects ({', '.join(projects)}): pass --project-id to choose one")
    choice = answer.strip()
    if choice in projects:
        return choice
    if choice.isdigit() and 1 <= int(choice) <= len(projects):
        return projects[int(choice) - 1]
    raise LoginError(f"{choice!r} is none of the listed projects; pass --project-id to choose one")


def _refusal(refused: list[dict[str, Any]]) -> str:
    """Google's reason (and the link to act on it) for an account it will not serve."""
    if not refused:
        return "Google offers this account no Code Assist tier"
    first = refused[0]
    reason = str(first.get("reasonMessage") or first.get("reasonCode") or "not eligible")
    link = first.get("validationUrl") or first.get("validation_url")
    code = first.get("reasonCode")
    text = f"Google will not serve this account ({code}): {reason}" if code else f"Google will not serve this " \
        f"account: {reason}"
    return f"{text}; {link}" if isinstance(link, str) and link else text


def _project_id(value: Any) -> str:
    """A project as Code Assist writes it: a plain id or ``{id, name}``."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _message(data: Any) -> str:
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("status") or "")
    return str(error or "")


def _where(url: str) -> str:
    return url.split("?", 1)[0]
