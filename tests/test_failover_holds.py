"""Numbering holds on one real server: what stops numbers, what lifts the stop, what a
terminal's report can and cannot do (sql/routines/45_failover.sql). The failovers themselves
are in test_failover.py (servers started by the tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from hms_tui.domain.errors import Conflict, InvalidInput, NumberingHeld
from hms_tui.services.desk import Desk
from hms_tui.services.failover import Failover, warnings


def hms(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hms_tui", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def open_holds(sql: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return sql.execute("SELECT reason, detail, evidence FROM hms.numbering_holds "
                       "WHERE lifted_at IS NULL").fetchall()


def test_a_hold_stops_every_number_until_an_admin_confirms(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    p = clinic["patients"]
    first = desk.checkin("D1", p[0])
    failover = Failover(desk.db)
    failover.hold("promoting s2, which was not streaming")
    with pytest.raises(NumberingHeld, match=r"placed a hold: promoting s2.*confirm-failover"):
        desk.checkin("D1", p[1])
    with pytest.raises(NumberingHeld):
        desk.create_bill(first.visit_id, [("Consultation", Decimal("500"))])
    assert desk.call_next("D1").visit_id == first.visit_id  # only numbering stops
    assert failover.status().held
    assert sql.execute("SELECT count(*) FROM hms.visits").fetchone() == (1,)

    done = failover.confirm("checked the slips against the old primary", skip=5)
    assert (done.lifted, done.skipped, done.doctors) == (1, 5, 2)
    assert desk.checkin("D1", p[1]).token == "D1-007"  # 1 issued, 5 skipped
    assert desk.checkin("D2", p[2]).token == "D2-006"
    assert desk.create_bill(first.visit_id, [("Consultation", Decimal("500"))]).bill_number \
        .endswith("-0001")  # bill numbers stay gap-free
    with pytest.raises(Conflict, match="not on hold"):
        failover.confirm("again")
    trail = sql.execute("SELECT action, actor FROM hms.audit_events "
                        "WHERE entity = 'numbering_holds' ORDER BY seq").fetchall()
    assert [a for a, _ in trail] == ["hold_numbering", "confirm_failover"]
    with pytest.raises(InvalidInput):
        failover.confirm("x", skip=1001)
    with pytest.raises(InvalidInput, match="control"):
        failover.hold("bad\x1b[31m")


def test_numbers_issued_on_another_server_are_held_and_the_change_recorded(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    """As after restoring a dump on another server: the lineage names another system. The
    guard refuses before anything observed the change; the first observer records it."""
    desk.checkin("D1", clinic["patients"][0])
    sql.execute("UPDATE hms.server_lineage SET system_identifier = system_identifier + 1")
    with pytest.raises(NumberingHeld, match="another PostgreSQL system"):
        desk.checkin("D1", clinic["patients"][1])
    assert open_holds(sql) == []  # nothing written by a refused action
    status = Failover(desk.db).status()  # an observer (db status, every listener)
    assert status.held and any("another PostgreSQL system" in w for w in warnings(status))
    assert [r[0] for r in open_holds(sql)] == ["server_changed"]
    Failover(desk.db).status()
    assert len(open_holds(sql)) == 1
    Failover(desk.db).confirm("restored from last night's dump; patients re-checked", skip=0)
    assert desk.checkin("D1", clinic["patients"][1]).token == "D1-002"
    assert not Failover(desk.db).status().held


def test_a_session_cannot_acknowledge_a_number_without_durability(
    desk: Desk, clinic: dict[str, Any], dsn: str
) -> None:
    """synchronous_commit off (a session's, or a login's) is raised to on for the transaction
    that takes a number, so a crash or failover cannot lose an acknowledged token."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute("SELECT * FROM hms.queue('D1')")
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
        conn.execute("SELECT * FROM hms.checkin('D1', %s)", (clinic["patients"][0],))
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)


def test_a_lost_numbers_report_is_checked_against_the_server(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any], staff_logins: Any
) -> None:
    for p in clinic["patients"][:3]:
        desk.checkin("D1", p)
    ident = sql.execute("SELECT system_identifier, timeline FROM hms.server_identity()").fetchone()
    assert ident is not None
    display = staff_logins.connect(staff_logins.add("display"))  # every terminal may report

    def report(queues: Any, **extra: Any) -> str:
        doc = {"terminal": "board 1", "system_identifier": ident[0], "timeline": ident[1],
               "queues": queues, **extra}
        row = display.execute("SELECT hms.report_lost_numbers(%s)", (json.dumps(doc),)).fetchone()
        assert row is not None
        return str(row[0])

    assert report([{"doctor": "D1", "tokens": 3, "version": 3}]) == "nothing lost"
    assert report([{"doctor": "D1", "tokens": 2, "version": 99}]) == "nothing lost"
    assert report([{"doctor": "D9", "tokens": 9, "version": 9}, "junk",
                   {"doctor": ["D1"], "tokens": "5"}]) == "nothing lost"
    for bad in ('"x"', '{"queues": 1}', '{"queues": [], "timeline": "one"}'):
        with pytest.raises(psycopg.Error, match="report"):
            display.execute("SELECT hms.report_lost_numbers(%s)", (bad,))
    assert open_holds(sql) == []

    assert report([{"doctor": "D1", "tokens": 5, "version": 5}]) == "held"
    assert report([{"doctor": "D1", "tokens": 6, "version": 6}],
                  terminal="desk\x1b2") == "held"  # more evidence, still one hold
    [(reason, detail, evidence)] = open_holds(sql)
    assert reason == "lost_numbers" and "D1 saw 5 tokens, here 3" in detail
    assert [e["terminal"] for e in evidence] == ["board 1", "(invalid label)"]
    with pytest.raises(NumberingHeld, match="terminal board 1 saw numbers"):
        desk.checkin("D1", clinic["patients"][3])
    Failover(desk.db).confirm("D1-004..006 were never handed out", skip=3)
    # A terminal that was away reports the same old numbers again: already dealt with.
    assert report([{"doctor": "D1", "tokens": 6, "version": 6}]) == "confirmed already"
    assert desk.checkin("D1", clinic["patients"][3]).token == "D1-007"


def test_cli_hold_status_and_confirm(
    desk: Desk, clinic: dict[str, Any], cli_env: dict[str, str]
) -> None:
    assert hms(cli_env, "db", "hold", "--note", "failover drill").returncode == 0
    done = hms(cli_env, "checkin", "--doctor", "D1", "--patient", str(clinic["patients"][0]))
    assert done.returncode == 11
    assert done.stderr.count("\n") == 1 and "numbering is on hold" in done.stderr
    status = json.loads(hms(cli_env, "db", "status", "--json").stdout)
    assert status["numbering_held"] is True
    assert status["warnings"][0].startswith("numbering is on hold")
    assert status["holds"][0]["reason"] == "manual"
    text = hms(cli_env, "db", "status")
    assert "ON HOLD" in text.stdout and "warning: numbering is on hold" in text.stdout
    done = hms(cli_env, "db", "confirm-failover", "--note", "drill over", "--skip", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"lifted": 1, "skipped": 2, "doctors": 2}
    done = hms(cli_env, "db", "confirm-failover", "--note", "again")
    assert done.returncode == 5 and "not on hold" in done.stderr
    done = hms(cli_env, "db", "confirm-failover", "--skip", "2")
    assert done.returncode == 2 and "--note" in done.stderr
