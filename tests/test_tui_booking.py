"""Booking at the desk, on a real database: reception books a patient into a doctor's day of
slots and sees it fill; a full slot's refusal comes from the database with the next free
slots and overbooking as choices; expected arrivals, and marking one arrived puts them in the
queue at their slot's place; the check-in dialog names the booking; the doctor's bookings;
admin's Sessions tab. Every new screen shows its keys at 80x24."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from textual.widgets import Input, OptionList, Static

from hms_tui.app import Role
from hms_tui.screens.admin import AdminScreen
from hms_tui.screens.arrivals import DoctorBookingsDialog, ExpectedDialog
from hms_tui.screens.booking import BookDialog
from hms_tui.screens.pickers import CheckinDialog, ChoiceDialog, ConfirmDialog, ReasonDialog
from hms_tui.screens.reception import ReceptionScreen
from hms_tui.screens.sessions import AffectedDialog, LeaveDialog, SessionDialog
from hms_tui.services.desk import Desk
from hms_tui.widgets.bigtext import BigText
from hms_tui.widgets.keybar import KeyBar
from hms_tui.widgets.queue_table import DiffTable
from tests.conftest import open_every_day
from tests.tui_helpers import (
    column,
    make_app,
    run,
    screen_text,
    static_text,
    table_rows,
    type_text,
    wait_live,
    wait_screen,
    wait_until,
)

ALL_DAYS = "mon,tue,wed,thu,fri,sat,sun"


def reception(app: Any) -> ReceptionScreen:
    return next(s for s in app.screen_stack if isinstance(s, ReceptionScreen))


def title(app: Any) -> str:
    return static_text(app.screen.query_one(".title", Static))


def keys_shown(app: Any) -> str:
    """The bottom two rows of the terminal: the key bar."""
    return "\n".join(screen_text(app).splitlines()[-2:])


def tomorrow(desk: Desk) -> date:
    return desk.business_date() + timedelta(days=1)


def morning_session(desk: Desk, capacity: int = 2) -> None:
    """D1 every day 10:00-11:00 in 15-minute slots."""
    desk.add_session("D1", days=ALL_DAYS, start="10:00", end="11:00", slot_minutes=15,
                     capacity=capacity)


def move_to_today(sql: psycopg.Connection[Any], visit_id: int, minutes_from_now: int) -> datetime:
    """A booking made earlier for a slot of today ``minutes_from_now`` away (the test cannot
    wait for the clock); returns the slot's start."""
    with sql.transaction():
        sql.execute("SET LOCAL session_replication_role = replica")
        row = sql.execute(
            "UPDATE hms.visits SET business_date = hms.business_date(), appointment_at ="
            " date_trunc('minute', now()) + make_interval(mins => %s) WHERE id = %s"
            " RETURNING appointment_at", (minutes_from_now, visit_id)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def arrived_at(sql: psycopg.Connection[Any], visit_id: int, at: datetime) -> None:
    """A walk-in as if they had come in at ``at``."""
    with sql.transaction():
        sql.execute("SET LOCAL session_replication_role = replica")
        sql.execute("UPDATE hms.visits SET queue_key = %s, checked_in_at = %s WHERE id = %s",
                    (at.timestamp(), at, visit_id))


async def search(pilot: Any, app: Any, text: str) -> None:
    """Type ``text`` in reception's search and wait for its results."""
    box = reception(app).query_one("#search", Input)
    box.value = ""
    await type_text(pilot, text)
    results = reception(app).query_one("#results", DiffTable)
    await wait_until(pilot, lambda: reception(app).shown_query == text
                     and column(results, 1)[:1] == [text], message=f"results for {text}")


async def open_day(pilot: Any, app: Any, patient: str, day: date) -> BookDialog:
    """F10 on the patient found, then the day shown with the arrows."""
    await search(pilot, app, patient)
    await pilot.press("f10")
    dialog: BookDialog = await wait_screen(pilot, BookDialog)
    await wait_until(pilot, lambda: dialog.plan is not None, message="the day's slots")
    for _ in range(3):
        plan = dialog.plan
        if plan is None or plan.day >= day:
            break
        shown = plan.day
        await pilot.press("right")
        await wait_until(pilot, lambda shown=shown: dialog.plan is not None
                         and dialog.plan.day > shown, message="the next day")
    assert dialog.plan is not None and dialog.plan.day == day
    return dialog


async def cursor_to(pilot: Any, dialog: BookDialog, hhmm: str) -> None:
    """Arrow keys until the slot at ``hhmm`` is selected (as a person would)."""
    for _ in range(20):
        slot = dialog.selected_slot()
        assert slot is not None and dialog.plan is not None
        shown = slot.starts.astimezone(dialog.plan.zone).strftime("%H:%M")
        if shown == hhmm:
            return
        await pilot.press("down" if shown < hhmm else "up")
    raise AssertionError(f"no slot at {hhmm}")


def slot_cells(dialog: BookDialog, hhmm: str) -> list[str]:
    rows = table_rows(dialog.query_one("#slots", DiffTable))
    return next(r for r in rows if r[0] == hhmm)


def test_reception_books_a_patient_into_a_slot_and_sees_the_day_fill(
    desk: Desk, clinic: dict[str, Any]
) -> None:
    morning_session(desk)
    day = tomorrow(desk)
    desk.book("D1", clinic["patients"][0], f"{day} 10:30")  # another desk, earlier

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            dialog = await open_day(pilot, app, "Patient 03", day)
            assert title(app) == "Book Patient 03 (M000004)"
            # The doctor's day: start, capacity, booked, free, and who holds each place.
            assert column(dialog.query_one("#slots", DiffTable), 0) == [
                "10:00", "10:15", "10:30", "10:45"]
            assert slot_cells(dialog, "10:30") == ["10:30", "2", "1", "1", "Patient 00"]
            shown = keys_shown(app)
            for key in ("Esc Close", "Enter Book the slot", "o Overbook", "Day", "g Date",
                        "t Today", "Doctor"):
                assert key in shown, (key, shown)

            # Another desk books meanwhile: the day follows by itself.
            desk.book("D1", clinic["patients"][1], f"{day} 10:45")
            await wait_until(pilot, lambda: slot_cells(dialog, "10:45")[2:] == [
                "1", "1", "Patient 01"], message="another desk's booking shown")

            await cursor_to(pilot, dialog, "10:30")
            await pilot.press("enter")
            asked = await wait_screen(pilot, ConfirmDialog)
            assert static_text(asked.query_one(".title", Static)) == (
                f"Book Patient 03 (M000004) with Dr Rao at {day} 10:30?")
            await pilot.press("y")
            await wait_screen(pilot, BookDialog)
            await wait_until(pilot, lambda: slot_cells(dialog, "10:30") == [
                "10:30", "2", "2", "full", "Patient 00; Patient 03"], message="the day fills")
            assert static_text(dialog.query_one(".error", Static)).startswith(
                f"Booked Patient 03 at 10:30 on {day} with Dr Rao.")
            booked = [b for b in desk.bookings("D1", day) if b.patient_name == "Patient 03"]
            assert [(b.status, b.appointment_at.strftime("%H:%M")) for b in booked] == [
                ("BOOKED", slot_cells(dialog, "10:30")[0])]
            await pilot.press("escape")
            await wait_screen(pilot, ReceptionScreen)

    run(go())


def test_a_full_slot_is_refused_by_the_database_with_the_next_free_slots(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    morning_session(desk)
    p = clinic["patients"]
    day = tomorrow(desk)
    for i in (0, 1):
        desk.book("D1", p[i], f"{day} 10:00")

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            dialog = await open_day(pilot, app, "Patient 05", day)
            assert slot_cells(dialog, "10:00")[3] == "full"
            await cursor_to(pilot, dialog, "10:00")
            await pilot.press("enter")  # a full slot is still the database's to refuse
            await wait_screen(pilot, ConfirmDialog)
            await pilot.press("y")
            refusal = await wait_screen(pilot, ChoiceDialog)
            said = static_text(refusal.query_one(".title", Static))
            assert said == (f"the 10:00 slot with Dr Rao is full (2 of 2 booked); next free: "
                            f"{day} 10:15, {day} 10:30, {day} 10:45")
            options = [str(refusal.query_one(OptionList).get_option_at_index(i).prompt)
                       for i in range(refusal.query_one(OptionList).option_count)]
            assert options == ["Esc  No, leave it", f"1  Book {day} 10:15 instead",
                               f"2  Book {day} 10:30 instead", f"3  Book {day} 10:45 instead",
                               "o  Overbook 10:00 with a reason"]
            await pilot.press("1")  # the next free slot instead
            await wait_until(pilot, lambda: slot_cells(dialog, "10:15")[4] == "Patient 05")
            await pilot.press("escape")
            await wait_screen(pilot, ReceptionScreen)

            # Overbooking is an explicit choice, with a reason.
            dialog = await open_day(pilot, app, "Patient 06", day)
            await cursor_to(pilot, dialog, "10:00")
            await pilot.press("enter")
            await wait_screen(pilot, ConfirmDialog)
            await pilot.press("y")
            await wait_screen(pilot, ChoiceDialog)
            await pilot.press("o")
            await wait_screen(pilot, ReasonDialog)
            await pilot.press("enter")  # no reason: refused, nothing sent
            assert isinstance(app.screen, ReasonDialog)
            await type_text(pilot, "doctor asked")
            await pilot.press("enter")
            await wait_until(pilot, lambda: slot_cells(dialog, "10:00")[2:] == [
                "3", "over 1", "Patient 00; Patient 01; Patient 06+"])

    run(go())
    rows = sql.execute("SELECT p.name, v.overbooked, to_char(v.appointment_at AT TIME ZONE"
                       " (SELECT timezone FROM hms.settings), 'HH24:MI') FROM hms.visits v"
                       " JOIN hms.patients p ON p.id = v.patient_id WHERE v.status = 'BOOKED'"
                       " ORDER BY v.id").fetchall()
    assert rows == [("Patient 00", None, "10:00"), ("Patient 01", None, "10:00"),
                    ("Patient 05", None, "10:15"), ("Patient 06", "doctor asked", "10:00")]


def test_expected_arrivals_show_a_late_booking_and_arriving_takes_the_slots_place(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    desk.configure(queue_rule="fair", booking_early_minutes=30, booking_late_minutes=15)
    open_every_day(desk, "D1")
    p = clinic["patients"]
    late = desk.book("D1", p[0], f"{tomorrow(desk)} 10:30")
    slot = move_to_today(sql, late.visit_id, -10)  # ten minutes late, inside the window
    due = desk.book("D1", p[1], f"{tomorrow(desk)} 10:30")
    move_to_today(sql, due.visit_id, +40)
    gone = desk.book("D1", p[2], f"{tomorrow(desk)} 10:30")
    move_to_today(sql, gone.visit_id, -40)  # past the late window
    before = desk.checkin("D1", p[3])
    arrived_at(sql, before.visit_id, slot - timedelta(minutes=20))
    after = desk.checkin("D1", p[4])
    arrived_at(sql, after.visit_id, slot + timedelta(minutes=5))

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await pilot.press("f12")
            dialog = await wait_screen(pilot, ExpectedDialog)
            table = dialog.query_one(DiffTable)
            await wait_until(pilot, lambda: table.row_count == 3)
            assert [(r[2], r[4]) for r in table_rows(table)] == [
                ("Patient 02", "not arrived"), ("Patient 00", "late"), ("Patient 01", "due")]
            shown = keys_shown(app)
            assert "Esc Close" in shown and "a/Enter Arrived" in shown, shown
            await pilot.press("down")  # the late one, as seen
            assert dialog.expected[table.selected_key() or ""].patient_name == "Patient 00"
            await pilot.press("a")
            await wait_screen(pilot, ReceptionScreen)
            big = reception(app).query_one("#last-token", BigText)
            await wait_until(pilot, lambda: big.text == "D1-003")
            # By slot time: after the walk-in who came before the slot, ahead of the one after.
            queue = reception(app).query_one("#queue", DiffTable)
            await wait_until(pilot, lambda: column(queue, 1) == ["D1-001", "D1-003", "D1-002"])

    run(go())
    order = [(v.patient_name, v.position) for v in desk.queue("D1")]
    assert order == [("Patient 03", 1), ("Patient 00", 2), ("Patient 04", 3)]


def test_the_check_in_dialog_of_a_booked_patient_names_the_slot(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    open_every_day(desk, "D2")
    booking = desk.book("D2", clinic["patients"][7], f"{tomorrow(desk)} 10:30")
    at = move_to_today(sql, booking.visit_id, +20)

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await search(pilot, app, "Patient 07")
            await pilot.press("enter")
            dialog = await wait_screen(pilot, CheckinDialog)
            hhmm = at.astimezone(app.clinic_zone).strftime("%H:%M")
            booked = dialog.query_one("#booked", Static)
            await wait_until(pilot, lambda: static_text(booked) ==
                             f"booked {hhmm} with Dr Mehta", message="the booking named")
            options = dialog.query_one(OptionList)
            assert options.get_option_at_index(options.highlighted or 0).id == "D2"
            await pilot.press("enter")  # the booking arrives: one action
            await wait_screen(pilot, ReceptionScreen)

    run(go())
    visit = desk.visit(booking.visit_id)
    assert (visit.status.value, visit.token) == ("WAITING", "D2-001")


def test_the_doctor_sees_the_days_bookings(desk: Desk, clinic: dict[str, Any],
                                          sql: psycopg.Connection[Any]) -> None:
    open_every_day(desk, "D1")
    p = clinic["patients"]
    first = desk.book("D1", p[0], f"{tomorrow(desk)} 10:30")
    first_at = move_to_today(sql, first.visit_id, -5)
    second = desk.book("D1", p[1], f"{tomorrow(desk)} 10:30")
    second_at = move_to_today(sql, second.visit_id, +30)
    desk.arrive(first.visit_id)
    desk.book("D1", p[2], f"{tomorrow(desk)} 10:30")  # another day: not shown

    async def go() -> None:
        app = make_app(Role.DOCTOR, desk, doctor="D1")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await pilot.press("b")
            dialog = await wait_screen(pilot, DoctorBookingsDialog)
            table = dialog.query_one(DiffTable)
            await wait_until(pilot, lambda: table.row_count == 2)
            zone = app.clinic_zone
            assert table_rows(table) == [
                [first_at.astimezone(zone).strftime("%H:%M"), "Patient 00", "M000001",
                 "D1-001", "waiting"],
                [second_at.astimezone(zone).strftime("%H:%M"), "Patient 01", "M000002", "",
                 "due"]]
            assert "2 booked, 1 to come" in static_text(dialog.query_one("#bookings-title",
                                                                         Static))
            assert "Esc Close" in keys_shown(app)
            await pilot.press("escape")
            assert "b Bookings" in keys_shown(app)

    run(go())


def test_admin_adds_and_removes_sessions_and_adds_leave_showing_the_bookings_it_affects(
    desk: Desk, clinic: dict[str, Any]
) -> None:
    open_every_day(desk, "D2")
    day = tomorrow(desk)
    affected = desk.book("D2", clinic["patients"][4], f"{day} 10:30")

    async def go() -> None:
        app = make_app(Role.ADMIN, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            screen = next(s for s in app.screen_stack if isinstance(s, AdminScreen))
            await pilot.press("7")
            table = screen.query_one("#sessions", DiffTable)
            await wait_until(pilot, lambda: table.row_count == 1 and table.has_focus)
            bar = screen.query_one(KeyBar)
            shown = keys_shown(app)
            for key in ("7 Sessions", "a Add session", "x Remove session", "l Leave",
                        "^q Quit"):
                assert key in shown, (key, shown)
            assert bar.region.height == 2 and "Add doctor" not in shown
            assert "1 Doctors" in screen_text(app).splitlines()[1]  # the tabs fit, too

            # Add: bad input is one message and nothing is saved.
            await pilot.press("a")
            form = await wait_screen(pilot, SessionDialog)
            form.query_one("#doctor", Input).value = "D1"
            form.query_one("#days", Input).value = "mon"
            form.query_one("#on", Input).value = f"{day}"
            await pilot.press("ctrl+s")
            assert static_text(form.query_one("#days-error", Static)).startswith(
                "give the weekdays of a weekly session")
            form.query_one("#on", Input).value = ""
            form.query_one("#days", Input).value = "mon,wed"
            form.query_one("#start", Input).value = "09:00"
            form.query_one("#end", Input).value = "08:00"
            await pilot.press("ctrl+s")  # the database's word: one line
            await wait_until(pilot, lambda: static_text(form.query_one(".error", Static)) ==
                             "a session ends after it starts (09:00 to 08:00)")
            assert [s.doctor for s in desk.sessions()] == ["D2"]
            form.query_one("#end", Input).value = "12:00"
            await pilot.press("ctrl+s")
            await wait_screen(pilot, AdminScreen)
            await wait_until(pilot, lambda: table.row_count == 2)
            added = next(s for s in desk.sessions() if s.doctor == "D1")
            assert (added.days, f"{added.starts:%H:%M}", f"{added.ends:%H:%M}",
                    added.slot_minutes, added.capacity) == ("mon,wed", "09:00", "12:00", 15, 1)
            assert table_rows(table)[0][:6] == [str(added.id), "D1", "mon,wed", "09:00",
                                                "12:00", "15 min"]

            # Remove the selected one, asked first, naming it.
            table.move_cursor(row=0)
            await pilot.press("x")
            asked = await wait_screen(pilot, ConfirmDialog)
            assert static_text(asked.query_one(".title", Static)) == (
                f"Remove session {added.id}: D1 mon,wed 09:00-12:00, 15 min slots of 1?")
            await pilot.press("y")
            await wait_until(pilot, lambda: table.row_count == 1)
            assert [s.doctor for s in desk.sessions()] == ["D2"]

            # Leave for D2 tomorrow: the booking it affects is listed.
            await pilot.press("l")
            leave = await wait_screen(pilot, LeaveDialog)
            assert leave.query_one("#doctor", Input).value == "D2"  # the selected session's
            leave.query_one("#from", Input).value = f"{day}"
            leave.query_one("#reason", Input).value = "conference"
            await pilot.press("ctrl+s")
            listed = await wait_screen(pilot, AffectedDialog)
            assert static_text(listed.query_one(".title", Static)) == (
                f"Leave for D2 on {day}: 1 booking(s) affected")
            assert column(listed.query_one(DiffTable), 1) == ["Patient 04"]
            assert column(listed.query_one(DiffTable), 3) == [str(affected.visit_id)]

    run(go())
    assert desk.slots("D2", day) == []
