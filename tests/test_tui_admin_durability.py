"""The admin screen's warning line: the first thing `hms-tui db status` would warn about."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from hms_tui.app import Role
from hms_tui.screens.admin import AdminScreen
from hms_tui.services.desk import Desk
from hms_tui.services.failover import Failover
from tests.tui_helpers import make_app, run, static_text, wait_live, wait_until


def test_admin_screen_says_when_numbering_is_on_hold(desk: Desk, clinic: dict[str, Any]) -> None:
    async def go(expect_hold: bool) -> None:
        app = make_app(Role.ADMIN, desk)
        async with app.run_test(size=(110, 30)) as pilot:
            await wait_live(pilot, board=2)
            screen = next(s for s in app.screen_stack if isinstance(s, AdminScreen))
            line = screen.query_one("#durability", Static)
            if expect_hold:
                await wait_until(pilot, lambda: line.display and static_text(line).startswith(
                    "! numbering is on hold"), message="the hold on the admin screen")
                assert "confirm-failover" in static_text(line)
            else:
                await wait_until(pilot, lambda: screen.durability is not None)
                await pilot.pause()
                assert not line.display  # one server, nothing to warn about

    run(go(expect_hold=False))
    Failover(desk.db).hold("failover drill")
    run(go(expect_hold=True))
