"""Numbers and queues under real concurrent connections: duplicates and gaps must be impossible.

Each worker is a thread with its own PostgreSQL connection; a barrier releases them together.
Everything is checked in the database afterwards.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from hms_tui.services.desk import Desk

CLIENTS = 32
PER_CLIENT = 50


def run_concurrently(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(i) for i in range(n) in n threads started together; re-raise the first error."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]
    return results


def make_patients(sql: psycopg.Connection[Any], n: int) -> list[int]:
    rows = sql.execute(
        "SELECT (hms.add_patient('Patient ' || g, NULL, NULL)).id FROM generate_series(1, %s) g",
        (n,),
    ).fetchall()
    return [r[0] for r in rows]


def make_doctors(sql: psycopg.Connection[Any], n: int) -> list[str]:
    for i in range(1, n + 1):
        sql.execute("SELECT hms.add_doctor(%s, %s, NULL, NULL)", (f"D{i}", f"Dr {i}"))
    return [f"D{i}" for i in range(1, n + 1)]


def assert_dense_serials(sql: psycopg.Connection[Any]) -> dict[str, int]:
    """Per doctor and day: serials are exactly 1..N, tokens unique, the counter says N."""
    issued: dict[str, int] = {}
    rows = sql.execute(
        "SELECT d.code, v.business_date, array_agg(v.serial ORDER BY v.serial), "
        "       count(DISTINCT v.token), c.value "
        "  FROM hms.visits v JOIN hms.doctors d ON d.id = v.doctor_id "
        "  JOIN hms.counters c ON c.kind = 'serial' AND c.scope_id = d.id "
        "                     AND c.period = v.business_date "
        " WHERE v.serial IS NOT NULL GROUP BY d.code, v.business_date, c.value"
    ).fetchall()
    for code, _day, serials, tokens, counter in rows:
        n = len(serials)
        assert serials == list(range(1, n + 1)), f"{code}: serials not 1..{n}"
        assert tokens == n, f"{code}: duplicate tokens"
        assert counter == n, f"{code}: counter {counter} but {n} visits"
        issued[code] = n
    return issued


def assert_dense_positions(desk: Desk, doctor: str) -> None:
    waiting = [v for v in desk.queue(doctor) if v.status == "WAITING"]
    assert [v.position for v in waiting] == list(range(1, len(waiting) + 1))


def checkin_worker(
    dsn: str, doctors: list[str], patients: list[int]
) -> Callable[[int], list[tuple[str, int]]]:
    def work(i: int) -> list[tuple[str, int]]:
        got = []
        with psycopg.connect(dsn, autocommit=True) as conn:
            for j in range(PER_CLIENT):
                k = i * PER_CLIENT + j
                doctor = doctors[k % len(doctors)]
                token, serial = conn.execute(
                    "SELECT token, serial FROM hms.checkin(%s, %s, 'NORMAL', NULL)",
                    (doctor, patients[k]),
                ).fetchone() or ("", 0)
                got.append((token, serial))
        return got

    return work


@pytest.mark.parametrize("doctor_count", [1, 4], ids=["one-doctor", "four-doctors"])
def test_concurrent_checkins_never_duplicate_or_skip(
    dsn: str, sql: psycopg.Connection[Any], desk: Desk, doctor_count: int
) -> None:
    doctors = make_doctors(sql, doctor_count)
    patients = make_patients(sql, CLIENTS * PER_CLIENT)

    results = run_concurrently(CLIENTS, checkin_worker(dsn, doctors, patients))

    tokens = [token for batch in results for token, _ in batch]
    assert len(tokens) == CLIENTS * PER_CLIENT
    assert len(set(tokens)) == len(tokens), "a token was handed out twice"
    issued = assert_dense_serials(sql)
    assert sum(issued.values()) == CLIENTS * PER_CLIENT
    assert len(issued) == doctor_count
    for doctor in doctors:
        assert_dense_positions(desk, doctor)


def test_concurrent_bills_are_contiguous(dsn: str, sql: psycopg.Connection[Any],
                                         desk: Desk) -> None:
    desk.add_doctor("D1", "Dr Rao")
    visit = desk.checkin("D1", desk.add_patient("Billed Patient").id).visit_id
    clients, per_client = 16, 20

    def work(_i: int) -> list[str]:
        numbers = []
        with psycopg.connect(dsn, autocommit=True) as conn:
            for _ in range(per_client):
                row = conn.execute(
                    "SELECT bill_number FROM hms.create_bill(%s, %s::jsonb)",
                    (visit, '[{"description": "Consultation", "amount": "500"}]'),
                ).fetchone()
                assert row is not None
                numbers.append(row[0])
        return numbers

    numbers = [n for batch in run_concurrently(clients, work) for n in batch]
    assert len(set(numbers)) == clients * per_client
    seqs = [r[0] for r in sql.execute("SELECT bill_seq FROM hms.bills ORDER BY bill_seq")]
    assert seqs == list(range(1, clients * per_client + 1))
    year = sql.execute("SELECT extract(year FROM hms.business_date())::int").fetchone()
    assert year is not None
    assert f"B-{year[0]}-0001" in numbers


def test_concurrent_call_next_never_calls_anyone_twice(
    dsn: str, sql: psycopg.Connection[Any], desk: Desk
) -> None:
    make_doctors(sql, 1)
    patients = make_patients(sql, 40)
    for p in patients:
        desk.checkin("D1", p)
    terminals, rounds = 8, 4

    def work(_i: int) -> list[int]:
        called = []
        with psycopg.connect(dsn, autocommit=True) as conn:
            for _ in range(rounds):
                # forced: calling many at once is the point (one at a time has its own test)
                row = conn.execute("SELECT visit_id FROM hms.call_next('D1', true)").fetchone()
                assert row is not None
                called.append(row[0])
        return called

    called = [v for batch in run_concurrently(terminals, work) for v in batch]
    assert len(called) == terminals * rounds
    duplicates = [v for v, n in Counter(called).items() if n > 1]
    assert duplicates == []
    in_db = sql.execute(
        "SELECT count(*), sum(call_count) FROM hms.visits WHERE status = 'CALLED'"
    ).fetchone()
    assert in_db == (terminals * rounds, terminals * rounds)
    # The heads were taken in order: the first 32 serials are the called ones.
    serials = sorted(r[0] for r in sql.execute("SELECT serial FROM hms.visits WHERE status='CALLED'"))
    assert serials == list(range(1, terminals * rounds + 1))
    assert_dense_positions(desk, "D1")


def wait_until_blocked(sql: psycopg.Connection[Any], count: int, timeout: float = 10) -> None:
    """Wait until `count` backends of this database are waiting on a lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = sql.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        ).fetchone()
        if row and row[0] >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{count} backends never blocked on the counter lock")


def test_killed_lock_holder_leaves_no_gap_and_waiters_proceed(
    dsn: str, sql: psycopg.Connection[Any], desk: Desk
) -> None:
    make_doctors(sql, 1)
    patients = make_patients(sql, 6)
    holder = psycopg.connect(dsn)  # a transaction left open: holds the D1 counter row lock
    holder.execute("SELECT * FROM hms.checkin('D1', %s)", (patients[0],))
    holder_pid = holder.info.backend_pid

    results: dict[int, tuple[str, int]] = {}

    def waiter(i: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT token, serial FROM hms.checkin('D1', %s)", (patients[i],)
            ).fetchone()
            assert row is not None
            results[i] = (row[0], row[1])

    threads = [threading.Thread(target=waiter, args=(i,)) for i in (1, 2, 3)]
    for thread in threads:
        thread.start()
    wait_until_blocked(sql, 3)
    assert results == {}, "waiters must not get a number while the lock is held"

    killed = sql.execute("SELECT pg_terminate_backend(%s)", (holder_pid,)).fetchone()
    assert killed == (True,)
    for thread in threads:
        thread.join(timeout=30)
    with pytest.raises(psycopg.OperationalError):
        holder.execute("SELECT 1")
    holder.close()

    assert sorted(s for _, s in results.values()) == [1, 2, 3]  # the killed one's 1 is reused
    assert_dense_serials(sql)
    assert sql.execute("SELECT count(*) FROM hms.visits").fetchone() == (3,)


def test_rolled_back_checkin_and_bill_leave_no_gap(dsn: str, sql: psycopg.Connection[Any],
                                                    desk: Desk) -> None:
    make_doctors(sql, 1)
    a, b = make_patients(sql, 2)
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT * FROM hms.checkin('D1', %s)", (a,))
        conn.rollback()
    first = desk.checkin("D1", b)
    assert first.serial == 1
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "SELECT * FROM hms.create_bill(%s, '[{\"description\": \"X\", \"amount\": \"1\"}]')",
            (first.visit_id,),
        )
        conn.rollback()
    bill = desk.create_bill(first.visit_id, [("Consultation", Decimal(500))])
    assert bill.bill_number.endswith("-0001")
    audit_seqs = [r[0] for r in sql.execute("SELECT seq FROM hms.audit_events ORDER BY seq")]
    assert audit_seqs == list(range(1, len(audit_seqs) + 1)), "audit seq must be gap-free too"


def test_day_rollover_restarts_serials(sql: psycopg.Connection[Any], desk: Desk) -> None:
    """The business date follows the clinic's zone on the database clock: moving the clinic
    from UTC-12 to UTC+14 puts it on a later date, where serials start again at 1."""
    make_doctors(sql, 1)
    a, b = make_patients(sql, 2)
    desk.configure(timezone="Etc/GMT+12")
    first_day = desk.business_date()
    yesterday = desk.checkin("D1", a)
    desk.configure(timezone="Etc/GMT-14")
    second_day = desk.business_date()
    assert second_day > first_day
    today = desk.checkin("D1", b)
    assert (yesterday.token, today.token) == ("D1-001", "D1-001")
    assert (yesterday.business_date, today.business_date) == (first_day, second_day)
    # Yesterday's waiting patient is not in today's queue, and a new day allows a new visit.
    assert [v.visit_id for v in desk.queue("D1")] == [today.visit_id]
    assert desk.checkin("D1", a).serial == 2
    assert_dense_serials(sql)
