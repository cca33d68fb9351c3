"""Alibaba Cloud Model Studio's Coding Plan: plan keys, plan bases, plan quotas.

A Coding Plan subscription is a key ``sk-sp-…`` that works only on the
plan's own OpenAI-compatible base, one per region (Model Studio's Coding
Plan docs, https://www.alibabacloud.com/help/en/model-studio/coding-plan):
``https://coding.dashscope.aliyuncs.com/v1`` (China) and
``https://coding-intl.dashscope.aliyuncs.com/v1`` (international).  Sent to
the general DashScope base it is refused with 403 ``invalid api-key``, so a
plan key found in ``qwen-api-key`` is moved to the plan base.

The plan meters usage in a rolling 5-hour window, and in weekly and
monthly ones behind it.  Its answers (Model Studio's Coding Plan FAQ):

* ``Throttling.AllocationQuota`` / ``insufficient_quota`` / "Allocated quota
  exceeded" (429): the window is spent.  The key cools until the reset the
  answer names, else for the 5-hour window; when it is spent again right
  after such a cooldown ended, the longer window is the one that is spent.
* ``Throttling.RateQuota`` / "Requests rate limit exceeded" / "Request rate
  increased too quickly" (429): a short back-off.
* 401 "invalid access token or token expired": the subscription ended, or a
  general key was put in a plan entry.  Retrying cannot help.
* "model 'x' is not supported": the model is not in this plan; the key is
  fine for every other model.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Literal

import attrs

from polyrelay import Verdict, ir
from polyrelay.apikeys import ApiKeyEntry

log = logging.getLogger("polyrelay.qwen")

PLAN_KEY_PREFIX = "sk-sp-"
#: ``upstream-urls.qwen`` keys of the two regional plan bases.
PLAN_URL_KEYS: dict[str, str] = {"china": "coding-plan", "intl": "coding-plan-intl"}
PLAN_URLS = {
    "coding-plan": "https://coding.dashscope.aliyuncs.com/v1",
    "coding-plan-intl": "https://coding-intl.dashscope.aliyuncs.com/v1",
}
#: What Qwen Code 0.15 offers a Coding Plan subscriber (``qwen3.6-plus`` on Pro only).
PLAN_MODELS = (
    "qwen3.5-plus",
    "qwen3.6-plus",
    "qwen3-coder-plus",
    "qwen3-coder-next",
    "qwen3-max-2026-01-23",
    "glm-5",
    "glm-4.7",
    "kimi-k2.5",
    "MiniMax-M2.5",
)

#: The rolling usage windows, shortest first.
WINDOW_SECONDS = 5 * 3600.0
LONG_WINDOW_SECONDS = 7 * 24 * 3600.0
RATE_COOLDOWN = 10.0
#: A key refused again within this long of its window's reset has spent the longer window.
REPEAT_WINDOW = 10 * 60.0
#: How long a model the plan does not serve stays excluded for that key (the core's longest cooldown).
LASTING = 24 * 3600.0

_ALLOCATION = ("throttling.allocationquota", "insufficient_quota", "allocated quota exceeded")
_RATE = ("throttling.ratequota", "requests rate limit exceeded", "request rate increased too quickly")
_UNSUPPORTED = re.compile(r"model\s+'[^']*'\s+is\s+not\s+supported", re.IGNORECASE)
_EXPIRED = "invalid access token or token expired"


@attrs.define
class CodingPlanEntry(ApiKeyEntry):
    """One ``qwen-coding-plan`` entry: an API-key entry plus the plan's region."""

    region: Literal["china", "intl"] = "china"


def is_plan_key(key: str) -> bool:
    """Whether ``key`` is a Coding Plan key (Qwen Code checks the same prefix)."""
    return key.startswith(PLAN_KEY_PREFIX)


def plan_base(urls: Mapping[str, str], region: str) -> str:
    """The plan's API base for ``region`` among the provider's (overridable) addresses."""
    return urls[PLAN_URL_KEYS.get(region, "coding-plan")].rstrip("/")


def classify(status: int, error: ir.ErrorInfo, hint: float | None) -> Verdict | None:
    """The plan's own meaning of an error answer, or None when it has none."""
    text = f"{error.code or ''} {error.message}".lower()
    if status == 401 and _EXPIRED in text:
        # An OAuth account's token may just be stale: the core refreshes it first; a key is retired at once.
        return Verdict("refresh", error, scope="credential", disable="subscription expired or wrong key")
    if _UNSUPPORTED.search(error.message):
        return Verdict("next", error, scope="model", cooldown=LASTING, reason="model not in this Coding Plan")
    if status == 429 and any(words in text for words in _ALLOCATION):
        window = hint if hint else WINDOW_SECONDS
        return Verdict("next", error, scope="credential", cooldown=window, repeat_cooldown=LONG_WINDOW_SECONDS,
                       repeat_window=REPEAT_WINDOW)
    if status == 429 and any(words in text for words in _RATE):
        return Verdict("next", error, scope="credential", cooldown=hint if hint else RATE_COOLDOWN)
    return None
