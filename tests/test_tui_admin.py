"""Admin against a real database (doctors, clinic settings, today's numbers, the audit tail with
filters), and what every terminal shares: the connection badge with the last refresh time, the
keys in the footer, on the help screen (F1 or ?) and in the command palette."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from textual.command import CommandPalette
from textual.widgets import DataTable, Input, OptionList, Static, TabbedContent

from hms_tui.app import Role
from hms_tui.screens.admin import AdminScreen, DoctorDialog
from hms_tui.screens.base import HelpScreen, LiveScreen
from hms_tui.screens.forms import TimelineDialog
from hms_tui.screens.pickers import ChoiceDialog, ConfirmDialog
from hms_tui.services.desk import Desk
from hms_tui.widgets.queue_table import DiffTable
from hms_tui.widgets.status import ConnectionBadge
from tests.tui_helpers import (
    column,
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


def admin(app: Any) -> AdminScreen:
    return next(s for s in app.screen_stack if isinstance(s, AdminScreen))


def table(app: Any, name: str) -> DiffTable:
    return admin(app).query_one(f"#{name}", DiffTable)


async def select_row(pilot: Any, grid: DataTable[Any], key_column_value: str) -> None:
    """Focus ``grid`` and arrow to the row whose first cell is ``key_column_value``."""
    await focus(pilot, grid)
    target = column(grid, 0).index(key_column_value)
    while grid.cursor_row != target:
        await pilot.press("down" if grid.cursor_row < target else "up")


def doctors(sql: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return sql.execute("SELECT code, name, room, token_prefix, active FROM hms.doctors"
                       " ORDER BY code").fetchall()


# -- doctors -----------------------------------------------------------------------------------


def test_doctors_add_edit_and_deactivate(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    async def go() -> None:
        app = make_app(Role.ADMIN, desk)
        async with app.run_test(size=(110, 30)) as pilot:
            await wait_live(pilot, board=2)
            grid = table(app, "doctors")
            await wait_until(pilot, lambda: table_rows(grid) == [
                ["D1", "Dr Rao", "Room 3", "D1", "yes"], ["D2", "Dr Mehta", "Room 5", "D2", "yes"]])

            # a: add. A bad code is refused under its field, the focus stays on it, and
            # nothing is written.
            await pilot.press("a")
            await wait_screen(pilot, DoctorDialog)
            form = app.screen
            code = form.query_one("#code", Input)
            await type_text(pilot, "3x")
            await pilot.press("enter")
            error = form.query_one("#code-error", Static)
            await wait_until(pilot, lambda: "doctor code" in static_text(error))
            assert code.has_focus and len(doctors(sql)) == 2 and app.screen is form
            code.value = "d3"
            await pilot.press("enter")
            await paste(pilot, "Dr Leela Sen")
            await pilot.press("enter")
            await paste(pilot, "Room 7")
            await pilot.press("enter")
            await paste(pilot, "s!")
            await pilot.press("enter")  # the last field: save, every field checked
            await wait_until(pilot, lambda: "token prefix" in static_text(
                form.query_one("#prefix-error", Static)))
            assert static_text(error) == "" and len(doctors(sql)) == 2
            form.query_one("#prefix", Input).value = "s"
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: "D3" in column(grid, 0))
            assert doctors(sql)[-1] == ("D3", "Dr Leela Sen", "Room 7", "S", True)
            assert any("Saved D3 Dr Leela Sen" in n for n in notifications(app))

            # e: edit the selected doctor (the code cannot change).
            await select_row(pilot, grid, "D1")
            await pilot.press("e")
            await wait_screen(pilot, DoctorDialog)
            form = app.screen
            assert form.query_one("#code", Input).disabled
            assert form.query_one("#name", Input).value == "Dr Rao"
            room = form.query_one("#room", Input)
            assert room.value == "Room 3"
            room.value = "Room 9"
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: table_rows(grid)[0][2] == "Room 9")
            assert doctors(sql)[0] == ("D1", "Dr Rao", "Room 9", "D1", True)

            # x: deactivate (once confirmed, naming the doctor), then activate again.
            await select_row(pilot, grid, "D2")
            await pilot.press("x")
            asked = await wait_screen(pilot, ChoiceDialog)
            assert static_text(asked.query_one(".title", Static)) == "Deactivate Dr Mehta (D2)?"
            await pilot.press("y")
            await wait_until(pilot, lambda: table_rows(grid)[1][4] == "no")
            assert doctors(sql)[1][4] is False
            await pilot.press("x")
            await wait_until(pilot, lambda: table_rows(grid)[1][4] == "yes")
            assert doctors(sql)[1][4] is True

    run(go())


# -- settings and today ------------------------------------------------------------------------


def test_clinic_settings_are_validated_and_saved(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    def rules() -> tuple[Any, ...]:
        return sql.execute("SELECT clinic_name, timezone, recall_limit, consult_minutes"
                           " FROM hms.settings").fetchone() or ()

    before = rules()

    async def go() -> None:
        app = make_app(Role.ADMIN, desk)
        async with app.run_test(size=(110, 30)) as pilot:
            await wait_live(pilot, board=2)
            screen = admin(app)
            screen.query_one(TabbedContent).active = "tab-settings"
            name = screen.query_one("#set-clinic_name", Input)
            await wait_until(pilot, lambda: name.value == "Outpatient Clinic")
            assert screen.query_one("#set-timezone", Input).value == "UTC"
            assert screen.query_one("#set-recall_limit", Input).value == str(before[2])
            msg = screen.query_one("#settings-msg", Static)

            screen.query_one("#set-recall_limit", Input).value = "two"
            await pilot.press("ctrl+s")
            assert static_text(msg) == "limits and minutes must be whole numbers"
            screen.query_one("#set-recall_limit", Input).value = "3"
            screen.query_one("#set-timezone", Input).value = "Mars/Olympus_Mons"
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: "time zone" in static_text(msg))
            assert rules() == before

            await focus(pilot, name)
            name.value = ""
            await paste(pilot, "City Clinic · OPD")
            screen.query_one("#set-timezone", Input).value = "Asia/Kolkata"
            screen.query_one("#set-consult_minutes", Input).value = "12"
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: static_text(msg) == "Saved.")
            assert rules() == ("City Clinic · OPD", "Asia/Kolkata", 3, 12)
            assert app.clinic_name == "City Clinic · OPD"

    run(go())


def test_todays_numbers_follow_the_day(desk: Desk, clinic: dict[str, Any]) -> None:
    p = clinic["patients"]
    for i in range(4):
        desk.checkin("D1", p[i])
    desk.complete(desk.start(desk.call_next("D1").visit_id).visit_id)
    desk.call_next("D1")

    async def go() -> None:
        app = make_app(Role.ADMIN, desk)
        async with app.run_test(size=(110, 30)) as pilot:
            await wait_live(pilot, board=2)
            admin(app).query_one(TabbedContent).active = "tab-today"
            today = table(app, "today")
            await wait_until(pilot, lambda: table_rows(today) == [
                ["D1", "Dr Rao", "Room 3", "D1-002", "2", "1", "0", "4"],
                ["D2", "Dr Mehta", "Room 5", "", "0", "0", "0", "0"]])
            desk.checkin("D2", p[5])  # live
            await wait_until(pilot, lambda: table_rows(today)[1][4] == "1")
            assert table_rows(today)[1][7] == "1"

    run(go())


# -- audit -------------------------------------------------------------------------------------


def test_audit_tail_with_filters_and_timeline(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    p = clinic["patients"]
    first = desk.checkin("D1", p[0])
    desk.checkin("D1", p[1])
    desk.call_next("D1")

    async def go() -> None:
        app = make_app(Role.ADMIN, desk)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_live(pilot, board=2)
            screen = admin(app)
            screen.query_one(TabbedContent).active = "tab-audit"
            audit = table(app, "audit")
            await wait_until(pilot, lambda: audit.has_focus)  # the tab's table takes the focus
            await wait_until(pilot, lambda: "call_next" in column(audit, 4))
            seqs = [int(s) for s in column(audit, 0)]
            assert seqs == sorted(seqs, reverse=True)  # newest first
            assert {"doctor_add", "patient_add", "checkin", "call_next"} <= set(column(audit, 4))
            total = audit.row_count

            await focus(pilot, screen.query_one("#f-action", Input))
            await type_text(pilot, "checkin")
            await pilot.press("enter")
            await wait_until(pilot, lambda: set(column(audit, 4)) == {"checkin"})
            assert audit.row_count == 2

            screen.query_one("#f-action", Input).value = ""
            await focus(pilot, screen.query_one("#f-visit", Input))
            await type_text(pilot, "abc")
            await pilot.press("enter")
            assert any("visit id" in n for n in notifications(app))
            screen.query_one("#f-visit", Input).value = str(first.visit_id)
            await pilot.press("enter")
            await wait_until(pilot, lambda: column(audit, 6) == [str(first.visit_id)] * 2)
            assert column(audit, 4) == ["call_next", "checkin"]
            assert column(audit, 7) == ["WAITING -> CALLED", " -> WAITING"]

            screen.query_one("#f-visit", Input).value = ""
            screen.query_one("#f-actor", Input).value = "nobody-at-all"
            await pilot.press("f5")
            await wait_until(pilot, lambda: audit.row_count == 0)
            screen.query_one("#f-actor", Input).value = ""
            await pilot.press("f5")
            await wait_until(pilot, lambda: audit.row_count == total)

            # Enter on a visit's event opens its timeline.
            await select_row(pilot, audit, column(audit, 0)[0])  # the call_next, newest
            await pilot.press("enter")
            await wait_screen(pilot, TimelineDialog)
            assert static_text(app.screen.query_one(".title", Static)) == \
                f"Timeline of visit {first.visit_id}"
            events = app.screen.query_one(DataTable)
            await wait_until(pilot, lambda: column(events, 2) == ["checkin", "call_next"])
            await pilot.press("escape")
            assert isinstance(app.screen, AdminScreen)

    run(go())


# -- every screen: badge, footer, help, command palette ---------------------------------------

ROLE_KEYS = {
    Role.RECEPTION: ("F4 Check in", "Transfer", "Check in"),
    Role.DOCTOR: ("n Call next", "Call next", "Call next"),
    Role.DISPLAY: ("", "Help", "Help"),
    Role.ADMIN: ("a Add doctor", "(De)activate", "Add doctor"),
}


@pytest.mark.parametrize("role", list(ROLE_KEYS), ids=lambda r: r.value)
def test_every_screen_shows_live_state_and_its_keys(
    desk: Desk, clinic: dict[str, Any], role: Role
) -> None:
    footer_text, help_row, palette_entry = ROLE_KEYS[role]

    async def go() -> None:
        app = make_app(role, desk, doctor="D1" if role == Role.DOCTOR else None)
        async with app.run_test(size=(120, 30)) as pilot:
            screen = app.screen
            assert isinstance(screen, LiveScreen)
            badge = screen.query_one(ConnectionBadge)
            await wait_live(pilot, board=2)
            # The connection state and the last refresh, by the app's (frozen) clock.
            await wait_until(pilot, lambda: static_text(badge) == "● live 09:41:07")
            await pilot.pause()
            shown = screen_text(app)
            assert "● live 09:41:07" in shown
            if footer_text:  # the display has no footer: nobody types there
                assert "F1 Help" in shown and footer_text in shown

            # F1 (and ? where no text field has the focus) lists every key.
            await pilot.press("f1")
            await wait_screen(pilot, HelpScreen)
            keys = app.screen.query_one(DataTable)
            assert help_row in column(keys, 1)
            assert "Command palette" in column(keys, 1)
            await pilot.press("escape")
            assert app.screen is screen
            if role != Role.RECEPTION:  # reception's search takes '?' as text
                await pilot.press("question_mark")
                await wait_screen(pilot, HelpScreen)
                await pilot.press("escape")

            # ctrl+p: the palette finds the screen's keys by name.
            await pilot.press("ctrl+p")
            await wait_screen(pilot, CommandPalette)
            await type_text(pilot, palette_entry.split()[0].lower())
            options = app.screen.query_one(OptionList)
            await wait_until(pilot, lambda: any(palette_entry in str(o.prompt)
                                                for o in options.options),
                             message=f"{palette_entry} in the palette")
            await pilot.press("escape")
            await wait_until(pilot, lambda: app.screen is screen)

    run(go())


def test_the_palette_runs_the_doctors_keys(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    desk.checkin("D1", clinic["patients"][0])

    async def go() -> None:
        app = make_app(Role.DOCTOR, desk, doctor="D1")
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_live(pilot, board=2)
            await pilot.press("ctrl+p")
            await wait_screen(pilot, CommandPalette)
            await paste(pilot, "Call next")
            options = app.screen.query_one(OptionList)
            await wait_until(pilot, lambda: options.option_count
                             and "Call next" in str(options.options[0].prompt))
            await pilot.press("down", "enter")
            await until_db(pilot, lambda: sql.execute(
                "SELECT status::text FROM hms.visits").fetchone(), lambda r: r == ("CALLED",))

    run(go())


# -- staff -------------------------------------------------------------------------------------


def test_staff_add_lock_and_unlock(desk: Desk, clinic: dict[str, Any],
                                   sql: psycopg.Connection[Any], staff_logins: Any) -> None:
    import uuid

    from hms_tui.screens.staff import StaffDialog

    login = f"t_tui_{uuid.uuid4().hex[:8]}"
    staff_logins.logins.append(login)  # dropped when the test ends

    def can_login() -> Any:
        return sql.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s",
                           (login,)).fetchone()

    async def go() -> None:
        app = make_app(Role.ADMIN, desk)
        async with app.run_test(size=(110, 32)) as pilot:
            await wait_live(pilot, board=2)
            await pilot.press("2")  # the Staff tab: its keys
            await pilot.press("s")
            await wait_screen(pilot, StaffDialog)
            form = app.screen
            for value in (login, "doctor", "D1, D2", "secret-pass", "other-pass"):
                await paste(pilot, value)
                await pilot.press("enter")
            await wait_until(pilot, lambda: "the two passwords differ" in static_text(
                form.query_one(".error", Static)))
            assert can_login() is None  # nothing written
            form.query_one("#repeat", Input).value = "secret-pass"
            await pilot.press("ctrl+s")
            await wait_screen(pilot, AdminScreen)
            grid = table(app, "staff")
            await wait_until(pilot, lambda: [login, "doctor", "D1, D2", "yes"] in table_rows(grid))
            assert can_login() == (True,)
            admin(app).query_one(TabbedContent).active = "tab-staff"
            await select_row(pilot, grid, login)
            await pilot.press("l")
            asked = await wait_screen(pilot, ConfirmDialog)
            assert static_text(asked.query_one(".title", Static)) == \
                f"Lock the login {login} (doctor, doctors D1, D2)?"
            await pilot.press("y")
            await until_db(pilot, can_login, lambda r: r == (False,))
            await wait_until(pilot, lambda: [login, "doctor", "D1, D2", "no"] in table_rows(grid))
            await pilot.press("l")
            await until_db(pilot, can_login, lambda r: r == (True,))

    run(go())


def test_doctor_console_of_a_login_linked_to_one_doctor_opens_by_itself(
    desk: Desk, clinic: dict[str, Any], staff_logins: Any
) -> None:
    from hms_tui.screens.doctor import DoctorScreen

    login = staff_logins.add("doctor", ("D2",))
    own = Desk(staff_logins.database(login))
    desk.checkin("D2", clinic["patients"][0])

    async def go() -> None:
        app = make_app(Role.DOCTOR, own)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_live(pilot, board=2)
            screen = next(s for s in app.screen_stack if isinstance(s, DoctorScreen))
            await wait_until(pilot, lambda: screen.doctor == "D2")
            await wait_until(pilot, lambda: column(screen.query_one(DiffTable), 1) == ["D2-001"])
            await pilot.press("n")
            await wait_until(pilot, lambda: column(screen.query_one(DiffTable), 0) == ["called"])

    run(go())
