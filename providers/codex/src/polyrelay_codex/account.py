"""ChatGPT accounts: the auth file, the id token's claims, the token refresh.

The auth file is CLIProxyAPI's (``codex-<email>[-<plan>].json``)::

    {"type": "codex", "id_token": "...", "access_token": "...", "refresh_token": "...",
     "account_id": "...", "email": "...", "last_refresh": "<RFC 3339>", "expired": "<RFC 3339>"}

The account id, e-mail and plan come from the id token's claims
(``https://api.openai.com/auth`` holds ``chatgpt_account_id`` and
``chatgpt_plan_type``).  Refresh tokens rotate: every refresh answer carries
a new one, and replaying the old one fails with ``refresh_token_reused``.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import attrs

from polyrelay import Credential, Provider, jsonutil
from polyrelay.accounts import (
    OAuthRefresh,
    RefreshRejected,
    TokenError,
    apply_tokens,
    file_credential,
    rfc3339,
    standard_refresh_fields,
)

TYPE = "codex"
CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
AUTH_CLAIM = "https://api.openai.com/auth"
REFRESH_SCOPE = "openid profile email"
#: OpenAI's answers for a refresh token that is dead, beyond the core's ``invalid_grant`` and ``…_reused``.
DEAD_REFRESH = frozenset({"refresh_token_expired", "refresh_token_invalidated"})


@attrs.define
class Claims:
    """What the id token says about the account."""

    email: str = ""
    account_id: str = ""
    plan: str = ""


def jwt_payload(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (it came straight from the token endpoint over TLS)."""
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
                  plan=text(auth.get("chatgpt_plan_type")))


def file_name(email: str, plan: str) -> str:
    """``codex-<email>[-<plan>].json``, with characters a file name cannot hold replaced."""
    stem = "-".join(p for p in ("codex", email or "account", plan) if p)
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", stem) + ".json"


def _adopt_claims(data: dict[str, Any]) -> None:
    """Account id and e-mail from the id token, where the file lacks them or they changed."""
    found = claims(str(data.get("id_token") or ""))
    if found.account_id:
        data["account_id"] = found.account_id
    if found.email:
        data["email"] = found.email


def account_data(answer: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    """A new auth file's fields from a code-exchange answer."""
    now = time.time() if now is None else now
    data: dict[str, Any] = {"type": TYPE}
    for key in ("id_token", "access_token", "refresh_token"):
        if isinstance(answer.get(key), str):
            data[key] = answer[key]
    _adopt_claims(data)
    expires_in = answer.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) else 3600.0
    data["last_refresh"] = rfc3339(now)
    data["expired"] = rfc3339(now + lifetime)
    return data


def credential(data: dict[str, Any], path: Path) -> Credential | None:
    """A credential for a ``type: "codex"`` auth file; None for other files."""
    if data.get("type") != TYPE:
        return None
    if not data.get("account_id"):
        _adopt_claims(data)
    found = file_credential(TYPE, path, data)
    if found.expires_at is None:  # a hand-made file: the access token says when it ends
        exp = jwt_payload(found.secret).get("exp")
        found.expires_at = float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
    return found


def _refresh_fields(credential: Credential, client_id: str) -> dict[str, Any]:
    return {**standard_refresh_fields(credential, client_id), "scope": REFRESH_SCOPE}


def _apply(credential: Credential, answer: Mapping[str, Any]) -> None:
    apply_tokens(credential, answer)
    _adopt_claims(credential.data)


_REFRESH = OAuthRefresh(CLIENT_ID, style="form", fields=_refresh_fields, apply=_apply)


async def refresh(credential: Credential, session: aiohttp.ClientSession, provider: Provider) -> None:
    """Renew the access token and the rotating refresh token in place (the core writes the file)."""
    try:
        await _REFRESH(credential, session, provider)
    except TokenError as exc:
        if exc.code in DEAD_REFRESH:
            raise RefreshRejected(str(exc)) from None
        raise
