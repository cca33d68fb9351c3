"""Small statistics helpers (no numpy)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    data = sorted(values)
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(data) - 1)
    return float(data[low] + (data[high] - data[low]) * (pos - low))


def summary(values: Sequence[float]) -> dict[str, float]:
    """``n``, ``min``, ``p50``, ``p99``, ``max`` and ``mean`` of ``values``."""
    if not values:
        return {"n": 0, "min": math.nan, "p50": math.nan, "p99": math.nan, "max": math.nan, "mean": math.nan}
    data = sorted(values)
    return {
        "n": len(data),
        "min": float(data[0]),
        "p50": percentile(data, 50),
        "p99": percentile(data, 99),
        "max": float(data[-1]),
        "mean": sum(data) / len(data),
    }


def median(values: Sequence[float]) -> float:
    """The median (NaN for no values)."""
    return percentile(values, 50)


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs`` (NaN with fewer than two points)."""
    n = len(xs)
    if n < 2 or n != len(ys):
        return math.nan
    mx = sum(xs) / n
    my = sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return math.nan
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def finite(value: float | None) -> bool:
    """Whether ``value`` is a real number (not None, NaN or infinite)."""
    return value is not None and math.isfinite(value)
