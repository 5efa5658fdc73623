"""The day close, and days that end while the test watches.

A test cannot wait for the clinic's midnight, so it moves the clinic instead: its time zone is
set to a POSIX zone whose midnight (or daylight-saving change) falls a few seconds from now by
the database's own clock. The zone is written with the IANA-name check off (the desk only
accepts IANA names); everything after that is the real server's clock and the real desk functions.
"""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from hms_tui.db.connection import Database
from hms_tui.domain.errors import IllegalTransition, InvalidInput
from hms_tui.services.desk import Desk
from hms_tui.services.reports import Reports
from hms_tui.services.trail import Trail
from tests.conftest import open_every_day, slot_at

LEAD = 5  # seconds from now to the zone's midnight


def posix_offset(seconds: int) -> str:
    """A POSIX offset for local = UTC + seconds (POSIX counts west as positive)."""
    sign = "-" if seconds >= 0 else "+"
    s = abs(seconds)
    return f"{sign}{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def midnight_soon(sql: psycopg.Connection[Any]) -> tuple[int, datetime]:
    """The UTC offset (seconds) that puts local midnight LEAD..LEAD+1 seconds from the
    database's now, and that instant."""
    now: datetime = sql.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    at = (now + timedelta(seconds=LEAD + 1)).replace(microsecond=0)
    into_day = at.hour * 3600 + at.minute * 60 + at.second
    offset = -into_day % 86400
    if offset > 43200:
        offset -= 86400
    return offset, at


def set_zone(sql: psycopg.Connection[Any], zone: str) -> None:
    """The clinic's zone becomes ``zone``; only the IANA-name check is off, so the change is
    in the trail like any other (the replay reads the zone from it)."""
    with sql.transaction():
        sql.execute("ALTER TABLE hms.settings DISABLE TRIGGER settings_check")
        sql.execute("UPDATE hms.settings SET timezone = %s", (zone,))
        sql.execute("ALTER TABLE hms.settings ENABLE TRIGGER settings_check")


def wait_for_next_day(desk: Desk, day: date) -> date:
    deadline = time.monotonic() + LEAD + 10
    while (today := desk.business_date()) == day:
        assert time.monotonic() < deadline, "the clinic's day never ended"
        time.sleep(0.2)
    return today


def test_a_day_ends_at_the_clinics_midnight_and_closes(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any],
) -> None:
    offset, midnight = midnight_soon(sql)
    set_zone(sql, f"HMS{posix_offset(offset)}")
    day1 = desk.business_date()
    p = clinic["patients"]
    first = [desk.checkin("D1", p[i]) for i in range(3)]
    assert {v.business_date for v in first} == {day1}, "the test ran too slowly to see a day end"
    assert [v.token for v in first] == ["D1-001", "D1-002", "D1-003"]
    desk.call_next("D1")
    done = desk.checkin("D2", p[3])
    desk.call_next("D2")
    desk.start(done.visit_id)
    desk.complete(done.visit_id)

    day2 = wait_for_next_day(desk, day1)
    assert day2 == day1 + timedelta(days=1)
    # The new day numbers from 1 again, and yesterday's waiting patient may come again.
    again = desk.checkin("D1", p[0])
    assert (again.token, again.business_date) == ("D1-001", day2)
    assert desk.queue("D1")[0].visit_id == again.visit_id

    trail = Trail(desk.db)
    with pytest.raises(InvalidInput, match="has not begun"):
        trail.close_day(day2 + timedelta(days=1))
    closed = trail.close_day(day1)
    assert closed.closed_now == 3 and closed.business_date == day1
    statuses = {v.visit_id: desk.visit(v.visit_id).status.value for v in first}
    assert set(statuses.values()) == {"NO_SHOW"}
    assert desk.visit(again.visit_id).status.value == "WAITING"  # today's is not touched
    assert closed.summary["clinic"]["no_shows"] == 3
    assert closed.summary["clinic"]["seen"] == 1
    # Twice is harmless.
    second = trail.close_day(day1)
    assert (second.closed_now, second.closed_visits) == (0, 3)
    # The report of yesterday is yesterday's, hours in the clinic's local time (23:59).
    report = Reports(desk.db).daily(day1)
    assert report.clinic.arrivals == 4
    assert {h.hour for h in report.hours if h.arrivals} == {23}
    assert midnight.tzinfo is not None


def test_a_day_that_ends_with_the_clocks_going_forward(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any],
) -> None:
    """Clocks jump from midnight to 01:00: the day turns at the jump, the next day's first
    hour is 01:00, and the hour that never was cannot be named."""
    offset, _ = midnight_soon(sql)
    now: datetime = sql.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    day1 = (now + timedelta(seconds=offset)).date()
    start = day1.timetuple().tm_yday - 1  # zero-based, counting 29 February
    end = (start + 30) % 365
    set_zone(sql, f"AAA{posix_offset(offset)}BBB,{start}/24:00:00,{end}/02:00:00")
    assert desk.business_date() == day1
    before = desk.checkin("D1", clinic["patients"][0])
    day2 = wait_for_next_day(desk, day1)
    assert day2 == day1 + timedelta(days=1)
    after = desk.checkin("D1", clinic["patients"][1])
    assert after.token == "D1-001" and before.token == "D1-001"
    local = sql.execute("SELECT to_char(now() AT TIME ZONE timezone, 'HH24') FROM hms.settings"
                        ).fetchone()[0]  # type: ignore[index]
    assert local == "01"  # 00:xx was skipped
    report = Reports(desk.db).daily(day2)
    assert {h.hour for h in report.hours if h.arrivals} == {1}
    with pytest.raises(InvalidInput, match="does not exist"):
        Trail(desk.db).replay(f"{day2} 00:30")
    # Replayed at 01:00:00 local (the instant of the jump), yesterday's patient is gone from
    # today's queues and today's is not there yet; now, today's is.
    assert Trail(desk.db).replay(f"{day2} 01:00:00") == []
    assert [v.visit_id for v in Trail(desk.db).replay(datetime.now().astimezone())] == [
        after.visit_id]
    closed = Trail(desk.db).close_day(day1)
    assert closed.closed_now == 1
    assert desk.visit(before.visit_id).status.value == "NO_SHOW"


def test_two_terminals_close_the_same_day_at_once(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any],
) -> None:
    desk.configure(close_as="CANCELLED")
    open_every_day(desk, "D1")
    p = clinic["patients"]
    waiting = [desk.checkin("D1", p[i]).visit_id for i in range(4)]
    desk.call_next("D1")
    booked = desk.book("D1", p[5], slot_at(datetime.now().astimezone()
                                           + timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M"))
    results: list[Any] = []
    errors: list[BaseException] = []
    trails = [Trail(Database(desk.db.conninfo, terminal=f"t{i}")) for i in range(2)]
    start = threading.Barrier(2)

    def close(trail: Trail) -> None:
        start.wait()
        try:
            results.append(trail.close_day())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=close, args=(t,)) for t in trails]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for trail in trails:
        trail.db.dispose()
    assert errors == []
    assert sorted(r.closed_now for r in results) == [0, 5]
    rows = sql.execute("SELECT status, cancel_reason, count(*) FROM hms.visits GROUP BY 1, 2"
                       " ORDER BY 1").fetchall()
    assert rows == [("CANCELLED", "the day was closed", 4), ("NO_SHOW", None, 1)]
    assert desk.visit(booked.visit_id).status.value == "NO_SHOW"
    with pytest.raises(IllegalTransition, match="never arrived; check the patient in"):
        desk.requeue(booked.visit_id)
    assert sql.execute("SELECT count(*), max(closed_visits) FROM hms.day_closes"
                       ).fetchone() == (1, 5)
    assert len(waiting) == 4
    # Every change of the close is in the trail, and the trail agrees with the tables.
    actions = sql.execute("SELECT count(*) FROM hms.audit_log WHERE action = 'day_close'"
                          " AND entity = 'visits'").fetchone()[0]  # type: ignore[index]
    assert actions == 5
    assert Trail(desk.db).check() == []
