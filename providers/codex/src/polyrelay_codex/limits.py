"""What the ChatGPT backend's limits mean for an account.

* 429 ``usage_limit_reached``: the account's 5-hour or weekly window is
  spent, for every model; it comes back at ``resets_at`` (else after
  ``resets_in_seconds``), so the whole account cools until then.
* ``usage_not_included``: the plan does not include Codex usage.  Every model
  the ChatGPT backend serves is Codex usage, so the account can serve none:
  it is disabled with the backend's reason (shown by ``polyrelay
  credentials``, kept in its file) until the user logs in again.
* 400 "The '<model>' model is not supported when using Codex with a ChatGPT
  account": that one model stays off the account for a day.
* 503 ``server_is_overloaded`` / ``slow_down``, or "Selected model is at
  capacity": nobody's fault; a short cooldown and the next account.
* ``x-codex-primary-*`` / ``x-codex-secondary-*`` headers on every answer:
  how much of each window is used, kept per account (:class:`Window`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import attrs

from polyrelay import ir, jsonutil
from polyrelay.dialects import openai_errors
from polyrelay.types import Credential, Verdict

log = logging.getLogger("polyrelay.codex")

OVERLOAD_COOLDOWN = 15.0
#: When a usage limit names no reset (never seen, but a guess must be bounded).
USAGE_LIMIT_FALLBACK = 15 * 60.0
#: How long an account stays off a model its plan does not serve.
NOT_INCLUDED_COOLDOWN = 24 * 3600.0
OVERLOAD_CODES = frozenset({"server_is_overloaded", "slow_down"})
WARN_AT_PERCENT = 90.0
#: The backend's 400 for a model the account's plan does not serve.
NOT_FOR_ACCOUNT = "model is not supported when using Codex with a ChatGPT account"
WINDOWS = ("primary", "secondary")


@attrs.define
class Window:
    """One usage window of an account, as the backend's headers describe it."""

    used_percent: float
    window_minutes: int | None = None
    resets_at: float | None = None  # unix seconds


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def windows(headers: Mapping[str, str], now: float | None = None) -> dict[str, Window]:
    """The windows an answer's ``x-codex-*`` headers describe (none when absent)."""
    now = time.time() if now is None else now
    found: dict[str, Window] = {}
    for name in WINDOWS:
        used = _number(headers.get(f"x-codex-{name}-used-percent"))
        if used is None:
            continue
        minutes = _number(headers.get(f"x-codex-{name}-window-minutes"))
        resets_at = _number(headers.get(f"x-codex-{name}-reset-at"))
        after = _number(headers.get(f"x-codex-{name}-reset-after-seconds"))
        if resets_at is None and after is not None:
            resets_at = now + after
        found[name] = Window(used, int(minutes) if minutes is not None else None, resets_at)
    return found


def _error_object(body: bytes) -> dict[str, Any]:
    try:
        data = jsonutil.loads(body)
    except ValueError:
        return {}
    return openai_errors.error_source(data) if isinstance(data, dict) else {}


def usage_limit_reset(err: Mapping[str, Any], headers: Mapping[str, str], now: float | None = None,
                      hint: float | None = None) -> float:
    """Seconds until a spent account comes back.

    ``resets_at``, else ``resets_in_seconds``, else ``hint`` (the codec's
    reading of an in-stream error, whose re-encoded body no longer holds
    them), else the reset of a spent window in the headers.
    """
    now = time.time() if now is None else now
    resets_at = err.get("resets_at")
    if isinstance(resets_at, (int, float)) and not isinstance(resets_at, bool):
        return max(0.0, float(resets_at) - now)
    resets_in = err.get("resets_in_seconds")
    if isinstance(resets_in, (int, float)) and not isinstance(resets_in, bool):
        return max(0.0, float(resets_in))
    if hint is not None:
        return max(0.0, hint)
    spent = [w.resets_at for w in windows(headers, now).values() if w.used_percent >= 100 and w.resets_at]
    return max(0.0, max(spent) - now) if spent else USAGE_LIMIT_FALLBACK


def classify(error: ir.ErrorInfo, headers: Mapping[str, str], body: bytes) -> Verdict | None:
    """The verdict for the backend's limit answers; ``None`` for everything else.

    ``error`` is the decoded error; ``body`` the raw answer (or the error
    re-encoded when it arrived inside a stream), read for the reset fields.
    """
    err = _error_object(body)
    kind = error.code or err.get("type") or err.get("code")
    if kind == "usage_limit_reached" or err.get("type") == "usage_limit_reached":
        seconds = usage_limit_reset(err, headers, hint=error.retry_after)
        plan = err.get("plan_type")
        message = error.message or "usage limit reached"
        if isinstance(plan, str):
            message = f"{message} (plan: {plan})"
        limited = attrs.evolve(error, status=429, kind="rate_limit", code="usage_limit_reached",
                               message=message, retry_after=seconds)
        return Verdict("next", limited, scope="credential", cooldown=seconds, reason=f"usage_limit_reached: {message}")
    if kind == "usage_not_included" or err.get("type") == "usage_not_included":
        refused = attrs.evolve(error, kind="permission", code="usage_not_included")
        plan = err.get("plan_type")
        reason = f"usage_not_included: {error.message}" + (f" (plan: {plan})" if isinstance(plan, str) else "")
        return Verdict("next", refused, scope="credential", disable=reason)
    if error.status == 400 and NOT_FOR_ACCOUNT in (error.message or ""):
        # The account's plan lacks the model; another account or a key may have it.
        return Verdict("next", attrs.evolve(error, kind="permission"), scope="model", cooldown=NOT_INCLUDED_COOLDOWN,
                       reason=error.message)
    if kind in OVERLOAD_CODES or "at capacity" in (error.message or ""):
        busy = attrs.evolve(error, status=503 if error.status < 500 else error.status, kind="overloaded")
        return Verdict("next", busy, scope="model", cooldown=OVERLOAD_COOLDOWN, reason="overloaded")
    return None


def record_usage(credential: Credential, headers: Mapping[str, str]) -> dict[str, Window]:
    """Keep an answer's windows on ``credential.quota``; log once when one passes 90 %.

    "Once" per window: the mark is remembered with the window and forgotten
    when a new window starts below it.
    """
    seen = windows(headers)
    for name, window in seen.items():
        high = window.used_percent >= WARN_AT_PERCENT
        warned = high and bool(credential.quota.get(name, {}).get("warned"))
        if high and not warned:
            length = f"{window.window_minutes}-minute" if window.window_minutes else name
            log.warning("codex account %s has used %.0f%% of its %s window", credential.label,
                        window.used_percent, length)
        credential.quota[name] = {**attrs.asdict(window), "warned": high}
    return seen
