"""Scratch: print screens (not committed)."""
from __future__ import annotations

import os
from typing import Any

from hms_tui.app import Role
from hms_tui.services.desk import Desk
from tests.test_tui_snapshots import busy_morning
from tests.tui_helpers import make_app, run, screen_text, settings_with, wait_live

SIZE = tuple(int(x) for x in os.environ.get("SIZE", "80x24").split("x"))
ROLE = os.environ.get("ROLE", "reception")

def test_look(desk: Desk, clinic: dict[str, Any]) -> None:
    busy_morning(desk, clinic)
    async def go() -> None:
        kw = {}
        if ROLE == "doctor":
            kw["doctor"] = "D1"
        app = make_app(Role(ROLE), desk, settings=settings_with(), **kw)
        async with app.run_test(size=SIZE) as pilot:
            await wait_live(pilot, board=3)
            await pilot.pause(0.5)
            for k in os.environ.get("KEYS", "").split():
                await pilot.press(k)
                await pilot.pause(0.3)
            print("\n" + screen_text(app))
    run(go())
