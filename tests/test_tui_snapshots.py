"""Snapshot tests (pytest-textual-snapshot): the waiting-room display at 80x24 and 200x50, the
display on an ASCII-only terminal, and reception after a check-in.

Deterministic by construction: a fresh database per test (same ids, tokens and MRNs on every
server), fixed names, no dates of birth (ages change), no completed consultations (the wait
estimate would follow real durations), a frozen clock (the clock, the badge's last refresh and
the waiting minutes, which clamp to 0 for a clock in the past), no bell, no blinking cursor, and
the screenshot is taken only once the listener is live and the data is on screen; the
estimated call times (instants by the database's clock) are pinned like the app's clock.

Update with: pytest tests/test_tui_snapshots.py --snapshot-update (then look at the SVGs).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, Static

from hms_tui.app import HmsApp, Role
from hms_tui.screens.display import DisplayScreen, DoctorPanel
from hms_tui.screens.pickers import CheckinDialog
from hms_tui.screens.reception import ReceptionScreen, eta
from hms_tui.services.desk import Desk
from hms_tui.widgets.bigtext import BigText
from hms_tui.widgets.queue_table import DiffTable
from tests.tui_helpers import (
    FROZEN,
    column,
    make_app,
    settings_with,
    static_text,
    wait_live,
    wait_screen,
    wait_until,
)


def busy_morning(desk: Desk, clinic: dict[str, Any]) -> None:
    """D1: one in consultation, four waiting (one urgent); D2: one called, one waiting."""
    desk.add_doctor("D3", "Dr Sen", "Room 7")
    p = clinic["patients"]
    for i in range(3):
        desk.checkin("D1", p[i])
    desk.start(desk.call_next("D1").visit_id)
    desk.checkin("D1", p[3], "URGENT")
    desk.checkin("D1", p[4])
    desk.checkin("D2", p[5])
    desk.checkin("D2", p[6])
    desk.call_next("D2")


def display_ready(expected: dict[str, tuple[str, str]]) -> Any:
    """run_before: wait until each doctor's panel shows (serving, next line)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, HmsApp)
        await wait_live(pilot, board=len(expected))

        def shown() -> bool:
            screen = app.screen
            if not isinstance(screen, DisplayScreen):
                return False
            for code, (serving, upcoming) in expected.items():
                panel = screen.query_one(f"#panel-{code}", DoctorPanel)
                if panel.query_one(BigText).text != serving:
                    return False
                if static_text(panel.query_one(".next", Static)) != upcoming:
                    return False
            return static_text(screen.query_one("#clinic", Static)) == "Outpatient Clinic"

        await wait_until(pilot, shown, message="display data on screen")
        await pilot.pause()

    return run_before


EXPECTED_DISPLAY = {
    "D1": ("D1-001", "Next: D1-004  D1-002  D1-003  D1-005"),
    "D2": ("D2-001", "Next: D2-002"),
    "D3": ("-", "Next: -"),
}
# At 80x24 a panel fits three whole tokens; the display never shows a cut one.
EXPECTED_DISPLAY_80 = EXPECTED_DISPLAY | {"D1": ("D1-001", "Next: D1-004  D1-002  D1-003")}


def test_display_80x24(snap_compare: Any, desk: Desk, clinic: dict[str, Any]) -> None:
    busy_morning(desk, clinic)
    app = make_app(Role.DISPLAY, desk, settings=settings_with())
    assert snap_compare(app, terminal_size=(80, 24),
                        run_before=display_ready(EXPECTED_DISPLAY_80))


def test_display_200x50(snap_compare: Any, desk: Desk, clinic: dict[str, Any]) -> None:
    busy_morning(desk, clinic)
    app = make_app(Role.DISPLAY, desk, settings=settings_with(names="initials"))
    assert snap_compare(app, terminal_size=(200, 50),
                        run_before=display_ready(EXPECTED_DISPLAY))


def test_display_ascii_80x24(snap_compare: Any, desk: Desk, clinic: dict[str, Any]) -> None:
    busy_morning(desk, clinic)
    app = make_app(Role.DISPLAY, desk, settings=settings_with(), ascii_only=True,
                   doctors=("D1", "D2"))
    # Two doctors at 80x24: stacked, each panel the full width (four tokens fit).
    expected = {k: v for k, v in EXPECTED_DISPLAY.items() if k != "D3"}
    assert snap_compare(app, terminal_size=(80, 24), run_before=display_ready(expected))


def test_reception_after_a_check_in(snap_compare: Any, desk: Desk,
                                    clinic: dict[str, Any]) -> None:
    busy_morning(desk, clinic)
    desk.add_patient("Anil Kumar", "+91 98450 12345")

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, HmsApp)
        await wait_live(pilot, board=3)
        screen = app.screen
        assert isinstance(screen, ReceptionScreen)
        search = screen.query_one("#search", Input)
        search.cursor_blink = False
        results = screen.query_one("#results", DiffTable)
        await wait_until(pilot, lambda: results.row_count == 11)
        # Anil Kumar walks in: his name, Enter, Enter.
        await pilot.press(*"anil")
        await wait_until(pilot, lambda: column(results, 1) == ["Anil Kumar"])
        await pilot.press("enter")
        await wait_screen(pilot, CheckinDialog)
        await pilot.press("enter")
        big = screen.query_one("#last-token", BigText)
        await wait_until(pilot, lambda: big.text == "D1-006")
        queue = screen.query_one("#queue", DiffTable)
        await wait_until(pilot, lambda: column(queue, 1) ==
                         ["D1-001", "D1-004", "D1-002", "D1-003", "D1-005", "D1-006"])
        await wait_until(pilot, lambda: results.row_count == 11
                         and "D1-006 WAITING" in column(results, 4))
        board = screen.query_one("#board", DiffTable)
        await wait_until(pilot, lambda: column(board, 4) == ["5", "1", "0"])
        results.move_cursor(row=0)
        pin_estimates(app)
        screen.redraw_queue()
        pinned = [eta(v, app.clinic_zone) for v in app.live.queues["D1"]]
        await wait_until(pilot, lambda: column(queue, 5) == pinned)
        await pilot.pause()

    app = make_app(Role.RECEPTION, desk)
    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)


def pin_estimates(app: HmsApp) -> None:
    """The estimated call times are instants by the database's clock (reckoned from the
    queue's last change): pin them in the app's copy of the live state, the way the app's
    clock is frozen, so the Est column draws the same on every run (test_tui_reception
    checks the real ones against the database)."""
    zone = app.clinic_zone
    base = FROZEN.astimezone(zone).replace(hour=9, minute=50, second=0)
    for code, visits in app.live.queues.items():
        app.live.queues[code] = tuple(
            dataclasses.replace(v, eta_from=base + timedelta(minutes=5 * i),
                                eta_to=base + timedelta(minutes=5 * i + 15))
            if v.eta_from is not None else v
            for i, v in enumerate(visits))
