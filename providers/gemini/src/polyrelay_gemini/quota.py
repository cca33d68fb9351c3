"""What Google's error answers mean for the credential that got them (gemini-cli, ai.google.dev rate limits).

Both upstreams answer with a google.rpc.Status whose ``details`` say more
than the status: ``ErrorInfo.reason`` tells Code Assist's short rate limit
from its daily quota, an exhausted Google One credit balance, and an account
or project that needs the user's action first; AI Studio's ``QuotaFailure``
names per-day quotas.  :func:`classify` turns them into a
:class:`~polyrelay.types.Verdict`; ``None`` leaves the answer to the core's
default (status, ``Retry-After``, the codec's ``RetryInfo`` reading).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from polyrelay import ir, jsonutil
from polyrelay.accounts import parse_time
from polyrelay.credentials import AUTH_COOLDOWN
from polyrelay.defaults import ACCOUNT_QUOTA_COOLDOWN
from polyrelay.dialects import get_dialect
from polyrelay.types import Verdict

_RPC = "type.googleapis.com/google.rpc."
#: A Code Assist rate limit without a usable delay: try this model on this project again soon.
RATE_LIMIT_FALLBACK = 1.0
#: Reasons that need the user's action on the project before it serves again.
ACTION_REQUIRED = frozenset({"VALIDATION_REQUIRED", "SERVICE_DISABLED"})


@attrs.frozen
class Problem:
    """A google.rpc.Status error, its ``ErrorInfo`` and ``Help`` pulled out."""

    error: ir.ErrorInfo
    reason: str = ""
    metadata: dict[str, Any] = attrs.field(factory=dict)
    links: tuple[str, ...] = ()
    quota_ids: tuple[str, ...] = ()

    @property
    def link(self) -> str:
        """The address Google gives for fixing the problem ('' when none)."""
        for key in ("validation_link", "validationUrl", "activationUrl"):
            if isinstance(self.metadata.get(key), str):
                return str(self.metadata[key])
        return self.links[0] if self.links else ""


def details(body: bytes) -> list[dict[str, Any]]:
    """The ``details`` of a google.rpc.Status body (also inside a streamed one-element array)."""
    try:
        data = jsonutil.loads(body)
    except ValueError:
        return []
    data = data[0] if isinstance(data, list) and data else data
    error = data.get("error") if isinstance(data, dict) else None
    found = error.get("details") if isinstance(error, dict) else None
    return [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []


def read_problem(status: int, body: bytes) -> Problem:
    """The error and the details that matter here."""
    found = details(body)
    info = next((d for d in found if str(d.get("@type", "")).endswith("ErrorInfo")), {})
    help_links = [str(link["url"]) for d in found if str(d.get("@type", "")).endswith("Help")
                  for link in d.get("links") or [] if isinstance(link, dict) and isinstance(link.get("url"), str)]
    quota_ids = [str(v.get("quotaId", "")) for d in found for v in d.get("violations") or [] if isinstance(v, dict)]
    metadata = info.get("metadata")
    return Problem(
        error=get_dialect(ir.GEMINI).decode_error(status, body),
        reason=str(info.get("reason") or ""),
        metadata=metadata if isinstance(metadata, dict) else {},
        links=tuple(help_links),
        quota_ids=tuple(quota_ids),
    )


def classify(status: int, body: bytes) -> Verdict | None:
    """Google's signals the status alone hides; ``None`` for the core's default."""
    problem = read_problem(status, body)
    error, reason = problem.error, problem.reason
    if reason in ACTION_REQUIRED:
        link = problem.link
        message = f"{error.message} ({reason}{': ' + link if link else ''})"
        return Verdict("next", attrs.evolve(error, message=message, code=reason), scope="credential",
                       disable=message)
    if reason == "INSUFFICIENT_G1_CREDITS_BALANCE":
        return Verdict("next", error, scope="credential", cooldown=error.retry_after or ACCOUNT_QUOTA_COOLDOWN,
                       reason="Google One AI credits exhausted")
    if status == 400 and reason == "API_KEY_INVALID":
        return Verdict("next", error, scope="credential", cooldown=AUTH_COOLDOWN)
    if status != 429:
        return None
    if reason == "RATE_LIMIT_EXCEEDED":
        error = attrs.evolve(error, retry_after=error.retry_after or RATE_LIMIT_FALLBACK)
        return Verdict("next", error, scope="model", cooldown=error.retry_after, reason="rate limit")
    if reason == "QUOTA_EXHAUSTED":
        reset = _seconds_until(problem.metadata.get("quotaResetTimeStamp"))
        seconds = reset if reset is not None else error.retry_after
        if seconds is None:
            seconds = until_pacific_midnight()
        error = attrs.evolve(error, retry_after=seconds)
        return Verdict("next", error, scope="model", cooldown=seconds, reason="daily quota exhausted")
    if any("PerDay" in q for q in problem.quota_ids):
        # AI Studio's RetryInfo is short, but a per-day quota only resets at midnight Pacific time.
        error = attrs.evolve(error, retry_after=until_pacific_midnight())
        return Verdict("next", error, scope="model", cooldown=error.retry_after, reason="daily quota exhausted")
    return None


def _seconds_until(stamp: Any) -> float | None:
    """Seconds from now until an RFC 3339 time stamp (None when it is not one)."""
    when = parse_time(stamp) if isinstance(stamp, str) else None
    return None if when is None else max(1.0, when - time.time())


def until_pacific_midnight() -> float:
    """Seconds until Google's daily quotas reset (midnight, US Pacific time)."""
    try:
        zone: Any = ZoneInfo("America/Los_Angeles")
    except ZoneInfoNotFoundError:  # no tz database on this host: standard time is close enough
        zone = timezone(timedelta(hours=-8))
    now = datetime.now(zone)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, midnight.timestamp() - time.time())
