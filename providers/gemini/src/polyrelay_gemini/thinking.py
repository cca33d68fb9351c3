"""Thinking settings fitted to the model they go to (CLIProxyAPI's internal/thinking).

Gemini 3 models think in *levels* and refuse a budget and a level together;
Gemini 2.5 models think in *budgets* within a range (2.5 Pro cannot turn
thinking off) and refuse a level.  Clients and other dialects send either,
so the request is rewritten into the form the model takes: a level becomes
the budget CLIProxyAPI's table gives it, a budget the level it falls in,
and both are clamped to what the model supports.  Models not listed pass
unchanged.
"""

from __future__ import annotations

from typing import Any

import attrs

#: Levels from least to most thinking, and the budget each stands for.
LEVELS = ("MINIMAL", "LOW", "MEDIUM", "HIGH")
LEVEL_BUDGET = {"MINIMAL": 512, "LOW": 1024, "MEDIUM": 8192, "HIGH": 24576}


@attrs.frozen
class Capability:
    """How one model family thinks: ``levels`` (level models) or a budget range."""

    levels: tuple[str, ...] = ()
    min_budget: int = 0
    max_budget: int = 0
    can_disable: bool = True


#: By model-name prefix; the longest matching prefix wins.
CAPABILITIES = {
    "gemini-3-pro": Capability(levels=("LOW", "HIGH")),
    "gemini-3.1-pro": Capability(levels=("LOW", "MEDIUM", "HIGH")),
    "gemini-3": Capability(levels=LEVELS),
    "gemini-2.5-pro": Capability(min_budget=128, max_budget=32768, can_disable=False),
    "gemini-2.5-flash": Capability(min_budget=0, max_budget=24576),
}


def capability(model: str) -> Capability | None:
    """What ``model`` supports, or None for a model this table does not know."""
    prefixes = [p for p in CAPABILITIES if model.startswith(p)]
    return CAPABILITIES[max(prefixes, key=len)] if prefixes else None


def level_for_budget(budget: int) -> str:
    """The level a budget falls in (CLIProxyAPI's table; above HIGH is HIGH)."""
    return next((level for level in LEVELS if budget <= LEVEL_BUDGET[level]), "HIGH")


def _supported_level(level: str, levels: tuple[str, ...]) -> str:
    """``level``, or the next supported one above it (the highest when none is)."""
    rank = LEVELS.index(level) if level in LEVELS else len(LEVELS) - 1
    return next((lv for lv in levels if LEVELS.index(lv) >= rank), levels[-1])


def fit_thinking(config: dict[str, Any], model: str) -> dict[str, Any]:
    """``generationConfig`` with its ``thinkingConfig`` in the form ``model`` takes (a new dict)."""
    key = "thinkingConfig" if "thinkingConfig" in config else "thinking_config"
    thinking = config.get(key)
    caps = capability(model)
    if not isinstance(thinking, dict) or caps is None:
        return config
    budget = thinking.get("thinkingBudget", thinking.get("thinking_budget"))
    level = thinking.get("thinkingLevel", thinking.get("thinking_level"))
    out = {k: v for k, v in thinking.items()
           if k not in ("thinkingBudget", "thinking_budget", "thinkingLevel", "thinking_level")}
    level = level.upper() if isinstance(level, str) else None
    budget = budget if isinstance(budget, int) and not isinstance(budget, bool) else None
    if caps.levels:
        if level is None and budget is not None and budget > 0:
            level = level_for_budget(budget)
        elif level is None and budget == 0:
            level = caps.levels[0]  # Gemini 3 cannot stop thinking: as little as it can
        if level is not None:
            out["thinkingLevel"] = _supported_level(level, caps.levels)
    else:
        if level is not None:
            budget = LEVEL_BUDGET.get(level, LEVEL_BUDGET["HIGH"])
        if budget is not None:
            out["thinkingBudget"] = _clamp(budget, caps)
    return {**{k: v for k, v in config.items() if k != key}, "thinkingConfig": out}


def _clamp(budget: int, caps: Capability) -> int:
    if budget < 0:
        return -1  # dynamic thinking
    if budget == 0 and caps.can_disable:
        return 0
    return max(caps.min_budget, min(budget, caps.max_budget))
