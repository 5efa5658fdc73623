"""Who may do what: the role x object x privilege matrix, the guarded write path, doctor links,
staff logins, timeouts, the catalog rules for SECURITY DEFINER functions, and TLS pass-through.

Every check runs against the real server as real login roles (created per test with unique
names through ``hms.staff_add`` and dropped afterwards: see ``staff_logins`` in conftest).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import pty
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import conninfo as pg_conninfo

from hms_tui.db import migrate
from hms_tui.db.connection import Database
from hms_tui.db.libpq_target import connect_listener
from hms_tui.domain.errors import (
    Busy,
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    InvalidInput,
    NotFound,
)
from hms_tui.domain.models import Status, Visit
from hms_tui.services import audit
from hms_tui.services.desk import Desk
from hms_tui.services.staff import Staff
from tests.conftest import StaffLogins, with_dbname

GROUPS = ("hms_reception", "hms_doctor", "hms_display", "hms_admin")
ALL = frozenset(GROUPS)
R, D, S, A = "hms_reception", "hms_doctor", "hms_display", "hms_admin"

# Who may EXECUTE each function (regprocedure text); every other hms function: nobody.
EXECUTE: dict[str, frozenset[str]] = {}
for _fns, _who in [
    (["clinic_timezone()", "business_date()", "get_rules()", "doctor_list()", "doctor_board()",
      "whoami()", "session_limits()", "clinic_instant(timestamp without time zone)"], ALL),
    (["display_rows()", "live_display(text[],bigint[])"], {S, A}),
    (["get_doctor(text)", "queue(text,boolean)", "live_queues(text[],bigint[])",
      "visit_info(bigint,boolean)",
      "visit_timeline(bigint)", "skip(bigint,integer)", "requeue(bigint)"], {R, D, A}),
    (["add_patient(text,text,date,boolean)", "import_patients(text[],text[],date[],boolean)",
      "get_patient(bigint)",
      "search_patients(text,integer)", "patient_duplicates(text,text,date,bigint)",
      "update_patient(bigint,text,text,date,boolean)",
      "checkin(text,bigint,text,text)",
      "book(text,bigint,timestamp without time zone,date,text)",
      "reschedule(bigint,timestamp without time zone,date,text)",
      "arrive(bigint)", "cancel(bigint,text)", "set_priority(bigint,text)",
      "transfer(bigint,text)", "create_bill(bigint,jsonb)", "void_bill(text,text)",
      "bill_info(bigint)", "find_bill(text)", "visit_bills(bigint)"], {R, A}),
    (["slots(text,date)", "session_list(text)", "expected(date,text)",
      "day_bookings(text,date)"], {R, D, A}),
    (["call_next(text,boolean)", "call(bigint,boolean)", "recall(bigint)", "start(bigint)",
      "complete(bigint)", "no_show(bigint)"], {D, A}),
    (["add_doctor(text,text,text,text)", "update_doctor(text,text,text,text,boolean)",
      "configure(jsonb)",
      "audit_tail(integer,text,text,bigint)", "staff_add(text,text,text[],text)", "staff_list()",
      "staff_disable(text)", "staff_enable(text)", "staff_link(text,text,boolean)",
      "audit_seal(integer)",
      "session_add(text,text,date,time without time zone,time without time zone,integer,"
      "integer,text)", "session_remove(integer)", "leave_add(text,date,date,text)"], {A}),
    # Statistics, the past replayed, the trail checked and restored, the day close.
    (["report_day(date,text)", "report_range(date,date,text)", "over_target()",
      "replay(timestamp with time zone,text)", "audit_check(date)",
      "audit_restore(bigint,boolean)", "day_close(date)"], {A}),
    # Failover safety (45_failover.sql): every terminal's listener observes and reports.
    (["server_identity()", "observe_server()", "report_lost_numbers(jsonb)",
      "durability_settings()"], ALL),
    (["hold_numbering(text)", "confirm_failover(text,integer)", "replication_status()",
      "numbering_holds(integer)"], {A}),
]:
    for _fn in _fns:
        EXECUTE[f"hms.{_fn}"] = frozenset(_who)

# Table, view and sequence privileges anyone holds; everything else: nobody.
RELATION: dict[tuple[str, str], frozenset[str]] = {
    ("hms.schema_migrations", "SELECT"): ALL,  # every terminal checks the schema version
    ("hms.schema_routines", "SELECT"): ALL,  # ... and its functions'
    ("hms.display_queue", "SELECT"): frozenset({S, A}),
    ("hms.audit_events", "SELECT"): frozenset({A}),  # audit verify
    ("hms.audit_head", "SELECT"): frozenset({A}),
    ("hms.audit_pending", "SELECT"): frozenset({A}),  # not sealed yet
    ("hms.audit_log", "SELECT"): frozenset({A}),
}
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT", "UPDATE")


def role_of(group: str) -> str:
    return group.removeprefix("hms_")


def some_visits(desk: Desk, clinic: dict[str, Any]) -> dict[str, list[int]]:
    """Three waiting visits for each of D1 and D2."""
    p = clinic["patients"]
    return {
        "D1": [desk.checkin("D1", p[i]).visit_id for i in range(3)],
        "D2": [desk.checkin("D2", p[i]).visit_id for i in range(3, 6)],
    }


# -- the matrix ---------------------------------------------------------------------------------


def test_privilege_matrix(sql: psycopg.Connection[Any], staff_logins: StaffLogins,
                          clinic: dict[str, Any]) -> None:
    """Each group role and a login of it, against every function, table, view and sequence of
    the schema: allowed exactly where intended."""
    logins = {g: staff_logins.add(role_of(g), ("D1",) if g == D else ()) for g in GROUPS}
    functions = [r[0] for r in sql.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'hms'::regnamespace"
    )]
    assert set(EXECUTE) <= set(functions), set(EXECUTE) - set(functions)
    relations = sql.execute(
        "SELECT c.oid::regclass::text, c.relkind FROM pg_class c"
        " WHERE c.relnamespace = 'hms'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'S', 'p')"
    ).fetchall()
    wrong = []
    for group in GROUPS:
        for who in (group, logins[group]):
            for fn in functions:
                has = sql.execute("SELECT has_function_privilege(%s, %s::regprocedure, 'EXECUTE')",
                                  (who, fn)).fetchone()
                if has is None or has[0] != (group in EXECUTE.get(fn, frozenset())):
                    wrong.append((who, "EXECUTE", fn, has))
            for rel, kind in relations:
                if kind == "S":
                    privs, check = SEQUENCE_PRIVILEGES, "has_sequence_privilege"
                else:
                    privs, check = TABLE_PRIVILEGES, "has_table_privilege"
                for priv in privs:
                    has = sql.execute(f"SELECT {check}(%s, %s, %s)", (who, rel, priv)).fetchone()
                    if has is None or has[0] != (group in RELATION.get((rel, priv), frozenset())):
                        wrong.append((who, priv, rel, has))
            usage = sql.execute("SELECT has_schema_privilege(%s, 'hms', 'USAGE'),"
                                " has_schema_privilege(%s, 'hms', 'CREATE')", (who, who)).fetchone()
            if usage != (True, False):
                wrong.append((who, "schema", "hms", usage))
    assert wrong == []


def test_app_roles_cannot_change_audit_counters_or_bills(
    desk: Desk, clinic: dict[str, Any], staff_logins: StaffLogins, sql: psycopg.Connection[Any]
) -> None:
    visit = desk.checkin("D1", clinic["patients"][0])
    desk.create_bill(visit.visit_id, [("Consultation", 500)])  # type: ignore[list-item]
    statements = [
        f"{verb} hms.{table}{tail}"
        for table in ("audit_events", "audit_head", "counters", "bills")
        for verb, tail in [("UPDATE", " SET {col} = {col}"), ("DELETE FROM", ""), ("TRUNCATE", "")]
    ]
    columns = {"audit_events": "seq", "audit_head": "last_seq", "counters": "value", "bills": "total"}
    logins = [staff_logins.add(role_of(g), ("D1",) if g == D else ()) for g in GROUPS]
    before = sql.execute("SELECT count(*), max(seq) FROM hms.audit_events").fetchone()
    for login in logins:
        with staff_logins.connect(login) as conn:
            for stmt in statements:
                table = stmt.split("hms.")[1].split()[0]
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(stmt.format(col=columns[table]))
            for stmt in ["INSERT INTO hms.visits (doctor_id, patient_id, business_date, status)"
                         " VALUES (1, 1, current_date, 'BOOKED')",
                         "INSERT INTO hms.audit_events SELECT * FROM hms.audit_events LIMIT 0",
                         "SELECT hms.audit_append('visits', 1, 1, 'INSERT', NULL, '{}')",
                         "SELECT hms.next_serial(1, current_date)",
                         "SELECT nextval('hms.mrn_seq')"]:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(stmt)
    assert sql.execute("SELECT count(*), max(seq) FROM hms.audit_events").fetchone() == before


def test_each_terminal_does_its_job_and_the_trail_names_the_person(
    desk: Desk, clinic: dict[str, Any], staff_logins: StaffLogins, sql: psycopg.Connection[Any],
    dsn: str,
) -> None:
    reception = staff_logins.add("reception")
    doctor = staff_logins.add("doctor", ("D1",))
    display = staff_logins.add("display")
    admin = staff_logins.add("admin")

    # Every terminal connects like the app does and checks the schema; it keeps no session
    # state (the label travels with each call).
    for login in (reception, doctor, display, admin):
        with staff_logins.database(login).connect() as conn:
            assert migrate.check_version(conn) == migrate.latest_version()
            assert conn.execute("SELECT current_setting('hms.terminal', true)").fetchone() \
                in ((None,), ("",))

    front = staff_logins.desk(reception)
    patient = front.add_patient("Kumar, Anil", "98450 12345", "1972-03-14")
    assert [m.id for m in front.search_patients("kumar")] == [patient.id]
    visit = front.checkin("D1", patient.id)
    bill = front.create_bill(visit.visit_id, [("Consultation", 500)])  # type: ignore[list-item]
    assert [b.bill_number for b in _visit_bills(staff_logins, reception, visit.visit_id)] \
        == [bill.bill_number]
    with pytest.raises(Forbidden):
        front.call_next("D1")  # reception does not run the consultation
    with pytest.raises(Forbidden):
        front.add_doctor("D9", "Dr Nine")

    room = staff_logins.desk(doctor)
    called = room.call_next("D1")
    assert called.visit_id == visit.visit_id
    room.start(visit.visit_id)
    assert room.complete(visit.visit_id).status is Status.COMPLETED
    with pytest.raises(Forbidden):
        room.checkin("D1", patient.id)
    with pytest.raises(Forbidden):
        room.search_patients("kumar")

    screen = staff_logins.desk(display)
    assert [b.code for b in screen.board()] == ["D1", "D2"]
    assert screen.rules().timezone == "UTC"
    with pytest.raises(Forbidden):
        screen.queue("D1")  # names: not for the waiting room
    with pytest.raises(Forbidden):
        screen.visit(visit.visit_id)

    boss = staff_logins.desk(admin)
    boss.add_doctor("D3", "Dr Iyer")
    assert {m.login for m in Staff(staff_logins.database(admin)).list()} >= {
        reception, doctor, display, admin}
    assert audit.verify(staff_logins.database(admin)).ok
    for login in (reception, doctor, display):
        with pytest.raises(Forbidden, match="hms_admin"):
            audit.verify(staff_logins.database(login))
        with pytest.raises(Forbidden):
            Staff(staff_logins.database(login)).list()

    actors = dict(sql.execute(
        "SELECT action, actor FROM hms.audit_events WHERE action IN"
        " ('patient_add', 'checkin', 'bill_create', 'call_next', 'complete', 'doctor_add')"))
    assert actors == {"patient_add": reception, "checkin": reception, "bill_create": reception,
                      "call_next": doctor, "complete": doctor, "doctor_add": admin}
    # hms.terminal is only a label: whatever a terminal claims, the actor is the login.
    liar = staff_logins.database(reception, terminal="dr-rao-pc")
    Desk(liar).checkin("D2", patient.id)
    assert sql.execute("SELECT actor, terminal FROM hms.audit_events ORDER BY seq DESC LIMIT 1"
                       ).fetchone() == (reception, "dr-rao-pc")
    assert Staff(staff_logins.database(doctor)).whoami().doctors == ("D1",)
    assert Staff(Database(dsn)).whoami().role == "owner"


def _visit_bills(staff_logins: StaffLogins, login: str, visit_id: int) -> list[Any]:
    from hms_tui.domain.models import Bill

    with staff_logins.connect(login) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return [Bill.from_row(r) for r in cur.execute("SELECT * FROM hms.visit_bills(%s)",
                                                       (visit_id,))]


# -- doctors act on their own visits only ---------------------------------------------------------


def test_a_doctor_login_cannot_touch_another_doctors_visit(
    desk: Desk, clinic: dict[str, Any], staff_logins: StaffLogins, sql: psycopg.Connection[Any]
) -> None:
    visits = some_visits(desk, clinic)
    theirs = visits["D2"]
    desk.call(theirs[0])  # a CALLED visit of D2 for recall/start/no-show
    desk.call(theirs[1], force=True)
    desk.start(theirs[1])  # IN_CONSULTATION, for complete
    login = staff_logins.add("doctor", ("D1",))
    room = staff_logins.desk(login)
    before = sql.execute("SELECT max(seq) FROM hms.audit_events").fetchone()
    attempts: list[Callable[[], Any]] = [
        lambda: room.call_next("D2"),
        lambda: room.call(theirs[2]),
        lambda: room.recall(theirs[0]),
        lambda: room.start(theirs[0]),
        lambda: room.complete(theirs[1]),
        lambda: room.no_show(theirs[0]),
        lambda: room.skip(theirs[2]),
        lambda: room.requeue(theirs[0]),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden, match=rf"{login} may act only on visits of its own doctors "
                                            r"\(D1\), not of Dr Mehta \(D2\)"):
            attempt()
    assert sql.execute("SELECT max(seq) FROM hms.audit_events").fetchone() == before
    assert [v.status for v in desk.queue("D2")] == [Status.IN_CONSULTATION, Status.CALLED,
                                                    Status.WAITING]

    # Its own doctor's visits: all fine.
    mine = room.call_next("D1")
    assert mine.visit_id == visits["D1"][0]
    assert room.skip(visits["D1"][1]).position == 2
    # An admin links it to D2 as well: now it may; unlinked again: refused again.
    boss = Staff(desk.db)
    assert boss.link(login, "D2").doctors == ("D1", "D2")
    assert room.call(theirs[2], force=True).status is Status.CALLED
    assert boss.link(login, "D2", linked=False).doctors == ("D1",)
    with pytest.raises(Forbidden):
        room.recall(theirs[2])
    # Reception and admin are never restricted to doctors; neither is the owner (postgres).
    front = staff_logins.desk(staff_logins.add("reception"))
    assert front.cancel(theirs[2], "went home").status is Status.CANCELLED
    assert staff_logins.desk(staff_logins.add("admin")).recall(theirs[0]).call_count == 2
    # A doctor login that is also in hms_reception is not restricted.
    both = staff_logins.add("doctor", ("D1",))
    sql.execute(f'GRANT hms_reception TO "{both}"')
    assert staff_logins.desk(both).complete(theirs[1]).status is Status.COMPLETED
    timeline = desk.timeline(theirs[2])
    # (forced past the patients D2 is serving: the trail says so)
    assert [(e.action, e.actor) for e in timeline if e.action in ("call_forced", "cancel")] == [
        ("call_forced", login), ("cancel", front.db.params()["user"])]


# -- staff logins ---------------------------------------------------------------------------------


def run_cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hms_tui", *args], env=env, input=stdin,
                          capture_output=True, text=True, encoding="utf-8", timeout=120,
                          check=False)


def test_staff_commands(cli_env: dict[str, str], desk: Desk, clinic: dict[str, Any],
                        staff_logins: StaffLogins, sql: psycopg.Connection[Any]) -> None:
    suffix = uuid.uuid4().hex[:8]
    asha, rao, board = f"asha.{suffix}", f"dr-rao.{suffix}", f"board_{suffix}"
    staff_logins.logins += [asha, rao, board]  # dropped at the end
    done = run_cli(cli_env, "staff", "add", asha, "--role", "reception", "--password-stdin",
                   "--json", stdin="correct horse battery\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"login": asha, "role": "reception", "doctors": [],
                                       "can_login": True}
    verifier = sql.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (asha,)).fetchone()
    assert verifier is not None and verifier[0].startswith("SCRAM-SHA-256$")
    done = run_cli(cli_env, "staff", "add", rao, "--role", "doctor", "--doctor", "d1",
                   "--doctor", "D2", "--password-stdin", stdin=StaffLogins.PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert rao in done.stdout and "D1, D2" in done.stdout
    done = run_cli(cli_env, "staff", "add", board, "--role", "display")  # no terminal to ask
    assert done.returncode == 2 and "--password-stdin" in done.stderr
    assert run_cli(cli_env, "staff", "add", board, "--role", "display", "--no-password").returncode == 0

    listed = json.loads(run_cli(cli_env, "staff", "list", "--json").stdout)
    # Roles are cluster-wide: the list shows every hms login of the server; look at ours.
    assert {m["login"]: (m["role"], m["doctors"]) for m in listed if m["login"].endswith(suffix)} == {
        asha: ("reception", []), rao: ("doctor", ["D1", "D2"]), board: ("display", [])}

    settings = dict(sql.execute(
        "SELECT split_part(s, '=', 1), split_part(s, '=', 2) FROM pg_db_role_setting r,"
        " unnest(r.setconfig) s WHERE r.setdatabase = 0"
        "   AND r.setrole = (SELECT oid FROM pg_roles WHERE rolname = %s)", (rao,)))
    assert settings == {"statement_timeout": "30s", "idle_in_transaction_session_timeout": "60s",
                        "lock_timeout": "5s"}
    with staff_logins.connect(rao) as conn:
        shown = [conn.execute(f"SHOW {name}").fetchone() for name in settings]
        assert shown == [("30s",), ("1min",), ("5s",)]

    done = run_cli(cli_env, "staff", "disable", rao, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["can_login"] is False
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        staff_logins.connect(rao)
    assert json.loads(run_cli(cli_env, "staff", "enable", rao, "--json").stdout)["can_login"]
    staff_logins.connect(rao).close()
    done = run_cli(cli_env, "staff", "link", rao, "--doctor", "D2", "--unlink", "--json")
    assert json.loads(done.stdout)["doctors"] == ["D1"]

    trail = sql.execute("SELECT action, entity, after FROM hms.audit_events"
                        " WHERE entity IN ('staff', 'staff_doctors') ORDER BY seq").fetchall()
    staff_rows = [(a, e["login"], e["can_login"]) for a, ent, e in trail if ent == "staff"]
    assert staff_rows == [("staff_add", asha, True), ("staff_add", rao, True),
                          ("staff_add", board, True), ("staff_disable", rao, False),
                          ("staff_enable", rao, True)]
    assert next(e for _, ent, e in trail if ent == "staff")["password"] is True
    assert not any("SCRAM" in json.dumps(e) for _, _, e in trail)  # never the verifier
    assert [a for a, ent, _ in trail if ent == "staff_doctors"] == [
        "staff_add", "staff_add", "staff_unlink"]

    # Not an admin: refused, with the exit code of Forbidden.
    as_asha = dict(cli_env, HMS_DATABASE_URL=staff_logins.dsn_of(asha, "correct horse battery"))
    done = run_cli(as_asha, "staff", "list")
    assert done.returncode == 6 and "permission denied" in done.stderr
    done = run_cli(as_asha, "audit", "verify")
    assert done.returncode == 6 and "hms_admin" in done.stderr


def test_staff_input_is_checked_in_python_and_in_the_database(
    desk: Desk, clinic: dict[str, Any], staff_logins: StaffLogins, sql: psycopg.Connection[Any]
) -> None:
    staff = Staff(desk.db)
    bad_logins = ["Asha", "robert'); drop role postgres;--", "a b", "x" * 64, "pg_monitor",
                  "hms_admin", "", "ä", "a\x1b[31m", "a\u202e"]
    for login in bad_logins:
        with pytest.raises(InvalidInput):
            staff.add(login, "reception")
        with pytest.raises(psycopg.Error):
            sql.execute("SELECT hms.staff_add(%s, 'reception')", (login,))
    with pytest.raises(InvalidInput, match="role 'nurse' is invalid"):
        staff.add("nurse1", "nurse")
    with pytest.raises(InvalidInput, match="at least one linked doctor"):
        staff.add("doc1", "doctor")
    with pytest.raises(InvalidInput, match="drop --doctor"):
        staff.add("rec1", "reception", ["D1"])
    with pytest.raises(NotFound, match="no doctor with code D7"):
        staff.add(f"t_x_{uuid.uuid4().hex[:8]}", "doctor", ["D7"])
    with pytest.raises(InvalidInput, match="too short"):
        staff.add("rec1", "reception", password="short")
    # The function itself refuses a clear-text password (so none reaches a server log).
    with pytest.raises(psycopg.Error, match="SCRAM-SHA-256 verifier"):
        sql.execute("SELECT hms.staff_add('rec1', 'reception', '{}', 'hunter22')")
    taken = staff_logins.add("reception")
    with pytest.raises(Conflict, match="already exists"):
        staff.add(taken, "display")
    with pytest.raises(NotFound, match="no staff login postgres"):
        staff.disable("postgres")  # not a member of an hms group: not ours to manage
    admin = staff_logins.add("admin")
    with pytest.raises(Conflict, match="cannot disable your own login"):
        Staff(staff_logins.database(admin)).disable(admin)
    assert sql.execute("SELECT count(*) FROM pg_roles WHERE rolname IN ('rec1', 'doc1', 'nurse1')"
                       ).fetchone() == (0,)


def test_blocked_allocation_times_out_cleanly(
    desk: Desk, clinic: dict[str, Any], staff_logins: StaffLogins, sql: psycopg.Connection[Any],
    dsn: str,
) -> None:
    """A terminal stuck holding a queue's counter: others fail after lock_timeout with a clear
    message and nothing half-written. (The functions use 5s, checked in the catalog test; here
    the test database's copy is shortened to keep the test fast.)"""
    p = clinic["patients"]
    desk.checkin("D1", p[0])
    sql.execute("ALTER FUNCTION hms.checkin(text, bigint, text, text) SET lock_timeout = '300ms'")
    front = staff_logins.desk(staff_logins.add("reception"))
    counts = "SELECT (SELECT count(*) FROM hms.visits), (SELECT max(seq) FROM hms.audit_events)," \
             " (SELECT sum(value) FROM hms.counters)"
    before = sql.execute(counts).fetchone()
    with psycopg.connect(dsn) as stuck:  # a transaction left open on the D1 counter row
        stuck.execute("SELECT * FROM hms.counters WHERE kind = 'serial' FOR UPDATE")
        with pytest.raises(Busy, match=r"lock timeout.*nothing was changed, try again"):
            front.checkin("D1", p[1])
        assert front.checkin("D2", p[1]).token == "D2-001"  # other queues are not blocked
        stuck.rollback()
    after = sql.execute(counts).fetchone()
    assert after is not None and before is not None
    assert after[0] == before[0] + 1 and after[1] == before[1] + 1 and after[2] == before[2] + 1
    assert front.checkin("D1", p[1]).token == "D1-002"  # no gap: the refused one left nothing


# -- the catalog --------------------------------------------------------------------------------


def test_no_security_definer_function_is_unpinned_or_public(sql: psycopg.Connection[Any]) -> None:
    rows = sql.execute(
        """SELECT p.oid::regprocedure::text, p.prosecdef, p.provolatile, p.prorettype = 'trigger'::regtype,
                  coalesce(p.proconfig, '{}'), p.proacl IS NULL,
                  EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0)
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'""").fetchall()
    definers = [r for r in rows if r[1]]
    assert len(definers) >= 40
    unpinned = [r[0] for r in definers if "search_path=hms, pg_temp" not in r[4]]
    public = [r[0] for r in rows if r[0].startswith("hms.") and (r[5] or r[6])]
    public += [r[0] for r in definers if r[5] or r[6]]
    no_lock_timeout = [r[0] for r in definers
                       if r[2] == "v" and not r[3] and "lock_timeout=5s" not in r[4]]
    assert (unpinned, sorted(set(public)), no_lock_timeout) == ([], [], [])
    # Functions created later by the owner start without PUBLIC EXECUTE too.
    sql.execute("CREATE FUNCTION hms.probe() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    acl = sql.execute("SELECT proacl IS NOT NULL AND NOT EXISTS (SELECT 1 FROM aclexplode(proacl)"
                      " WHERE grantee = 0) FROM pg_proc WHERE oid = 'hms.probe()'::regprocedure"
                      ).fetchone()
    assert acl == (True,)


# -- the waiting-room view ------------------------------------------------------------------------


def test_display_view_is_the_queue_without_who(
    desk: Desk, clinic: dict[str, Any], staff_logins: StaffLogins, sql: psycopg.Connection[Any]
) -> None:
    sql.execute("UPDATE hms.patients SET name = 'Kumar, Anil', phone = '98450 12345'"
                " WHERE id = %s", (clinic["patients"][0],))
    sql.execute("UPDATE hms.patients SET name = 'zoë  de la cruz-ortega' WHERE id = %s",
                (clinic["patients"][1],))
    p = clinic["patients"]
    for i in range(8):
        desk.checkin("D1", p[i], "urgent" if i == 5 else "normal")
    desk.checkin("D2", p[8])
    first = desk.call_next("D1")  # the urgent one
    desk.start(first.visit_id)
    desk.complete(first.visit_id)
    desk.start(desk.call_next("D1").visit_id)
    desk.call_next("D1", force=True)
    desk.cancel(desk.queue("D1")[-1].visit_id, "left")
    desk.skip(desk.queue("D1")[2].visit_id, 2)

    columns = ("SELECT attname, atttypid::regtype::text FROM pg_attribute"
               " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum")
    view_cols = sql.execute(columns.replace("%s", "'hms.display_queue'::regclass")).fetchall()
    type_cols = sql.execute(columns.replace(
        "%s", "(SELECT typrelid FROM pg_type WHERE oid = 'hms.visit_info'::regtype)")).fetchall()
    assert view_cols == type_cols and len(view_cols) == 26

    display = staff_logins.add("display")
    with staff_logins.connect(display) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        for doctor in ("D1", "D2"):
            shown = [Visit.from_row(r) for r in cur.execute(
                "SELECT * FROM hms.display_queue WHERE doctor = %s", (doctor,))]  # in queue order
            full = desk.queue(doctor)
            assert len(shown) == len(full) > 0
            for s, f in zip(shown, full, strict=True):
                assert (s.patient_id, s.mrn, s.cancel_reason) == (0, "", None)
                assert s == dataclasses.replace(f, patient_id=0, mrn="",
                                                patient_name=s.patient_name)
        names = {r["token"]: r["patient_name"] for r in cur.execute(
            "SELECT token, patient_name FROM hms.display_queue")}
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            cur.execute("SELECT * FROM hms.queue('D1', false)")
    assert names["D1-001"] == "K. A." and names["D1-002"] == "Z. D. L."
    assert "Patient" not in json.dumps(names)


# -- a migration run by a non-superuser owner (PostgreSQL 15 vs 16+ CREATEROLE) ---------------------


def test_non_superuser_owner_with_createrole(server_dsn: str) -> None:
    owner = f"t_own_{uuid.uuid4().hex[:10]}"
    dbname = f"hms_t_own_{uuid.uuid4().hex[:8]}"
    made: list[str] = []
    with psycopg.connect(server_dsn, autocommit=True) as su:
        su.execute(f'CREATE ROLE "{owner}" LOGIN CREATEROLE PASSWORD \'{StaffLogins.PASSWORD}\'')
        su.execute(f'CREATE DATABASE "{dbname}" OWNER "{owner}"')
        version = int(su.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
    params: dict[str, Any] = pg_conninfo.conninfo_to_dict(with_dbname(server_dsn, dbname))
    params["user"] = owner
    params["password"] = StaffLogins.PASSWORD
    owner_dsn = pg_conninfo.make_conninfo(**params)
    try:
        with psycopg.connect(owner_dsn, autocommit=True) as conn:
            migrate.upgrade(conn)
            conn.execute("SELECT hms.add_doctor('D1', 'Dr Rao', NULL, NULL)")
        staff = Staff(Database(owner_dsn))
        login = f"t_rec_{uuid.uuid4().hex[:10]}"
        made.append(login)
        if version >= 160000:
            # The groups already existed (created by the superuser): 16+ needs ADMIN OPTION.
            with pytest.raises(Forbidden, match="WITH ADMIN TRUE, INHERIT FALSE, SET FALSE"):
                staff.add(login, "reception")
            with psycopg.connect(server_dsn, autocommit=True) as su:
                su.execute(f'GRANT {", ".join(GROUPS)} TO "{owner}"'
                           " WITH ADMIN TRUE, INHERIT FALSE, SET FALSE")
        member = staff.add(login, "reception", password="a good long password")
        assert member.role == "reception"
        doc = f"t_doc_{uuid.uuid4().hex[:10]}"
        made.append(doc)
        staff.add(doc, "doctor", ["D1"])
        assert staff.disable(doc).can_login is False
        assert staff.enable(doc).can_login is True
        assert staff.whoami().role == "owner"
        assert {m.login for m in staff.list()} >= {login, doc} and owner not in {
            m.login for m in staff.list()}
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as su:
            su.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            for role in [*made, owner]:
                su.execute(f'DROP ROLE IF EXISTS "{role}"')


# -- TLS settings reach every connection ------------------------------------------------------------


def _tcp_without_ssl(dsn: str) -> bool:
    host = pg_conninfo.conninfo_to_dict(dsn).get("host") or ""
    if not host or str(host).startswith("/"):
        return False
    with psycopg.connect(dsn) as conn:
        return conn.execute("SHOW ssl").fetchone() == ("off",)


def test_ssl_settings_pass_through_to_every_connection(dsn: str, tmp_path: Any) -> None:
    ssl = {"sslmode": "verify-full", "sslrootcert": str(tmp_path / "ca.crt"),
           "sslcert": str(tmp_path / "me.crt"), "sslkey": str(tmp_path / "me.key")}
    params = Database("postgresql://asha@db.clinic.lan/hms", ssl=ssl).params()
    assert {k: params[k] for k in ssl} == ssl
    assert params["keepalives"] == "1"
    if not _tcp_without_ssl(dsn):
        pytest.skip("needs a TCP server without TLS (the machine's PostgreSQL)")
    # The server has no TLS: a terminal that requires it must refuse to connect, on the
    # synchronous path (psycopg, the desk's pool) and the listener's (asyncpg) alike.
    for mode in ("require", "verify-ca", "verify-full"):
        db = Database(dsn, ssl={"sslmode": mode})
        with pytest.raises(DatabaseUnavailable, match=r"SSL|ssl"):
            db.connect()
        with pytest.raises(DatabaseUnavailable):
            Desk(db).business_date()
        with pytest.raises(DatabaseUnavailable):
            asyncio.run(connect_listener(db, application_name="test"))
    db = Database(dsn, ssl={"sslmode": "prefer"})
    with db.connect() as conn:
        assert conn.pgconn.ssl_in_use is False
        assert dict((k.decode(), (v or b"").decode()) for k, v in
                    [(o.keyword, o.val) for o in conn.pgconn.info])["sslmode"] == "prefer"

    async def plain() -> None:
        conn = await connect_listener(db, application_name="test")
        await conn.close()

    asyncio.run(plain())


# -- the password prompt --------------------------------------------------------------------------


class FakeServer:
    """Just enough of the PostgreSQL protocol to ask for a clear-text password and record what
    each connection sends, then refuse it (no real server here asks for passwords)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.passwords: list[str] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError, struct.error):
                self.session(conn)

    @staticmethod
    def read(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    def session(self, conn: socket.socket) -> None:
        while True:  # SSLRequest / GSSENCRequest: no; then the startup message
            length, code = struct.unpack("!ii", self.read(conn, 8))
            self.read(conn, length - 8)
            if code in (80877103, 80877104):
                conn.sendall(b"N")
                continue
            break
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        kind = self.read(conn, 1)
        length = struct.unpack("!i", self.read(conn, 4))[0]
        body = self.read(conn, length - 4)
        if kind == b"p":
            self.passwords.append(body.rstrip(b"\0").decode())
        fields = b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"asha\"\0\0"
        conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)

    def close(self) -> None:
        self.sock.close()


PROMPT_CHILD = """
import asyncio, sys
from hms_tui.domain.errors import DatabaseUnavailable
from hms_tui.db.connection import Database
from hms_tui.db.libpq_target import connect_listener
db = Database(sys.argv[1])
for attempt in ("sync", "sync again"):
    try:
        db.connect()
    except DatabaseUnavailable as exc:
        print(attempt, "->", exc, flush=True)
try:
    asyncio.run(connect_listener(db, application_name="test"))
except DatabaseUnavailable as exc:
    print("async ->", exc, flush=True)
print("DONE", flush=True)
"""


def test_a_missing_password_is_asked_once_and_kept_in_memory(tmp_path: Any) -> None:
    server = FakeServer()
    dsn = f"postgresql://asha@127.0.0.1:{server.port}/hms?connect_timeout=5"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGPASSFILE=str(tmp_path / "no-pgpass"), HOME=str(tmp_path))
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal session, like a person at a desk
        os.execve(sys.executable, [sys.executable, "-c", PROMPT_CHILD, dsn], env)
    output = b""
    try:
        deadline = time.monotonic() + 60
        while b"DONE" not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if chunk.rstrip().endswith(b":") and b"Password for asha" in chunk:
                os.write(fd, b"typed-at-the-desk\n")
    finally:
        os.close(fd)
        os.waitpid(pid, 0)
        server.close()
    text = output.decode(errors="replace")
    assert text.count("Password for asha") == 1, text  # asked once, for the whole process
    assert "typed-at-the-desk" not in text  # not echoed
    assert text.count("password authentication failed") == 3, text
    # The sync pool and the listener's asyncpg connections both used the typed password.
    assert server.passwords == ["typed-at-the-desk"] * 3
