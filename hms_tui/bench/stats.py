"""Small statistics over latency samples (milliseconds)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile by nearest rank (no interpolation: a p99 is a sample that happened)."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p99, mean and max, rounded for reading."""
    if not values:
        return {"p50_ms": None, "p99_ms": None, "mean_ms": None, "max_ms": None, "samples": 0}
    return {"p50_ms": round(percentile(values, 0.5), 3), "p99_ms": round(percentile(values, 0.99), 3),
            "mean_ms": round(statistics.fmean(values), 3), "max_ms": round(max(values), 3),
            "samples": len(values)}


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing (JSON has no NaN)."""
    return round(a / b, 3) if a is not None and b else None
