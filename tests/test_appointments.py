"""Appointments on a real database: sessions and slots with a capacity that holds under any
number of desks at once, double booking, leave, overbooking, rescheduling, the fair queue for
booked and walk-in patients, estimates, and a daylight-saving day in the clinic's zone."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from hms_tui.db.connection import Database
from hms_tui.domain.errors import Conflict, HmsError, InvalidInput
from hms_tui.domain.models import Status
from hms_tui.services.desk import Desk
from tests.conftest import open_every_day, slot_at

ZONE = "Asia/Kolkata"


@pytest.fixture
def day(desk: Desk, clinic: dict[str, Any]) -> dict[str, Any]:
    """D1 sees booked patients all day in 5-minute slots; tomorrow's date and a slot time."""
    desk.configure(timezone=ZONE)
    open_every_day(desk, "D1")
    tomorrow = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=1)
    return {**clinic, "tomorrow": tomorrow, "at": f"{tomorrow} 10:30"}


def test_sessions_cut_the_day_into_slots(desk: Desk, clinic: dict[str, Any]) -> None:
    desk.configure(timezone=ZONE)
    monday = date(2027, 1, 4)
    session = desk.add_session("D1", days="mon,thu", start="09:00", end="11:00", slot_minutes=30,
                               capacity=2, room="Room 9")
    assert (session.days, session.capacity, session.room) == ("mon,thu", 2, "Room 9")
    slots = desk.slots("D1", monday)
    assert [s.starts.astimezone(ZoneInfo(ZONE)).strftime("%H:%M") for s in slots] == [
        "09:00", "09:30", "10:00", "10:30"]
    assert {(s.capacity, s.booked, s.free, s.room) for s in slots} == {(2, 0, 2, "Room 9")}
    assert desk.slots("D1", monday + timedelta(days=1)) == []  # a Tuesday: none
    with pytest.raises(Conflict, match="overlaps session"):
        desk.add_session("D1", days="thu", start="10:30", end="12:00", slot_minutes=15, capacity=1)
    extra = desk.add_session("D1", on="2027-01-05", start="14:00", end="15:00", slot_minutes=20,
                             capacity=1)
    assert len(desk.slots("D1", date(2027, 1, 5))) == 3
    desk.remove_session(extra.id)
    assert desk.slots("D1", date(2027, 1, 5)) == []
    assert [s.id for s in desk.sessions("D1")] == [session.id]


def test_the_last_place_in_a_slot_is_taken_once_however_many_desks_try(
    desk: Desk, clinic: dict[str, Any], dsn: str
) -> None:
    desk.configure(timezone=ZONE)
    desk.add_session("D1", days="mon,tue,wed,thu,fri,sat,sun", start="10:00", end="11:00",
                     slot_minutes=15, capacity=3)
    tomorrow = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=1)
    patients = [desk.add_patient(f"Desk {i:02d}").id for i in range(16)]
    start = threading.Barrier(16)
    outcomes: list[Any] = [None] * 16

    def desk_books(i: int) -> None:
        own = Database(dsn, terminal=f"desk {i}")
        try:
            start.wait(10)
            outcomes[i] = Desk(own).book("D1", patients[i], f"{tomorrow} 10:15")
        except HmsError as exc:
            outcomes[i] = exc
        finally:
            own.dispose()

    threads = [threading.Thread(target=desk_books, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    booked = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(booked) == 3 and len(refused) == 13
    assert {type(o) for o in refused} == {Conflict}
    for exc in refused:
        assert "is full (3 of 3 booked)" in str(exc)
        assert exc.details["next_free"][:2] == [f"{tomorrow} 10:30", f"{tomorrow} 10:45"]
    slot = next(s for s in desk.slots("D1", tomorrow) if s.booked)
    assert (slot.booked, slot.free) == (3, 0)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT count(*) FROM hms.visits WHERE status = 'BOOKED'").fetchone()
    assert rows == (3,)


def test_one_booking_per_patient_doctor_and_day(desk: Desk, day: dict[str, Any]) -> None:
    p = day["patients"][0]
    desk.book("D1", p, day["at"])
    with pytest.raises(Conflict, match="already has an active visit"):
        desk.book("D1", p, f"{day['tomorrow']} 11:00")
    assert desk.book("D1", p, day=day["tomorrow"] + timedelta(days=1)).status is Status.BOOKED


def test_booking_outside_a_session_or_on_leave_is_refused(desk: Desk, day: dict[str, Any]
                                                          ) -> None:
    p = day["patients"]
    with pytest.raises(InvalidInput, match="has no slot at"):
        desk.book("D1", p[0], f"{day['tomorrow']} 10:31")  # between slots
    with pytest.raises(InvalidInput, match="no slot"):
        desk.book("D2", p[0], day["at"])  # D2 holds no session
    kept = desk.book("D1", p[1], day["at"])
    affected = desk.add_leave("D1", day["tomorrow"], reason="conference")
    assert [v.visit_id for v in affected] == [kept.visit_id]  # reception must move it
    with pytest.raises(InvalidInput, match="is on leave"):
        desk.book("D1", p[2], f"{day['tomorrow']} 11:00")
    assert desk.slots("D1", day["tomorrow"]) == []


def test_overbooking_takes_a_reason_and_is_audited(desk: Desk, clinic: dict[str, Any],
                                                   sql: psycopg.Connection[Any]) -> None:
    desk.configure(timezone=ZONE)
    desk.add_session("D1", days="mon,tue,wed,thu,fri,sat,sun", start="10:00", end="10:15",
                     slot_minutes=15, capacity=1)
    tomorrow = datetime.now(ZoneInfo(ZONE)).date() + timedelta(days=1)
    p = clinic["patients"]
    desk.book("D1", p[0], f"{tomorrow} 10:00")
    with pytest.raises(Conflict, match=r"is full \(1 of 1 booked\)"):
        desk.book("D1", p[1], f"{tomorrow} 10:00")
    over = desk.book("D1", p[1], f"{tomorrow} 10:00", overbook="post-op check, surgeon asked")
    image = sql.execute("SELECT action, after->>'overbooked' FROM hms.audit_log "
                        "WHERE entity = 'visits' AND entity_id = %s", (over.visit_id,)).fetchone()
    assert image == ("book", "post-op check, surgeon asked")
    assert desk.slots("D1", tomorrow)[0].booked == 2


def test_reschedule_frees_the_old_place_and_keeps_the_trail(desk: Desk, day: dict[str, Any],
                                                            sql: psycopg.Connection[Any]) -> None:
    booked = desk.book("D1", day["patients"][0], day["at"])
    later = day["tomorrow"] + timedelta(days=2)
    moved = desk.reschedule(booked.visit_id, f"{later} 09:00")
    assert (moved.visit_id, moved.business_date, moved.status) == (booked.visit_id, later,
                                                                    Status.BOOKED)
    by_start = {s.starts: s.booked for s in desk.slots("D1", day["tomorrow"])}
    assert by_start[booked.appointment_at] == 0
    trail = [r[0] for r in sql.execute("SELECT action FROM hms.audit_log WHERE visit_id = %s "
                                       "ORDER BY seq NULLS LAST, ticket", (booked.visit_id,))]
    assert trail == ["book", "reschedule"]
    desk.cancel(moved.visit_id, "moved away")
    assert all(s.booked == 0 for s in desk.slots("D1", later))


# -- the fair queue --------------------------------------------------------------------------------

MIN = 60  # seconds


def _set_key(sql: psycopg.Connection[Any], visit_id: int, at: datetime) -> None:
    """A walk-in as if they had arrived at ``at`` (the test cannot wait for the clock)."""
    with sql.transaction():
        sql.execute("SET LOCAL session_replication_role = replica")
        sql.execute("UPDATE hms.visits SET queue_key = %s, checked_in_at = %s WHERE id = %s",
                    (at.timestamp(), at, visit_id))


def _set_slot(sql: psycopg.Connection[Any], visit_id: int, at: datetime) -> None:
    """A booking made earlier for a slot that has begun by now."""
    with sql.transaction():
        sql.execute("SET LOCAL session_replication_role = replica")
        sql.execute("UPDATE hms.visits SET appointment_at = %s WHERE id = %s", (at, visit_id))


@pytest.mark.parametrize(("rule", "slot_from_now", "expected"), [
    # walk-ins: A came 20 min before the slot (or before now), B 5 min after the slot began (or
    # 5 min ago, for a slot ahead); the booked patient arrives now; windows: 30 min early, 15 late.
    ("fair", -10, ["A", "booked", "B"]),  # late within the window: by slot time
    ("fair", +10, ["A", "B", "booked"]),  # early: by slot time, ahead of those after it
    ("fair", -30, ["A", "B", "booked"]),  # 30 min late, outside the window: by arrival
    ("fair", +45, ["A", "B", "booked"]),  # 45 min early, outside the window: by arrival
    ("arrival", -10, ["A", "B", "booked"]),  # everyone by arrival
], ids=["late-in-window", "early", "too-late", "too-early", "arrival-rule"])
def test_a_booked_arrival_takes_its_place_by_the_rule(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any], rule: str,
    slot_from_now: int, expected: list[str]
) -> None:
    desk.configure(timezone=ZONE, queue_rule=rule, booking_early_minutes=30,
                   booking_late_minutes=15)
    open_every_day(desk, "D1")
    p = clinic["patients"]
    now = datetime.now(ZoneInfo(ZONE))
    slot = slot_at(now + timedelta(minutes=slot_from_now))
    booking = desk.book("D1", p[0], (slot_at(now + timedelta(minutes=50))).strftime("%Y-%m-%d %H:%M"))
    _set_slot(sql, booking.visit_id, slot)
    names = {booking.visit_id: "booked"}
    after_slot = slot + timedelta(minutes=5)
    for name, arrived in (("A", min(slot, now) - timedelta(minutes=20)),
                          ("B", after_slot if after_slot < now else now - timedelta(minutes=5))):
        walk_in = desk.checkin("D1", p[len(names)])
        _set_key(sql, walk_in.visit_id, arrived)
        names[walk_in.visit_id] = name
    desk.arrive(booking.visit_id)
    order = [names[v.visit_id] for v in desk.queue("D1") if v.position is not None]
    assert order == expected


def test_priority_still_comes_first(desk: Desk, day: dict[str, Any],
                                    sql: psycopg.Connection[Any]) -> None:
    p = day["patients"]
    now = datetime.now(ZoneInfo(ZONE))
    booking = desk.book("D1", p[0], slot_at(now + timedelta(minutes=50)).strftime("%Y-%m-%d %H:%M"))
    _set_slot(sql, booking.visit_id, slot_at(now - timedelta(minutes=10)))
    walk_in = desk.checkin("D1", p[1])
    urgent = desk.checkin("D1", p[2], "urgent")
    _set_key(sql, walk_in.visit_id, now - timedelta(minutes=40))
    arrived = desk.arrive(booking.visit_id)
    assert [v.visit_id for v in desk.queue("D1")] == [urgent.visit_id, walk_in.visit_id,
                                                       arrived.visit_id]


def test_estimates_are_ranges_quoted_at_check_in_and_kept(desk: Desk, clinic: dict[str, Any],
                                                          sql: psycopg.Connection[Any]) -> None:
    desk.configure(consult_minutes=10)
    second = [desk.checkin("D1", p) for p in clinic["patients"][:2]][1]
    first, line_second = desk.queue("D1")  # one read: estimates as of the queue's last change
    assert line_second == second  # what the patient was told is what every screen shows
    assert first.eta_from is not None and first.eta_to is not None
    assert second.eta_from is not None and second.eta_to is not None
    assert (first.wait_minutes, second.wait_minutes) == (0, 10)
    assert first.eta_to - first.eta_from == timedelta(minutes=5)
    assert second.eta_from - first.eta_from == timedelta(minutes=8)  # 0.8 x 10 minutes
    assert second.eta_to - first.eta_from == timedelta(minutes=17)  # 1.2 x 10, plus 5
    quoted = sql.execute("SELECT quoted_from, quoted_to FROM hms.visits WHERE id = %s",
                         (second.visit_id,)).fetchone()
    assert quoted == (second.eta_from, second.eta_to)
    desk.call_next("D1")  # the queue moves on; the quote stays as it was told
    assert desk.visit(second.visit_id).eta_from != second.eta_from
    assert sql.execute("SELECT quoted_from FROM hms.visits WHERE id = %s",
                       (second.visit_id,)).fetchone() == (second.eta_from,)


def test_expected_arrivals_say_due_late_or_not_arrived(desk: Desk, day: dict[str, Any],
                                                       sql: psycopg.Connection[Any]) -> None:
    p = day["patients"]
    now = datetime.now(ZoneInfo(ZONE))
    later = now + timedelta(minutes=50)
    states = {}
    for i, minutes in enumerate((+50, -10, -40)):
        visit = desk.book("D1", p[i], slot_at(later).strftime("%Y-%m-%d %H:%M"))
        _set_slot(sql, visit.visit_id, now + timedelta(minutes=minutes))
        states[visit.visit_id] = minutes
    got = {e.visit_id: e.state for e in desk.expected(doctor="D1")}
    assert got == {vid: {50: "due", -10: "late", -40: "not arrived"}[m]
                   for vid, m in states.items()}


def test_a_daylight_saving_day_in_the_clinics_zone(desk: Desk, clinic: dict[str, Any]) -> None:
    """Berlin's clocks go 02:00 -> 03:00 on 2027-03-28 and 03:00 -> 02:00 on 2027-10-31."""
    zone = ZoneInfo("Europe/Berlin")
    desk.configure(timezone="Europe/Berlin")
    desk.add_session("D1", days="sun", start="01:00", end="04:00", slot_minutes=30, capacity=1)

    def local(slots: list[Any]) -> list[str]:
        return [s.starts.astimezone(zone).strftime("%H:%M %Z") for s in slots]

    spring = desk.slots("D1", "2027-03-28")
    assert local(spring) == ["01:00 CET", "01:30 CET", "03:00 CEST", "03:30 CEST"]
    autumn = desk.slots("D1", "2027-10-31")
    assert len(autumn) == 6 and len({s.starts for s in autumn}) == 6
    with pytest.raises(InvalidInput, match="2027-03-28 02:30 does not exist in Europe/Berlin"):
        desk.book("D1", clinic["patients"][0], "2027-03-28 02:30")
    booked = desk.book("D1", clinic["patients"][0], "2027-03-28 03:00")
    assert booked.appointment_at is not None
    assert booked.appointment_at.astimezone(zone).strftime("%H:%M %Z") == "03:00 CEST"
    assert booked.business_date == date(2027, 3, 28)
