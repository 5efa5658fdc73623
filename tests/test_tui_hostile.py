"""Hostile and international text in every table and label of every terminal.

Markup-like names (`[/b]`, `[@click=app.quit]click[/]`), escapes, accents, CJK, combining
marks, zero-width-joiner emoji and a 100-character name go through search results, the check-in
dialog, the last check-in panel, the queue tables, the doctor's "Now" line, the timeline, the
display with initials, bills, admin tables and notifications. Nothing may crash and the text
must appear as typed. Control characters never reach the terminal, even when a row with one
arrives (they cannot be stored; this checks the last line of defence in the widgets).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from textual.widgets import DataTable, Input, OptionList, Static

from hms_tui.app import Role
from hms_tui.domain.events import BoardUpdate, QueueUpdate
from hms_tui.domain.validation import FORBIDDEN_CHARS
from hms_tui.screens.admin import AdminScreen
from hms_tui.screens.display import DisplayScreen, DoctorPanel
from hms_tui.screens.doctor import DoctorScreen
from hms_tui.screens.forms import BillDialog, ReceiptDialog, TimelineDialog
from hms_tui.screens.pickers import CheckinDialog, DoctorPicker
from hms_tui.screens.reception import NAME_CELLS, PATIENT_COL, ReceptionScreen
from hms_tui.services.desk import Desk
from hms_tui.widgets.bigtext import BigText
from hms_tui.widgets.queue_table import DiffTable, short_cell
from tests.tui_helpers import (
    HOSTILE_NAMES,
    column,
    error_notifications,
    focus,
    make_app,
    notifications,
    paste,
    run,
    screen_text,
    settings_with,
    static_text,
    table_rows,
    wait_live,
    wait_screen,
    wait_until,
)

ODD_DOCTOR = "[/b] Dr [i]Odd"
ODD_ROOM = "[red]R1[/]"
# Names short and single-width enough to be drawn whole in a table column.
DRAWN_WHOLE = ["[/b]", "[bold red]x[/]", "[@click=app.quit]click[/]", "\\[escaped",
               "Zoë Ó Briain"]


@pytest.fixture
def hostile(desk: Desk) -> dict[str, Any]:
    desk.add_doctor("D1", "Dr Rao", "Room 3")
    desk.add_doctor("D3", ODD_DOCTOR, ODD_ROOM)
    ids = {name: desk.add_patient(name).id for name in HOSTILE_NAMES}
    return {"ids": ids}


def no_controls(app: Any) -> None:
    """Nothing on the screen (line by line) is a control or direction-changing character."""
    for line in screen_text(app).splitlines():
        assert not FORBIDDEN_CHARS.search(line), repr(line)


def reception(app: Any) -> ReceptionScreen:
    return next(s for s in app.screen_stack if isinstance(s, ReceptionScreen))


def test_reception_shows_every_name_literally(desk: Desk, hostile: dict[str, Any]) -> None:
    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(160, 45), notifications=True) as pilot:
            await wait_live(pilot, board=2)
            screen = reception(app)
            results = screen.query_one("#results", DiffTable)
            await wait_until(pilot, lambda: column(results, 1) == HOSTILE_NAMES[::-1])
            await pilot.pause()
            shown = screen_text(app)
            for name in DRAWN_WHOLE:
                assert name in shown, name
            # The board: the odd doctor's name and room as typed.
            board = screen.query_one("#board", DiffTable)
            assert table_rows(board)[1][:3] == ["D3", ODD_DOCTOR, ODD_ROOM]

            big = screen.query_one("#last-token", BigText)
            search = screen.query_one("#search", Input)
            # The search finds them by their own text: brackets, backslashes, CJK.
            for name in ("[/b]", "\\[escaped", "王小明", "[@click=app.quit]click[/]"):
                search.value = name
                await wait_until(pilot, lambda name=name: column(results, 1) == [name],
                                 message=f"search finds {name!r}")
            search.value = ""
            await wait_until(pilot, lambda: column(results, 1) == HOSTILE_NAMES[::-1])
            # Check each in from the list (newest first): Down, Enter, Enter.
            for n, name in enumerate(HOSTILE_NAMES[::-1], 1):
                await wait_until(pilot, lambda: results.row_count == len(HOSTILE_NAMES))
                target = column(results, 1).index(name)
                # With the search empty, Enter acts only on a row picked with the arrows.
                await pilot.press("down" if target == 0 else "up")
                while results.cursor_row != target:  # arrows work from the search field
                    await pilot.press("down" if results.cursor_row < target else "up")
                await pilot.press("enter")
                await wait_screen(pilot, CheckinDialog)
                title = static_text(app.screen.query_one(".title", Static))
                assert title.startswith(f"Check in {name} (M")
                await pilot.press("enter")
                await wait_until(pilot, lambda n=n: big.text == f"D1-{n:03d}")
                detail = static_text(screen.query_one("#last-detail", Static)).splitlines()
                assert detail[0].startswith(f"D1-{n:03d}  {name} (M")
            queue = screen.query_one("#queue", DiffTable)
            # (long names end in '…' in the queue: the columns after them stay on screen)
            await wait_until(pilot, lambda: column(queue, PATIENT_COL) == [
                short_cell(n, NAME_CELLS).plain for n in HOSTILE_NAMES[::-1]])
            await pilot.pause()
            shown = screen_text(app)
            for name in DRAWN_WHOLE:
                assert name in shown, name

            # The odd doctor: check-in options, the queue title, a transfer's notification.
            await pilot.press("escape")
            await focus(pilot, search)
            search.value = ""
            await paste(pilot, "Zoë")
            await wait_until(pilot, lambda: column(results, 1) == ["Zoë Ó Briain"])
            await pilot.press("enter")
            await wait_screen(pilot, CheckinDialog)
            options = app.screen.query_one(OptionList)
            assert str(options.options[1].prompt) == f"D3  {ODD_DOCTOR}, {ODD_ROOM}  ·  0 waiting"
            await pilot.press("escape")
            await wait_screen(pilot, ReceptionScreen)
            await focus(pilot, queue)
            queue.move_cursor(row=column(queue, PATIENT_COL).index("[/b]"))
            await pilot.press("t")
            await wait_screen(pilot, DoctorPicker)
            await pilot.press("down", "enter")
            await wait_until(pilot, lambda: big.text == "D3-001")
            assert "D3-001  [/b] (M" in static_text(screen.query_one("#last-detail", Static))
            await wait_until(pilot, lambda: any(f"with {ODD_DOCTOR}" in n
                                                for n in notifications(app)))
            # The queue shown followed the patient to D3.
            await wait_until(pilot, lambda: column(queue, PATIENT_COL) == [HOSTILE_NAMES[0]])
            await pilot.pause()
            shown = screen_text(app)
            assert f"D3 queue · {ODD_DOCTOR}" in shown
            assert f"new token D3-001 with {ODD_DOCTOR}" in shown  # the toast, as typed

            # A bill and its receipt for the markup-named patient.
            await pilot.press("f5")
            await wait_screen(pilot, BillDialog)
            assert static_text(app.screen.query_one(".title", Static)) == \
                f"Bill for D3-001 {HOSTILE_NAMES[0]} (M000001) · {ODD_DOCTOR}"
            await paste(pilot, "[b]Consult[/b]")
            await pilot.press("enter")
            await paste(pilot, "500")
            await pilot.press("enter", "ctrl+s")
            await wait_screen(pilot, ReceiptDialog)
            receipt = static_text(app.screen.query_one("#receipt", Static))
            assert HOSTILE_NAMES[0] in receipt and "[b]Consult[/b]" in receipt
            await pilot.press("escape")
            no_controls(app)
            assert not error_notifications(app)
            assert app.is_running  # no "[@click=app.quit]" ever became an action

    run(go())


def test_doctor_console_now_line_queue_and_timeline(
    desk: Desk, hostile: dict[str, Any]
) -> None:
    visits = [desk.checkin("D1", pid) for pid in hostile["ids"].values()]

    async def go() -> None:
        app = make_app(Role.DOCTOR, desk, doctor="D1")
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_live(pilot, board=2)
            screen = app.screen
            assert isinstance(screen, DoctorScreen)
            table = screen.query_one("#queue", DiffTable)
            await wait_until(pilot, lambda: column(table, 2) == HOSTILE_NAMES)
            await pilot.pause()
            for name in DRAWN_WHOLE:
                assert name in screen_text(app)
            now = screen.query_one("#now", Static)
            for visit in visits:
                await wait_until(pilot, lambda: not app.busy("doctor-action"))
                await pilot.press("n")
                await wait_until(pilot, lambda v=visit: static_text(now).splitlines()[0] ==
                                 f"Called: {v.token}  {v.patient_name} ({v.mrn})",
                                 message=f"Now line of {visit.patient_name!r}")
                # The timeline of the patient just called (the "now" row is first).
                table.move_cursor(row=0)
                await pilot.press("t")
                await wait_screen(pilot, TimelineDialog)
                title = static_text(app.screen.query_one(".title", Static))
                assert title == f"Timeline of {visit.token} {visit.patient_name}"
                await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 2)
                no_controls(app)
                await pilot.press("escape")
                await wait_until(pilot, lambda: app.screen is screen)
                # Done with them (from another terminal, to keep the test short); the console
                # sees it before the next call (or it would ask: one patient at a time).
                desk.complete(desk.start(visit.visit_id).visit_id)
                await wait_until(pilot, lambda: not screen.serving())
            assert not error_notifications(app)

    run(go())


def test_display_with_initials_and_an_odd_doctor(desk: Desk, hostile: dict[str, Any]) -> None:
    desk.configure(clinic_name="[b]City[/b] \\[Clinic] [@click=app.quit]x[/]")
    for pid in hostile["ids"].values():
        desk.checkin("D3", pid)

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk, settings=settings_with(names="initials",
                                                                  announce_seconds=1))
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_live(pilot, board=2)
            screen = app.screen
            assert isinstance(screen, DisplayScreen)
            panel = screen.query_one("#panel-D3", DoctorPanel)
            where = panel.query_one(".where", Static)
            await wait_until(pilot, lambda: static_text(where) == f"{ODD_DOCTOR}, {ODD_ROOM}")
            clinic = screen.query_one("#clinic", Static)
            await wait_until(pilot, lambda: static_text(clinic) ==
                             "[b]City[/b] \\[Clinic] [@click=app.quit]x[/]")
            who = panel.query_one(".who", Static)

            def initials(name: str) -> str:
                return str(desk.db.call("SELECT hms.initials(%(n)s) AS i", {"n": name})[0]["i"])

            for name in HOSTILE_NAMES:
                desk.call_next("D3", force=True)
                await wait_until(pilot, lambda name=name: static_text(who) == initials(name),
                                 message=f"initials of {name!r}")
                await pilot.pause()
                shown = screen_text(app)
                assert initials(name) in shown
                no_controls(app)
            await pilot.pause()
            shown = screen_text(app)
            assert f"{ODD_DOCTOR}, {ODD_ROOM}" in shown
            assert "[b]City[/b] \\[Clinic] [@click=app.quit]x[/]" in shown
            for name in HOSTILE_NAMES:  # names stay hidden: initials only
                assert len(name) <= 4 or name not in shown, name
            bar = static_text(screen.query_one("#announce", Static))
            assert bar.startswith("▶ Now calling D3-0") and bar.endswith(f"- {ODD_DOCTOR}, {ODD_ROOM}")

    run(go())


def test_admin_tables_show_odd_names(desk: Desk, hostile: dict[str, Any]) -> None:
    async def go() -> None:
        app = make_app(Role.ADMIN, desk)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_live(pilot, board=2)
            screen = app.screen
            assert isinstance(screen, AdminScreen)
            doctors = screen.query_one("#doctors", DiffTable)
            await wait_until(pilot, lambda: table_rows(doctors)[1][:3] ==
                             ["D3", ODD_DOCTOR, ODD_ROOM])
            await pilot.pause()
            assert ODD_DOCTOR in screen_text(app) and ODD_ROOM in screen_text(app)
            today = screen.query_one("#today", DiffTable)
            await wait_until(pilot, lambda: table_rows(today)[1][:3] == ["D3", ODD_DOCTOR, ODD_ROOM])
            no_controls(app)

    run(go())


@pytest.mark.parametrize("role", [Role.RECEPTION, Role.DOCTOR, Role.DISPLAY],
                         ids=lambda r: r.value)
def test_control_characters_in_a_row_never_reach_the_terminal(
    desk: Desk, hostile: dict[str, Any], role: Role
) -> None:
    """The database refuses control characters; should a row with one arrive anyway (an old
    server, a hand-made row), every widget shows U+FFFD instead of sending it on."""
    real = desk.checkin("D1", hostile["ids"]["[/b]"])
    desk.call_next("D1")
    real = desk.visit(real.visit_id)
    evil = "Eve\x1b]0;owned\x07\x1b[2J\u202egnp.exe\x9b31m"
    forged = dataclasses.replace(real, patient_name=evil, mrn="M\x1b[5m1",
                                 doctor_name="Dr \x1b[31mRed")

    async def go() -> None:
        app = make_app(role, desk, doctor="D1" if role == Role.DOCTOR else None,
                       settings=settings_with(names="initials"))
        async with app.run_test(size=(140, 36)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: app.live.queues.get("D1"))
            await pilot.pause()
            board = tuple(dataclasses.replace(b, name=f"{b.name}\x1b[0m\x07")
                          for b in app.live.board)
            # As if the listener had read them: into the live state, then the signal.
            app.live.board = board
            app.live.queues["D1"] = (forged,)
            app.live_signal.publish(BoardUpdate(board, "forged"))
            app.live_signal.publish(QueueUpdate("D1", real.business_date, (forged,), "forged"))
            await wait_until(pilot, lambda: app.live.queues["D1"] == (forged,))
            await pilot.pause()
            if role == Role.RECEPTION:
                screen = reception(app)
                screen.show_last_checkin(forged)
                queue = screen.query_one("#queue", DiffTable)
                await wait_until(pilot, lambda: column(queue, PATIENT_COL) ==
                                 ["Eve\ufffd]0;owned\ufffd\ufffd[2J\ufffdgnp.exe\ufffd31m"[:23]
                                  + "…"])
            elif role == Role.DOCTOR:
                now = app.screen.query_one("#now", Static)
                await wait_until(pilot, lambda: "Eve\ufffd]0;owned" in static_text(now))
            else:
                # (the server sends the display initials; a forged row shows neutralised)
                who = app.screen.query_one("#panel-D1 .who", Static)
                await wait_until(pilot, lambda: static_text(who).startswith("Eve\ufffd"))
            await pilot.pause()
            no_controls(app)
            assert "\ufffd" in screen_text(app)

    run(go())
