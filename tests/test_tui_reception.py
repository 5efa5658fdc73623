"""Reception, keyboard first, against a real database: search as you type, register, check in
(walk-in and booked), the live queues, cancel, transfer, priority, bills and receipts.

Every action is checked twice: on the screen (widgets read back as text) and in the database.
"""

from __future__ import annotations

import os
import re
import stat
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from textual.widgets import Input, OptionList, Static

from hms_tui.app import Role
from hms_tui.domain.models import Status
from hms_tui.screens.base import HelpScreen
from hms_tui.screens.forms import BillDialog, ReceiptDialog, VoidBillDialog
from hms_tui.screens.patients import RegisterDialog
from hms_tui.screens.pickers import (
    CheckinDialog,
    ConfirmDialog,
    DoctorPicker,
    PriorityPicker,
    ReasonDialog,
)
from hms_tui.screens.reception import PRI_COL, ReceptionScreen, eta
from hms_tui.services.desk import Desk
from hms_tui.widgets.bigtext import BigText
from hms_tui.widgets.queue_table import DiffTable
from tests.conftest import open_every_day, slot_at
from tests.tui_helpers import (
    FROZEN,
    column,
    error_notifications,
    focus,
    make_app,
    notifications,
    paste,
    run,
    screen_text,
    static_text,
    table_rows,
    type_text,
    until_db,
    wait_live,
    wait_screen,
    wait_until,
)


def reception(app: Any) -> ReceptionScreen:
    screen = app.screen_stack[1] if len(app.screen_stack) > 1 else app.screen
    assert isinstance(screen, ReceptionScreen)
    return screen


def table(app: Any, name: str) -> DiffTable:
    return reception(app).query_one(f"#{name}", DiffTable)


async def focus_queue(pilot: Any) -> None:
    """Tab (as a person would) until the queue table has the focus."""
    queue = table(pilot.app, "queue")
    for _ in range(8):
        if queue.has_focus:
            return
        await pilot.press("tab")
    raise AssertionError("Tab never reached the queue")


async def select_token(pilot: Any, token: str) -> None:
    """With the queue focused, arrow down/up until the row of ``token`` is selected."""
    await focus_queue(pilot)
    queue = table(pilot.app, "queue")
    tokens = column(queue, 1)
    target = tokens.index(token)
    while queue.cursor_row != target:
        await pilot.press("down" if queue.cursor_row < target else "up")


async def find_and_check_in(pilot: Any, query: str, name: str, *keys: str) -> None:
    """Type ``query`` into the search, wait for ``name`` at the top, Enter, then ``keys`` in
    the check-in dialog (Enter by default)."""
    app = pilot.app
    await pilot.press("escape")  # back to the search, whatever had the focus
    search = reception(app).query_one("#search", Input)
    await wait_until(pilot, lambda: search.has_focus)
    search.value = ""
    await type_text(pilot, query)
    results = table(app, "results")
    await wait_until(pilot, lambda: column(results, 1) == [name], message=f"{name} found")
    await pilot.press("enter")
    await wait_screen(pilot, CheckinDialog)
    await pilot.press(*(keys or ("enter",)))


def visits(sql: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return sql.execute(
        "SELECT v.id, d.code, p.name, v.status::text, v.priority::text, v.token"
        " FROM hms.visits v JOIN hms.doctors d ON d.id = v.doctor_id"
        " JOIN hms.patients p ON p.id = v.patient_id ORDER BY v.id").fetchall()


def patient_count(sql: psycopg.Connection[Any]) -> int:
    return int(sql.execute("SELECT count(*) FROM hms.patients").fetchone()[0])  # type: ignore[index]


# -- search ------------------------------------------------------------------------------------


def test_search_as_you_type_by_name_phone_and_mrn(desk: Desk, clinic: dict[str, Any]) -> None:
    kumar = desk.add_patient("Kumar, Anil", "+91 98450 12345", "1971-02-03")
    desk.add_patient("Kumari, Devi", "99001 55555")

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_live(pilot, board=2)
            results = table(app, "results")
            # Empty search: the newest patients first.
            await wait_until(pilot, lambda: column(results, 1)[:2] == ["Kumari, Devi", "Kumar, Anil"])
            assert reception(app).query_one("#search", Input).has_focus  # typing goes there

            await type_text(pilot, "kum")
            await wait_until(pilot, lambda: sorted(column(results, 1)) ==
                             ["Kumar, Anil", "Kumari, Devi"], message="two Kum* matches")
            await type_text(pilot, "ari")
            await wait_until(pilot, lambda: column(results, 1) == ["Kumari, Devi"])

            reception(app).query_one("#search", Input).value = ""
            await type_text(pilot, "98450")  # part of a phone number
            await wait_until(pilot, lambda: column(results, 1) == ["Kumar, Anil"])
            row = table_rows(results)[0]
            assert row[0] == kumar.mrn and row[2] == "+91 98450 12345" and row[3].isdigit()

            reception(app).query_one("#search", Input).value = ""
            await type_text(pilot, kumar.mrn.lower())  # an MRN, any case
            await wait_until(pilot, lambda: column(results, 0) == [kumar.mrn])

            reception(app).query_one("#search", Input).value = ""
            await type_text(pilot, "nobody")
            await wait_until(pilot, lambda: results.row_count == 0)
            assert not error_notifications(app)

    run(go())


# -- check in ----------------------------------------------------------------------------------


def test_walk_in_check_in_by_keys_shows_the_token_large(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_live(pilot, board=2)
            screen = reception(app)
            # Name, Enter, Enter: the doctor is preselected, priority normal.
            await find_and_check_in(pilot, "03", "Patient 03")
            big = screen.query_one("#last-token", BigText)
            await wait_until(pilot, lambda: big.text == "D1-001", message="token shown")
            assert not isinstance(app.screen, CheckinDialog)
            detail = static_text(screen.query_one("#last-detail", Static))
            assert detail.splitlines()[0].startswith("D1-001  Patient 03 (M")
            assert "Dr Rao, Room 3 · position 1" in detail
            # Large: the big font's rows are on the screen, and the search is ready again.
            await pilot.pause()
            shown = screen_text(app)
            for row in ("████    █        ███   ███    █", "████   ███       ███   ███   ███"):
                assert row in shown
            assert screen.query_one("#search", Input).has_focus
            assert screen.query_one("#search", Input).value == ""
            assert visits(sql) == [(visits(sql)[0][0], "D1", "Patient 03", "WAITING", "NORMAL",
                                    "D1-001")]

            # Another doctor and urgent: down arrow to D2, u, Enter.
            await find_and_check_in(pilot, "04", "Patient 04", "down", "u", "enter")
            await wait_until(pilot, lambda: big.text == "D2-001")
            assert visits(sql)[-1][1:] == ("D2", "Patient 04", "WAITING", "URGENT", "D2-001")
            # The queue on the right follows the doctor of the last check-in.
            queue = table(app, "queue")
            await wait_until(pilot, lambda: column(queue, 1) == ["D2-001"])
            assert table_rows(queue)[0][:4] == ["1", "D2-001", "URGENT", "Patient 04"]

            # The next check-in preselects the last-used doctor (D2).
            await find_and_check_in(pilot, "05", "Patient 05", "wait:10")
            dialog = app.screen
            assert isinstance(dialog, CheckinDialog)
            assert static_text(dialog.query_one(".title", Static)) == "Check in Patient 05 (M000006)"
            options = dialog.query_one(OptionList)
            assert options.highlighted is not None
            assert options.get_option_at_index(options.highlighted).id == "D2"
            await pilot.press("enter")
            await wait_until(pilot, lambda: big.text == "D2-002")
            assert [v[5] for v in visits(sql)] == ["D1-001", "D2-001", "D2-002"]

    run(go())


def test_check_in_error_is_inline_and_nothing_is_written(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    desk.checkin("D1", clinic["patients"][2])

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_live(pilot, board=2)
            # Enter with nothing found: a warning, no dialog.
            await type_text(pilot, "zzz")
            await wait_until(pilot, lambda: table(app, "results").row_count == 0)
            await pilot.press("enter")
            assert isinstance(app.screen, ReceptionScreen)
            assert any("No patient matches 'zzz'" in n for n in notifications(app))

            await find_and_check_in(pilot, "02", "Patient 02")
            dialog = app.screen
            assert isinstance(dialog, CheckinDialog)
            error = dialog.query_one(".error", Static)
            await wait_until(pilot, lambda: "already has an active visit" in static_text(error),
                             message="inline error")
            assert "D1-001" in static_text(error)
            assert app.screen is dialog  # still open, to choose another doctor or cancel
            await pilot.press("escape")
            assert isinstance(app.screen, ReceptionScreen)
            assert len(visits(sql)) == 1

    run(go())


def test_booked_appointment_is_checked_in_from_the_search(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    # The clinic's clock at about noon, so a booking an hour ahead is still today.
    now = datetime.now(UTC)
    offset = 12 - now.hour
    zone = "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
    desk.configure(timezone=zone)
    open_every_day(desk, "D2")
    at = slot_at(datetime.now(ZoneInfo(zone)) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    booked = desk.book("D2", clinic["patients"][6], at)
    assert booked.status == Status.BOOKED and booked.token is None

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_live(pilot, board=2)
            await type_text(pilot, "06")
            results = table(app, "results")
            await wait_until(pilot, lambda: column(results, 1) == ["Patient 06"])
            assert table_rows(results)[0][4] == "D2 booked BOOKED"  # the Today column
            await pilot.press("enter")
            await wait_screen(pilot, CheckinDialog)
            options = app.screen.query_one(OptionList)
            options.highlighted = 1  # D2, the booked doctor
            await pilot.press("enter")
            big = reception(app).query_one("#last-token", BigText)
            await wait_until(pilot, lambda: big.text == "D2-001", message="booked arrival")
            # The booking itself became the waiting visit: no second visit.
            assert visits(sql) == [(booked.visit_id, "D2", "Patient 06", "WAITING", "NORMAL",
                                    "D2-001")]

    run(go())


# -- register --------------------------------------------------------------------------------


def test_register_validates_each_field_then_checks_in(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_live(pilot, board=2)
            before = patient_count(sql)
            await type_text(pilot, "Meera Iyer")
            await pilot.press("f3")
            await wait_screen(pilot, RegisterDialog)
            form = app.screen
            name = form.query_one("#name", Input)
            assert name.value == "Meera Iyer" and name.has_focus  # the search text carried over

            def error(field: str) -> str:
                return static_text(form.query_one(f"#{field}-error", Static))

            phone, dob = form.query_one("#phone", Input), form.query_one("#dob", Input)
            await pilot.press("enter")  # to the phone
            assert phone.has_focus
            await type_text(pilot, "98-ab")
            await pilot.press("enter")  # a bad phone: its error, and the focus stays on it
            await wait_until(pilot, lambda: "invalid" in error("phone"))
            assert phone.has_focus and "phone" in error("phone")
            phone.value = ""
            await pilot.press("enter")  # (optional: empty is fine) to the date of birth
            assert dob.has_focus and error("phone") == ""
            await type_text(pilot, "1980-13-40")
            phone.value = "98-ab"
            await pilot.press("enter")  # Enter on the last field saves: every field checked
            await wait_until(pilot, lambda: error("phone") and error("dob"))
            assert "YYYY-MM-DD" in error("dob")
            assert error("name") == ""
            assert phone.has_focus  # the first bad field: the next keys land there
            assert app.screen is form and patient_count(sql) == before

            name.value = ""
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: error("name") == "name is empty")
            assert name.has_focus
            await pilot.press("enter")  # Enter on an empty required field: its error, no move
            assert name.has_focus and error("name") == "name is empty"
            # A control character (a paste can bring one) is refused with a field error.
            await focus(pilot, name)
            await paste(pilot, "Meera\x1b[31m Iyer")
            assert name.value == "Meera\x1b[31m Iyer"
            form.query_one("#phone", Input).value = "+91 98450 12345"
            form.query_one("#dob", Input).value = "1980-05-17"
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: "control" in error("name"))
            assert "U+001B" in error("name") and error("phone") == "" and error("dob") == ""
            assert "\x1b" not in screen_text(app)
            assert patient_count(sql) == before

            name.value = "Meera Iyer"
            await pilot.press("ctrl+s")
            # Saved: straight on to the check-in of the new patient.
            await wait_screen(pilot, CheckinDialog)
            # named by name, MRN and age (the frozen clock's 2025-03-03)
            assert static_text(app.screen.query_one(".title", Static)) == \
                "Check in Meera Iyer (M000011, 44 y)"
            assert any("Registered Meera Iyer (M" in n for n in notifications(app))
            await pilot.press("enter")
            big = reception(app).query_one("#last-token", BigText)
            await wait_until(pilot, lambda: big.text == "D1-001")

        row = sql.execute("SELECT name, phone, birth_date::text FROM hms.patients"
                          " ORDER BY id DESC LIMIT 1").fetchone()
        assert row == ("Meera Iyer", "+91 98450 12345", "1980-05-17")
        assert patient_count(sql) == before + 1
        assert visits(sql)[-1][1:] == ("D1", "Meera Iyer", "WAITING", "NORMAL", "D1-001")

    run(go())


# -- the live queues -------------------------------------------------------------------------


def test_queues_are_live_with_positions_and_waiting_times(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    p = clinic["patients"]
    now = {"t": FROZEN}

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk, clock=lambda: now["t"])
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_live(pilot, board=2)
            queue, board = table(app, "queue"), table(app, "board")
            assert reception(app).query_one("#queue-box").border_title == "D1 queue · Dr Rao"
            # Another terminal checks patients in: the queue follows without a key.
            first = desk.checkin("D1", p[0])
            desk.checkin("D1", p[1])
            desk.checkin("D2", p[2])
            await wait_until(pilot, lambda: column(queue, 1) == ["D1-001", "D1-002"])
            await wait_until(pilot, lambda: table_rows(board) == [
                ["D1", "Dr Rao", "Room 3", "", "2"], ["D2", "Dr Mehta", "Room 5", "", "1"]])
            desk.checkin("D1", p[3], "EMERGENCY")  # jumps the line
            await wait_until(pilot, lambda: column(queue, 1) == ["D1-003", "D1-001", "D1-002"])
            assert column(queue, 0) == ["1", "2", "3"]
            assert column(queue, PRI_COL) == ["EMERGENCY", "", ""]
            # The estimated call time, as the database's range in the clinic's zone.
            truth = {v.token: eta(v, app.clinic_zone) for v in desk.queue("D1")}
            assert column(queue, 5) == [truth[t] for t in column(queue, 1)]
            assert all(re.fullmatch(r"\d\d:\d\d-\d\d:\d\d", t) for t in column(queue, 5))

            # Waiting minutes tick on by the app's clock.
            assert first.checked_in_at is not None
            now["t"] = first.checked_in_at + timedelta(minutes=7, seconds=5)
            reception(app).redraw_queue()
            assert column(queue, 4)[1] == "7m"

            # Calls elsewhere: the serving row and the board's Serving column.
            desk.call_next("D1")
            await wait_until(pilot, lambda: column(queue, 0) == ["called", "1", "2"])
            await wait_until(pilot, lambda: table_rows(board)[0][3] == "D1-003")

            # F8 and F7 switch the doctor shown (from anywhere, the search included).
            await focus_queue(pilot)
            await pilot.press("f8")
            await wait_until(pilot, lambda: column(queue, 1) == ["D2-001"])
            assert reception(app).query_one("#queue-box").border_title == "D2 queue · Dr Mehta"
            await pilot.press("f7")
            await wait_until(pilot, lambda: column(queue, 1) == ["D1-003", "D1-001", "D1-002"])

    run(go())


# -- cancel, transfer, priority --------------------------------------------------------------


def test_cancel_transfer_and_priority_from_the_queue(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    p = clinic["patients"]
    a = desk.checkin("D1", p[0])
    b = desk.checkin("D1", p[1])
    c = desk.checkin("D1", p[2])

    def status(visit_id: int) -> tuple[Any, ...]:
        return sql.execute("SELECT status::text, priority::text, cancel_reason FROM hms.visits"
                           " WHERE id = %s", (visit_id,)).fetchone() or ()

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_live(pilot, board=2)
            queue = table(app, "queue")
            await wait_until(pilot, lambda: column(queue, 1) == ["D1-001", "D1-002", "D1-003"])

            # A letter typed while the search has the focus is text, never an action.
            await pilot.press("c")
            assert isinstance(app.screen, ReceptionScreen)
            assert reception(app).query_one("#search", Input).value == "c"

            # Cancel the first, with a reason.
            await select_token(pilot, "D1-001")
            await pilot.press("c")
            await wait_screen(pilot, ReasonDialog)
            assert static_text(app.screen.query_one(".title", Static)) == \
                "Cancel D1-001 Patient 00 (M000001)?"
            await paste(pilot, "left early")
            await pilot.press("enter")
            await until_db(pilot, lambda: status(a.visit_id), lambda s: s[0] == "CANCELLED")
            assert status(a.visit_id) == ("CANCELLED", "NORMAL", "left early")
            await wait_until(pilot, lambda: column(queue, 1) == ["D1-002", "D1-003"])

            # Priority of the last one: p, down to EMERGENCY, Enter; it moves to the front.
            await select_token(pilot, "D1-003")
            await pilot.press("p")
            await wait_screen(pilot, PriorityPicker)
            assert static_text(app.screen.query_one(".title", Static)) == \
                "Priority of D1-003 Patient 02 (M000003)"
            await pilot.press("down", "down", "enter")
            await until_db(pilot, lambda: status(c.visit_id), lambda s: s[1] == "EMERGENCY")
            await wait_until(pilot, lambda: column(queue, 1) == ["D1-003", "D1-002"])
            assert column(queue, PRI_COL) == ["EMERGENCY", ""]

            # Transfer D1-002 to Dr Mehta: a new token there, shown as the last check-in.
            await select_token(pilot, "D1-002")
            await pilot.press("t")
            await wait_screen(pilot, DoctorPicker)
            picker = app.screen
            assert static_text(picker.query_one(".title", Static)) == \
                "Transfer D1-002 Patient 01 (M000002) to"
            assert [o.id for o in picker.query_one(OptionList).options] == ["D2"]
            await pilot.press("down", "enter")
            big = reception(app).query_one("#last-token", BigText)
            await wait_until(pilot, lambda: big.text == "D2-001", message="transferred token")
            assert any("new token D2-001 with Dr Mehta" in n for n in notifications(app))
            moved = sql.execute("SELECT d.code, v.status::text, v.token FROM hms.visits v"
                                " JOIN hms.doctors d ON d.id = v.doctor_id"
                                " WHERE v.transferred_from = %s", (b.visit_id,)).fetchone()
            assert moved == ("D2", "WAITING", "D2-001")
            assert status(b.visit_id)[0] == "TRANSFERRED"
            # The queue shown follows the patient to the new doctor; D1's line lost them.
            await wait_until(pilot, lambda: column(queue, 1) == ["D2-001"])
            assert [v.token for v in desk.queue("D1")] == ["D1-003"]
            assert not error_notifications(app)

    run(go())


# -- bills -----------------------------------------------------------------------------------


def test_bill_receipt_save_print_and_void(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    # A stand-in for lp that keeps what it was sent.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    printed = tmp_path / "printed.txt"
    lp = bin_dir / "lp"
    lp.write_text(f"#!/bin/sh\ncat > '{printed}'\necho 'request id is desk-1 (1 file(s))'\n")
    lp.chmod(lp.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_live(pilot, board=2)
            await find_and_check_in(pilot, "01", "Patient 01")
            big = reception(app).query_one("#last-token", BigText)
            await wait_until(pilot, lambda: big.text == "D1-001")

            await pilot.press("f5")  # bills the visit just checked in
            await wait_screen(pilot, BillDialog)
            form = app.screen
            assert static_text(form.query_one(".title", Static)) == \
                "Bill for D1-001 Patient 01 (M000002) · Dr Rao"
            await pilot.press("ctrl+s")  # no lines yet
            assert "at least one line" in static_text(form.query_one(".error", Static))
            await paste(pilot, "Consultation")
            await pilot.press("enter")
            await type_text(pilot, "5OO")  # letters O, not zeros
            await pilot.press("enter")
            assert "is not an amount" in static_text(form.query_one(".error", Static))
            form.query_one("#amount", Input).value = "500"
            await pilot.press("enter")
            await paste(pilot, "Dressing")
            await pilot.press("enter")
            await type_text(pilot, "120.50")
            await pilot.press("enter")
            await paste(pilot, "Mistake")
            await pilot.press("enter")
            await type_text(pilot, "1")
            await pilot.press("enter", "ctrl+d")  # added, then removed again
            assert static_text(form.query_one("#total", Static)) == "Total 620.50 · 2 line(s)"
            await pilot.press("ctrl+s")
            await wait_screen(pilot, ReceiptDialog)
            receipt = app.screen
            assert isinstance(receipt, ReceiptDialog)
            text = static_text(receipt.query_one("#receipt", Static))
            number = sql.execute("SELECT bill_number FROM hms.bills").fetchone()[0]  # type: ignore[index]
            assert text == receipt.text
            for expected in ("RECEIPT", number, "Patient 01", "D1-001 · Dr Rao",
                             "1. Consultation", "500.00", "2. Dressing", "120.50", "TOTAL"):
                assert expected in text
            assert text.splitlines()[-1].endswith("620.50")

            await pilot.press("s")  # save to a file
            saved = tmp_path / "data" / "hms-tui" / "receipts" / f"{number}.txt"
            await wait_until(pilot, saved.exists)
            assert saved.read_text(encoding="utf-8") == text
            assert f"Saved to {saved}" in static_text(receipt.query_one(".error", Static))
            await pilot.press("p")  # print with lp
            assert printed.read_text(encoding="utf-8") == text
            assert "desk-1" in static_text(receipt.query_one(".error", Static))
            await pilot.press("escape")
            assert isinstance(app.screen, ReceptionScreen)

            # Void it: the number, then a reason (required).
            await pilot.press("f6")
            await wait_screen(pilot, VoidBillDialog)
            form = app.screen
            await paste(pilot, number)
            await pilot.press("enter", "enter")  # no reason
            await wait_until(pilot, lambda: "reason is empty" in
                             static_text(form.query_one("#reason-error", Static)))
            assert form.query_one("#reason", Input).has_focus
            await paste(pilot, "wrong patient")
            await pilot.press("enter")
            # The bill is named (patient, MRN, total) and voided only once confirmed.
            confirm = await wait_screen(pilot, ConfirmDialog)
            question = static_text(confirm.query_one(".title", Static))
            assert question.startswith(f"Void {number}: Patient 01 (M000002)")
            assert question.endswith("total 620.50?")
            await pilot.press("enter")  # the safe answer is the default: nothing happens
            await wait_screen(pilot, VoidBillDialog)
            assert sql.execute("SELECT status FROM hms.bills").fetchone() == ("ISSUED",)
            await pilot.press("enter")
            await wait_screen(pilot, ConfirmDialog)
            await pilot.press("v")
            await wait_screen(pilot, ReceiptDialog)
            voided = static_text(app.screen.query_one("#receipt", Static))
            assert "*** VOID ***" in voided and "wrong patient" in voided
            assert any(f"{number} is void" in n for n in notifications(app))
            await pilot.press("escape")

        row = sql.execute("SELECT b.status::text, b.void_reason, b.total FROM hms.bills b"
                          ).fetchone()
        assert row == ("VOID", "wrong patient", Decimal("620.50"))
        items = sql.execute("SELECT description, amount FROM hms.bill_items ORDER BY line_no"
                            ).fetchall()
        assert items == [("Consultation", Decimal("500.00")), ("Dressing", Decimal("120.50"))]

    run(go())


# -- failures never kill the screen ----------------------------------------------------------


def test_a_failing_query_is_a_notification_and_the_screen_lives_on(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_live(pilot, board=2)
            results = table(app, "results")
            await wait_until(pilot, lambda: results.row_count == 10)
            # The search function disappears under the app (a broken or half-upgraded server).
            sql.execute("ALTER FUNCTION hms.search_patients(text, integer)"
                        " RENAME TO search_patients_gone")
            try:
                await type_text(pilot, "07")
                await wait_until(pilot, lambda: error_notifications(app), message="an error")
                assert isinstance(app.screen, ReceptionScreen)
                assert all("Traceback" not in n for n in notifications(app))
            finally:
                sql.execute("ALTER FUNCTION hms.search_patients_gone(text, integer)"
                            " RENAME TO search_patients")
            # The same screen goes on working.
            await pilot.press("backspace")
            await type_text(pilot, "7")
            await wait_until(pilot, lambda: column(results, 1) == ["Patient 07"])

            # A bug in a call (not a database error) is reported the same way.
            def broken(*_args: Any, **_kw: Any) -> Any:
                raise RuntimeError("search index exploded")

            app.desk.search_patients = broken  # type: ignore[method-assign]
            await type_text(pilot, "x")
            await wait_until(pilot, lambda: any("search index exploded" in n
                                                for n in error_notifications(app)))
            assert isinstance(app.screen, ReceptionScreen) and app.is_running

    run(go())


def test_a_slow_database_never_freezes_the_screen(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    """Every call runs in a worker: while the patients table is locked by another session, the
    search waits, and the screen goes on taking keys; the answer arrives once the lock goes."""

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_live(pilot, board=2)
            results = table(app, "results")
            await wait_until(pilot, lambda: results.row_count == 10)
            search = reception(app).query_one("#search", Input)
            with sql.transaction():
                sql.execute("LOCK TABLE hms.patients IN ACCESS EXCLUSIVE MODE")
                await type_text(pilot, "08")
                await pilot.pause(0.5)  # the search is stuck behind the lock...
                assert results.row_count == 10
                assert search.value == "08"  # ...while typing still lands
                await pilot.press("f1")  # and keys still work
                await wait_screen(pilot, HelpScreen)
                await pilot.press("escape")
                await wait_screen(pilot, ReceptionScreen)
            await wait_until(pilot, lambda: column(results, 1) == ["Patient 08"])
            assert not error_notifications(app)

    run(go())

