"""Token slips at reception, against the private cupsd (``tests/cups_server.py``) and a real
database: the preview after a check-in prints on a key, Esc skips it, ctrl+r reprints the
selected visit's slip or any of today's visits; a printer that never takes the slip times out
in the background while the desk goes on checking patients in, and says so once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from textual.widgets import Input

from hms_tui.app import Role
from hms_tui.config import DisplaySettings, PrinterSettings, Settings
from hms_tui.screens.arrivals import ExpectedDialog
from hms_tui.screens.slip_preview import PRINT_GROUP, ReprintPicker, SlipPreview
from hms_tui.services.desk import Desk
from hms_tui.widgets.bigtext import BigText
from tests.conftest import open_every_day, slot_at
from tests.cups_server import Cups
from tests.test_cli import noon_zone
from tests.test_tui_reception import find_and_check_in, reception, select_token
from tests.tui_helpers import (
    error_notifications,
    make_app,
    notifications,
    run,
    screen_text,
    type_text,
    wait_live,
    wait_screen,
    wait_until,
)


def printing(queue: str, *, timeout: int = 10, preview: bool = True) -> Settings:
    return Settings(display=DisplaySettings(bell=False),
                    printer=PrinterSettings(kind="cups", queue=queue, timeout=timeout,
                                            preview=preview))


def preview_text(app: Any) -> str:
    screen = app.screen
    assert isinstance(screen, SlipPreview)
    return screen.text


def test_preview_prints_skips_and_reprints(desk: Desk, clinic: dict[str, Any],
                                           cups_env: Cups) -> None:
    out = cups_env.file_queue("tui_slips")

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk, settings=printing("tui_slips"))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await find_and_check_in(pilot, "Patient 03", "Patient 03")
            await wait_screen(pilot, SlipPreview)
            shown = preview_text(app)
            assert "D1-001" in shown and "Dr Rao" in shown and "Room 3" in shown
            assert "Patient 03" not in shown  # slip.show_name is off
            assert "Enter/p print · Esc skip" in screen_text(app)  # its keys, at 80x24
            await pilot.press("p")
            await wait_until(pilot, lambda: any("D1-001: slip printed on 'tui_slips'" in n
                                                for n in notifications(app)),
                             message="the slip printed")
            assert not isinstance(app.screen, SlipPreview)
            # What was previewed is what the printer got.
            assert cups_env.take(out) == shown
            big = reception(app).query_one("#last-token", BigText)
            assert big.text == "D1-001"  # the desk shows the token as before

            # Esc skips: nothing printed.
            await find_and_check_in(pilot, "Patient 04", "Patient 04")
            await wait_screen(pilot, SlipPreview)
            await pilot.press("escape")
            await wait_until(pilot, lambda: not isinstance(app.screen, SlipPreview))
            assert not app.busy(PRINT_GROUP) and cups_env.take(out) == ""

            # ctrl+r on the queue's selected row: that visit's slip, marked as a reprint.
            await select_token(pilot, "D1-002")
            await pilot.press("ctrl+r")
            await wait_screen(pilot, SlipPreview)
            assert "D1-002" in preview_text(app) and "Reprinted" in preview_text(app)
            await pilot.press("enter")
            await wait_until(pilot, lambda: any("D1-002: slip printed" in n
                                                for n in notifications(app)))
            text = cups_env.take(out)
            assert "D1-002" in text and "Reprinted" in text

            # ctrl+r from the search: pick any of today's visits by token.
            desk.checkin("D2", clinic["patients"][5])
            await pilot.press("escape")
            await pilot.press("ctrl+r")
            picker = await wait_screen(pilot, ReprintPicker)
            await wait_until(pilot, lambda: len(picker.visits) == 3, message="today's visits")
            await type_text(pilot, "d2-0")
            await wait_until(pilot, lambda: picker.query_one("#visits").option_count == 1)
            await pilot.press("enter")
            await wait_screen(pilot, SlipPreview)
            assert "D2-001" in preview_text(app) and "Dr Mehta" in preview_text(app)
            await pilot.press("p")
            await wait_until(pilot, lambda: any("D2-001: slip printed" in n
                                                for n in notifications(app)))
            assert "D2-001" in cups_env.take(out)
            assert error_notifications(app) == []

    run(go())


def test_an_arrival_at_the_desk_gets_its_slip(desk: Desk, clinic: dict[str, Any],
                                              cups_env: Cups) -> None:
    out = cups_env.file_queue("tui_arrivals")
    zone = noon_zone(datetime.now(UTC))  # the clinic's clock near noon: a slot later today
    desk.configure(timezone=zone)
    open_every_day(desk, "D2")
    at = slot_at(datetime.now(ZoneInfo(zone)) + timedelta(hours=1))
    desk.book("D2", clinic["patients"][6], at.strftime("%Y-%m-%d %H:%M"))

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk, settings=printing("tui_arrivals"))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await pilot.press("f12")
            dialog = await wait_screen(pilot, ExpectedDialog)
            await wait_until(pilot, lambda: len(dialog.expected) == 1, message="the booking")
            await pilot.press("a")
            await wait_screen(pilot, SlipPreview)
            assert "D2-001" in preview_text(app) and "Dr Mehta" in preview_text(app)
            await pilot.press("enter")
            await wait_until(pilot, lambda: any("D2-001: slip printed on 'tui_arrivals'" in n
                                                for n in notifications(app)))
            assert "D2-001" in cups_env.take(out)

    run(go())


def test_a_printer_that_never_takes_the_slip_never_holds_up_the_desk(
        desk: Desk, clinic: dict[str, Any], cups_env: Cups,
        sql: psycopg.Connection[Any]) -> None:
    # A file device that is not there: CUPS keeps the job queued, as for a printer that is
    # off or unplugged. No preview: each check-in prints at once, in the background.
    cups_env.file_queue("tui_off", create=False)

    async def go() -> None:
        app = make_app(Role.RECEPTION, desk,
                       settings=printing("tui_off", timeout=8, preview=False))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await find_and_check_in(pilot, "Patient 01", "Patient 01")
            await wait_until(pilot, lambda: app.busy(PRINT_GROUP), message="printing")
            # While that slip waits for the printer, the desk checks the next patient in.
            await find_and_check_in(pilot, "Patient 02", "Patient 02")
            big = reception(app).query_one("#last-token", BigText)
            await wait_until(pilot, lambda: big.text == "D1-002", message="second check-in")
            assert reception(app).query_one("#search", Input).has_focus
            assert not any("not printed" in n for n in notifications(app)), \
                "the first slip gave up before the desk had done the next check-in"
            # Then each slip gives up after the timeout, one clear line each.
            await wait_until(pilot, lambda: len(error_notifications(app)) == 2, timeout=30,
                             message="both slips reported")
            for token, message in zip(("D1-001", "D1-002"), error_notifications(app),
                                      strict=True):
                assert message.startswith(f"Slip {token} not printed: printer 'tui_off' did "
                                          "not take the slip in time"), message
                assert "the slip was cancelled" in message and "ctrl+r reprints" in message
            assert not app.busy(PRINT_GROUP)

    run(go())
    rows = sql.execute("SELECT token, status::text FROM hms.visits ORDER BY id").fetchall()
    assert rows == [("D1-001", "WAITING"), ("D1-002", "WAITING")]
    assert cups_env.pending_jobs("tui_off") == []  # cancelled: no late slip after a reprint
