"""Admin as a new user met it: `x` deactivated a doctor with four called patients at once,
on the first row, with no question (and the patients vanished from reception); doctor keys
on every tab; no way to switch tabs from the keyboard shown anywhere; an audit tab that does
not follow new events; settings changed elsewhere not shown."""

from __future__ import annotations

from typing import Any

import psycopg
from textual.widgets import DataTable, Input, Static

from hms_tui.app import Role
from hms_tui.domain.models import Status
from hms_tui.screens.admin import AdminScreen
from hms_tui.screens.base import HelpScreen
from hms_tui.screens.pickers import ChoiceDialog, DoctorPicker
from hms_tui.screens.reception import ReceptionScreen
from hms_tui.services.desk import Desk
from hms_tui.widgets.keybar import KeyBar
from hms_tui.widgets.queue_table import DiffTable
from tests.tui_helpers import (
    column,
    make_app,
    run,
    static_text,
    until_db,
    wait_live,
    wait_screen,
    wait_until,
)


def admin(app: Any) -> AdminScreen:
    return next(s for s in app.screen_stack if isinstance(s, AdminScreen))


def bar(app: Any) -> str:
    return " ".join(f"{k} {d}" for k, d, enabled in admin(app).query_one(KeyBar).items
                    if enabled)


def test_deactivating_a_doctor_with_patients_asks_and_offers_a_transfer(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    desk.configure(calls_ahead=3)
    p = clinic["patients"]
    for i in range(6):
        desk.checkin("D1", p[i])
    for _ in range(4):
        desk.call_next("D1")  # four called, two waiting

    async def go() -> None:
        app = make_app(Role.ADMIN, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            grid = admin(app).query_one("#doctors", DiffTable)
            await wait_until(pilot, lambda: grid.row_count == 2 and grid.has_focus)
            await pilot.press("x")  # on the first row: D1, named in the question
            asked = await wait_screen(pilot, ChoiceDialog)
            assert static_text(asked.query_one(".title", Static)) == "Deactivate Dr Rao (D1)?"
            text = " ".join(static_text(w) for w in asked.query(Static))
            assert "2 waiting, 4 called" in text
            await pilot.press("enter")  # the default: leave it
            await wait_screen(pilot, AdminScreen)
            assert sql.execute("SELECT active FROM hms.doctors WHERE code = 'D1'"
                               ).fetchone() == (True,)
            await pilot.press("x")
            await wait_screen(pilot, ChoiceDialog)
            await pilot.press("t")  # transfer them first
            picker = await wait_screen(pilot, DoctorPicker)
            assert "Transfer the patients of Dr Rao (D1) to" in static_text(
                picker.query_one(".title", Static))
            await pilot.press("enter")  # D2, the only other doctor
            await until_db(pilot, lambda: sql.execute(
                "SELECT active FROM hms.doctors WHERE code = 'D1'").fetchone(),
                lambda r: r == (False,))
            moved = desk.queue("D2")
            assert [v.patient_id for v in moved] == [p[i] for i in range(6)]
            assert {v.status for v in moved} == {Status.WAITING}
            assert desk.queue("D1") == []

    run(go())


def test_a_doctor_taken_off_with_patients_stays_on_reception(
    desk: Desk, clinic: dict[str, Any]
) -> None:
    desk.checkin("D1", clinic["patients"][0])
    desk.update_doctor("D1", active=False)  # without a transfer

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            screen = next(s for s in app.screen_stack if isinstance(s, ReceptionScreen))
            board = screen.query_one("#board", DiffTable)
            await wait_until(pilot, lambda: column(board, 1) == ["Dr Rao (off)", "Dr Mehta"])
            queue = screen.query_one("#queue", DiffTable)
            await wait_until(pilot, lambda: column(queue, 1) == ["D1-001"])

    run(go())


def test_each_tab_has_its_keys_and_its_table_takes_the_focus(
    desk: Desk, clinic: dict[str, Any]
) -> None:
    async def go() -> None:
        app = make_app(Role.ADMIN, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            screen = admin(app)
            doctors = screen.query_one("#doctors", DiffTable)
            await wait_until(pilot, lambda: doctors.has_focus and "x (De)activate" in bar(app))
            assert "1 Doctors" in bar(app) and "5 Audit" in bar(app)
            assert "Add staff" not in bar(app) and "Lock" not in bar(app)
            await pilot.press("2")
            staff = screen.query_one("#staff", DiffTable)
            await wait_until(pilot, lambda: staff.has_focus)
            await wait_until(pilot, lambda: "s Add staff" in bar(app))
            assert "(De)activate" not in bar(app) and "Add doctor" not in bar(app)
            await pilot.press("x")  # a doctors' key on the staff tab does nothing
            await pilot.pause(0.2)
            assert isinstance(app.screen, AdminScreen)
            await pilot.press("3")
            first = screen.query_one("#set-clinic_name", Input)
            await wait_until(pilot, lambda: first.has_focus)
            await pilot.press("4")  # typed into the field: digits are text there
            assert first.value.endswith("4")
            await pilot.press("escape", "5")  # Esc leaves the field; then 5 is a tab again
            audit = screen.query_one("#audit", DiffTable)
            await wait_until(pilot, lambda: audit.has_focus)
            await pilot.press("f1")
            help_screen = await wait_screen(pilot, HelpScreen)
            actions = column(help_screen.query_one(DataTable), 1)
            assert {"Doctors", "Staff", "Settings", "Today", "Audit"} <= set(actions)

    run(go())


def test_the_audit_tab_follows_new_events_newest_in_view(desk: Desk,
                                                        clinic: dict[str, Any]) -> None:
    async def go() -> None:
        app = make_app(Role.ADMIN, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await pilot.press("5")
            audit = admin(app).query_one("#audit", DiffTable)
            await wait_until(pilot, lambda: audit.row_count > 0 and audit.has_focus)
            visit = desk.checkin("D1", clinic["patients"][0])  # at reception
            await wait_until(pilot, lambda: column(audit, 4)[:1] == ["checkin"],
                             message="the new event at the top")
            assert column(audit, 6)[0] == str(visit.visit_id)
            assert audit.cursor_row == 0 and audit.scroll_offset.y == 0

    run(go())


def test_settings_changed_elsewhere_are_shown(desk: Desk, clinic: dict[str, Any]) -> None:
    async def go() -> None:
        app = make_app(Role.ADMIN, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            name = admin(app).query_one("#set-clinic_name", Input)
            ahead = admin(app).query_one("#set-calls_ahead", Input)
            await wait_until(pilot, lambda: name.value == "Outpatient Clinic")
            assert ahead.value == "0"
            desk.configure(clinic_name="City Clinic", calls_ahead=1)  # another admin
            await wait_until(pilot, lambda: name.value == "City Clinic" and ahead.value == "1")

    run(go())
