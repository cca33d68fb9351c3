"""ChatGPT accounts: the auth file, the id token's claims, the token refresh.

The auth file is CLIProxyAPI's (``codex-<email>[-<plan>].json``)::

    {"type": "codex", "id_token": "...", "access_token": "...", "refresh_token": "...",
     "account_id": "...", "email": "...", "last_refresh": "<RFC 3339>", "expired": "<RFC 3339>"}

The account id, e-mail and plan come from the id token's claims
(``https://api.openai.com/auth`` holds ``chatgpt_account_id`` and
``chatgpt_plan_type``).  Refresh tokens rotate: every refresh answer carries
a new one, and the old one is dead (``refresh_token_reused``).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import attrs

from polyrelay import jsonutil
from polyrelay.types import Credential, Provider

TYPE = "codex"
CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
AUTH_CLAIM = "https://api.openai.com/auth"
REFRESH_SCOPE = "openid profile email"
#: Refresh answers that mean the refresh token is dead: only a new login helps.
DEAD_REFRESH = frozenset({"invalid_grant", "refresh_token_reused", "refresh_token_expired",
                          "refresh_token_invalidated"})
REFRESH_TIMEOUT = 30.0


class RefreshRejected(Exception):
    """The token endpoint refused the refresh token for good; ``reason`` says why (no secrets)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.define
class Claims:
    """What the id token says about the account."""

    email: str = ""
    account_id: str = ""
    plan: str = ""
    user_id: str = ""


def jwt_payload(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the token endpoint just handed it to us over TLS)."""
    parts = token.split(".")
    if len(parts) < 2:
        return {}
    try:
        data = jsonutil.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def claims(id_token: str) -> Claims:
    """Account id, e-mail and plan from an id token (empty strings where absent)."""
    payload = jwt_payload(id_token)
    auth = payload.get(AUTH_CLAIM)
    auth = auth if isinstance(auth, dict) else {}

    def text(value: Any) -> str:
        return value if isinstance(value, str) else ""

    return Claims(email=text(payload.get("email")), account_id=text(auth.get("chatgpt_account_id")),
                  plan=text(auth.get("chatgpt_plan_type")), user_id=text(auth.get("chatgpt_user_id")))


def rfc3339(seconds: float) -> str:
    """A unix time as CLIProxyAPI writes it (UTC, second precision)."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> float | None:
    """An RFC 3339 time (``Z`` or an offset) as unix seconds; None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def expiry(data: dict[str, Any]) -> float | None:
    """When the access token expires: the file's ``expired``, else the token's own ``exp``."""
    when = parse_time(data.get("expired"))
    if when is None:
        exp = jwt_payload(str(data.get("access_token") or "")).get("exp")
        when = float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None
    return when


def file_name(email: str, plan: str) -> str:
    """``codex-<email>[-<plan>].json``, with characters a file name cannot hold replaced."""
    stem = "-".join(p for p in ("codex", email or "account", plan) if p)
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", stem) + ".json"


def token_data(answer: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The auth file's fields after a token answer, every field of ``previous`` kept.

    An answer without a new refresh token keeps the old one; the account id
    and e-mail come from the new id token when it has them.
    """
    data = dict(previous or {})
    now = time.time()
    for key in ("access_token", "refresh_token", "id_token"):
        value = answer.get(key)
        if isinstance(value, str) and value:
            data[key] = value
    found = claims(str(data.get("id_token") or ""))
    if found.account_id:
        data["account_id"] = found.account_id
    if found.email:
        data["email"] = found.email
    expires_in = answer.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) else None
    if lifetime is None:
        token_exp = expiry({"access_token": data.get("access_token")})
        lifetime = token_exp - now if token_exp is not None else 3600.0
    data["last_refresh"] = rfc3339(now)
    data["expired"] = rfc3339(now + lifetime)
    data["type"] = TYPE
    return data


def credential(data: dict[str, Any], path: Path) -> Credential | None:
    """A credential for a ``type: "codex"`` auth file; None for other files."""
    if data.get("type") != TYPE:
        return None
    token = data.get("access_token")
    found = claims(str(data.get("id_token") or ""))
    email = data.get("email") if isinstance(data.get("email"), str) else found.email
    if not data.get("account_id") and found.account_id:
        data["account_id"] = found.account_id
    priority = data.get("priority")
    return Credential(
        id=f"{TYPE}:{path.name}",
        provider=TYPE,
        secret=token if isinstance(token, str) else "",
        kind="oauth",
        label=email or path.stem,
        refresh_token=data.get("refresh_token") if isinstance(data.get("refresh_token"), str) else None,
        expires_at=expiry(data),
        proxy_url=data.get("proxy_url") if isinstance(data.get("proxy_url"), str) and data["proxy_url"] else None,
        priority=priority if isinstance(priority, int) and not isinstance(priority, bool) else 0,
        disabled=data.get("disabled") is True,
        path=path,
        data=data,
    )


def _refusal(status: int, body: bytes) -> tuple[str | None, str]:
    """(error code, readable reason) of a token endpoint's refusal."""
    try:
        data = jsonutil.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return None, f"token endpoint answered {status}"
    err = data.get("error")
    if isinstance(err, dict):
        code, message = err.get("code") or err.get("type"), err.get("message")
    else:
        code, message = err, data.get("error_description")
    code = code if isinstance(code, str) else None
    reason = message if isinstance(message, str) and message else (code or f"token endpoint answered {status}")
    return code, f"{code}: {reason}" if code and code not in reason else reason


async def refresh(credential: Credential, session: aiohttp.ClientSession, provider: Provider) -> None:
    """Renew the access token (and the rotating refresh token) in place.

    Raises :class:`RefreshRejected` when the refresh token is dead, any
    other exception when the endpoint could not be asked (try again later).
    """
    if not credential.refresh_token:
        raise RefreshRejected("the auth file holds no refresh token; run `polyrelay login codex`")
    form = {"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": credential.refresh_token,
            "scope": REFRESH_SCOPE}
    async with session.post(provider.url("oauth-token"), data=form, headers={"accept": "application/json"},
                            timeout=aiohttp.ClientTimeout(total=REFRESH_TIMEOUT)) as response:
        body = await response.read()
        status = response.status
    if status >= 300:
        code, reason = _refusal(status, body)
        if code in DEAD_REFRESH or status in (400, 401):
            raise RefreshRejected(reason)
        raise RuntimeError(f"token endpoint answered {status}")
    answer = jsonutil.loads(body)
    if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
        raise RuntimeError("token endpoint answered without an access token")
    credential.data = token_data(answer, credential.data)
    credential.secret = credential.data["access_token"]
    credential.refresh_token = credential.data.get("refresh_token")
    credential.expires_at = parse_time(credential.data["expired"])
