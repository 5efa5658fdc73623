"""The visit state machine, action by action and state by state.

Every (state, action) pair is either legal (the visit ends in the expected state and the change
is audited) or refused with ``IllegalTransition`` naming the visit, its state and the action,
with nothing written. The database's own backstop (triggers) is checked through a plain
connection, bypassing the desk functions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from hms_tui.domain.errors import IllegalTransition, InvalidInput, NotFound
from hms_tui.domain.models import Priority, Status
from hms_tui.services.desk import Desk
from tests.conftest import open_every_day, slot_at

# -- clinic clock ---------------------------------------------------------------------------------


def noon_zone(now_utc: datetime) -> str:
    """An Etc/GMT zone whose local time is now between 12:00 and 12:59.

    Etc/GMT signs are inverted (POSIX style): Etc/GMT-5 is UTC+5.
    """
    offset = 12 - now_utc.hour  # -11 .. +12, all of which exist as Etc/GMT zones
    if offset > 0:
        return f"Etc/GMT-{offset}"
    if offset < 0:
        return f"Etc/GMT+{-offset}"
    return "Etc/GMT"


@pytest.fixture
def noon(desk: Desk, clinic: dict[str, Any]) -> dict[str, Any]:
    """The clinic's clock set to a zone where it is about noon, so 'in an hour' is still today."""
    zone = noon_zone(datetime.now(UTC))
    assert desk.configure(timezone=zone).timezone == zone
    local = datetime.now(ZoneInfo(zone))
    assert 11 <= local.hour <= 13, (zone, local)
    assert desk.business_date() == local.date()
    open_every_day(desk, "D1", "D2")
    return {**clinic, "zone": zone}


def local_now(zone: str) -> datetime:
    return datetime.now(ZoneInfo(zone)).replace(tzinfo=None)


def wall(at: datetime) -> str:
    """A slot's time as the desk takes it (the next 5-minute boundary from ``at``)."""
    return slot_at(at).strftime("%Y-%m-%d %H:%M")


# -- building a visit in each state ---------------------------------------------------------------

STATES = [
    "BOOKED",
    "WAITING",
    "CALLED",
    "CALLED_MAX",  # CALLED with the recall limit used up
    "IN_CONSULTATION",
    "COMPLETED",
    "CANCELLED",
    "NO_SHOW",
    "TRANSFERRED",
]


def make_visit(desk: Desk, noon: dict[str, Any], state: str) -> int:
    """A D1 visit of patient 0 in ``state``; returns its id."""
    patient = noon["patients"][0]
    if state == "BOOKED":
        visit = desk.book("D1", patient, wall(local_now(noon["zone"]) + timedelta(hours=1)))
        assert visit.status is Status.BOOKED
        return visit.visit_id
    vid = desk.checkin("D1", patient).visit_id
    if state == "WAITING":
        return vid
    if state == "CANCELLED":
        return desk.cancel(vid, "changed their mind").visit_id
    if state == "TRANSFERRED":
        desk.transfer(vid, "D2")
        return vid
    assert desk.call(vid).call_count == 1
    if state == "CALLED":
        return vid
    if state in ("IN_CONSULTATION", "COMPLETED"):
        desk.start(vid)
        if state == "COMPLETED":
            desk.complete(vid)
        return vid
    limit = desk.rules().recall_limit
    assert limit == 2
    for _ in range(limit):
        desk.recall(vid)
    if state == "CALLED_MAX":
        return vid
    assert state == "NO_SHOW"
    desk.no_show(vid)
    return vid


ACTIONS: dict[str, Callable[[Desk, int], Any]] = {
    "arrive": lambda d, v: d.arrive(v),
    "call": lambda d, v: d.call(v),
    "recall": lambda d, v: d.recall(v),
    "start": lambda d, v: d.start(v),
    "complete": lambda d, v: d.complete(v),
    "cancel": lambda d, v: d.cancel(v, "patient left"),
    "no_show": lambda d, v: d.no_show(v),
    "requeue": lambda d, v: d.requeue(v),
    "skip": lambda d, v: d.skip(v),
    "set_priority": lambda d, v: d.set_priority(v, Priority.URGENT),
    "transfer": lambda d, v: d.transfer(v, "D2"),
}

# How a refusal names the action.
REFUSAL_WORDS = {
    "arrive": "cannot mark it arrived",
    "call": "cannot call it",
    "recall": "cannot recall it",
    "start": "cannot start the consultation",
    "complete": "cannot complete it",
    "cancel": "cannot cancel it",
    "no_show": "cannot mark it no-show",
    "requeue": "cannot requeue it",
    "skip": "cannot skip it",
    "set_priority": "cannot change its priority",
    "transfer": "cannot transfer it",
}

# (state, action) -> status of the visit afterwards; every pair not listed is refused.
LEGAL: dict[tuple[str, str], Status] = {
    ("BOOKED", "arrive"): Status.WAITING,
    ("BOOKED", "cancel"): Status.CANCELLED,
    ("BOOKED", "set_priority"): Status.BOOKED,
    ("WAITING", "call"): Status.CALLED,
    ("WAITING", "cancel"): Status.CANCELLED,
    ("WAITING", "skip"): Status.WAITING,
    ("WAITING", "set_priority"): Status.WAITING,
    ("WAITING", "transfer"): Status.TRANSFERRED,
    ("CALLED", "recall"): Status.CALLED,
    ("CALLED", "start"): Status.IN_CONSULTATION,
    ("CALLED", "cancel"): Status.CANCELLED,
    ("CALLED", "transfer"): Status.TRANSFERRED,
    ("CALLED_MAX", "no_show"): Status.NO_SHOW,
    ("CALLED_MAX", "start"): Status.IN_CONSULTATION,
    ("CALLED_MAX", "cancel"): Status.CANCELLED,
    ("CALLED_MAX", "transfer"): Status.TRANSFERRED,
    ("IN_CONSULTATION", "complete"): Status.COMPLETED,
    ("NO_SHOW", "requeue"): Status.WAITING,
}

PAIRS = [(s, a) for s in STATES for a in ACTIONS]


def db_status(state: str) -> str:
    return "CALLED" if state == "CALLED_MAX" else state


def snapshot(sql: psycopg.Connection[Any], vid: int) -> dict[str, Any]:
    """Everything a refused action must leave alone."""
    row = sql.execute(
        "SELECT to_jsonb(v), (SELECT count(*) FROM hms.visits),"
        " (SELECT count(*) FROM hms.audit_events),"
        " (SELECT count(*) FROM hms.counters), (SELECT coalesce(sum(value), 0) FROM hms.counters)"
        " FROM hms.visits v WHERE v.id = %s",
        (vid,),
    ).fetchone()
    assert row is not None
    return {"visit": row[0], "visits": row[1], "audit": row[2], "counters": (row[3], row[4])}


def test_every_pair_is_classified() -> None:
    assert len(PAIRS) == 99
    assert {s for s, _ in LEGAL} <= set(STATES)
    assert {a for _, a in LEGAL} <= set(ACTIONS)
    assert set(REFUSAL_WORDS) == set(ACTIONS)


@pytest.mark.parametrize(("state", "action"), PAIRS, ids=[f"{s}-{a}" for s, a in PAIRS])
def test_transition(
    desk: Desk, noon: dict[str, Any], sql: psycopg.Connection[Any], state: str, action: str
) -> None:
    vid = make_visit(desk, noon, state)
    before = snapshot(sql, vid)
    assert before["visit"]["status"] == db_status(state)
    expected = LEGAL.get((state, action))

    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            ACTIONS[action](desk, vid)
        message = str(info.value)
        assert f"visit {vid} " in message
        assert f" is {db_status(state)};" in message
        assert REFUSAL_WORDS[action] in message
        assert snapshot(sql, vid) == before
        return

    clock = "SELECT clock_timestamp()"
    started = sql.execute(clock).fetchone()[0]  # type: ignore[index]
    result = ACTIONS[action](desk, vid)
    finished = sql.execute(clock).fetchone()[0]  # type: ignore[index]

    def by_the_database_clock(at: Any) -> bool:
        """Stamped by the server while the action ran (not by this machine's clock)."""
        return at is not None and started <= at <= finished

    after = snapshot(sql, vid)
    assert after["visit"]["status"] == expected.value
    assert after["audit"] > before["audit"]
    last_action = sql.execute(
        "SELECT action FROM hms.audit_events ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert last_action == (action,)  # the audit trail names the desk action
    old = before["visit"]

    if action == "transfer":
        # The action answers with the new visit, in D2's line.
        assert result.visit_id != vid
        assert (result.status, result.doctor, result.token) == (Status.WAITING, "D2", "D2-001")
        assert (result.transferred_from, result.patient_id) == (vid, old["patient_id"])
        assert result.position == 1
        assert desk.visit(vid).transferred_to == result.visit_id
        assert after["visits"] == before["visits"] + 1
        return

    assert result.visit_id == vid
    assert result.status is expected
    assert after["visits"] == before["visits"]
    if (state, action) == ("BOOKED", "arrive"):
        assert (result.token, result.serial, result.position) == ("D1-001", 1, 1)
    elif action == "set_priority":
        assert result.priority is Priority.URGENT
        assert after["visit"]["priority"] == "URGENT"
    elif action == "recall":
        assert result.call_count == old["call_count"] + 1 == 2
        assert by_the_database_clock(result.called_at)
    elif action == "call":
        assert result.call_count == 1
        assert by_the_database_clock(result.called_at)
    elif action == "start":
        assert by_the_database_clock(result.started_at)
    elif action in ("complete", "no_show", "cancel"):
        assert by_the_database_clock(result.ended_at)
        if action == "cancel":
            assert result.cancel_reason == "patient left"
    elif action == "requeue":
        assert (result.call_count, result.position, result.ended_at) == (0, 1, None)
    elif action == "skip":
        assert result.position == 1  # alone in the line, nowhere to go
    if state != "BOOKED":
        assert after["visit"]["token"] == old["token"] == "D1-001"


# -- bookings ---------------------------------------------------------------------------------------


def test_book_in_the_past_is_refused(
    desk: Desk, noon: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    audit = sql.execute("SELECT count(*) FROM hms.audit_events").fetchone()
    at = wall(local_now(noon["zone"]) - timedelta(hours=1))
    with pytest.raises(InvalidInput, match="in the past"):
        desk.book("D1", noon["patients"][0], at)
    assert sql.execute("SELECT count(*) FROM hms.visits").fetchone() == (0,)
    assert sql.execute("SELECT count(*) FROM hms.audit_events").fetchone() == audit


def test_booking_later_today_then_arriving(desk: Desk, noon: dict[str, Any]) -> None:
    at = local_now(noon["zone"]) + timedelta(hours=1)
    booked = desk.book("D1", noon["patients"][0], wall(at))
    assert (booked.status, booked.token, booked.serial, booked.position) == (
        Status.BOOKED, None, None, None)
    assert booked.business_date == at.date()
    assert booked.appointment_at is not None
    assert booked.appointment_at.astimezone(ZoneInfo(noon["zone"])).replace(
        tzinfo=None) == slot_at(at)
    # A walk-in checked in meanwhile takes serial 1; the booking gets its token on arrival.
    desk.checkin("D1", noon["patients"][1])
    arrived = desk.arrive(booked.visit_id)
    assert (arrived.status, arrived.token, arrived.serial, arrived.position) == (
        Status.WAITING, "D1-002", 2, 2)


def test_arrive_on_a_booking_for_another_day_is_refused(
    desk: Desk, noon: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    tomorrow = local_now(noon["zone"]) + timedelta(days=1)
    booked = desk.book("D1", noon["patients"][0], wall(tomorrow))
    assert booked.business_date == tomorrow.date()
    before = snapshot(sql, booked.visit_id)
    with pytest.raises(IllegalTransition) as info:
        desk.arrive(booked.visit_id)
    message = str(info.value)
    assert f"visit {booked.visit_id} " in message
    assert "is BOOKED" in message
    assert "cannot mark it arrived" in message
    assert tomorrow.date().isoformat() in message
    assert snapshot(sql, booked.visit_id) == before
    assert before["visit"]["token"] is None


# -- the database backstop --------------------------------------------------------------------------


def test_direct_update_to_an_illegal_state_is_refused_by_the_database(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    vid = desk.checkin("D1", clinic["patients"][0]).visit_id
    before = snapshot(sql, vid)
    with pytest.raises(psycopg.Error) as info:
        sql.execute("UPDATE hms.visits SET status = 'COMPLETED' WHERE id = %s", (vid,))
    assert info.value.sqlstate == "HM423"
    assert "cannot become COMPLETED" in str(info.value)
    assert snapshot(sql, vid) == before


def test_visits_cannot_be_deleted(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    vid = desk.checkin("D1", clinic["patients"][0]).visit_id
    desk.cancel(desk.checkin("D1", clinic["patients"][1]).visit_id)
    before = snapshot(sql, vid)
    assert before["visits"] == 2
    with pytest.raises(psycopg.Error) as info:
        sql.execute("DELETE FROM hms.visits")
    assert info.value.sqlstate == "HM423"
    assert snapshot(sql, vid) == before


# -- call next ---------------------------------------------------------------------------------------


def test_call_next_on_an_empty_queue(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    # D2 has someone waiting; D1 has nobody (one finished, one cancelled).
    desk.checkin("D2", clinic["patients"][0])
    done = desk.checkin("D1", clinic["patients"][1]).visit_id
    desk.call(done)
    desk.start(done)
    desk.complete(done)
    desk.cancel(desk.checkin("D1", clinic["patients"][2]).visit_id)
    audit = sql.execute("SELECT count(*) FROM hms.audit_events").fetchone()
    with pytest.raises(NotFound, match=r"nobody is waiting for Dr Rao \(D1\)"):
        desk.call_next("D1")
    assert sql.execute("SELECT count(*) FROM hms.audit_events").fetchone() == audit
    assert sql.execute(
        "SELECT count(*) FROM hms.visits WHERE status = 'CALLED'").fetchone() == (0,)


def test_call_next_takes_the_head_of_the_line(desk: Desk, clinic: dict[str, Any]) -> None:
    p = clinic["patients"]
    arrivals = [
        ("NORMAL", p[0]),
        ("URGENT", p[1]),
        ("NORMAL", p[2]),
        ("EMERGENCY", p[3]),
        ("URGENT", p[4]),
        ("NORMAL", p[5]),
        ("EMERGENCY", p[6]),
    ]
    ids = {patient: desk.checkin("D1", patient, prio).visit_id for prio, patient in arrivals}
    expected = [p[3], p[6], p[1], p[4], p[0], p[2], p[5]]
    desk.configure(calls_ahead=10)  # calling ahead allowed: this test is about the order
    for n, patient in enumerate(expected, start=1):
        head = desk.queue("D1")[n - 1]
        assert (head.visit_id, head.position) == (ids[patient], 1)
        called = desk.call_next("D1")
        assert (called.visit_id, called.status, called.call_count) == (
            ids[patient], Status.CALLED, 1)
        waiting = [v for v in desk.queue("D1") if v.status is Status.WAITING]
        assert [v.position for v in waiting] == list(range(1, len(expected) - n + 1))
    with pytest.raises(NotFound):
        desk.call_next("D1")


def test_checking_in_a_booked_patient_is_their_arrival(desk: Desk, noon: dict[str, Any],
                                                       sql: Any) -> None:
    """Reception checks in whoever walks up: a patient booked with that doctor today arrives
    (the booking becomes the waiting visit, with its token), in one idempotent action."""
    at = wall(local_now(noon["zone"]) + timedelta(hours=1))
    patient = noon["patients"][0]
    booked = desk.book("D1", patient, at)
    first = desk.checkin("D1", patient, "urgent", key="desk-1-attempt")
    assert (first.visit_id, first.status, first.token) == (booked.visit_id, Status.WAITING,
                                                           "D1-001")
    assert first.priority == Priority.URGENT and first.appointment_at == booked.appointment_at
    again = desk.checkin("D1", patient, "urgent", key="desk-1-attempt")  # the reply was lost
    assert (again.visit_id, again.replayed) == (booked.visit_id, True)
    assert sql.execute("SELECT count(*) FROM hms.visits").fetchone() == (1,)
    actions = [r[0] for r in sql.execute(
        "SELECT action FROM hms.audit_events WHERE visit_id = %s ORDER BY seq",
        (booked.visit_id,))]
    assert actions == ["book", "arrive"]
