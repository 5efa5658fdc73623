"""No login can stall, cross or fool the clinic: each attack of the hardening pass, replayed.

* Two clinics on one server: an admin of one cannot see or change the other's logins, and a
  login of one cannot act in the other.
* A login that keeps its transaction open (timeouts off, BEGIN, a desk action, a long sleep)
  is refused, and one that holds a queue's lock as long as its statement may (one message:
  the action, then a sleep) makes nobody at another queue wait at all, and the same queue
  wait no longer than the lock timeout.
* Skip and requeue keep working after any number of moves.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from hms_tui.domain.errors import Forbidden, NotFound
from hms_tui.services.desk import Desk
from hms_tui.services.staff import Staff
from tests.conftest import StaffLogins, with_dbname

# -- two clinics on one server ------------------------------------------------------------------


@pytest.fixture
def other_clinic(server_dsn: str, template_db: str) -> Iterator[StaffLogins]:
    """A second clinic's database on the same server, with its own staff."""
    name = f"hms_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    logins = StaffLogins(server_dsn, with_dbname(server_dsn, name))
    yield logins
    logins.cleanup()
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_admin_of_one_clinic_cannot_touch_another_clinics_logins(
    staff_logins: StaffLogins, other_clinic: StaffLogins, clinic: dict[str, Any]
) -> None:
    admin_a = staff_logins.add("admin")
    nurse_b = other_clinic.add("reception")
    locked_b = other_clinic.add("reception")
    Staff(other_clinic.database(other_clinic.add("admin"))).disable(locked_b)
    # Clinic A's admin, in clinic A's database (the attack needs no CONNECT on B).
    staff_a = Staff(staff_logins.database(admin_a))
    assert {m.login for m in staff_a.list()} == {admin_a}
    for attempt in (lambda: staff_a.enable(locked_b), lambda: staff_a.disable(nurse_b),
                    lambda: staff_a.link(nurse_b, "D1")):
        with pytest.raises(NotFound, match="in this clinic"):
            attempt()
    # Nothing happened to B's logins.
    with psycopg.connect(other_clinic.server_dsn) as conn:
        rows = dict(conn.execute("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)",
                                 ([nurse_b, locked_b],)).fetchall())
    assert rows == {nurse_b: True, locked_b: False}


def test_a_login_of_another_clinic_cannot_act_here(
    desk: Desk, clinic: dict[str, Any], staff_logins: StaffLogins, other_clinic: StaffLogins
) -> None:
    stranger = other_clinic.add("reception")
    with psycopg.connect(staff_logins.dsn, autocommit=True) as owner:  # a careless DBA
        owner.execute(f'GRANT CONNECT ON DATABASE "{owner.info.dbname}" TO "{stranger}"')
    front = staff_logins.desk(stranger)
    with pytest.raises(Forbidden, match="is not staff of this clinic"):
        front.add_patient("Intruder")
    with pytest.raises(Forbidden, match="is not staff of this clinic"):
        front.checkin("D1", clinic["patients"][0])
    assert desk.queue("D1") == []


# -- bounded locks --------------------------------------------------------------------------------


def test_a_session_that_could_hold_locks_is_refused(
    clinic: dict[str, Any], staff_logins: StaffLogins
) -> None:
    """The attack: timeouts off, an explicit transaction, a desk action, then a long sleep."""
    login = staff_logins.add("reception")
    with staff_logins.connect(login) as conn:
        conn.execute("SET statement_timeout = 0")
        conn.execute("SET idle_in_transaction_session_timeout = 0")
        with pytest.raises(psycopg.Error, match=r"timeouts .* are off or above"):
            conn.execute("SELECT hms.add_patient('Mallory', NULL, NULL)")
        conn.execute("SET statement_timeout = '10s'")
        conn.execute("SET idle_in_transaction_session_timeout = '10s'")
        conn.execute("BEGIN")
        conn.execute("SELECT pg_sleep(1.2)")  # the transaction has been open a while
        with pytest.raises(psycopg.Error, match="transaction of its own"):
            conn.execute("SELECT hms.checkin('D1', %s)", (clinic["patients"][0],))
        conn.execute("ROLLBACK")
        conn.execute("ALTER ROLE CURRENT_USER SET statement_timeout = 0")  # made permanent
    with staff_logins.connect(login) as conn, \
            pytest.raises(psycopg.Error, match="are off or above"):
        conn.execute("SELECT hms.add_patient('Mallory', NULL, NULL)")
    # Through hms-tui the same login works: every call carries the clinic's limits.
    assert staff_logins.desk(login).add_patient("Honest").name == "Honest"


def _timed(action: Any) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def test_a_long_transaction_stalls_no_other_queue_and_its_own_no_longer_than_a_lock_wait(
    desk: Desk, clinic: dict[str, Any], staff_logins: StaffLogins, sql: psycopg.Connection[Any]
) -> None:
    """Within the limits, one message may hold D1's queue: a check-in, then a sleep. Before,
    the audit trail's single head lock made every writer of the clinic wait for it."""
    p = clinic["patients"]
    login = staff_logins.add("reception")
    holding = threading.Event()
    hold = 2.0

    def attacker() -> None:
        with staff_logins.connect(login) as conn:
            conn.execute("SET statement_timeout = '10s'")
            conn.execute("SET idle_in_transaction_session_timeout = '10s'")
            holding.set()
            # One simple-protocol message, one transaction: the action, then a sleep.
            conn.execute(f"SELECT hms.checkin('D1', {p[0]}); SELECT pg_sleep({hold})".encode())

    thread = threading.Thread(target=attacker)
    thread.start()
    holding.wait(5)
    time.sleep(0.3)  # the attacker's check-in has run and holds D1's lock
    other_queue = _timed(lambda: desk.checkin("D2", p[1]))
    registration = _timed(lambda: desk.add_patient("Walk In"))
    same_queue = _timed(lambda: desk.checkin("D1", p[2]))
    thread.join(10)
    assert other_queue < 0.5 and registration < 0.5, (other_queue, registration)
    assert 0.5 < same_queue < hold + 1, same_queue  # waited for the lock, within its timeout
    # Every change is in the trail, gap-free, once everything is sealed.
    sql.execute("SELECT hms.audit_seal(100000)")
    seqs = [r[0] for r in sql.execute("SELECT seq FROM hms.audit_events ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))
    assert sql.execute("SELECT count(*) FROM hms.audit_pending").fetchone() == (0,)
    actions = [r[0] for r in sql.execute("SELECT action FROM hms.audit_events WHERE entity = "
                                         "'visits' ORDER BY seq")]
    assert actions.count("checkin") == 3


def test_holding_the_chains_head_delays_the_seal_and_nobody(
    desk: Desk, clinic: dict[str, Any], dsn: str, sql: psycopg.Connection[Any]
) -> None:
    """Even the owner forcing the seal early (SET CONSTRAINTS ALL IMMEDIATE) and sleeping with
    the head locked only delays sealing: writers never wait for the head."""
    with psycopg.connect(dsn) as owner:
        owner.execute("SET CONSTRAINTS ALL IMMEDIATE")
        owner.execute("SELECT hms.add_patient('Holder', NULL, NULL)")  # sealed now, head locked
        took = _timed(lambda: [desk.checkin("D2", p) for p in clinic["patients"][:3]])
        pending = sql.execute("SELECT count(*) FROM hms.audit_pending").fetchone()
        owner.commit()
    assert took < 1.0, took
    assert pending is not None and pending[0] >= 3  # waiting to be sealed, not lost
    sql.execute("SELECT hms.audit_seal(100000)")
    seqs = [r[0] for r in sql.execute("SELECT seq FROM hms.audit_events ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))
    assert sql.execute("SELECT count(*) FROM hms.audit_pending").fetchone() == (0,)


# -- places that cannot run out -------------------------------------------------------------------


def test_a_thousand_skips_keep_the_queue_in_order(desk: Desk, clinic: dict[str, Any]) -> None:
    """Alternately skipping the head of a three-patient queue used to collapse every key
    after 21 moves; each skip must move exactly the head one place back, every time."""
    ids = [desk.checkin("D1", p).visit_id for p in clinic["patients"][:3]]
    order = list(ids)
    for step in range(1000):
        head = order[0]
        moved = desk.skip(head, 1)
        order = [order[1], head, order[2]]
        assert moved.position == 2, step
        if step % 50 == 0 or step == 999:
            assert [v.visit_id for v in desk.queue("D1")] == order, step


def test_requeue_after_many_moves_lands_where_the_rule_says(
    desk: Desk, clinic: dict[str, Any]
) -> None:
    desk.configure(requeue_after=1, recall_limit=0)
    p = clinic["patients"]
    ids = [desk.checkin("D1", x).visit_id for x in p[:4]]
    for _ in range(60):
        desk.skip(desk.queue("D1")[0].visit_id, 2)
    absent = desk.call_next("D1")
    desk.no_show(absent.visit_id)
    back = desk.requeue(absent.visit_id)
    assert back.position == 2  # after one waiting patient
    assert sorted(v.visit_id for v in desk.queue("D1")) == sorted(ids)
