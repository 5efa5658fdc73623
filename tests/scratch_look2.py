from typing import Any

from hms_tui.app import Role
from hms_tui.services.desk import Desk
from hms_tui.widgets.keybar import KeyBar
from tests.tui_helpers import make_app, run, wait_live


def test_look(desk: Desk, clinic: dict[str, Any]) -> None:
    async def go() -> None:
        app = make_app(Role.RECEPTION, desk)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_live(pilot, board=2)
            await pilot.pause(0.5)
            bar = app.screen.query_one(KeyBar)
            print(bar.items)
            print(repr(bar.content))
            print(bar.size, bar.region, bar.styles.height, bar.styles.max_height)
            print(bar.get_content_height(bar.size, bar.size, 78))
            app.screen.refresh(layout=True)
            await pilot.pause(0.2)
            print(bar.size, bar.region)
            print(bar.parent, [ (c, c.region) for c in app.screen.children])
    run(go())
