"""The ``hms-tui`` command, run for real as a subprocess against the per-test database.

Setup that is not itself under test goes through the desk (in-process, fast); every command is
then run as ``python -m hms_tui ...`` and its JSON, its table output, its exit code and stderr
are checked, and so is what it wrote (or did not write) in the database.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from hms_tui.db import migrate
from hms_tui.services.desk import Desk
from tests.conftest import open_every_day, slot_at

CLI = [sys.executable, "-m", "hms_tui"]
# argv cannot carry a NUL, so that case hands the argument list to the same entry point on stdin.
VIA_MAIN = [sys.executable, "-c",
            "import json, sys; from hms_tui.cli import main; main(json.loads(sys.stdin.read()))"]

VISIT_FIELDS = {"visit_id", "token", "serial", "position", "status", "priority", "patient_id",
                "doctor"}


def run(env: dict[str, str], *args: str, via_main: bool = False) -> subprocess.CompletedProcess[str]:
    if via_main:
        return subprocess.run(VIA_MAIN, env=env, input=json.dumps(list(args)), capture_output=True,
                              text=True, encoding="utf-8", timeout=120, check=False)
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=120, check=False)


def succeeded(args: Sequence[str], done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (args, done.stderr)
    assert done.stderr == "", (args, done.stderr)
    return done.stdout


def one_document(out: str) -> Any:
    """--json output: exactly one JSON document on one line."""
    assert out.endswith("\n") and out.count("\n") == 1, out
    return json.loads(out)


def ok(env: dict[str, str], *args: str) -> str:
    """Run a command that must succeed; return its stdout."""
    return succeeded(args, run(env, *args))


def js(env: dict[str, str], *args: str) -> Any:
    """Run a command with --json that must succeed; return the decoded document."""
    return one_document(ok(env, *args, "--json"))


def reads(env: dict[str, str], *commands: Sequence[str]) -> list[Any]:
    """Run independent read-only commands at once (start-up dominates their time). Each must
    succeed; the output of one with --json is decoded, else returned as text."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        done = list(pool.map(lambda args: run(env, *args), commands))
    results = []
    for args, result in zip(commands, done, strict=True):
        out = succeeded(args, result)
        results.append(one_document(out) if "--json" in args else out)
    return results


TABLES = ("patients", "visits", "bills", "audit_events")


def counts(sql: psycopg.Connection[Any]) -> dict[str, int]:
    found = {}
    for table in TABLES:
        row = sql.execute(f"SELECT count(*) FROM hms.{table}").fetchone()
        assert row is not None
        found[table] = row[0]
    return found


def noon_zone(now_utc: datetime) -> str:
    """An Etc/GMT zone where it is now 12:xx (Etc/GMT signs are inverted: Etc/GMT-5 is UTC+5)."""
    offset = 12 - now_utc.hour
    if offset > 0:
        return f"Etc/GMT-{offset}"
    if offset < 0:
        return f"Etc/GMT+{-offset}"
    return "Etc/GMT"


def status_of(sql: psycopg.Connection[Any], visit_id: int) -> str:
    row = sql.execute("SELECT status::text FROM hms.visits WHERE id = %s", (visit_id,)).fetchone()
    assert row is not None
    return str(row[0])


# -- database and demo ------------------------------------------------------------------------------


def test_db_upgrade_and_demo(cli_env: dict[str, str], sql: psycopg.Connection[Any]) -> None:
    upgraded = js(cli_env, "db", "upgrade")
    assert upgraded["version"] == migrate.latest_version()
    assert sql.execute("SELECT current_database()").fetchone() == (
        upgraded["database"].split(" on ")[0],)
    assert upgraded["rules"]["recall_limit"] == 2
    assert upgraded["rules"]["requeue_after"] == 3
    assert counts(sql)["patients"] == 0

    seeded = js(cli_env, "demo", "--seed-only")
    assert seeded["seeded"] is True
    assert seeded["doctors"] == ["D1", "D2", "D3", "D4"]
    stored = counts(sql)
    assert (stored["patients"], stored["visits"], stored["bills"]) == (
        seeded["patients"], seeded["visits"] + seeded["bookings"], seeded["bills"])
    assert seeded["patients"] > 0 and seeded["visits"] > 0 and seeded["bills"] == 1

    doctors, table = reads(cli_env, ["doctor", "list", "--json"], ["doctor", "list"])
    assert [d["code"] for d in doctors] == ["D1", "D2", "D3", "D4"]
    assert all(d["active"] for d in doctors)
    assert sum(d["issued"] for d in doctors) == sql.execute(
        "SELECT count(*) FROM hms.visits WHERE token IS NOT NULL").fetchone()[0]  # type: ignore[index]

    again = js(cli_env, "demo", "--seed-only")
    assert again == {"seeded": False, "doctors": [], "patients": 0, "visits": 0, "bills": 0,
                     "bookings": 0}
    assert "nothing was seeded" in ok(cli_env, "demo", "--seed-only")
    assert counts(sql) == stored
    for name in ("Dr Asha Rao", "Dr Vikram Mehta", "Dr Leela Sen", "Dr Omar Farouk"):
        assert name in table


# -- doctors and patients ---------------------------------------------------------------------------


def test_doctor_and_patient_commands(cli_env: dict[str, str], sql: psycopg.Connection[Any]) -> None:
    added = js(cli_env, "doctor", "add", "--code", "d7", "--name", "Dr Iyer", "--room", "Room 9")
    assert (added["code"], added["name"], added["room"], added["token_prefix"], added["active"]) == (
        "D7", "Dr Iyer", "Room 9", "D7", True)
    other = js(cli_env, "doctor", "add", "--code", "D8", "--name", "Dr Bose", "--prefix", "c")
    assert (other["token_prefix"], other["room"]) == ("C", None)

    updated = js(cli_env, "doctor", "update", "D7", "--name", "Dr K Iyer", "--room", "",
                 "--inactive")
    assert (updated["name"], updated["room"], updated["active"]) == ("Dr K Iyer", None, False)
    assert sql.execute(
        "SELECT name, room, active FROM hms.doctors WHERE code = 'D7'").fetchone() == (
        "Dr K Iyer", None, False)

    listed, table = reads(cli_env, ["doctor", "list", "--json"], ["doctor", "list"])
    assert [(d["code"], d["active"], d["waiting"]) for d in listed] == [
        ("D7", False, 0), ("D8", True, 0)]
    assert "Dr K Iyer" in table

    patient = js(cli_env, "patient", "add", "--name", "Asha Verma", "--phone", "+91 98450 12345",
                 "--dob", "1980-02-29")
    assert {"id", "mrn", "name"} <= set(patient)
    assert patient["name"] == "Asha Verma"
    assert re.fullmatch(r"M\d{6}", patient["mrn"])
    assert (patient["phone"], patient["birth_date"]) == ("+91 98450 12345", "1980-02-29")
    assert sql.execute(
        "SELECT mrn, name, phone, birth_date::text FROM hms.patients WHERE id = %s",
        (patient["id"],)).fetchone() == (patient["mrn"], "Asha Verma", "+91 98450 12345",
                                         "1980-02-29")
    table = ok(cli_env, "patient", "add", "--name", "Ravi Verma")
    assert "Ravi Verma" in table
    assert re.search(r"M\d{6}", table)

    found, by_mrn, by_phone, nobody = reads(
        cli_env,
        ["patient", "search", "verma", "--json"],
        ["patient", "search", patient["mrn"], "--json"],
        ["patient", "search", "98450 12345", "--json"],
        ["patient", "search", "nobody like this", "--json"],
    )
    assert sorted(p["name"] for p in found) == ["Asha Verma", "Ravi Verma"]
    assert [p["id"] for p in by_mrn] == [patient["id"]]
    assert [p["id"] for p in by_phone] == [patient["id"]]
    assert nobody == []


# -- visits -----------------------------------------------------------------------------------------


def test_visit_commands(
    cli_env: dict[str, str], desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    p = [str(x) for x in clinic["patients"]]

    first = js(cli_env, "checkin", "--doctor", "D1", "--patient", p[0])
    assert set(first) >= VISIT_FIELDS
    assert {k: first[k] for k in VISIT_FIELDS - {"visit_id"}} == {
        "token": "D1-001", "serial": 1, "position": 1, "status": "WAITING",
        "priority": "NORMAL", "patient_id": int(p[0]), "doctor": "D1"}
    urgent = js(cli_env, "checkin", "--doctor", "d1", "--patient", p[1], "--priority", "urgent",
                "--key", "desk2-0001")
    assert (urgent["token"], urgent["position"], urgent["priority"], urgent["replayed"]) == (
        "D1-002", 1, "URGENT", False)
    replay = js(cli_env, "checkin", "--doctor", "D1", "--patient", p[1], "--priority", "urgent",
                "--key", "desk2-0001")
    assert (replay["visit_id"], replay["token"], replay["replayed"]) == (
        urgent["visit_id"], "D1-002", True)
    v = [first["visit_id"], urgent["visit_id"]]
    v += [desk.checkin("D1", int(p[n])).visit_id for n in (2, 3, 4)]
    assert sql.execute("SELECT count(*) FROM hms.visits").fetchone() == (5,)

    line, table = reads(cli_env, ["queue", "--doctor", "D1", "--json"], ["queue", "--doctor", "D1"])
    for entry in line:
        assert set(entry) >= VISIT_FIELDS
    waiting = [e for e in line if e["status"] == "WAITING"]
    assert [e["position"] for e in waiting] == [1, 2, 3, 4, 5]
    assert [e["visit_id"] for e in waiting] == [v[1], v[0], v[2], v[3], v[4]]
    assert all(f"D1-00{n}" in table for n in range(1, 6))
    assert "Patient 01" in table

    called = js(cli_env, "call-next", "--doctor", "D1")
    assert (called["visit_id"], called["status"], called["call_count"]) == (v[1], "CALLED", 1)
    assert js(cli_env, "recall", str(v[1]))["call_count"] == 2
    assert js(cli_env, "start", str(v[1]))["status"] == "IN_CONSULTATION"
    assert js(cli_env, "complete", str(v[1]))["status"] == "COMPLETED"

    out_of_turn = js(cli_env, "call", str(v[3]))
    assert (out_of_turn["status"], out_of_turn["call_count"]) == ("CALLED", 1)
    cancelled = js(cli_env, "cancel", str(v[3]), "--reason", "left early")
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("CANCELLED", "left early")

    # Waiting now: v0, v2, v4.
    skipped = js(cli_env, "skip", str(v[0]), "--places", "2")
    assert (skipped["status"], skipped["position"]) == ("WAITING", 3)
    raised = js(cli_env, "priority", str(v[4]), "emergency")
    assert (raised["priority"], raised["position"]) == ("EMERGENCY", 1)
    assert [e["visit_id"] for e in js(cli_env, "queue", "--doctor", "D1")] == [v[4], v[2], v[0]]

    moved = js(cli_env, "transfer", str(v[2]), "--to", "D2")
    assert (moved["doctor"], moved["token"], moved["status"], moved["transferred_from"]) == (
        "D2", "D2-001", "WAITING", v[2])
    shown, text = reads(cli_env, ["show", str(v[2]), "--json"], ["show", str(v[2])])
    assert (shown["status"], shown["transferred_to"], shown["token"]) == (
        "TRANSFERRED", moved["visit_id"], "D1-003")
    assert f"[visit {v[2]}]" in text and "TRANSFERRED" in text

    desk.call(v[0])
    desk.recall(v[0])
    assert js(cli_env, "recall", str(v[0]))["call_count"] == 3
    assert js(cli_env, "no-show", str(v[0]))["status"] == "NO_SHOW"
    back = js(cli_env, "requeue", str(v[0]))
    assert (back["status"], back["position"], back["call_count"]) == ("WAITING", 2, 0)

    # A booking later today (the clinic clock set to about noon), then the arrival.
    zone = noon_zone(datetime.now(UTC))
    desk.configure(timezone=zone)
    open_every_day(desk, "D2")
    at = slot_at(datetime.now(ZoneInfo(zone)) + timedelta(hours=1))
    booked = js(cli_env, "book", "--doctor", "D2", "--patient", p[5],
                "--at", at.strftime("%Y-%m-%d %H:%M"))
    assert (booked["status"], booked["token"], booked["position"], booked["business_date"]) == (
        "BOOKED", None, None, at.date().isoformat())
    arrived = js(cli_env, "arrive", str(booked["visit_id"]))
    assert (arrived["status"], arrived["token"], arrived["position"]) == ("WAITING", "D2-002", 2)

    final = {
        v[0]: "WAITING", v[1]: "COMPLETED", v[2]: "TRANSFERRED", v[3]: "CANCELLED",
        v[4]: "WAITING", moved["visit_id"]: "WAITING", booked["visit_id"]: "WAITING",
    }
    assert {vid: status_of(sql, vid) for vid in final} == final
    assert sql.execute("SELECT count(*) FROM hms.visits").fetchone() == (7,)


# -- bills and audit ----------------------------------------------------------------------------------


def test_bill_and_audit_commands(
    cli_env: dict[str, str], desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    vid = desk.checkin("D1", clinic["patients"][0]).visit_id
    desk.call_next("D1")
    desk.start(vid)
    desk.complete(vid)
    year = desk.business_date().year

    bill = js(cli_env, "bill", "create", str(vid), "--item", "Consultation=500",
              "--item", "ECG=250.50")
    assert {"id", "bill_number", "total"} <= set(bill)
    assert (bill["bill_number"], bill["total"], bill["status"], bill["visit_id"]) == (
        f"B-{year}-0001", "750.50", "ISSUED", vid)  # money: exact, two places, never a float
    assert [(i["line"], i["description"], i["amount"]) for i in bill["items"]] == [
        (1, "Consultation", "500.00"), (2, "ECG", "250.50")]
    assert sql.execute(
        "SELECT bill_number, total::text FROM hms.bills WHERE id = %s", (bill["id"],)
    ).fetchone() == (f"B-{year}-0001", "750.50")

    by_number, by_id = reads(cli_env, ["bill", "show", bill["bill_number"], "--json"],
                             ["bill", "show", str(bill["id"]), "--json"])
    assert by_number == bill
    assert by_id == bill
    voided = js(cli_env, "bill", "void", bill["bill_number"], "--reason", "wrong patient")
    assert (voided["status"], voided["void_reason"], voided["total"]) == (
        "VOID", "wrong patient", "750.50")
    assert voided["voided_at"] is not None
    assert sql.execute("SELECT status, void_reason FROM hms.bills WHERE id = %s",
                       (bill["id"],)).fetchone() == ("VOID", "wrong patient")
    shown = ok(cli_env, "bill", "show", bill["bill_number"])
    assert "VOID" in shown and "(wrong patient)" in shown  # the title may wrap
    assert "750.50" in shown and "250.50" in shown and "500.00" in shown

    # The voided number stays used: the next bill is 0002.
    second = js(cli_env, "bill", "create", str(vid), "--item", "Consultation=500")
    assert (second["bill_number"], second["total"]) == (f"B-{year}-0002", "500.00")

    timeline, timeline_text, tail, tail_text = reads(
        cli_env,
        ["audit", "timeline", str(vid), "--json"],
        ["audit", "timeline", str(vid)],
        ["audit", "tail", "--limit", "3", "--json"],
        ["audit", "tail", "--limit", "3"],
    )
    seqs = [e["seq"] for e in timeline]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    visit_events = [(e["action"], e["status_before"], e["status_after"])
                    for e in timeline if e["entity"] == "visits"]
    assert visit_events == [
        ("checkin", None, "WAITING"),
        ("call_next", "WAITING", "CALLED"),
        ("start", "CALLED", "IN_CONSULTATION"),
        ("complete", "IN_CONSULTATION", "COMPLETED"),
    ]
    bill_events = [(e["action"], e["status_after"], e["detail"]["bill_number"])
                   for e in timeline if e["entity"] == "bills"]
    assert bill_events == [
        ("bill_create", "ISSUED", f"B-{year}-0001"),
        ("bill_void", "VOID", f"B-{year}-0001"),
        ("bill_create", "ISSUED", f"B-{year}-0002"),
    ]
    assert "WAITING → CALLED" in timeline_text

    last = sql.execute("SELECT max(seq) FROM hms.audit_events").fetchone()
    assert last is not None
    assert [e["seq"] for e in tail] == [last[0], last[0] - 1, last[0] - 2]
    assert [(e["action"], e["entity"]) for e in tail] == [
        ("bill_create", "bill_items"), ("bill_create", "bills"), ("bill_void", "bills")]
    assert "bill_create" in tail_text and "bill_void" in tail_text


# -- errors -------------------------------------------------------------------------------------------

# (id, arguments, exit code, error kind, part of the message). {p} is a patient id, {v} a waiting
# visit of that patient with D1. Every case is run with and without --json.
ERRORS = [
    ("unknown-doctor", ["checkin", "--doctor", "D9", "--patient", "{p}"], 3, "NotFound",
     "no doctor with code D9"),
    ("unknown-patient", ["checkin", "--doctor", "D2", "--patient", "999999"], 3, "NotFound",
     "no patient with id 999999"),
    ("unknown-visit", ["start", "999999"], 3, "NotFound", "no visit with id 999999"),
    ("illegal-transition", ["complete", "{v}"], 4, "IllegalTransition",
     "is WAITING; cannot complete it"),
    ("duplicate-checkin", ["checkin", "--doctor", "D1", "--patient", "{p}"], 5, "Conflict",
     "already has an active visit"),
    ("empty-name", ["patient", "add", "--name", ""], 2, "InvalidInput", "name is empty"),
    ("blank-name", ["patient", "add", "--name", "   "], 2, "InvalidInput", "name is empty"),
    ("101-char-name", ["patient", "add", "--name", "x" * 101], 2, "InvalidInput",
     "101 characters long"),
    ("esc-in-name", ["patient", "add", "--name", "Eve\x1b[2J\x1b[31mRed"], 2, "InvalidInput",
     "U+001B"),
    ("nul-in-name", ["patient", "add", "--name", "Eve\x00Null"], 2, "InvalidInput", "U+0000"),
    ("bidi-in-name", ["patient", "add", "--name", "Eve\u202egnp.exe"], 2, "InvalidInput",
     "U+202E"),
    ("esc-in-doctor-name", ["doctor", "add", "--code", "D5", "--name", "Dr\x1b]0;pwned\x07"], 2,
     "InvalidInput", "U+001B"),
    ("bad-dob", ["patient", "add", "--name", "Bob", "--dob", "1990-13-01"], 2, "InvalidInput",
     "date of birth"),
    ("bad-at", ["book", "--doctor", "D2", "--patient", "{p}", "--at", "tomorrow 10am"], 2,
     "InvalidInput", "appointment time"),
    ("bad-amount", ["bill", "create", "{v}", "--item", "Consultation=five hundred"], 2,
     "InvalidInput", "is not an amount"),
    ("item-without-equals", ["bill", "create", "{v}", "--item", "Consultation 500"], 2,
     "InvalidInput", "Description=Amount"),
    ("unknown-bill", ["bill", "void", "B-1999-0042", "--reason", "typo"], 3, "NotFound",
     "no bill B-1999-0042"),
    ("non-numeric-visit", ["show", "abc"], 2, "UsageError", "Invalid value for 'VISIT'"),
]


@pytest.mark.parametrize(("args", "code", "kind", "fragment"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_error_is_one_line_and_writes_nothing(
    cli_env: dict[str, str], desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any],
    args: list[str], code: int, kind: str, fragment: str,
) -> None:
    patient = clinic["patients"][0]
    visit = desk.checkin("D1", patient).visit_id
    argv = [a.format(p=patient, v=visit) for a in args]
    via_main = any("\x00" in a for a in argv)
    before = counts(sql)

    with ThreadPoolExecutor(max_workers=2) as pool:
        as_json, as_text = pool.map(lambda extra: run(cli_env, *argv, *extra, via_main=via_main),
                                    [["--json"], []])

    for done in (as_json, as_text):
        assert done.returncode == code, (done.returncode, done.stderr)
        assert done.stdout == ""
        assert done.stderr.endswith("\n") and done.stderr.count("\n") == 1, done.stderr
        # Nothing that drives a terminal is echoed back.
        assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]",
                             done.stderr)
    error = json.loads(as_json.stderr)
    assert error["kind"] == kind
    assert fragment in error["error"]
    assert as_text.stderr == f"hms-tui: error: {error['error']}\n"
    assert counts(sql) == before


# -- literal text -----------------------------------------------------------------------------------

TRICKY_NAMES = ["[/b]", "[bold]x[/]", "Robert'); DROP TABLE hms.patients;--"]


def test_markup_and_sql_in_names_are_stored_and_shown_literally(
    cli_env: dict[str, str], sql: psycopg.Connection[Any], desk: Desk, clinic: dict[str, Any]
) -> None:
    ids = []
    for name in TRICKY_NAMES:
        added = js(cli_env, "patient", "add", "--name", name)
        assert added["name"] == name
        assert sql.execute("SELECT name FROM hms.patients WHERE id = %s",
                           (added["id"],)).fetchone() == (name,)
        ids.append(added["id"])
    table = ok(cli_env, "patient", "add", "--name", "[red]plain[/red] [link=x]y[/link]")
    assert "[red]plain[/red] [link=x]y[/link]" in table
    # The table of every patient shows each name exactly as typed.
    listing, found = reads(cli_env, ["patient", "search", ""],
                           ["patient", "search", "DROP TABLE", "--json"])
    for name in TRICKY_NAMES:
        assert name in listing
    assert [(p["id"], p["name"]) for p in found] == [(ids[2], TRICKY_NAMES[2])]
    assert counts(sql)["patients"] == len(clinic["patients"]) + 4

    for pid in ids:
        desk.checkin("D1", pid)
    line, table = reads(cli_env, ["queue", "--doctor", "D1", "--json"], ["queue", "--doctor", "D1"])
    assert [e["patient_name"] for e in line] == TRICKY_NAMES
    for name in TRICKY_NAMES:
        assert name in table


def test_search_wildcards_match_literally(
    cli_env: dict[str, str], desk: Desk, sql: psycopg.Connection[Any]
) -> None:
    for name in ("100% Cotton", "snake_case Jones", "Plain Person", "Under Score", "Lee Cole"):
        desk.add_patient(name)
    percent, underscore, e_c, two_percent, text = reads(
        cli_env,
        ["patient", "search", "%", "--json"],
        ["patient", "search", "_", "--json"],
        ["patient", "search", "e_c", "--json"],
        ["patient", "search", "%%", "--json"],
        ["patient", "search", "%"],
    )
    assert [p["name"] for p in percent] == ["100% Cotton"]
    assert [p["name"] for p in underscore] == ["snake_case Jones"]
    assert [p["name"] for p in e_c] == ["snake_case Jones"]  # not "Lee Cole"
    assert two_percent == []
    assert "100% Cotton" in text
    assert "Plain Person" not in text and "snake_case" not in text


def test_bill_table_shows_the_patient_name_literally(
    cli_env: dict[str, str], desk: Desk, sql: psycopg.Connection[Any]
) -> None:
    desk.add_doctor("D1", "Dr Rao")
    closing = desk.checkin("D1", desk.add_patient("[/b]").id).visit_id
    styled = desk.checkin("D1", desk.add_patient("[bold]x[/]").id).visit_id
    created = run(cli_env, "bill", "create", str(closing), "--item", "Consultation=500")
    # The bill is written either way; only its printout fails.
    assert sql.execute("SELECT count(*) FROM hms.bills").fetchone() == (1,)
    assert (created.returncode, created.stderr) == (0, "")
    assert "[/b]" in created.stdout
    assert "[/b]" in ok(cli_env, "bill", "show", "1")
    js(cli_env, "bill", "create", str(styled), "--item", "Consultation=500")
    assert "[bold]x[/]" in ok(cli_env, "bill", "show", "2")


def test_bill_table_shows_the_void_reason_literally(
    cli_env: dict[str, str], desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    vid = desk.checkin("D1", clinic["patients"][0]).visit_id
    number = js(cli_env, "bill", "create", str(vid), "--item", "Consultation=500")["bill_number"]
    voided = run(cli_env, "bill", "void", number, "--reason", "typed [/i] by mistake")
    assert sql.execute("SELECT status, void_reason FROM hms.bills").fetchone() == (
        "VOID", "typed [/i] by mistake")
    assert (voided.returncode, voided.stderr) == (0, "")
    assert "[/i]" in voided.stdout  # the title may wrap between words


@pytest.mark.parametrize(("url", "expected"), [
    ("notaurl", 'missing "=" after "notaurl"'),
    ("postgresql://[bad", "IPv6 host address"),
])
def test_a_malformed_database_url_is_one_line(cli_env: dict[str, str], url: str,
                                              expected: str) -> None:
    env = {**cli_env, "HMS_DATABASE_URL": url}
    result = subprocess.run([sys.executable, "-m", "hms_tui", "db", "status"], env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "not a valid PostgreSQL URL" in result.stderr
    assert expected in result.stderr


def test_ids_beyond_bigint_are_bad_input(cli_env: dict[str, str]) -> None:
    for args in (["show", str(2**63)], ["checkin", "--doctor", "D1", "--patient", str(2**64)],
                 ["audit", "tail", "--visit", str(2**63)]):
        result = subprocess.run([sys.executable, "-m", "hms_tui", *args], env=cli_env,
                                capture_output=True, text=True, check=False)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "less than or equal to" in result.stderr
