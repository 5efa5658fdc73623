"""The doctor's console as a new user met it: `n` pressed while a patient was in
consultation called another one (four CALLED for one room); the waiting minutes froze; the
footer lost q, c and t at 80x24."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from textual.widgets import Static

from hms_tui.app import Role
from hms_tui.screens.doctor import DoctorScreen
from hms_tui.screens.pickers import ConfirmDialog
from hms_tui.services.desk import Desk
from hms_tui.widgets.queue_table import DiffTable
from tests.tui_helpers import (
    column,
    make_app,
    run,
    screen_text,
    static_text,
    until_db,
    wait_live,
    wait_screen,
    wait_until,
)


def console(app: Any) -> DoctorScreen:
    return next(s for s in app.screen_stack if isinstance(s, DoctorScreen))


def called(sql: psycopg.Connection[Any]) -> list[str]:
    return [r[0] for r in sql.execute("SELECT token FROM hms.visits WHERE status IN"
                                      " ('CALLED', 'IN_CONSULTATION') ORDER BY id")]


def test_calling_while_a_patient_is_with_the_doctor_asks_first(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    p = clinic["patients"]
    for i in range(5):
        desk.checkin("D1", p[i])
    desk.start(desk.call_next("D1").visit_id)

    async def go() -> None:
        app = make_app(Role.DOCTOR, desk, doctor="D1")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            table = console(app).query_one("#queue", DiffTable)
            await wait_until(pilot, lambda: column(table, 0)[:1] == ["now"])
            await pilot.press("n", "n", "n", "n")  # four presses, as seen
            dialog = await wait_screen(pilot, ConfirmDialog)
            question = static_text(dialog.query_one(".title", Static))
            assert question == ("Still with you: D1-001 Patient 00 (M000001, in consultation)."
                                " Call another patient anyway?")
            await pilot.press("escape")  # no
            await wait_screen(pilot, DoctorScreen)
            await pilot.pause(0.3)
            assert called(sql) == ["D1-001"]
            await pilot.press("n")
            await wait_screen(pilot, ConfirmDialog)
            await pilot.press("y")  # the doctor insists: one more, recorded as forced
            await until_db(pilot, lambda: called(sql), lambda c: c == ["D1-001", "D1-002"])
            assert sql.execute("SELECT action FROM hms.audit_events WHERE action LIKE 'call%'"
                               " ORDER BY seq DESC LIMIT 1").fetchone() == ("call_next_forced",)

    run(go())


def test_a_call_from_another_terminal_is_refused_by_the_database_and_asks(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    p = clinic["patients"]
    for i in range(3):
        desk.checkin("D1", p[i])

    async def go() -> None:
        app = make_app(Role.DOCTOR, desk, doctor="D1")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            table = console(app).query_one("#queue", DiffTable)
            await wait_until(pilot, lambda: table.row_count == 3)
            # Another terminal calls just now; this console's copy has not caught up.
            app.listener.live.queues["D1"] = tuple(desk.queue("D1"))
            desk.call_next("D1")
            await pilot.press("n")
            dialog = await wait_screen(pilot, ConfirmDialog)
            assert "is still serving D1-001 Patient 00 (M000001, called)" in \
                static_text(dialog.query_one(".title", Static))
            await pilot.press("escape")
            assert called(sql) == ["D1-001"]

    run(go())


def test_clocks_tick_and_the_keys_fit_at_80x24(desk: Desk, clinic: dict[str, Any]) -> None:
    visit = desk.checkin("D1", clinic["patients"][0])
    desk.checkin("D1", clinic["patients"][1])
    assert visit.checked_in_at is not None
    now = {"t": visit.checked_in_at}

    async def go() -> None:
        app = make_app(Role.DOCTOR, desk, doctor="D1", clock=lambda: now["t"])
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            table = console(app).query_one("#queue", DiffTable)
            await wait_until(pilot, lambda: column(table, 4) == ["0m", "0m"])
            now["t"] = visit.checked_in_at + timedelta(minutes=12)
            await wait_until(pilot, lambda: column(table, 4)[0] == "12m", 3,
                             message="waiting minutes tick without a database change")
            shown = screen_text(app)
            bar = "\n".join(shown.splitlines()[-2:])
            for key in ("n Call next", "r Recall", "s Start", "d Done", "x No-show", "k Skip",
                        "q Requeue", "c Call selected", "t Timeline", "F1 Help", "^q Quit"):
                assert key in bar, (key, bar)

    run(go())
