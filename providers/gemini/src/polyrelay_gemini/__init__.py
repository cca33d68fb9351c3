"""polyrelay provider: Gemini through Google AI Studio API keys.

Wire facts: https://ai.google.dev/api/generate-content (endpoints, ``x-goog-api-key``),
https://ai.google.dev/gemini-api/docs/rate-limits (``RetryInfo``, per-day quotas reset at midnight
Pacific time), https://ai.google.dev/gemini-api/docs/troubleshooting (``API_KEY_INVALID``).

The upstream speaks the Gemini dialect, so the core's defaults build the
request (``x-goog-api-key``, ``{base}/models/{model}:generateContent`` or
``:streamGenerateContent?alt=sse``), clean tool schemas through the codec
and read ``RetryInfo``.  This plugin adds only what is Google's own:

* a ``base-url`` written CLIProxyAPI's way (the bare host) gets ``/v1beta``;
* ``API_KEY_INVALID`` arrives as a 400, which would otherwise pass for a
  request fault: it retires the key instead;
* a per-day quota's ``RetryInfo`` is short, but the quota only resets at
  midnight Pacific time: the model cools until then.

.. code-block:: yaml

    gemini-api-key:
      - api-key: AIzaSy...
        base-url: https://generativelanguage.googleapis.com/v1beta   # optional
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from polyrelay import AUTH_COOLDOWN, Config, Credential, ProviderPlugin, Verdict, get_dialect, hookimpl, ir, jsonutil

NAME = "gemini"
SECTION = "gemini-api-key"
API_BASE = "https://generativelanguage.googleapis.com/v1beta"
MODELS = ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-3-pro-preview",
          "gemini-3-flash-preview")
_VERSIONED = re.compile(r"/v1(alpha|beta)?\d*$")


class Gemini(ProviderPlugin):
    """Google AI Studio keys: the core's defaults plus Google's own base-url and quota rules."""

    name = NAME
    dialect = ir.GEMINI
    urls = {"api": API_BASE}
    models = MODELS
    api_key_section = SECTION

    def credentials(self, config: Config) -> list[Credential]:
        """One credential per enabled key; a version-less ``base-url`` (CLIProxyAPI's form) gets ``/v1beta``."""
        credentials = super().credentials(config)
        for credential in credentials:
            base = (credential.base_url or "").rstrip("/")
            if base and not _VERSIONED.search(base):
                credential.base_url = f"{base}/v1beta"
        return credentials

    @hookimpl
    def classify_response(self, status: int, body: bytes) -> Verdict | None:
        """Google's signals the status alone hides; ``None`` leaves the rest to the core's default."""
        details = _details(body)
        if status == 400 and any(d.get("reason") == "API_KEY_INVALID" for d in details):
            return Verdict("next", get_dialect(ir.GEMINI).decode_error(status, body), scope="credential",
                           cooldown=AUTH_COOLDOWN)
        quota_ids = [str(v.get("quotaId", "")) for d in details for v in d.get("violations") or []
                     if isinstance(v, dict)]
        if status == 429 and any("PerDay" in q for q in quota_ids):
            error = get_dialect(ir.GEMINI).decode_error(status, body)
            error.retry_after = _until_pacific_midnight()
            return Verdict("next", error, scope="model", cooldown=error.retry_after)
        return None


plugin = Gemini()


def _details(body: bytes) -> list[dict[str, Any]]:
    """The ``details`` of a google.rpc.Status body (also inside a streamed one-element array)."""
    try:
        data = jsonutil.loads(body)
    except ValueError:
        return []
    data = data[0] if isinstance(data, list) and data else data
    error = data.get("error") if isinstance(data, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _until_pacific_midnight() -> float:
    """Seconds until Gemini API daily quotas reset (midnight, US Pacific time)."""
    try:
        zone: Any = ZoneInfo("America/Los_Angeles")
    except ZoneInfoNotFoundError:  # no tz database on this host: standard time is close enough
        zone = timezone(timedelta(hours=-8))
    now = datetime.now(zone)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, midnight.timestamp() - time.time())
