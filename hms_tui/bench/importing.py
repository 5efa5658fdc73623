"""(f) A registry migration: patients added through the audited path (``hms.add_patient``,
every row audited and sealed into the chain, as the desk adds one), one statement per batch
in growing batches, time per row as the batch grows. A batch slower than the cap ends the
series: the next, four times larger, could run for an hour."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from hms_tui.bench.progress import Steps
from hms_tui.bench.sizes import Sizes
from hms_tui.bench.stats import ratio

ADD = ("SELECT count(hms.add_patient('Import ' || %s || ' ' || g, '+44 7' || lpad(g::text, 9, '0'),"
       " DATE '1950-01-01' + g %% 20000, true)) FROM generate_series(1, %s) g")


def batches(dsn: str, sizes: Sizes, steps: Steps) -> dict[str, Any]:
    step = steps.step("f. bulk import through the audited path", sum(sizes.import_batches))
    series: list[dict[str, Any]] = []
    stopped = None
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET hms.terminal = 'bench-import'")
        # A batch still running at twice the cap is stopped (and reported unfinished).
        conn.execute(f"SET statement_timeout = '{int(2 * sizes.import_cap)}s'")
        for n, rows in enumerate(sizes.import_batches):
            t0 = time.perf_counter()
            try:
                conn.execute(ADD, (n, rows)).fetchone()
            except psycopg.errors.QueryCanceled:
                seconds = time.perf_counter() - t0
                stopped = (f"a batch of {rows:,} rows had not finished after {seconds:.0f} s "
                           "(cancelled)")
                series.append({"rows": rows, "seconds": round(seconds, 3), "us_per_row": None,
                               "finished": False})
                break
            seconds = time.perf_counter() - t0
            series.append({"rows": rows, "seconds": round(seconds, 3),
                           "us_per_row": round(seconds / rows * 1e6, 1), "finished": True})
            step.advance(rows)
            if seconds > sizes.import_cap and n + 1 < len(sizes.import_batches):
                stopped = (f"stopped after {rows:,} rows: that batch took {seconds:.0f} s, over "
                           f"the {sizes.import_cap:g} s cap")
                break
    done = [b for b in series if b["finished"]]
    first, last = done[0], done[-1]
    unfinished = len(done) < len(series)
    return {"batches": series,
            # An unfinished batch is worse than any finished one: no figure claims better.
            "largest_to_smallest_per_row": None if unfinished else ratio(last["us_per_row"],
                                                                         first["us_per_row"]),
            "projected_1m_seconds": None if unfinished else round(last["us_per_row"], 1),
            "stopped": stopped, "path": "hms.add_patient, one statement per batch"}
