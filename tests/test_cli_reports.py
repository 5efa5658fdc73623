"""The statistics and trail commands as scripts see them: `report daily|range`, `audit replay`,
`audit check` (exit 10), `audit restore`, `day close`; bad input gives one line."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime, timedelta
from typing import Any

import psycopg

from hms_tui.services.desk import Desk
from hms_tui.services.reports import FIGURES
from tests.conftest import StaffLogins
from tests.test_cli import VISIT_FIELDS, js, ok, run


def morning(desk: Desk, clinic: dict[str, Any]) -> list[int]:
    p = clinic["patients"]
    visits = [desk.checkin("D1", p[i]).visit_id for i in range(3)]
    desk.checkin("D2", p[3])
    desk.call_next("D1")
    desk.start(visits[0])
    desk.complete(visits[0])
    return visits


def test_report_daily_as_json_csv_and_a_table(
    cli_env: dict[str, str], desk: Desk, clinic: dict[str, Any],
) -> None:
    morning(desk, clinic)
    doc = js(cli_env, "report", "daily")
    assert set(doc) == {"date", "target_minutes", "doctor", "clinic", "doctors", "hours", "staff"}
    assert set(doc["clinic"]) == set(FIGURES)
    assert (doc["clinic"]["arrivals"], doc["clinic"]["seen"], doc["target_minutes"]) == (4, 1, 30)
    assert [d["doctor"] for d in doc["doctors"]] == ["D1", "D2"]
    assert len(doc["hours"]) == 24
    only = js(cli_env, "report", "daily", "--doctor", "d2", "--date", doc["date"])
    assert only["doctor"] == "D2" and only["clinic"]["arrivals"] == 1
    rows = list(csv.DictReader(io.StringIO(ok(cli_env, "report", "daily", "--csv"))))
    assert [r["doctor"] for r in rows] == ["D1", "D2", "ALL"]
    assert rows[-1]["arrivals"] == "4" and rows[1]["consult_p50"] == ""
    table = ok({**cli_env, "COLUMNS": "80"}, "report", "daily")
    assert "Clinic report for" in table and "By hour" in table
    assert max(len(line) for line in table.splitlines()) <= 80
    days = js(cli_env, "report", "range", "--from", "2026-01-01", "--to", "2026-01-03")
    assert [d["date"] for d in days] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert days[0]["arrivals"] == 0 and set(days[0]) == {"date", *FIGURES}


def test_replay_check_restore_and_close_from_the_command_line(
    cli_env: dict[str, str], desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any],
) -> None:
    visits = morning(desk, clinic)
    zone = desk.zone()
    at = (datetime.now(zone) + timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    time.sleep(1.1)  # the moment, a second after the last change, is past
    replayed = js(cli_env, "audit", "replay", "--at", at)
    queue = js(cli_env, "queue", "--doctor", "D1") + js(cli_env, "queue", "--doctor", "D2")
    assert replayed == queue
    assert set(replayed[0]) >= VISIT_FIELDS
    assert [v["doctor"] for v in js(cli_env, "audit", "replay", "--at", at, "--doctor", "D2")] \
        == ["D2"]
    assert "Queues at" in ok(cli_env, "audit", "replay", "--at", at)

    assert js(cli_env, "audit", "check") == []
    assert "audit check OK" in ok(cli_env, "audit", "check")
    with sql.transaction():
        sql.execute("SET LOCAL session_replication_role = replica")
        sql.execute("UPDATE hms.visits SET status = 'CANCELLED' WHERE id = %s", (visits[1],))
    done = run(cli_env, "audit", "check", "--json")
    assert done.returncode == 10
    found = [(d["entity"], d["key"], d["column"], d["trail_value"], d["table_value"])
             for d in json.loads(done.stdout)]
    assert found == [("visits", {"id": visits[1]}, "status", "WAITING", "CANCELLED")]
    assert done.stderr.count("\n") == 1 and "differ in 1 place" in done.stderr
    dry = js(cli_env, "audit", "restore", "--visit", str(visits[1]), "--dry-run")
    assert dry == [{"column": "status", "trail_value": "WAITING", "table_value": "CANCELLED"}]
    assert run(cli_env, "audit", "check").returncode == 10  # a dry run changes nothing
    assert "restored" in ok(cli_env, "audit", "restore", "--visit", str(visits[1]))
    assert js(cli_env, "audit", "check") == []
    assert "matches the trail" in ok(cli_env, "audit", "restore", "--visit", str(visits[1]))

    closed = js(cli_env, "day", "close")
    assert closed["closed_now"] == 3 and closed["summary"]["clinic"]["no_shows"] == 3
    assert "already closed" in ok(cli_env, "day", "close")


def test_bad_input_is_one_line_and_changes_nothing(
    cli_env: dict[str, str], desk: Desk, clinic: dict[str, Any],
) -> None:
    morning(desk, clinic)
    cases = [
        (["audit", "replay", "--at", "yesterday"], 2, "use \"YYYY-MM-DD HH:MM\""),
        (["audit", "replay", "--at", "2999-01-01 10:00"], 2, "still to come"),
        (["report", "daily", "--date", "2026-13-01"], 2, "is not a date"),
        (["report", "daily", "--doctor", "D9"], 3, "D9"),
        (["report", "range", "--from", "2026-02-01", "--to", "2026-01-01"], 2, "a range"),
        (["report", "range", "--from", "2024-01-01", "--to", "2026-01-01"], 2, "at most 366"),
        (["report", "daily", "--json", "--csv"], 2, "one of --json and --csv"),
        (["audit", "restore", "--visit", "999999"], 3, "no visit 999999"),
        (["audit", "restore", "--visit", str(2**63)], 2, ""),
        (["day", "close", "--date", "2999-01-01"], 2, "has not begun"),
    ]
    for args, code, message in cases:
        done = run(cli_env, *args)
        assert done.returncode == code, (args, done.stderr)
        assert done.stdout == "" and "Traceback" not in done.stderr, args
        assert message in done.stderr, (args, done.stderr)
        assert done.stderr.count("\n") <= 2, (args, done.stderr)  # usage errors carry a hint
    assert len(desk.queue("D1")) == 2  # nothing was closed


def test_only_admins_read_the_figures_and_the_trail(
    cli_env: dict[str, str], desk: Desk, clinic: dict[str, Any], staff_logins: StaffLogins,
) -> None:
    morning(desk, clinic)
    reception = staff_logins.add("reception")
    env = {**cli_env, "HMS_DATABASE_URL": staff_logins.dsn_of(reception)}
    for args in (["report", "daily"], ["audit", "check"], ["day", "close"],
                 ["audit", "replay", "--at", "2026-01-01 10:00"]):
        done = run(env, *args)
        assert done.returncode == 6, (args, done.stderr)
        assert "Traceback" not in done.stderr
    admin = staff_logins.add("admin")
    assert js({**cli_env, "HMS_DATABASE_URL": staff_logins.dsn_of(admin)}, "audit", "check") == []
