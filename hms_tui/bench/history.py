"""(d) Cost as history grows: the reads and the check-in a desk does all day, timed on an
empty database and again after two years of history are loaded (``bulkload``), with each
search's plan. Today's queues are the same in both: only the past differs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg

from hms_tui.bench import bulkload, plans, seed
from hms_tui.bench.progress import Steps
from hms_tui.bench.sizes import Sizes
from hms_tui.bench.stats import ratio, summary
from hms_tui.db.connection import Database
from hms_tui.domain.errors import HmsError
from hms_tui.services.desk import Desk

BOARD = [f"H{j}" for j in range(1, 21)]  # today's queues: 20 doctors, 20 waiting each
WAITING = 20
READS = ("checkin", "queue_read", "display_view", "doctor_board",
         "search_prefix", "search_substring", "search_phone", "search_mrn")
SEARCHES = ("search_prefix", "search_substring", "search_phone", "search_mrn")
DISPLAY_SQL = "SELECT * FROM hms.live_display(%(d)s::text[], %(s)s::bigint[])"


MIN_SAMPLES = 5


def _timed(fn: Callable[[], object], samples: int, cap: float) -> list[float]:
    """Up to ``samples`` timings, fewer once ``cap`` seconds are spent (at least 5): a
    search that takes seconds on a million rows would otherwise take the run's hour."""
    out: list[float] = []
    stop = time.perf_counter() + cap
    while len(out) < samples and (len(out) < MIN_SAMPLES or time.perf_counter() < stop):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _read(fn: Callable[[], object], sizes: Sizes) -> dict[str, Any]:
    """A read's figures; one that fails (e.g. slower than the desk's action timeout) is
    reported with its error instead of ending the run."""
    try:
        fn()  # warm: the first call pays for the plan cache
        return summary(_timed(fn, sizes.samples, sizes.read_seconds))
    except HmsError as exc:
        return {**summary([]), "error": str(exc)}


def _hits(desk: Desk, text: str) -> int | str:
    try:
        return len(desk.search_patients(text))
    except HmsError as exc:
        return f"error: {exc}"


def search_texts(sizes: Sizes) -> dict[str, str]:
    """What a receptionist types, chosen so that the loaded history holds matches: a name
    prefix, a part of a surname, a whole phone number, an MRN (of a patient in the middle)."""
    middle = sizes.patients // 2
    return {"search_prefix": "Meer", "search_substring": "ossi",
            "search_phone": bulkload.patient_phone(middle)[4:],
            "search_mrn": bulkload.patient_mrn(middle)}


def measure(dsn: str, texts: dict[str, str], checkin_doctors: list[str], sizes: Sizes,
            label: str, steps: Steps) -> dict[str, Any]:
    desk = Desk(Database(dsn, terminal="bench-history"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        patients = seed.bulk_patients(conn, max(sizes.samples, MIN_SAMPLES) + 1, f"Hist {label}")
    step = steps.step(f"d. reads and check-ins, {label}", len(READS))
    out: dict[str, Any] = {}
    try:
        desk.doctors()
        it = iter(patients)
        n = [0]

        def checkin() -> None:
            n[0] += 1
            desk.checkin(checkin_doctors[n[0] % len(checkin_doctors)], next(it))

        zeros = [0] * len(BOARD)
        work: dict[str, Callable[[], object]] = {
            "checkin": checkin,
            "queue_read": lambda: desk.queue(BOARD[0]),
            "display_view": lambda: desk.db.call(DISPLAY_SQL, {"d": BOARD, "s": zeros}),
            "doctor_board": desk.board,
        }
        for kind in SEARCHES:
            work[kind] = (lambda q: lambda: desk.search_patients(q))(texts[kind])
        for kind in READS:
            out[kind] = _read(work[kind], sizes)
            step.advance()
        out["search_hits"] = {k: _hits(desk, texts[k]) for k in SEARCHES}
    finally:
        desk.db.dispose()
    return out


def growth(dsn: str, sizes: Sizes, steps: Steps) -> dict[str, Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        seed.add_doctors(conn, [*BOARD, "E1", "E2", "E3", "E4", "F1", "F2", "F3", "F4"])
        waiting = seed.bulk_patients(conn, len(BOARD) * WAITING, "Today")
    seed.checkins_by_doctor(dsn, [(BOARD[i % len(BOARD)], p) for i, p in enumerate(waiting)])
    texts = search_texts(sizes)
    empty = measure(dsn, texts, ["E1", "E2", "E3", "E4"], sizes, "empty database", steps)
    loaded_info = bulkload.load(dsn, sizes.patients, sizes.past_visits, sizes.history_days, steps)
    loaded = measure(dsn, texts, ["F1", "F2", "F3", "F4"], sizes, "loaded database", steps)
    step = steps.step("d. search plans", len(SEARCHES))
    found: dict[str, Any] = {}
    for kind in SEARCHES:
        found[kind] = plans.search_plan(dsn, texts[kind])
        step.advance()
    ratios = {kind: {"p50": ratio(loaded[kind]["p50_ms"], empty[kind]["p50_ms"]),
                     "p99": ratio(loaded[kind]["p99_ms"], empty[kind]["p99_ms"])}
              for kind in READS}
    return {"load": loaded_info, "search_texts": texts, "empty": empty, "loaded": loaded,
            "loaded_to_empty": ratios, "plans": found}
