"""Google accounts logged in the way Gemini CLI logs in, as CLIProxyAPI stores them (gemini-cli, CLIProxyAPI).

A ``type: "gemini"`` auth file holds one Google login: the OAuth token
(nested under ``token``, mirrored at the top level after a refresh), the
``email`` and ``project_id``, one Cloud project or several joined by
commas.  Each project is its own rotation member (:class:`ProjectCredential`):
quotas and cooldowns are per project, so a request that exhausts one
project's daily quota moves on to the next project of the same account.
The members of one file share one :class:`Account`, so one refresh serves
them all and one file is written back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import attrs

from polyrelay.accounts import RefreshRejected, TokenError, parse_time, post_token, rfc3339
from polyrelay.types import Credential, Provider

log = logging.getLogger("polyrelay.gemini")

NAME = "gemini"
FILE_TYPE = "gemini"
#: Gemini CLI's installed-app OAuth client (public by design: Google's installed-app flow).
CLIENT_ID = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"
CLIENT_SECRET = "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"
SCOPES = (
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
)
TOKEN_URI = "https://oauth2.googleapis.com/token"


@attrs.define(eq=False)
class Account:
    """One auth file: the Google login every project credential of it uses."""

    path: Path
    data: dict[str, Any] = attrs.field(repr=False)
    members: list[ProjectCredential] = attrs.field(factory=list, repr=False)
    #: One refresh at a time for the whole login, whichever project asked.
    lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, repr=False)

    @property
    def token(self) -> dict[str, Any]:
        """The nested ``token`` object (created when a file only has top-level fields)."""
        token = self.data.get("token")
        if not isinstance(token, dict):
            token = self.data["token"] = {}
        return token

    def access_token(self) -> str:
        """The stored access token (nested first, then CLIProxyAPI's top-level mirror)."""
        return _text(self.token, "access_token") or _text(self.data, "access_token")

    def refresh_token(self) -> str:
        """The stored refresh token."""
        return _text(self.token, "refresh_token") or _text(self.data, "refresh_token")

    def expires_at(self) -> float | None:
        """When the stored access token expires (unix seconds), if the file says."""
        return parse_time(self.token.get("expiry")) or parse_time(self.data.get("expiry"))

    def store_token(self, access_token: str, expires_in: float, refresh_token: str = "",
                    token_type: str = "Bearer") -> None:
        """A new token into the file's data, nested and mirrored, and into every member."""
        expires_at = time.time() + expires_in
        expiry = rfc3339(expires_at)
        fields: dict[str, Any] = {"access_token": access_token, "token_type": token_type, "expiry": expiry,
                                  "refresh_token": refresh_token or self.refresh_token()}
        self.token.update(fields)
        self.data.update(fields)
        self.adopt()

    def adopt(self) -> None:
        """Every member serves the token the file's data holds now."""
        for member in self.members:
            member.secret = self.access_token()
            member.expires_at = self.expires_at()
            member.refresh_token = self.refresh_token() or member.refresh_token

    def fresher_than(self, token: str, margin: float = 60.0) -> bool:
        """The file holds another token than ``token``, good for ``margin`` more seconds."""
        current = self.access_token()
        return bool(current) and current != token and (self.expires_at() or 0.0) > time.time() + margin

    def disable_all(self, reason: str, reporter: Credential) -> None:
        """The login itself is dead (its refresh token was refused): every project stops, in the file too.

        ``reporter``, the project whose refresh failed, is left to the core's
        disabling (which logs it and writes the file).
        """
        self.data["disabled"] = True
        self.data["disabled_reason"] = reason
        for member in self.members:
            if member is not reporter:
                member.disabled, member.disabled_reason = True, reason


async def refresh(credential: Credential, session: aiohttp.ClientSession, provider: Provider) -> None:
    """``Provider.refresh`` for Google accounts: one refresh per login, whichever project asks.

    A sibling project that refreshed a moment ago has left the new token in
    the shared file data: it is adopted without a call.  Google keeps the
    refresh token (an answer may still carry a new one); the access token
    goes into the nested ``token`` object and CLIProxyAPI's top-level
    mirror.  ``invalid_grant`` disables every project of the login.
    """
    account = credential.account if isinstance(credential, ProjectCredential) else None
    if account is None:
        raise RefreshRejected("not a Google account file")
    before = credential.secret
    async with account.lock:
        if credential.disabled:  # a sibling project found the login dead while this one waited
            raise RefreshRejected(credential.disabled_reason.removeprefix("refresh rejected: "))
        if credential.secret != before or account.fresher_than(before):
            account.adopt()  # a sibling project refreshed the login while this one waited
            return
        refresh_token = account.refresh_token()
        if not refresh_token:
            raise RefreshRejected("no refresh token in the auth file; run `polyrelay login gemini` again")
        fields = {"grant_type": "refresh_token", "refresh_token": refresh_token,
                  "client_id": _text(account.token, "client_id") or CLIENT_ID,
                  "client_secret": _text(account.token, "client_secret") or CLIENT_SECRET}
        try:
            answer = await post_token(session, provider.url("oauth-token"), fields, "form")
        except TokenError as exc:
            if exc.fatal:
                account.disable_all(f"refresh rejected: {exc}", credential)
                raise RefreshRejected(str(exc)) from None
            raise
        access, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(access, str) or not access:
            raise TokenError("Google's token answer carries no access_token")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) \
            else 3599.0
        new_refresh = answer.get("refresh_token")
        account.store_token(access, lifetime, new_refresh if isinstance(new_refresh, str) else "",
                            str(answer.get("token_type") or "Bearer"))


@attrs.define(eq=False)
class ProjectCredential(Credential):
    """One Cloud project of a Google account: what Code Assist requests are billed to."""

    project: str = ""
    email: str = ""
    account: Account | None = attrs.field(default=None, repr=False)

    def record_disabled(self, reason: str) -> None:
        """Keep the disabled state in the file: for this project only when the login has others."""
        if self.account is None or len(self.account.members) <= 1:
            super().record_disabled(reason)
            return
        self.data.setdefault("disabled_projects", {})[self.project] = reason


def projects_of(data: dict[str, Any]) -> list[str]:
    """The file's projects: ``project_id`` as one id or CLIProxyAPI's comma-joined list."""
    value = data.get("project_id")
    items = [str(v) for v in value] if isinstance(value, list) else str(value or "").split(",")
    return list(dict.fromkeys(p.strip() for p in items if p.strip()))


def credentials_from_file(data: dict[str, Any], path: Path) -> list[ProjectCredential] | None:
    """One credential per project of a ``type: "gemini"`` file; None for any other file."""
    if data.get("type") != FILE_TYPE:
        return None
    account = Account(path=path, data=data)
    email = _text(data, "email")
    projects = projects_of(data)
    if not projects:
        log.warning("auth file %s has no project_id: run `polyrelay login gemini` again to choose one", path.name)
        return None
    priority = data.get("priority")
    excluded = data.get("excluded_models")
    found = data.get("disabled_projects")
    off: dict[str, Any] = found if isinstance(found, dict) else {}
    members = [
        ProjectCredential(
            id=f"{NAME}:{path.name}" if len(projects) == 1 else f"{NAME}:{path.name}#{project}",
            provider=NAME,
            secret=account.access_token(),
            kind="oauth",
            label=f"{email or path.stem} ({project})",
            refresh_token=account.refresh_token() or None,
            expires_at=account.expires_at(),
            proxy_url=_text(data, "proxy_url") or None,
            priority=priority if isinstance(priority, int) and not isinstance(priority, bool) else 0,
            excluded_models=[m for m in excluded if isinstance(m, str)] if isinstance(excluded, list) else [],
            disabled=project in off,
            disabled_reason=str(off.get(project) or ""),
            path=path,
            data=data,
            project=project,
            email=email,
            account=account,
        )
        for project in projects
    ]
    account.members.extend(members)
    return members


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""
