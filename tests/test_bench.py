"""``hms-tui bench`` end to end at tiny sizes: every part runs against the real server, the
result is one JSON document holding every figure the issue asks for (timings are never
asserted: they are measured), and every scratch database is gone afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import psycopg

from hms_tui.bench import run, sizes
from hms_tui.bench.progress import QuietSteps
from hms_tui.bench.scratch import PREFIX

# Every figure of the parts a-f, by path in the JSON (client counts of the tiny run).
FIGURES = [
    *(f"checkin.{spread}.{n}.{key}" for spread in ("spread", "one_doctor") for n in (1, 4)
      for key in ("checkin_per_s", "counter_update_per_s", "update_notify_per_s",
                  "ratio_to_counter", "ratio_to_update_notify")),
    *(f"pattern.by_clients.{n}.{key}" for n in (1, 4)
      for key in ("pattern_per_s", "pattern_duplicates", "checkin_per_s")),
    "pattern.ours_duplicates", "pattern.ours_gaps",
    "live.raw_notify.p99_ms", *(f"live.{n}.{q}" for n in (1, 2) for q in ("p50_ms", "p99_ms")),
    "history.load.patients", "history.load.past_visits", "history.load.audit_rows",
    *(f"history.{phase}.{kind}.{q}" for phase in ("empty", "loaded")
      for kind in ("checkin", "queue_read", "display_view", "search_prefix",
                   "search_substring", "search_phone", "search_mrn")
      for q in ("p50_ms", "p99_ms")),
    *(f"history.plans.search_{kind}.plan" for kind in ("prefix", "substring", "phone", "mrn")),
    *(f"screens.{s}.{key}" for s in ("display", "reception")
      for key in ("cpu.p50_ms", "wall.p50_ms", "cpu_p50_to_frame", "memory.growth_mb",
                  "memory.second_half_growth_mb")),
    "screens.one_widget_frame.display_size.cpu.p50_ms",
    "import.batches", "import.largest_to_smallest_per_row", "import.projected_1m_seconds",
]


def at(result: dict[str, Any], path: str) -> Any:
    value: Any = result
    for key in path.split("."):
        assert isinstance(value, dict) and key in value, f"{path}: no {key!r}"
        value = value[key]
    return value


def scratch_names(server_dsn: str) -> set[str]:
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                           (f"{PREFIX}{os.getpid()}_%",))}


def test_every_part_runs_and_reports_every_figure(server_dsn: str) -> None:
    result = run.run(server_dsn, sizes.TINY, QuietSteps(), server="test server")
    document = json.loads(json.dumps(result, allow_nan=False))  # one valid JSON document
    for path in FIGURES:
        assert at(document, path) is not None, path
    # Numbering: the replaced pattern is checked by counting, and ours has no duplicate.
    assert at(document, "pattern.ours_duplicates") == 0
    assert at(document, "pattern.ours_gaps") == 0
    assert at(document, "pattern.ours_visits_counted") > 0
    assert at(document, "history.loaded.search_hits.search_mrn") == 1  # the load is searchable
    assert at(document, "live.1.missing") == 0
    # Every goal of the issue is judged against a figure this run measured (32 clients and
    # 50 listeners are not in the tiny run).
    judged = {g["figure"]: g["met"] for g in document["goals"]}
    unmeasured = {f for f, met in judged.items() if met is None}
    assert unmeasured == {"checkin.spread.32.ratio_to_update_notify",
                          "checkin.one_doctor.32.ratio_to_update_notify", "live.50.p99_ms",
                          "live.50.rate_per_s"}
    assert scratch_names(server_dsn) == set(), "a scratch database was left behind"


def test_bad_options_are_one_line_and_nothing_runs(tmp_path: Any) -> None:
    env = {**os.environ, "HMS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
           "HMS_TUI_CONFIG": "", "XDG_CONFIG_HOME": str(tmp_path)}
    for args, needle in ((["--clients", "1,x"], "--clients"), (["--clients", "0"], "--clients"),
                         (["--parts", "screens,nope"], "--parts")):
        done = subprocess.run([sys.executable, "-m", "hms_tui", "bench", *args], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, done.stderr)
