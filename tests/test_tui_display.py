"""The waiting-room display against a real database: now serving in big characters, the next
tokens, the room, names hidden (or initials), announcements that queue and ring the bell, the
clock, 80x24 up to large screens, ASCII-only terminals, and the offline banner."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from textual.widgets import Static

from hms_tui.app import Role
from hms_tui.config import DisplaySettings, Settings
from hms_tui.domain.events import ConnectionState
from hms_tui.screens.display import DisplayScreen, DoctorPanel
from hms_tui.services.desk import Desk
from hms_tui.widgets.bigtext import BigText, render_big
from hms_tui.widgets.status import ConnectionBadge
from tests.tui_helpers import (
    make_app,
    run,
    screen_text,
    static_text,
    tui_listener,
    wait_live,
    wait_until,
)


def display(app: Any) -> DisplayScreen:
    screen = app.screen
    assert isinstance(screen, DisplayScreen)
    return screen


def panel(app: Any, code: str) -> DoctorPanel:
    return display(app).query_one(f"#panel-{code}", DoctorPanel)


def serving(app: Any, code: str) -> str:
    return panel(app, code).query_one(BigText).text


def part(app: Any, code: str, name: str) -> str:
    return static_text(panel(app, code).query_one(f".{name}", Static))


def announce(app: Any) -> str:
    return static_text(display(app).query_one("#announce", Static))


def scale_of(big: BigText) -> int:
    """How many cells a font cell takes at the widget's size (the widget's own rule)."""
    return big.scale


def drawn(big: BigText, fill: str = "█") -> list[str]:
    """The rows ``big`` draws for its text at its size."""
    scale = scale_of(big)
    rows = [row.replace("█", fill) for row in render_big(big.text)]
    return ["".join(ch * scale for ch in row) for row in rows for _ in range(scale)]


def settings(**display: Any) -> Settings:
    display.setdefault("bell", False)
    return Settings(display=DisplaySettings(**display))


def test_now_serving_next_rooms_clock_hidden_names_and_sizes(
    desk: Desk, clinic: dict[str, Any]
) -> None:
    p = clinic["patients"]
    for i in range(6):
        desk.checkin("D1", p[i])
    desk.checkin("D2", p[6])
    desk.start(desk.call_next("D1").visit_id)

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: serving(app, "D1") == "D1-001")
            await wait_until(pilot, lambda: part(app, "D2", "next") == "Next: D2-001")
            assert serving(app, "D2") == "-"  # nobody called yet
            assert part(app, "D1", "where") == "Dr Rao, Room 3"
            assert part(app, "D2", "where") == "Dr Mehta, Room 5"
            # Up to display.next_count (4), as text, whole tokens only: at 80x24 two doctors
            # are stacked, each panel the full width.
            assert part(app, "D1", "next") == "Next: D1-002  D1-003  D1-004  D1-005"
            assert static_text(display(app).query_one("#clock", Static)) == "09:41"
            assert static_text(display(app).query_one("#clinic", Static)) == "Outpatient Clinic"
            badge = static_text(display(app).query_one(ConnectionBadge))
            assert badge == "● live 09:41:07"
            assert not display(app).query_one("#offline").display
            await pilot.pause()
            shown = screen_text(app)
            # Names are hidden by default: no patient name, no MRN anywhere.
            assert "Patient" not in shown and "M0000" not in shown
            assert all(part(app, c, "who") == "" for c in ("D1", "D2"))
            # 80x24: both panels whole on the screen, the token in the big font.
            for code in ("D1", "D2"):
                region = panel(app, code).region
                assert region.right <= 80 and region.bottom <= 24 and region.height >= 9
            big = panel(app, "D1").query_one(BigText)
            assert big.size.height >= 5 and scale_of(big) == 1
            for row in drawn(big):
                assert row in shown
            assert "Next: D1-002  D1-003" in shown

            # A large screen: the same layout, the token scaled up.
            await pilot.resize_terminal(200, 50)
            await wait_until(pilot, lambda: panel(app, "D1").region.width > 90)
            await pilot.pause()
            shown = screen_text(app)
            big = panel(app, "D1").query_one(BigText)
            assert scale_of(big) >= 2
            for row in drawn(big):
                assert row in shown
            assert "Next: D1-002  D1-003  D1-004  D1-005" in shown

    run(go())


def test_calls_are_announced_in_turn_with_the_bell(desk: Desk, clinic: dict[str, Any]) -> None:
    p = clinic["patients"]
    for i in range(3):
        desk.checkin("D1", p[i])
        desk.checkin("D2", p[i + 3])

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk, settings=settings(bell=True, announce_seconds=1))
        bells: list[float] = []
        app.bell = lambda: bells.append(time.monotonic())  # type: ignore[method-assign]
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: part(app, "D1", "next").startswith("Next: D1-001"))
            assert announce(app) == "" and not bells  # the first picture announces nothing
            # When each announcement went up (the bar's own updates, not our polling).
            bar = display(app).query_one("#announce", Static)
            shown_at: list[tuple[float, str]] = []
            update = bar.update

            def logged(content: Any = "", **kw: Any) -> None:
                shown_at.append((time.monotonic(), str(content)))
                update(content, **kw)

            bar.update = logged  # type: ignore[method-assign]

            desk.call_next("D1")
            await wait_until(pilot, lambda: "D1-001" in announce(app))
            assert announce(app) == "▶ Now calling D1-001 - Dr Rao, Room 3"
            assert panel(app, "D1").has_class("calling")
            assert display(app).query_one("#announce").has_class("active")
            assert len(bells) == 1
            assert serving(app, "D1") == "D1-001"

            # A second call while the first is announced waits its turn.
            desk.call_next("D2")
            await wait_until(pilot, lambda: serving(app, "D2") == "D2-001")
            assert "D1-001" in announce(app) and not panel(app, "D2").has_class("calling")
            assert [a.token for a in display(app).pending] == ["D2-001"]
            await wait_until(pilot, lambda: "D2-001" in announce(app))
            d1 = next(t for t, text in shown_at if "D1-001" in text)
            d2 = next(t for t, text in shown_at if "D2-001" in text)
            assert d2 - d1 >= 0.95  # the first one had its full second
            assert announce(app) == "▶ Now calling D2-001 - Dr Mehta, Room 5"
            assert panel(app, "D2").has_class("calling")
            assert not panel(app, "D1").has_class("calling")
            assert len(bells) == 2

            # A recall is announced again.
            visit = next(v for v in desk.queue("D1") if v.token == "D1-001")
            desk.recall(visit.visit_id)
            await wait_until(pilot, lambda: "D1-001 (again)" in announce(app), timeout=5)
            assert len(bells) == 3
            # Then the bar clears.
            await wait_until(pilot, lambda: announce(app) == "", timeout=5)
            assert not any(p.has_class("calling") for p in display(app).query(DoctorPanel))

    run(go())


def test_bell_off_and_initials_on(desk: Desk, clinic: dict[str, Any]) -> None:
    desk.add_patient("Kumar, Anil Raj")
    patient = desk.search_patients("Kumar")[0]
    desk.checkin("D1", patient.id)

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk, settings=settings(bell=False, names="initials",
                                                             announce_seconds=1))
        bells: list[int] = []
        app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: part(app, "D1", "next") == "Next: D1-001")
            desk.call_next("D1")
            await wait_until(pilot, lambda: "D1-001" in announce(app))
            await wait_until(pilot, lambda: part(app, "D1", "who") == "K. A. R.")
            assert panel(app, "D1").query_one(".who").display
            await pilot.pause()
            assert "K. A. R." in screen_text(app) and "Kumar" not in screen_text(app)
            assert not bells

    run(go())


def test_ascii_only_terminal_draws_no_box_characters(
    desk: Desk, clinic: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    p = clinic["patients"]
    desk.checkin("D1", p[0])
    desk.checkin("D1", p[1])
    monkeypatch.setenv("TERM", "linux")  # the bare Linux console

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk, ascii_only=None,  # found from TERM
                       settings=settings(announce_seconds=5), doctors=("D1",))
        assert app.ascii_only
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: part(app, "D1", "next") == "Next: D1-001  D1-002")
            desk.call_next("D1")
            await wait_until(pilot, lambda: announce(app).startswith(">> Now calling D1-001"))
            await wait_until(pilot, lambda: serving(app, "D1") == "D1-001")
            await pilot.pause()
            shown = screen_text(app)
            assert [c for c in shown if ord(c) > 127] == []
            big = panel(app, "D1").query_one(BigText)
            for row in drawn(big, "#"):
                assert row in shown
            assert "* live 09:41:07" in shown
            # Only the chosen doctor's panel.
            assert [p.code for p in display(app).query(DoctorPanel)] == ["D1"]

    run(go())


def test_offline_banner_replaces_the_numbers_until_reconnected(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any], server_dsn: str
) -> None:
    desk.checkin("D1", clinic["patients"][0])
    dbname = sql.info.dbname
    listener = tui_listener(desk, masked=True, offline_after=0.3)

    async def go() -> None:
        app = make_app(Role.DISPLAY, desk, listener=listener)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await wait_until(pilot, lambda: part(app, "D1", "next") == "Next: D1-001")
            screen = display(app)
            banner = screen.query_one("#offline", Static)
            assert screen.query_one("#panels").display and not banner.display

            # The server refuses new connections, and the listener's connection is killed.
            admin = psycopg.connect(server_dsn, autocommit=True)
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            try:
                pid = app.listener.listen_pid
                assert pid is not None
                sql.execute("SELECT pg_terminate_backend(%s)", (pid,))
                await wait_until(pilot, lambda: banner.display, message="offline banner")
                assert not screen.query_one("#panels").display
                assert static_text(banner).splitlines() == [
                    "Connection lost - reconnecting...", "last update 09:41:07"]
                await pilot.pause()
                shown = screen_text(app)
                assert "Connection lost - reconnecting..." in shown
                assert "D1-001" not in shown and "Next:" not in shown  # no stale number
                await wait_until(pilot, lambda: app.live.state == ConnectionState.OFFLINE)
                await wait_until(pilot, lambda: "offline" in
                                 static_text(screen.query_one(ConnectionBadge)))
                # Meanwhile the doctor calls the patient.
                sql.execute("SELECT hms.call_next('D1')")
            finally:
                admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
                admin.close()
            # Back: the numbers return, re-read, with the call made while offline.
            await wait_until(pilot, lambda: app.live.state == ConnectionState.LIVE)
            await wait_until(pilot, lambda: screen.query_one("#panels").display
                             and not banner.display)
            await wait_until(pilot, lambda: serving(app, "D1") == "D1-001")
            assert part(app, "D1", "next") == "Next: -"
            assert static_text(screen.query_one(ConnectionBadge)) == "● live 09:41:07"

    run(go())
