"""OAuth 2.0 wire pieces every account provider shares.

PKCE (RFC 7636, S256 only), the token endpoint (JSON or form bodies, the
RFC 6749 error answer), the standard way a token answer updates a stored
CLIProxyAPI-style file, and :class:`OAuthRefresh`, a declarative
``Provider.refresh``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import attrs

from polyrelay import jsonutil

if TYPE_CHECKING:
    from polyrelay.types import Credential, Provider

BodyStyle = Literal["json", "form"]

#: Token-endpoint error codes after which retrying the same grant is pointless.
FATAL_GRANT_ERRORS = frozenset({"invalid_grant", "refresh_token_reused", "invalid_client", "unauthorized_client"})
TOKEN_TIMEOUT = 30.0
ANSWER_LIMIT = 1024 * 1024


def pkce_pair() -> tuple[str, str]:
    """``(code_verifier, code_challenge)`` for PKCE S256 (43-character verifier)."""
    verifier = secrets.token_urlsafe(32)
    return verifier, pkce_challenge(verifier)


def pkce_challenge(verifier: str) -> str:
    """The S256 challenge of ``verifier``: unpadded base64url of its SHA-256."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_state() -> str:
    """An unguessable ``state`` value."""
    return secrets.token_urlsafe(24)


def rfc3339(unix: float) -> str:
    """``unix`` seconds as CLIProxyAPI writes times (``2026-12-01T20:00:00Z``)."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> float | None:
    """Unix seconds from an RFC 3339 string or an epoch number (ms when it is that large); None if unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) / 1000 if value > 1e11 else float(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


class TokenError(Exception):
    """The token endpoint refused a grant, or could not be reached.

    ``code`` is the RFC 6749 ``error`` (``invalid_grant`` …) when the
    endpoint sent one; ``status`` the HTTP status (None: no answer).
    """

    def __init__(self, message: str, code: str = "", status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.retry_after = retry_after

    @property
    def fatal(self) -> bool:
        """The grant itself is dead (retrying cannot help)."""
        return self.code in FATAL_GRANT_ERRORS


class RefreshRejected(Exception):
    """A refresh failed for good: the account must be disabled with this reason."""


def _error_fields(status: int, body: bytes) -> tuple[str, str]:
    try:
        data = jsonutil.loads(body)
    except ValueError:
        return "", f"HTTP {status}"
    if not isinstance(data, dict):
        return "", f"HTTP {status}"
    error = data.get("error")
    if isinstance(error, dict):  # some endpoints nest {"error": {"code"|"type", "message"}}
        code = str(error.get("code") or error.get("type") or "")
        return code, str(error.get("message") or code or f"HTTP {status}")
    code = str(error or data.get("code") or "")
    description = data.get("error_description") or data.get("message") or ""
    return code, f"{code}: {description}" if description else (code or f"HTTP {status}")


async def post_token(
    session: aiohttp.ClientSession,
    url: str,
    fields: Mapping[str, Any],
    style: BodyStyle = "form",
    headers: Mapping[str, str] | None = None,
    proxy: str | None = None,
    timeout: float = TOKEN_TIMEOUT,
) -> dict[str, Any]:
    """POST a grant to a token (or device) endpoint; the answer's JSON object.

    Raises :class:`TokenError` for an error answer, a non-JSON answer or a
    network failure; never waits longer than ``timeout``.
    """
    send_headers = {"accept": "application/json", **(headers or {})}
    kwargs: dict[str, Any] = {"timeout": aiohttp.ClientTimeout(total=timeout)}
    if proxy:
        kwargs["proxy"] = proxy
    if style == "json":
        send_headers["content-type"] = "application/json"
        kwargs["data"] = jsonutil.dumps(dict(fields))
    else:
        kwargs["data"] = {k: str(v) for k, v in fields.items()}
    try:
        async with session.post(url, headers=send_headers, **kwargs) as response:
            body = await response.content.read(ANSWER_LIMIT)
            status = response.status
            retry = response.headers.get("retry-after")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TokenError(f"token endpoint unreachable ({exc.__class__.__name__})") from None
    if status >= 400:
        code, message = _error_fields(status, body)
        retry_after = float(retry) if retry and retry.replace(".", "", 1).isdigit() else None
        raise TokenError(message, code=code, status=status, retry_after=retry_after)
    try:
        data = jsonutil.loads(body)
    except ValueError:
        raise TokenError(f"token endpoint answered {status} with a body that is not JSON", status=status) from None
    if not isinstance(data, dict):
        raise TokenError("token endpoint answered with something other than a JSON object", status=status)
    return data


def apply_tokens(credential: Credential, answer: Mapping[str, Any], now: float | None = None) -> None:
    """Update a flat CLIProxyAPI-style credential from a token answer, in place.

    ``access_token`` always; ``refresh_token`` and ``id_token`` only when the
    answer carries them (a refresh answer without a new refresh token keeps
    the old one); ``expired`` from ``expires_in``; ``last_refresh`` now.
    Every other field of ``credential.data`` is left as it was.
    """
    now = time.time() if now is None else now
    access = answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise TokenError("token answer carries no access_token")
    credential.secret = access
    credential.data["access_token"] = access
    refresh = answer.get("refresh_token")
    if isinstance(refresh, str) and refresh:
        credential.refresh_token = refresh
        credential.data["refresh_token"] = refresh
    id_token = answer.get("id_token")
    if isinstance(id_token, str) and id_token:
        credential.data["id_token"] = id_token
    expires_in = answer.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        credential.expires_at = now + float(expires_in)
        credential.data["expired"] = rfc3339(credential.expires_at)
    credential.data["last_refresh"] = rfc3339(now)


def standard_refresh_fields(credential: Credential, client_id: str) -> dict[str, Any]:
    """The RFC 6749 refresh grant: ``grant_type``, ``refresh_token``, ``client_id``."""
    return {"grant_type": "refresh_token", "refresh_token": credential.refresh_token or "", "client_id": client_id}


@attrs.define
class OAuthRefresh:
    """A ``Provider.refresh`` built from a description of the token endpoint.

    ``fields`` builds the refresh grant body (default: the standard three
    fields); ``apply`` folds the answer into the credential (default:
    :func:`apply_tokens`).  ``url_name`` names the address in
    ``Provider.urls`` (so ``upstream-urls`` redirects it).  A fatal grant
    error raises :class:`RefreshRejected`; anything else :class:`TokenError`.
    """

    client_id: str
    style: BodyStyle = "form"
    url_name: str = "oauth-token"
    fields: Callable[[Credential, str], dict[str, Any]] = standard_refresh_fields
    apply: Callable[[Credential, Mapping[str, Any]], None] = apply_tokens
    headers: dict[str, str] = attrs.field(factory=dict)

    async def __call__(self, credential: Credential, session: aiohttp.ClientSession, provider: Provider) -> None:
        """Refresh ``credential`` in place (the core writes the file back)."""
        if not credential.refresh_token:
            raise RefreshRejected("no refresh token in the auth file")
        try:
            answer = await post_token(session, provider.url(self.url_name), self.fields(credential, self.client_id),
                                      self.style, self.headers)
        except TokenError as exc:
            if exc.fatal:
                raise RefreshRejected(str(exc)) from None
            raise
        self.apply(credential, answer)
