"""After the database pulled its connections away (a restart, a failover, an admin), the first
action on every terminal succeeds: pooled connections are checked before use and a statement
that never reached the server is sent on a fresh one. A statement that may have reached the
server is reported, never repeated blindly."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from hms_tui.db.connection import Database
from hms_tui.domain.errors import DatabaseUnavailable
from hms_tui.domain.models import Status
from hms_tui.services.desk import Desk


def kill_everyone(sql: psycopg.Connection[Any]) -> int:
    """Terminate every other backend of this database (as an outage would)."""
    rows = sql.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                       " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                       ).fetchall()
    time.sleep(0.2)
    return len(rows)


def test_the_first_action_on_every_terminal_after_an_outage_succeeds(
    dsn: str, desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    terminals = [Desk(Database(dsn, terminal=f"desk-{i}")) for i in range(3)]
    try:
        p = clinic["patients"]
        for i, t in enumerate(terminals):  # each terminal's pool holds a connection now
            t.checkin("D1", p[i])
        assert kill_everyone(sql) >= 3
        reception, doctor, admin = terminals
        # A write without a key (call-next), a keyed check-in, a read, a cancel: all first
        # time, no error.
        called = doctor.call_next("D1")
        assert called.status is Status.CALLED
        again = reception.checkin("D2", p[5], key="k-after-outage")
        assert again.token == "D2-001"
        assert [v.token for v in admin.queue("D1")][:1] == ["D1-001"]
        assert kill_everyone(sql) >= 3
        assert reception.cancel(admin.queue("D1")[-1].visit_id, "left").status is \
            Status.CANCELLED
        assert admin.configure(clinic_name="After the outage").clinic_name == \
            "After the outage"
    finally:
        for t in terminals:
            t.db.dispose()


def test_a_write_that_may_have_reached_the_server_is_reported_not_repeated(
    dsn: str, desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    visit = desk.checkin("D1", clinic["patients"][0])
    lock = psycopg.connect(dsn, autocommit=True)
    outcome: list[BaseException | str] = []
    try:
        with lock.transaction():
            # Hold the queue's lock: the cancel below reaches the server and waits there.
            lock.execute("SELECT 1 FROM hms.counters WHERE kind = 'serial' FOR UPDATE")

            def cancel() -> None:
                try:
                    desk.cancel(visit.visit_id, "changed their mind")
                    outcome.append("done")
                except DatabaseUnavailable as exc:
                    outcome.append(exc)

            thread = threading.Thread(target=cancel)
            thread.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not sql.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()").fetchone():
                time.sleep(0.05)
            sql.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND datname = current_database()")
            thread.join(10)
    finally:
        lock.close()
    assert len(outcome) == 1 and isinstance(outcome[0], DatabaseUnavailable), outcome
    # Reported, and not sent again: the visit is still waiting, one attempt in the log.
    assert desk.visit(visit.visit_id).status is Status.WAITING
    assert sql.execute("SELECT count(*) FROM hms.audit_events WHERE action = 'cancel'"
                       ).fetchone() == (0,)


@pytest.mark.parametrize("attempts", [3])
def test_keyed_check_ins_are_retried_safely(dsn: str, desk: Desk, clinic: dict[str, Any],
                                            sql: psycopg.Connection[Any], attempts: int) -> None:
    """A keyed check-in whose connection died is sent again on a fresh one: the key makes
    the retry return the visit of the first, never a second visit."""
    p = clinic["patients"][0]
    first = desk.checkin("D1", p, key="same-key")
    for _ in range(attempts):
        kill_everyone(sql)
        again = desk.checkin("D1", p, key="same-key")
        assert again.visit_id == first.visit_id and again.replayed
    assert sql.execute("SELECT count(*) FROM hms.visits").fetchone() == (1,)
