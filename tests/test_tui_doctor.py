"""The doctor's console against a real database: the live queue, one key per action (call
next, recall, start, done, no-show, skip, requeue, call selected), the times since called and
in consultation, and the visit's timeline."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import psycopg
from textual.widgets import DataTable, OptionList, Static

from hms_tui.app import Role
from hms_tui.screens.doctor import DoctorScreen, NoShowPicker
from hms_tui.screens.forms import TimelineDialog
from hms_tui.screens.pickers import DoctorPicker
from hms_tui.services.desk import Desk
from hms_tui.widgets.queue_table import DiffTable
from tests.tui_helpers import (
    FROZEN,
    column,
    error_notifications,
    make_app,
    notifications,
    run,
    screen_text,
    static_text,
    table_rows,
    until_db,
    wait_live,
    wait_screen,
    wait_until,
)


def console(app: Any) -> DoctorScreen:
    screen = next(s for s in app.screen_stack if isinstance(s, DoctorScreen))
    return screen


async def key(pilot: Any, name: str) -> None:
    """Press a doctor's key once the previous action has come back (the console ignores keys
    while an action is in flight, so a double press never acts twice)."""
    await wait_until(pilot, lambda: not pilot.app.busy("doctor-action"),
                     message="previous action done")
    await pilot.press(name)


def now_line(app: Any) -> str:
    return static_text(console(app).query_one("#now", Static))


def queue(app: Any) -> DiffTable:
    return console(app).query_one("#queue", DiffTable)


def states(sql: psycopg.Connection[Any]) -> dict[str, tuple[str, int]]:
    rows = sql.execute("SELECT token, status::text, call_count FROM hms.visits"
                       " WHERE token IS NOT NULL ORDER BY id").fetchall()
    return {t: (s, c) for t, s, c in rows}


def test_call_next_recall_start_done_and_times(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    p = clinic["patients"]
    for i in range(3):
        desk.checkin("D1", p[i])
    desk.checkin("D2", p[5])  # another doctor's patient never shows here
    now = {"t": FROZEN}

    async def go() -> None:
        app = make_app(Role.DOCTOR, desk, doctor="D1", clock=lambda: now["t"])
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_live(pilot, board=2)
            table = queue(app)
            await wait_until(pilot, lambda: column(table, 1) == ["D1-001", "D1-002", "D1-003"])
            assert table_rows(table)[0] == ["1", "D1-001", "Patient 00", "", "0m", ""]
            title = static_text(console(app).query_one("TitleBar #title", Static))
            assert title == "hms-tui · Dr Rao, Room 3"
            assert now_line(app) == "Nobody with you. 3 waiting — n calls the next patient."
            today = static_text(console(app).query_one("#today", Static))
            assert today == "Today: 0 seen · 3 waiting · 0 no-show · 3 tokens"

            await key(pilot, "n")  # call next
            await until_db(pilot, lambda: states(sql)["D1-001"], lambda s: s == ("CALLED", 1))
            await wait_until(pilot, lambda: now_line(app).startswith("Called: D1-001"))
            await wait_until(pilot, lambda: column(table, 0) == ["called", "1", "2"])
            assert table_rows(table)[0][5] == "1"  # calls
            await pilot.pause()
            # The row as drawn: the column widened for "called" (a cell update, not a new row).
            assert re.search(r"^ called +D1-001 +Patient 00 ", screen_text(app), re.M)
            # Time since called, by the app's clock.
            called = desk.visit(sql.execute("SELECT id FROM hms.visits WHERE token = 'D1-001'"
                                            ).fetchone()[0])  # type: ignore[index]
            assert called.called_at is not None
            now["t"] = called.called_at + timedelta(minutes=2, seconds=5)
            console(app).show_now()
            assert now_line(app).splitlines() == [
                "Called: D1-001  Patient 00 (M000001)",
                "called 1x, 02:05 ago — s start · r recall · x no-show"]

            await key(pilot, "r")  # recall
            await until_db(pilot, lambda: states(sql)["D1-001"], lambda s: s == ("CALLED", 2))
            await wait_until(pilot, lambda: "called 2x" in now_line(app))

            await key(pilot, "s")  # start
            await until_db(pilot, lambda: states(sql)["D1-001"][0], lambda s: s == "IN_CONSULTATION")
            await wait_until(pilot, lambda: now_line(app).startswith("Now: D1-001"))
            started = desk.visit(called.visit_id)
            assert started.started_at is not None
            now["t"] = started.started_at + timedelta(minutes=6, seconds=12)
            console(app).show_now()
            assert now_line(app).splitlines()[1] == "in consultation 06:12  — d done"
            await wait_until(pilot, lambda: column(table, 0) == ["now", "1", "2"])

            await key(pilot, "d")  # done
            await until_db(pilot, lambda: states(sql)["D1-001"][0], lambda s: s == "COMPLETED")
            await wait_until(pilot, lambda: column(table, 1) == ["D1-002", "D1-003"])
            await wait_until(pilot, lambda: now_line(app).startswith("Nobody with you. 2 waiting"))
            await wait_until(pilot, lambda: static_text(console(app).query_one("#today", Static))
                             == "Today: 1 seen · 2 waiting · 0 no-show · 3 tokens")

            # Live: a check-in at reception lands at the end of the doctor's queue.
            desk.checkin("D1", p[4], "URGENT")
            await wait_until(pilot, lambda: column(table, 1) == ["D1-004", "D1-002", "D1-003"])
            assert column(table, 3) == ["URGENT", "", ""]
            assert "D2-001" not in column(table, 1)
            assert not error_notifications(app)

    run(go())


def test_no_show_after_recalls_then_requeue(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    p = clinic["patients"]
    for i in range(5):
        desk.checkin("D1", p[i])

    async def go() -> None:
        app = make_app(Role.DOCTOR, desk, doctor="D1")
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_live(pilot, board=2)
            table = queue(app)
            await wait_until(pilot, lambda: table.row_count == 5)
            await key(pilot, "x")  # nobody called yet: a warning, nothing else
            assert any("Nobody has been called" in n for n in notifications(app))

            await key(pilot, "n")
            await until_db(pilot, lambda: states(sql)["D1-001"], lambda s: s == ("CALLED", 1))
            await wait_until(pilot, lambda: now_line(app).startswith("Called: D1-001"))
            # Too early for a no-show (the recall limit is 2): refused, shown, nothing written.
            await key(pilot, "x")
            await wait_until(pilot, lambda: any("recall it 2 more time" in n
                                                for n in error_notifications(app)))
            assert states(sql)["D1-001"] == ("CALLED", 1)
            for count in (2, 3):
                await key(pilot, "r")
                await until_db(pilot, lambda: states(sql)["D1-001"],
                               lambda s, c=count: s == ("CALLED", c))
                await wait_until(pilot, lambda c=count: f"called {c}x" in now_line(app))
            await key(pilot, "x")
            await until_db(pilot, lambda: states(sql)["D1-001"][0], lambda s: s == "NO_SHOW")
            await wait_until(pilot, lambda: "D1-001" not in column(table, 1))
            await wait_until(pilot, lambda: static_text(console(app).query_one("#today", Static))
                             == "Today: 0 seen · 4 waiting · 1 no-show · 5 tokens")

            # q: today's no-shows; Enter puts the chosen one back, behind 3 waiting patients.
            await key(pilot, "q")
            await wait_screen(pilot, NoShowPicker)
            options = app.screen.query_one(OptionList)
            assert [str(o.prompt) for o in options.options] == ["D1-001  Patient 00 (M000001)"]
            await pilot.press("down", "enter")
            await until_db(pilot, lambda: states(sql)["D1-001"][0], lambda s: s == "WAITING")
            await wait_until(pilot, lambda: column(table, 1) ==
                             ["D1-002", "D1-003", "D1-004", "D1-001", "D1-005"])

    run(go())


def test_skip_call_selected_and_timeline(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    p = clinic["patients"]
    for i in range(4):
        desk.checkin("D1", p[i])

    async def go() -> None:
        app = make_app(Role.DOCTOR, desk, doctor="D1")
        async with app.run_test(size=(110, 30)) as pilot:
            await wait_live(pilot, board=2)
            table = queue(app)
            await wait_until(pilot, lambda: table.row_count == 4)
            assert table.has_focus

            # k on the first waiting patient moves them back (skip_places is 1 by default).
            await key(pilot, "k")
            await wait_until(pilot, lambda: column(table, 1) ==
                             ["D1-002", "D1-001", "D1-003", "D1-004"])
            # c calls the selected row out of turn.
            while table.cursor_row != 2:
                await pilot.press("down")
            assert column(table, 1)[table.cursor_row] == "D1-003"
            await key(pilot, "c")
            await until_db(pilot, lambda: states(sql)["D1-003"][0], lambda s: s == "CALLED")
            await wait_until(pilot, lambda: now_line(app).startswith("Called: D1-003"))
            await key(pilot, "s")
            await until_db(pilot, lambda: states(sql)["D1-003"][0],
                           lambda s: s == "IN_CONSULTATION")

            # t: the timeline of the selected visit.
            await wait_until(pilot, lambda: column(table, 1)[0] == "D1-003")
            while table.cursor_row != 0:
                await pilot.press("up")
            await pilot.press("t")
            await wait_screen(pilot, TimelineDialog)
            dialog = app.screen
            assert static_text(dialog.query_one(".title", Static)) == \
                "Timeline of D1-003 Patient 02"
            events = dialog.query_one("#events", DataTable)
            await wait_until(pilot, lambda: events.row_count == 3)
            rows = table_rows(events)
            assert [r[2] for r in rows] == ["checkin", "call", "start"]
            assert [r[3] for r in rows] == [" -> WAITING", "WAITING -> CALLED",
                                            "CALLED -> IN_CONSULTATION"]
            assert rows[0][1] == "" and all(r[1].startswith("+") for r in rows[1:])
            assert all(r[4] for r in rows)  # who did it
            await pilot.press("escape")
            assert isinstance(app.screen, DoctorScreen)
        assert states(sql)["D1-003"][0] == "IN_CONSULTATION"

    run(go())


def test_console_without_a_doctor_asks_whose_it_is(desk: Desk, clinic: dict[str, Any]) -> None:
    desk.checkin("D2", clinic["patients"][0])

    async def go() -> None:
        app = make_app(Role.DOCTOR, desk)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_screen(pilot, DoctorPicker)
            picker = app.screen
            assert static_text(picker.query_one(".title", Static)) == "Whose console is this?"
            options = picker.query_one(OptionList)
            assert [o.id for o in options.options] == ["D1", "D2"]
            await wait_until(pilot, lambda: options.has_focus)
            await pilot.press("down", "enter")  # the first is highlighted; down to D2
            await wait_screen(pilot, DoctorScreen)
            await wait_until(pilot, lambda: column(queue(app), 1) == ["D2-001"])
            title = static_text(console(app).query_one("TitleBar #title", Static))
            assert title == "hms-tui · Dr Mehta, Room 5"

    run(go())
