"""The connection budget: a terminal holds at most two server connections (the listener, which
also does the live reads, and one for actions and reads), however busy it is."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from hms_tui.db.connection import MAX_POOL_SIZE, Database
from hms_tui.services.desk import Desk
from tests.listener_harness import ListenerHarness, fast_listener


def test_a_busy_terminal_holds_two_server_connections(
    dsn: str, clinic: dict[str, Any], sql: psycopg.Connection[Any], desk: Desk
) -> None:
    desk.db.dispose()  # the fixture's terminal, which set the clinic up, is gone
    db = Database(dsn, terminal="reception-1")  # the defaults: pool_size 1, no overflow
    desk = Desk(db)
    dbname = sql.info.dbname
    peak = 0
    stop = threading.Event()
    errors: list[str] = []

    def worker(i: int) -> None:  # the screen's workers: reads and actions at once
        n = 0
        while not stop.is_set():
            try:
                desk.queue("D1")
                desk.board()
                if n % 5 == 0:
                    visit = desk.checkin("D2", clinic["patients"][i])
                    desk.cancel(visit.visit_id)
                n += 1
            except Exception as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(8)]
    try:
        with ListenerHarness(fast_listener(db)) as harness:
            for t in threads:
                t.start()
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                (count,), = sql.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND application_name LIKE 'hms-tui%%'", (dbname,)).fetchall()
                peak = max(peak, count)
                time.sleep(0.01)
            stop.set()
            for t in threads:
                t.join(30)
            harness.converge(Desk(db), "D2", 5)
    finally:
        stop.set()
        db.dispose()
    assert not errors, errors[:3]
    assert peak == 2, f"a terminal held {peak} server connections"


def test_pool_size_is_bounded() -> None:
    with pytest.raises(ValueError, match="pool_size must be 1-10"):
        Database("", pool_size=MAX_POOL_SIZE + 1)
    with pytest.raises(ValueError):
        Database("", pool_size=0)
