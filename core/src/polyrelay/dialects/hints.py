"""Retry hints and durations as upstreams write them, for every codec.

Upstreams say how long to back off in two ways: a structured duration
(Google's ``retryDelay: "0.84s"``, ``quotaResetDelay: "539.4ms"``, proto JSON
``{"seconds": 5}``) and a sentence in the error message ("Please try again in
1.234s.", "retry after 12s", "Your quota will reset after 19h14m47s.").  Each
codec reads its own error bodies, but the wording crosses providers (a Qwen
message reaches a chat client, a Gemini one an Anthropic client), so every
codec reads every wording the same way: here.
"""

from __future__ import annotations

import re
from typing import Any

# Seconds per unit, by lower-case spelling: Go/proto's own units and the English
# words OpenAI, Qwen and Anthropic-compatible servers write in messages.
_UNIT_SECONDS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6,
    "ms": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0,
}
_NUMBER = r"\d+(?:\.\d+)?"
# Go/proto durations: number-unit pairs with nothing between them ("1h2m3s", "0.84s").
# Case-sensitive, as Go is: "5S" is not a duration.
_GO_PART = re.compile(rf"({_NUMBER})(ns|us|µs|ms|h|m|s)")
_GO_DURATION = re.compile(rf"(?:{_NUMBER}(?:ns|us|µs|ms|h|m|s))+")
# A number and an English unit word ("20 seconds"); short units need the Go form,
# so a bare "5 s" is not a duration (a Google field never holds one).
_WORD_DURATION = re.compile(rf"({_NUMBER}) ?(milliseconds?|seconds?|secs?|minutes?|mins?|hours?)", re.IGNORECASE)

# Where a message starts saying how long to wait: "try again in", "retry after",
# "retry in" (Google AI Studio), "reset after" (Code Assist quotas).  Only a
# number may follow, so "try again later" is no hint.
_HINT_LEAD = re.compile(r"(?:try again|retry|resets?)\s+(?:in|after)\s*(?=\d)", re.IGNORECASE)
# One number and its unit inside a message; a missing unit means seconds
# ("retry after 2"), and a letter right after the unit means it was no unit.
_MESSAGE_PART = re.compile(
    rf"({_NUMBER})\s*(milliseconds?|ms|us|µs|ns|seconds?|secs?|s|minutes?|mins?|m|hours?|h)?(?![a-zµ])",
    re.IGNORECASE,
)


def parse_duration(value: Any) -> float | None:
    """Seconds in a duration field; ``None`` when ``value`` is not one.

    Takes Go/proto strings (``"0.84s"``, ``"1h2m3s"``, ``"539.4ms"``, ``"250us"``),
    a number with an English unit (``"20 seconds"``) and proto JSON objects
    (``{"seconds": 5, "nanos": 0}``).  The whole value must be the duration.
    """
    if isinstance(value, dict):
        seconds, nanos = value.get("seconds", 0), value.get("nanos", 0)
        try:
            return float(seconds) + float(nanos) / 1e9
        except (TypeError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    # SSE corruption can leave a stray comma (seen by gemini-cli, packages/core/src/utils/googleQuotaErrors.ts).
    text = value.strip().rstrip(",")
    if _GO_DURATION.fullmatch(text):
        return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _GO_PART.findall(text))
    if words := _WORD_DURATION.fullmatch(text):
        return float(words.group(1)) * _UNIT_SECONDS[words.group(2).lower()]
    return None


def retry_hint_in_text(message: str) -> float | None:
    """Seconds to wait that an error message states, or ``None``.

    Reads "Please try again in 1.234s." / "in 20ms" / "in 6m0s" (OpenAI),
    "retry after 12s" / "Retry after 5 seconds" / "retry after 2" (Qwen,
    Anthropic-compatible), "Please retry in 56.18s." (AI Studio) and "will
    reset after 19h14m47s" (Code Assist): the first such phrase counts.
    """
    lead = _HINT_LEAD.search(message)
    if lead is None:
        return None
    total, pos, found = 0.0, lead.end(), False
    # Compound durations chain their parts without spaces ("1m30s"): read on while a digit follows.
    while pos < len(message) and message[pos].isdigit():
        part = _MESSAGE_PART.match(message, pos)
        if part is None:
            break
        total += float(part.group(1)) * _UNIT_SECONDS[(part.group(2) or "s").lower()]
        pos, found = part.end(), True
    return total if found else None
