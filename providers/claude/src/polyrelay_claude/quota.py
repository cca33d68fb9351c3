"""Subscription quota signals.

Source: router-for-me/CLIProxyAPI internal/runtime/executor/helps/claude_ratelimit.go (the unified headers and
which claim is representative); https://docs.anthropic.com/en/api/errors (529, 403).

A 429 with ``anthropic-ratelimit-unified-*`` headers names the window that
ran out.  An account-wide window (5-hour, 7-day) cools the whole account
until the reset the representative claim names; a per-model weekly window
(``7d_oi`` and kin) cools only that model.  529 ``overloaded_error`` is
Anthropic's capacity, not the account's: move on without a cooldown.  403
``permission_error`` cools the account with Anthropic's reason shown.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Literal

import attrs

from polyrelay import defaults
from polyrelay.credentials import AUTH_COOLDOWN
from polyrelay.types import Provider, Verdict

Scope = Literal["model", "credential"]
PREFIX = "anthropic-ratelimit-unified-"
#: Account-wide windows and the claim names that point at them.
ACCOUNT_WINDOWS = ("5h", "7d")
CLAIMS = {"five_hour": "5h", "seven_day": "7d"}
#: A little past the reset, so the first retry does not land a hair early.
GRACE = 2.0


def _windows(headers: Mapping[str, str]) -> dict[str, tuple[str, float | None]]:
    """``{window: (status, reset unix seconds)}`` from the unified headers."""
    found: dict[str, tuple[str, float | None]] = {}
    for name, value in headers.items():
        lower = name.lower()
        if not lower.startswith(PREFIX) or not lower.endswith("-status"):
            continue
        window = lower[len(PREFIX):-len("-status")]
        if window and window != "overage":
            reset = headers.get(f"{PREFIX}{window}-reset")
            found[window] = (value.strip().lower(), _number(reset))
    return found


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def unified_cooldown(headers: Mapping[str, str], now: float | None = None) -> tuple[Scope, float, str] | None:
    """``(scope, seconds, reason)`` for a unified-limit 429; None when the headers say nothing."""
    now = time.time() if now is None else now
    windows = _windows(headers)
    rejected = {w: reset for w, (status, reset) in windows.items() if status == "rejected"}
    overall = (headers.get(f"{PREFIX}status") or "").lower()
    if not rejected and overall != "rejected":
        return None
    account = {w: r for w, r in rejected.items() if w in ACCOUNT_WINDOWS}
    model_only = {w: r for w, r in rejected.items() if w not in ACCOUNT_WINDOWS}
    if model_only and not account:
        resets = [r for r in model_only.values() if r is not None]
        if not resets:
            return None
        window = max(model_only, key=lambda w: model_only[w] or 0)
        return "model", max(1.0, max(resets) - now + GRACE), f"weekly {window} limit of this model"
    claim = CLAIMS.get((headers.get(f"{PREFIX}representative-claim") or "").lower())
    reset = account.get(claim) if claim else None
    if reset is None:
        reset = _number(headers.get(f"{PREFIX}reset")) or max((r for r in account.values() if r), default=None)
    if reset is None:
        return None
    window = claim or next(iter(account), "unified")
    return "credential", max(1.0, reset - now + GRACE), f"subscription {window} limit reached"


def classify(provider: Provider, status: int, headers: Mapping[str, str], body: bytes) -> Verdict | None:
    """Claude's own verdicts; None leaves the answer to the core's defaults."""
    if status not in (403, 429, 529):
        return None
    verdict = defaults.classify_response(provider, status, headers, body)
    if status == 429:
        found = unified_cooldown(headers)
        if found is None:
            return None
        scope, seconds, reason = found
        return attrs.evolve(verdict, action="next", scope=scope, cooldown=seconds, reason=reason)
    if status == 529:
        return attrs.evolve(verdict, action="next", scope="model", cooldown=0.0)
    error = verdict.error
    if error is not None and error.kind in ("permission", "permission_error"):
        return attrs.evolve(verdict, action="next", scope="credential", cooldown=AUTH_COOLDOWN,
                            reason=f"permission_error: {error.message}"[:200])
    return None
