"""The deployment findings (a primary with standbys, PgBouncer in front), reproduced against
real servers started by the tests (tests/infra).

Tests marked ``xfail(strict=True)`` reproduce a finding that today's code still has: they
assert the behaviour the fix must give and fail today. Once a fix lands the test passes,
strict xfail turns that into a failure, and the marker is removed. Unmarked tests check a
property today's code already has and must keep.
"""
# ruff: noqa: F811  (fixtures imported from tests.infra.fixtures are parameters here)

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hms_tui.db.connection import Database
from hms_tui.domain.errors import HmsError, NumberingHeld
from hms_tui.domain.events import ConnectionState, ConnectionUpdate
from hms_tui.services.desk import Desk
from hms_tui.services.failover import Failover
from hms_tui.services.live import Listener
from tests.infra.fixtures import (  # noqa: F401
    bouncer_factory,
    cluster_factory,
    hms_database,
    no_leftover_servers,
    replica_set_factory,
)
from tests.infra.pgbouncer import Bouncer
from tests.infra.pgcluster import Cluster, ReplicaSet, detach, wait_caught_up
from tests.listener_harness import ListenerHarness, fast_listener

ROOT = Path(__file__).resolve().parent.parent


def with_dbname(dsn: str, dbname: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]


def run_listener(listener: Listener, seconds: float) -> list[ConnectionUpdate]:
    """Run ``listener`` for ``seconds``; the connection updates it delivered."""
    updates: list[ConnectionUpdate] = []
    listener.subscribe(lambda e: updates.append(e) if isinstance(e, ConnectionUpdate) else None)

    async def run_for() -> None:
        task = asyncio.create_task(listener.run())
        await asyncio.sleep(seconds)
        await listener.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run_for())
    return updates


# -- 1. through PgBouncer --------------------------------------------------------------------------


@dataclass
class Outcome:
    terminal: str
    action: str
    visit_id: int
    error: str | None


def desk_process(pooled: str, name: str, action: str, ids: list[int], start: Any,
                 results: Any) -> None:
    """One long-lived terminal in its own process: the same connection for every action."""
    db = Database(pooled, terminal=name)
    desk = Desk(db)
    outcomes = []
    start.wait(60)
    try:
        for visit_id in ids:
            try:
                if action == "cancel":
                    desk.cancel(visit_id, "patient left")
                else:
                    desk.set_priority(visit_id, "urgent")
                error = None
            except Exception as exc:  # what the desk would show; keep going
                error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            outcomes.append(Outcome(name, action, visit_id, error))
    finally:
        db.dispose()
        results.put(outcomes)


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_two_long_lived_desks_through_pgbouncer_do_what_each_asked(
    pool_mode: str, cluster_factory: Callable[..., Cluster],
    bouncer_factory: Callable[..., Bouncer]
) -> None:
    """Two terminal processes, each on one connection for 40 actions (past psycopg's
    prepare threshold of 5), one cancelling, the other changing priorities, through a real
    PgBouncer 1.18 that shares 2 server connections (1.18 does not track prepared
    statements): every action is the one its terminal asked for, every audit row names it."""
    pg = cluster_factory("pool")
    dsn = hms_database(pg)
    setup = Desk(Database(dsn, terminal="setup"))
    setup.add_doctor("D1", "Dr Rao", "Room 3")
    visits = [setup.checkin("D1", setup.add_patient(f"Patient {i:02d}").id).visit_id
              for i in range(80)]
    setup.db.dispose()
    pgb = bouncer_factory(pg, pool_mode, default_pool_size=2)
    pooled = with_dbname(pgb.dsn(), psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])  # type: ignore[arg-type]
    plan = {"desk-cancel": ("cancel", visits[:40]), "desk-priority": ("set_priority", visits[40:])}
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=desk_process, args=(pooled, name, action, ids, start, results))
             for name, (action, ids) in plan.items()]
    for proc in procs:
        proc.start()
    outcomes: list[Outcome] = []
    for _ in procs:
        outcomes += results.get(timeout=120)
    for proc in procs:
        proc.join(30)
    assert len(outcomes) == 80

    failed = [o for o in outcomes if o.error]
    with pg.connect(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]) as conn:  # type: ignore[arg-type]
        state = {vid: (status, priority) for vid, status, priority in conn.execute(
            "SELECT id, status::text, priority::text FROM hms.visits WHERE id = ANY(%s)",
            (visits,))}
        audit = conn.execute(
            "SELECT terminal, action, visit_id FROM hms.audit_events WHERE visit_id = ANY(%s) "
            "AND action IN ('cancel', 'set_priority')", (visits,)).fetchall()
    wrong_effect = [vid for vid in visits[:40] if state[vid][0] != "CANCELLED"] + \
        [vid for vid in visits[40:] if state[vid] != ("WAITING", "URGENT")]
    owner = {vid: name for name, (_a, ids) in plan.items() for vid in ids}
    expected_action = {vid: plan[owner[vid]][0] for vid in visits}
    wrong_terminal = [r for r in audit if r[0] != owner[r[2]]]
    wrong_action = [r for r in audit if r[1] != expected_action[r[2]]]
    errors = sorted({re.sub(r"\d+", "N", o.error or "") for o in failed})
    assert not (failed or wrong_effect or wrong_terminal or wrong_action), (
        f"{len(failed)} of 80 actions failed ({errors}); {len(wrong_effect)} visits not as "
        f"asked; {len(wrong_action)} audit rows of another terminal's action; "
        f"{len(wrong_terminal)} of {len(audit)} audit rows name the wrong terminal")
    assert len(audit) == 80
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    [stats] = [r for r in pgb.show("stats") if r["database"] == dbname]
    assert int(stats["total_xact_count"]) >= 80  # every action went through the pooler


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_listener_connects_through_pgbouncer(
    pool_mode: str, cluster_factory: Callable[..., Cluster],
    bouncer_factory: Callable[..., Bouncer]
) -> None:
    pg = cluster_factory("lb")
    dsn = hms_database(pg)
    pgb = bouncer_factory(pg, pool_mode)
    db = Database(with_dbname(pgb.dsn(), psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]),  # type: ignore[arg-type]
                  terminal="watch-1")
    updates = run_listener(fast_listener(db), 4.0)
    refusals = [u.detail for u in updates if "startup parameter" in u.detail]
    assert not refusals, f"refused at connect: {refusals[0]}"
    assert "unsupported startup parameter" not in pgb.log_text()


def test_listener_says_in_one_line_that_transaction_pooling_cannot_carry_listen(
    cluster_factory: Callable[..., Cluster], bouncer_factory: Callable[..., Bouncer]
) -> None:
    pg = cluster_factory("lt")
    dsn = hms_database(pg)
    pgb = bouncer_factory(pg, "transaction")
    db = Database(with_dbname(pgb.dsn(), psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]),  # type: ignore[arg-type]
                  terminal="watch-1")
    updates = run_listener(fast_listener(db), 4.0)
    assert ConnectionState.LIVE not in [u.state for u in updates]
    said = [u.detail for u in updates if re.search(r"transaction", u.detail, re.I)
            and re.search(r"pool", u.detail, re.I)]
    assert said, f"no state said why: {[(u.state.value, u.detail) for u in updates]}"
    assert all("\n" not in d for d in said)


def test_listener_through_a_session_pooler_is_live_and_past_a_transaction_pooler_too(
    cluster_factory: Callable[..., Cluster], bouncer_factory: Callable[..., Bouncer]
) -> None:
    """A session-mode pool carries LISTEN: live, and changes arrive. Desks through a
    transaction-mode pool with the listener on database.listen_url (PostgreSQL itself): live,
    and a check-in made through the pooler reaches the screen."""
    pg = cluster_factory("ls")
    dsn = hms_database(pg)
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    session = bouncer_factory(pg, "session", default_pool_size=5)  # a session each
    transaction = bouncer_factory(pg, "transaction")
    for db in (Database(with_dbname(session.dsn(), dbname), terminal="screen"),  # type: ignore[arg-type]
               Database(with_dbname(transaction.dsn(), dbname), terminal="screen",  # type: ignore[arg-type]
                        listen_conninfo=dsn)):
        desk = Desk(db)
        listener = fast_listener(db)
        try:
            if not desk.doctors():
                desk.add_doctor("D1", "Dr Rao")
            with ListenerHarness(listener) as harness:
                desk.checkin("D1", desk.add_patient("Kumar, Anil").id)
                harness.converge(desk, "D1", 5)
                assert harness.queue_events("D1", "change"), "the change did not arrive by itself"
        finally:
            db.dispose()


def test_watch_through_a_transaction_pooler_says_why_in_one_line(
    cluster_factory: Callable[..., Cluster], bouncer_factory: Callable[..., Bouncer],
    tmp_path: Path
) -> None:
    pg = cluster_factory("wt")
    dsn = hms_database(pg)
    pgb = bouncer_factory(pg, "transaction")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "HMS_"))}
    env.update({"HMS_DATABASE_URL": pgb.url(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]),  # type: ignore[arg-type]
                "HMS_TUI_CONFIG": "", "XDG_CONFIG_HOME": str(tmp_path / "config")})
    proc = subprocess.run([sys.executable, "-m", "hms_tui", "watch"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "transaction-mode pooler" in lines[0], proc.stderr
    assert "database.listen_url" in lines[0]
    assert "live" not in proc.stdout


# -- 2. failover -----------------------------------------------------------------------------------


def test_listener_given_a_multi_host_url_connects_to_the_primary(
    replica_set_factory: Callable[..., ReplicaSet]
) -> None:
    rs = replica_set_factory(synchronous=False, standbys=1)
    dsn = hms_database(rs.primary, "hms")
    wait_caught_up(rs.primary, rs.standby)
    url = rs.url("hms", order=[rs.standby, rs.primary])  # the standby first: must be skipped
    listener = fast_listener(Database(url, terminal="watch-1"))
    with ListenerHarness(listener):  # goes live within 10 s or raises
        pids = {pid for (pid,) in rs.primary.psql(
            "SELECT pid FROM pg_stat_activity WHERE datname = 'hms'", dbname="hms")}
        assert listener.listen_pid in pids
    assert dsn


def test_listener_after_a_lossy_failover_shows_the_new_primarys_changes(
    replica_set_factory: Callable[..., ReplicaSet], monkeypatch: pytest.MonkeyPatch
) -> None:
    rs = replica_set_factory(synchronous=False, standbys=1)
    old, new = rs.primary, rs.standby
    hms_database(old, "hms")
    desk_old = Desk(Database(old.dsn("hms"), terminal="desk"))
    desk_old.add_doctor("D1", "Dr Rao")
    patients = [desk_old.add_patient(f"Patient {i}").id for i in range(8)]
    for p in patients[:2]:
        desk_old.checkin("D1", p)
    wait_caught_up(old, new)
    # The listener finds the servers the way the issue found working: PGHOST/PGPORT lists.
    for key in [k for k in os.environ if k.startswith("PG")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PGHOST", "127.0.0.1,127.0.0.1")
    monkeypatch.setenv("PGPORT", f"{old.port},{new.port}")
    monkeypatch.setenv("PGTARGETSESSIONATTRS", "read-write")
    monkeypatch.setenv("PGUSER", "postgres")
    monkeypatch.setenv("PGDATABASE", "hms")
    listener = fast_listener(Database("connect_timeout=2", terminal="watch-1"))
    with ListenerHarness(listener) as harness:
        harness.converge(desk_old, "D1", 5)
        detach(new)  # replication stops: what follows is acknowledged but lost
        for p in patients[2:5]:
            desk_old.checkin("D1", p)
        harness.converge(desk_old, "D1", 5)
        # The board (tokens issued) is read apart from the queue: wait until it says 5 too.
        harness.wait_for(lambda: {b.code: b.issued for b in listener.live.board}.get("D1") == 5,
                         10, "the board never showed the five tokens")
        desk_old.db.dispose()
        rs.failover()
        desk_new = Desk(Database(new.dsn("hms"), terminal="desk"))
        try:
            harness.wait_for(lambda: listener.stats.reconnects >= 1
                             and harness.state == ConnectionState.LIVE, 20,
                             "listener did not reconnect to the new primary")
            assert len(desk_new.queue("D1")) == 2  # three check-ins were lost
            harness.converge(desk_new, "D1", 5)  # the re-read after reconnecting shows that
            assert harness.queue_events("D1", "server_changed"), "no fresh start after failover"
            # The listener told the server what it saw; the server holds numbering: D1-003
            # would go to a second patient.
            harness.wait_for(lambda: listener.live.reports == ["held"], 5, "no report")
            with pytest.raises(NumberingHeld, match="confirm-failover") as held:
                desk_new.checkin("D1", patients[5])
            assert "\n" not in str(held.value)
            hold = new.psql("SELECT reason, evidence FROM hms.numbering_holds "
                            "WHERE lifted_at IS NULL", dbname="hms")
            assert hold and hold[0][0] == "server_changed"
            seen = hold[0][1][0]["queues"][0]
            assert (seen["doctor"], seen["seen_tokens"], seen["tokens"]) == ("D1", 5, 2)
            Failover(desk_new.db).confirm("slips D1-003..005 checked", skip=10)
            visit = desk_new.checkin("D1", patients[5])  # numbering resumes past the lost ones
            assert visit.token == "D1-013"
            harness.converge(desk_new, "D1", 5)  # ... and the screens follow the new primary
        finally:
            desk_new.db.dispose()


def test_failover_with_synchronous_replication_loses_no_acknowledged_checkin(
    replica_set_factory: Callable[..., ReplicaSet]
) -> None:
    """A writer checks patients in continuously through the multi-host URL while the primary
    is killed (stop -m immediate) and the standby promoted; each check-in carries a key and is
    retried with it until acknowledged; a screen's listener on the same URL. Afterwards every
    acknowledged check-in is on the new primary, as acknowledged, no token was issued twice,
    numbering never stopped (the promoted standby was synchronous) and the screen is live on
    the new primary and shows what it has -- nobody did anything."""
    rs = replica_set_factory(synchronous=True, standbys=1)
    old, new = rs.primary, rs.standby
    hms_database(old, "hms")
    url = rs.url("hms", connect_timeout="2")
    setup = Desk(Database(old.dsn("hms"), terminal="setup"))
    for code in ("D1", "D2"):
        setup.add_doctor(code, f"Dr {code}")
    patients = [setup.add_patient(f"Patient {i:03d}").id for i in range(150)]
    setup.db.dispose()
    wait_caught_up(old, new)

    acked: list[tuple[float, Any]] = []
    failures: list[str] = []
    stop = threading.Event()
    db = Database(url, terminal="writer")
    desk = Desk(db)

    def writer() -> None:
        for patient in patients:
            for doctor in ("D1", "D2"):
                key = str(uuid.uuid4())
                while not stop.is_set():
                    try:
                        visit = desk.checkin(doctor, patient, key=key)
                    except HmsError as exc:
                        failures.append(str(exc))
                        time.sleep(0.05)
                        continue
                    acked.append((time.monotonic(), visit))
                    break
                if stop.is_set():
                    return

    listener = fast_listener(Database(url, terminal="screen"))
    thread = threading.Thread(target=writer, daemon=True)
    with ListenerHarness(listener) as harness:
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while len(acked) < 40 and time.monotonic() < deadline:
                time.sleep(0.02)
            killed_at = time.monotonic()
            promoted = rs.failover()
            harness.wait_for(lambda: listener.stats.reconnects >= 1
                             and harness.state == ConnectionState.LIVE, 15,
                             "the screen is not live on the new primary")
            live_again = time.monotonic() - killed_at
            before = len([a for a in acked if a[0] < killed_at])
            while len(acked) < before + 40 and time.monotonic() < deadline + 30:
                time.sleep(0.02)
        finally:
            stop.set()
            thread.join(30)
            db.dispose()
        desk_new = Desk(Database(new.dsn("hms"), terminal="check"))
        try:
            for code in ("D1", "D2"):
                harness.converge(desk_new, code, 5)
        finally:
            desk_new.db.dispose()
    after = [a for a in acked if a[0] >= killed_at]
    assert before >= 40 and len(after) >= 40, (before, len(after), failures[-3:])
    gap = min(a[0] for a in after) - killed_at
    kinds = sorted({re.sub(r"\d+", "N", f) for f in failures})
    print(f"kill to promoted: {promoted:.2f} s; to first acknowledged check-in: {gap:.2f} s; "
          f"to screen live: {live_again:.2f} s; failed attempts: {len(failures)} {kinds}")
    assert gap < 15, f"the writer was stalled {gap:.1f}s"
    assert not [f for f in failures if "on hold" in f], "numbering stopped"
    assert listener.live.reports == []  # nothing went backwards
    assert new.psql("SELECT reason, automatic FROM hms.numbering_holds", dbname="hms") == [
        ("server_changed", True)]

    rows = {r[0]: r[1:] for r in new.psql(
        "SELECT v.id, d.code, v.business_date, v.serial, v.token, v.patient_id "
        "FROM hms.visits v JOIN hms.doctors d ON d.id = v.doctor_id", dbname="hms")}
    missing = [v.visit_id for _t, v in acked if v.visit_id not in rows]
    assert not missing, f"{len(missing)} acknowledged check-ins are not on the new primary"
    changed = [v.visit_id for _t, v in acked
               if rows[v.visit_id] != (v.doctor, v.business_date, v.serial, v.token,
                                       v.patient_id)]
    assert not changed
    tokens = [(v.doctor, v.business_date, v.serial) for _t, v in acked]
    assert len(tokens) == len(set(tokens)), "a token was handed out twice"
    seen = [(d, day, s) for d, day, s, _tok, _p in rows.values()]
    assert len(seen) == len(set(seen))


def test_standby_only_url_gives_one_clear_line(
    replica_set_factory: Callable[..., ReplicaSet], tmp_path: Path
) -> None:
    """Every command, and the listener, pointed at a standby only: one line saying so, exit 8
    ("database unavailable"), nothing written, no read served silently from the standby."""
    rs = replica_set_factory(synchronous=False, standbys=1)
    hms_database(rs.primary, "hms")
    setup = Desk(Database(rs.primary.dsn("hms"), terminal="setup"))
    setup.add_doctor("D1", "Dr Rao")
    patient = setup.add_patient("Kumar, Anil").id
    setup.db.dispose()
    wait_caught_up(rs.primary, rs.standby)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "HMS_"))}
    env.update({"HMS_TUI_CONFIG": "", "XDG_CONFIG_HOME": str(tmp_path / "config")})
    plain = rs.standby.url("hms")
    read_write = rs.url("hms", order=[rs.standby])  # target_session_attrs=read-write
    for url, args in ((plain, ["checkin", "--doctor", "D1", "--patient", str(patient)]),
                      (plain, ["queue", "--doctor", "D1"]),
                      (plain, ["db", "status", "--json"]),
                      (read_write, ["checkin", "--doctor", "D1", "--patient", str(patient)])):
        proc = subprocess.run([sys.executable, "-m", "hms_tui", *args],
                              env={**env, "HMS_DATABASE_URL": url}, cwd=ROOT,
                              capture_output=True, text=True, timeout=60, check=False)
        lines = proc.stderr.strip().splitlines()
        assert (proc.returncode, proc.stdout) == (8, ""), (args, proc.stderr[-2000:])
        assert len(lines) == 1, f"{args}: {len(lines)} lines on stderr:\n{proc.stderr[-2000:]}"
        assert "this server is a read-only standby" in lines[0], lines[0]
        assert "point hms-tui at the primary" in lines[0]
    assert rs.primary.psql("SELECT count(*) FROM hms.visits", dbname="hms") == [(0,)]
    for url in (plain, read_write):
        updates = run_listener(fast_listener(Database(url, terminal="watch-1")), 2.0)
        assert ConnectionState.LIVE not in [u.state for u in updates]
        details = {u.detail for u in updates if u.detail}
        assert details and all("read-only standby" in d and "\n" not in d for d in details), \
            details
