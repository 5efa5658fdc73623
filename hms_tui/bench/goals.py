"""The issue's goals (all with synchronous_commit on), each judged against the figure it is
about. A goal whose figure this run did not measure is reported with ``met: null``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SEARCH_P99_MS = 20.0
CHECKIN_TO_NOTIFY = 0.5
LOADED_TO_EMPTY = 1.2
LISTENERS_P99_MS = 100.0
WRITER_KEEPS = 0.9
FRAME_MS = 16.0
FLAT_MB = 5.0  # memory growth over the second half of the changes that still counts as flat
IMPORT_1M_SECONDS = 600.0
FLAT_PER_ROW = 1.5  # largest batch's cost per row over the smallest's


def _get(result: dict[str, Any], path: str) -> Any:
    value: Any = result
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def judge(result: dict[str, Any]) -> list[dict[str, Any]]:
    goals: list[dict[str, Any]] = []

    def goal(text: str, path: str, target: float, ok: Callable[[float, float], bool]) -> None:
        value = _get(result, path)
        met = None if not isinstance(value, (int, float)) else ok(value, target)
        failed = _get(result, path.rsplit(".", 1)[0] + ".error")
        if met is None and failed:  # measured, and it failed: that is not met
            value, met = f"failed: {failed}", False
        goals.append({"goal": text, "figure": path, "value": value, "target": target,
                      "met": met})

    at_most: Callable[[float, float], bool] = lambda v, t: v <= t  # noqa: E731
    at_least: Callable[[float, float], bool] = lambda v, t: v >= t  # noqa: E731
    patients = _get(result, "history.load.patients")
    for kind in ("prefix", "substring", "phone", "mrn"):
        goal(f"search ({kind}) p99 <= {SEARCH_P99_MS:g} ms at {patients or '?'} patients "
             "(issue: 1,000,000)", f"history.loaded.search_{kind}.p99_ms", SEARCH_P99_MS,
             at_most)
    for spread in ("spread", "one_doctor"):
        goal(f"check-in >= {CHECKIN_TO_NOTIFY:g} x the update+notify ceiling at 32 clients "
             f"({spread.replace('_', ' ')})", f"checkin.{spread}.32.ratio_to_update_notify",
             CHECKIN_TO_NOTIFY, at_least)
    for kind in ("queue_read", "display_view", "checkin"):
        goal(f"{kind.replace('_', ' ')} on the loaded database within {LOADED_TO_EMPTY:g}x "
             "of the empty one (p50)", f"history.loaded_to_empty.{kind}.p50",
             LOADED_TO_EMPTY, at_most)
    goal(f"50 listeners at 100 changes/s: p99 <= {LISTENERS_P99_MS:g} ms", "live.50.p99_ms",
         LISTENERS_P99_MS, at_most)
    goal(f"50 listeners: the writer keeps up {WRITER_KEEPS:g} of the 100 changes/s (else the "
         "p99 above is not at 100/s)", "live.50.rate_per_s", 100 * WRITER_KEEPS, at_least)
    for screen in ("display", "reception"):
        goal(f"{screen}: one change in <= {FRAME_MS:g} ms of the UI thread (p50)",
             f"screens.{screen}.cpu.p50_ms", FRAME_MS, at_most)
        goal(f"{screen}: flat memory (second half of the changes grows <= {FLAT_MB:g} MB)",
             f"screens.{screen}.memory.second_half_growth_mb", FLAT_MB, at_most)
    goal(f"import of 1,000,000 patients within {IMPORT_1M_SECONDS:g} s (at the largest "
         "batch's cost per row)", "import.projected_1m_seconds", IMPORT_1M_SECONDS, at_most)
    goal(f"import cost per row flat as it grows (largest / smallest batch <= {FLAT_PER_ROW:g})",
         "import.largest_to_smallest_per_row", FLAT_PER_ROW, at_most)
    return goals
