"""(f) A registry migration through the audited path, time per row as the import grows.

Where the schema has it, the import path the CLI uses (``hms.import_patients``, in batches
of ``services.registry.BATCH`` rows, duplicate checks on, every row audited and sealed into
the chain); else ``hms.add_patient`` for every row, one statement per import. Imports of
1k, 4k, 16k ... rows follow one another, so the registry grows as a migration's would. An
import slower than the cap ends the series; one still running at twice the cap is stopped
and reported unfinished (the next, four times larger, could run for an hour)."""

from __future__ import annotations

import importlib
import time
from datetime import date, timedelta
from typing import Any

import psycopg

from hms_tui.bench.progress import Step, Steps
from hms_tui.bench.sizes import Sizes
from hms_tui.bench.stats import ratio

IMPORT_FN = "hms.import_patients(text[],text[],date[],boolean)"
IMPORT_SQL = "SELECT hms.import_patients(%s::text[], %s::text[], %s::date[], false)"
ADD_SQL = ("SELECT count(hms.add_patient('Import ' || %s || ' ' || g,"
           " '+44 7' || lpad((%s + g)::text, 9, '0'), DATE '1950-01-01' + g %% 20000, true))"
           " FROM generate_series(1, %s) g")
DEFAULT_BATCH = 2000


def _batch() -> int:
    """The CLI import's batch size (services.registry), if this version has one."""
    try:
        module = importlib.import_module("hms_tui.services.registry")
    except ImportError:
        return DEFAULT_BATCH
    return int(getattr(module, "BATCH", DEFAULT_BATCH))


def _import(conn: psycopg.Connection[Any], n: int, rows: int, offset: int, batch: int,
            limit: float, step: Step) -> bool:
    """One import of ``rows`` patients through hms.import_patients; False if cut off."""
    stop = time.perf_counter() + limit
    born = date(1950, 1, 1)
    for start in range(0, rows, batch):
        size = min(batch, rows - start)
        ks = range(offset + start, offset + start + size)
        conn.execute(IMPORT_SQL, ([f"Import {n} {k}" for k in ks],
                                  [f"+44 7{k:09d}" for k in ks],
                                  [born + timedelta(days=k % 20_000) for k in ks]))
        step.advance(size)
        if time.perf_counter() > stop:
            return False
    return True


def batches(dsn: str, sizes: Sizes, steps: Steps) -> dict[str, Any]:
    step = steps.step("f. bulk import through the audited path", sum(sizes.import_batches))
    series: list[dict[str, Any]] = []
    stopped = None
    offset = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET hms.terminal = 'bench-import'")
        found = conn.execute("SELECT to_regprocedure(%s) IS NOT NULL", (IMPORT_FN,)).fetchone()
        batch = _batch() if found and found[0] else None
        conn.execute(f"SET statement_timeout = '{int(2 * sizes.import_cap)}s'")
        for n, rows in enumerate(sizes.import_batches):
            t0 = time.perf_counter()
            try:
                if batch:
                    finished = _import(conn, n, rows, offset, batch, 2 * sizes.import_cap, step)
                else:
                    conn.execute(ADD_SQL, (n, offset, rows)).fetchone()
                    step.advance(rows)
                    finished = True
            except psycopg.errors.QueryCanceled:
                finished = False
            seconds = time.perf_counter() - t0
            offset += rows
            series.append({"rows": rows, "seconds": round(seconds, 3), "finished": finished,
                           "us_per_row": round(seconds / rows * 1e6, 1) if finished else None})
            if not finished:
                stopped = f"an import of {rows:,} rows had not finished after {seconds:.0f} s"
                break
            if seconds > sizes.import_cap and n + 1 < len(sizes.import_batches):
                stopped = (f"stopped after the import of {rows:,} rows: it took {seconds:.0f} s,"
                           f" over the {sizes.import_cap:g} s cap")
                break
    done = [b for b in series if b["finished"]]
    # An unfinished import is worse than any finished one: no figure claims better.
    whole = bool(done) and len(done) == len(series)
    return {"batches": series,
            "largest_to_smallest_per_row": ratio(done[-1]["us_per_row"], done[0]["us_per_row"])
            if whole else None,
            "projected_1m_seconds": round(done[-1]["us_per_row"], 1) if whole else None,
            "stopped": stopped, "registry_rows": offset,
            "path": (f"hms.import_patients, {batch} rows per statement, duplicate checks on"
                     if batch else "hms.add_patient for every row, one statement per import")}
