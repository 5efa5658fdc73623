"""Live refresh against real PostgreSQL: signals, kills, restarts, bursts and missed signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest

from hms_tui.db import migrate
from hms_tui.db.connection import Database
from hms_tui.domain.events import ConnectionState
from hms_tui.services.desk import Desk
from tests.listener_harness import ListenerHarness, fast_listener


def read_json_line(stream: IO[str], timeout: float) -> dict[str, Any]:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not result or not result[0]:
        raise AssertionError("no line from hms-tui watch")
    return json.loads(result[0])  # type: ignore[no-any-return]


def test_change_in_one_process_reaches_watch_in_another(
    desk: Desk, clinic: dict[str, Any], cli_env: dict[str, str]
) -> None:
    watch = subprocess.Popen(
        [sys.executable, "-m", "hms_tui", "watch", "--doctor", "D1", "--json"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert watch.stdout is not None
        while read_json_line(watch.stdout, 15).get("state") != "live":
            pass
        started = time.monotonic()
        visit = desk.checkin("D1", clinic["patients"][0])
        line = read_json_line(watch.stdout, 5)
        elapsed = time.monotonic() - started
        assert line["doctor"] == "D1"
        assert line["kind"] == "checkin"
        assert [e["visit_id"] for e in line["queue"]] == [visit.visit_id]
        assert line["queue"][0]["token"] == "D1-001"
        assert line["queue"][0]["position"] == 1
        assert elapsed < 2
    finally:
        watch.send_signal(signal.SIGINT)
        watch.wait(10)


def test_rolled_back_change_sends_nothing(dsn: str, db: Database, desk: Desk,
                                          clinic: dict[str, Any]) -> None:
    with psycopg.connect(dsn, autocommit=True) as raw_listener:
        raw_listener.execute("LISTEN hms_changes")
        with ListenerHarness(fast_listener(db)) as harness:
            before = len(harness.queue_events("D1"))
            with psycopg.connect(dsn) as conn:
                conn.execute("SELECT * FROM hms.checkin('D1', %s)", (clinic["patients"][0],))
                conn.rollback()
            time.sleep(0.5)
            assert len(harness.queue_events("D1")) == before
            assert harness.listener.stats.notifications == 0
        assert list(raw_listener.notifies(timeout=0.2)) == []
        # A committed change right after is seen by the raw listener too: the test can fail.
        desk.checkin("D1", clinic["patients"][1])
        notes = list(raw_listener.notifies(timeout=1, stop_after=1))
        payload = json.loads(notes[0].payload)
        assert (payload["k"], payload["d"], payload["a"]) == ("queue", "D1", "checkin")
        assert len(notes[0].payload) <= 200


def test_one_notification_per_queue_per_statement(dsn: str, sql: psycopg.Connection[Any],
                                                  desk: Desk, clinic: dict[str, Any]) -> None:
    for p in clinic["patients"][:6]:
        desk.checkin("D1" if p % 2 else "D2", p)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN hms_changes")
        # One statement touching six visits of two queues.
        sql.execute("SELECT set_config('hms.action', 'bulk_priority', false)")
        sql.execute("UPDATE hms.visits SET priority = 'URGENT' WHERE status = 'WAITING'")
        notes = list(listener.notifies(timeout=0.5))
    doctors = sorted(json.loads(n.payload)["d"] for n in notes)
    assert doctors == ["D1", "D2"]


def test_listener_survives_twenty_kills_while_changes_flow(
    dsn: str, db: Database, desk: Desk, sql: psycopg.Connection[Any]
) -> None:
    desk.add_doctor("D1", "Dr Rao")
    patients = [r[0] for r in sql.execute(
        "SELECT (hms.add_patient('P' || g, NULL, NULL)).id FROM generate_series(1, 400) g")]
    flowing = threading.Event()
    flowing.set()
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for p in patients:
                if stop.is_set():
                    return
                flowing.wait()
                conn.execute("SELECT hms.checkin('D1', %s)", (p,))
                written.append(p)
                time.sleep(0.01)

    with ListenerHarness(fast_listener(db)) as harness:
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        try:
            for kill in range(20):
                pid = harness.listener.listen_pid
                reconnects = harness.listener.stats.reconnects
                assert sql.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
                harness.wait_for(lambda r=reconnects: harness.listener.stats.reconnects > r
                                 and harness.state == ConnectionState.LIVE,
                                 5, f"no reconnect after kill {kill + 1}")
                flowing.clear()  # hold the writer so "equal to the database" is well defined
                time.sleep(0.03)
                harness.converge(desk, "D1", timeout=2.0)
                flowing.set()
                time.sleep(0.05)
        finally:
            stop.set()
            flowing.set()
            thread.join(10)
        harness.converge(desk, "D1", timeout=2.0)
        assert harness.listener.stats.reconnects >= 20
        assert ConnectionState.RECONNECTING in harness.states()
        assert len(written) > 20


def test_burst_is_coalesced_and_ends_exact(dsn: str, db: Database, desk: Desk,
                                           sql: psycopg.Connection[Any]) -> None:
    desk.add_doctor("D1", "Dr Rao")
    patients = [r[0] for r in sql.execute(
        "SELECT (hms.add_patient('P' || g, NULL, NULL)).id FROM generate_series(1, 500) g")]
    listener = fast_listener(db, heartbeat=30)
    with ListenerHarness(listener) as harness:
        refetches_before = listener.stats.refetches
        started = time.monotonic()
        with psycopg.connect(dsn, autocommit=True) as conn:
            for p in patients:
                conn.execute("SELECT hms.checkin('D1', %s)", (p,))
        harness.converge(desk, "D1", timeout=5)
        elapsed = time.monotonic() - started
        refetches = listener.stats.refetches - refetches_before
        assert listener.stats.notifications >= 500
        # The throttle allows one read round per window (plus the leading edge and the
        # converge's last one); a read per signal would be 500.
        assert 1 <= refetches <= elapsed / listener.feed.coalesce + 3, (refetches, elapsed)
        waiting = [v for v in harness.view["D1"] if v.position is not None]
        assert [v.position for v in waiting] == list(range(1, 501))


def test_missed_notification_is_repaired_by_the_backup_poll(
    db: Database, desk: Desk, sql: psycopg.Connection[Any], clinic: dict[str, Any]
) -> None:
    with ListenerHarness(fast_listener(db, poll_interval=0.5)) as harness:
        sql.execute("ALTER TABLE hms.visits DISABLE TRIGGER visits_notify_insert")
        try:
            visit = desk.checkin("D1", clinic["patients"][0])  # commits without a signal
        finally:
            sql.execute("ALTER TABLE hms.visits ENABLE TRIGGER visits_notify_insert")
        harness.converge(desk, "D1", timeout=2.0)
        repaired = harness.queue_events("D1", reason="poll")
        assert repaired and repaired[-1].visits[0].visit_id == visit.visit_id
        assert harness.listener.stats.notifications == 0


def test_hung_server_connection_is_detected_by_heartbeat(
    db: Database, desk: Desk, sql: psycopg.Connection[Any], clinic: dict[str, Any]
) -> None:
    """A backend that stops answering (SIGSTOP: the socket stays open, nothing comes back) is
    found by the heartbeat, not left silently stale."""
    with ListenerHarness(fast_listener(db)) as harness:
        pid = harness.listener.listen_pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            took = harness.wait_for(lambda: harness.state != ConnectionState.LIVE, 5,
                                    "a hung connection was not noticed")
            assert took < 3  # heartbeat 1 s + timeout 1 s here; 5 s + 5 s by default
            harness.wait_for(lambda: harness.state == ConnectionState.LIVE, 5, "no recovery")
        finally:
            os.kill(pid, signal.SIGCONT)
            sql.execute("SELECT pg_terminate_backend(%s)", (pid,))
        desk.checkin("D1", clinic["patients"][0])
        harness.converge(desk, "D1")


def test_hung_refresh_is_a_lost_connection(
    db: Database, desk: Desk, sql: psycopg.Connection[Any], clinic: dict[str, Any]
) -> None:
    """The backend answering the listener's reads stops answering in the middle of a change:
    the read times out, the listener reconnects and catches up, rather than hanging."""
    with ListenerHarness(fast_listener(db)) as harness:
        pid = harness.listener.listen_pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            desk.checkin("D1", clinic["patients"][0])  # its refetch meets the stopped backend
            harness.wait_for(lambda: harness.state != ConnectionState.LIVE, 5,
                             "a hung refresh was not noticed")
        finally:
            os.kill(pid, signal.SIGCONT)
            sql.execute("SELECT pg_terminate_backend(%s)", (pid,))
        harness.wait_for(lambda: harness.state == ConnectionState.LIVE, 5, "no recovery")
        harness.converge(desk, "D1")


def test_server_stop_and_start_reports_offline_then_converges(server_home: Path) -> None:
    """Its own embedded server, so stopping it disturbs nothing else."""
    from hms_tui.db.embedded import EmbeddedServer

    data_dir = server_home / "pg"
    server = EmbeddedServer(data_dir)
    conninfo = server.start()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        migrate.upgrade(conn)
    db = Database(conninfo)
    desk = Desk(db)
    desk.add_doctor("D1", "Dr Rao")
    first, second = desk.add_patient("Before Restart"), desk.add_patient("After Restart")
    desk.checkin("D1", first.id)
    try:
        with ListenerHarness(fast_listener(db)) as harness:
            harness.converge(desk, "D1")
            db.dispose()
            server.stop()
            harness.wait_for(lambda: harness.state == ConnectionState.OFFLINE, 10,
                             "listener never reported offline")
            assert ConnectionState.RECONNECTING in harness.states()
            server = EmbeddedServer(data_dir)
            assert server.start() == conninfo
            harness.wait_for(lambda: harness.state == ConnectionState.LIVE, 10,
                             "listener never came back")
            desk.checkin("D1", second.id)
            harness.converge(desk, "D1")
            assert [v.patient_name for v in harness.view["D1"]] == ["Before Restart",
                                                                    "After Restart"]
    finally:
        db.dispose()
        server.stop()


@pytest.mark.parametrize("watchers", [2])
def test_two_watch_processes_and_a_writer(desk: Desk, clinic: dict[str, Any],
                                          cli_env: dict[str, str], watchers: int) -> None:
    """The issue's demonstration: two `hms-tui watch --json` and a third process checking in."""
    procs = [subprocess.Popen([sys.executable, "-m", "hms_tui", "watch", "--json"], env=cli_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(watchers)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            while read_json_line(proc.stdout, 15).get("state") != "live":
                pass
        result = subprocess.run(
            [sys.executable, "-m", "hms_tui", "checkin", "--doctor", "D2", "--patient",
             str(clinic["patients"][3]), "--json"],
            env=cli_env, capture_output=True, text=True, check=True)
        token = json.loads(result.stdout)["token"]
        for proc in procs:
            assert proc.stdout is not None
            line = read_json_line(proc.stdout, 5)
            assert line["doctor"] == "D2"
            assert [e["token"] for e in line["queue"]] == [token]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
            proc.wait(10)


def test_doctor_change_refreshes_the_rows_that_show_it(db: Database, desk: Desk,
                                                        clinic: dict[str, Any]) -> None:
    """Queue rows carry the doctor's name and room: moving rooms must reach every screen."""
    desk.checkin("D1", clinic["patients"][0])
    with ListenerHarness(fast_listener(db)) as harness:
        harness.converge(desk, "D1")
        desk.update_doctor("D1", room="Room 9")
        harness.wait_for(lambda: harness.view["D1"][0].room == "Room 9", 2,
                         "the new room never reached the subscriber")
        assert any(b.room == "Room 9" for b in harness.listener.board)


def test_a_new_business_day_is_picked_up_at_its_first_change(
    db: Database, desk: Desk, clinic: dict[str, Any]
) -> None:
    """After midnight the first check-in carries the new date: the listener re-reads the day
    at once instead of waiting for its backup poll."""
    desk.configure(timezone="Etc/GMT+12")
    desk.checkin("D1", clinic["patients"][0])
    with ListenerHarness(fast_listener(db)) as harness:
        harness.converge(desk, "D1")
        old_day = harness.listener.business_date
        with psycopg.connect(db.conninfo, autocommit=True) as conn:
            # Move the clinic east without a signal (settings changes notify; this one must
            # not, so only the check-in's date can tell the listener), then check in.
            conn.execute("ALTER TABLE hms.settings DISABLE TRIGGER settings_notify")
            conn.execute("UPDATE hms.settings SET timezone = 'Etc/GMT-14'")
            conn.execute("ALTER TABLE hms.settings ENABLE TRIGGER settings_notify")
        visit = desk.checkin("D1", clinic["patients"][1])
        harness.wait_for(lambda: harness.listener.business_date == visit.business_date, 2,
                         "the listener stayed on the old day")
        assert visit.business_date != old_day
        harness.converge(desk, "D1")
        assert [v.visit_id for v in harness.view["D1"]] == [visit.visit_id]


def test_each_terminal_role_gets_its_live_view(desk: Desk, clinic: dict[str, Any],
                                               staff_logins: Any) -> None:
    """A reception login follows queues through version deltas; a display login, which may
    not see names, through the masked view — both live, neither refused."""
    desk.checkin("D1", clinic["patients"][0])
    reception = staff_logins.database(staff_logins.add("reception"))
    display = staff_logins.database(staff_logins.add("display"))
    with ListenerHarness(fast_listener(reception)) as front, \
            ListenerHarness(fast_listener(display, masked=True)) as board:
        visit = desk.checkin("D1", clinic["patients"][1])
        front.converge(desk, "D1")
        board.wait_for(lambda: [v.visit_id for v in board.view.get("D1", ())]
                       == [v.visit_id for v in desk.queue("D1")], 2, "display never caught up")
        names = [v.patient_name for v in board.view["D1"]]
        assert names == ["P.", "P."]  # 'Patient 00', 'Patient 01': initials of letters only
        assert {v.mrn for v in board.view["D1"]} == {""}
        assert front.view["D1"][-1].visit_id == visit.visit_id


def test_a_corrected_patient_name_reaches_the_screens(db: Database, desk: Desk,
                                                      sql: psycopg.Connection[Any],
                                                      clinic: dict[str, Any]) -> None:
    visit = desk.checkin("D1", clinic["patients"][0])
    with ListenerHarness(fast_listener(db)) as harness:
        harness.converge(desk, "D1")
        sql.execute("UPDATE hms.patients SET name = 'Patient Zero' WHERE id = %s",
                    (visit.patient_id,))
        harness.wait_for(lambda: harness.view["D1"][0].patient_name == "Patient Zero", 2,
                         "the corrected name never reached the subscriber")


def test_forged_signals_are_hints_that_cost_at_most_one_read_per_window(
    db: Database, desk: Desk, dsn: str, clinic: dict[str, Any]
) -> None:
    """Anyone may NOTIFY the channel. Payloads of the wrong shape are counted and ignored;
    a well-formed one for a doctor that does not exist reconnects nothing and shows nothing;
    a flood costs at most one read round per throttle window; no traceback."""
    desk.checkin("D1", clinic["patients"][0])
    today = desk.business_date().isoformat()
    malformed = ['[1, 2]', '"queue"', "null", "not json", '{"k": 7}', '{"k": "queue", "d": "d1",'
                 f' "bd": "{today}"}}', '{"k": "queue", "d": "D1", "bd": "2026-13-45"}',
                 '{"k": "queue", "d": "' + "D" * 300 + f'", "bd": "{today}"}}',
                 f'{{"k": "queue", "d": "D1", "bd": "{today}", "v": -1}}']
    unknown = f'{{"k": "queue", "d": "ZZ9", "bd": "{today}", "a": "checkin", "v": 1}}'
    listener = fast_listener(db)
    with ListenerHarness(listener) as harness:
        harness.converge(desk, "D1")
        rounds, ignored = listener.stats.refetches, listener.stats.ignored
        started = time.monotonic()
        with psycopg.connect(dsn, autocommit=True) as forger:
            for _ in range(40):  # 20 floods a second for 2 s
                for payload in [*malformed, unknown]:
                    forger.execute("SELECT pg_notify('hms_changes', %s)", (payload,))
                time.sleep(0.05)
        visit = desk.checkin("D1", clinic["patients"][1])
        harness.wait_for(lambda: any(v.visit_id == visit.visit_id
                                     for v in harness.view.get("D1", ())), 3,
                         "a real change after the flood never arrived")
        elapsed = time.monotonic() - started
        assert harness.states().count(ConnectionState.RECONNECTING) == 0
        assert listener.stats.reconnects == 0
        assert listener.stats.ignored - ignored == 40 * len(malformed)
        assert listener.stats.refetches - rounds <= elapsed / listener.feed.coalesce + 2
        assert "ZZ9" not in harness.view and "ZZ9" not in listener.queues
        harness.converge(desk, "D1")
