"""The admin's Statistics tab at 80x24: today's figures as the report gives them, the charts,
and the live board of patients waiting beyond the target."""

from __future__ import annotations

from typing import Any

import psycopg

from hms_tui.app import Role
from hms_tui.screens.statistics import StatisticsPane
from hms_tui.services.desk import Desk
from hms_tui.services.reports import Reports
from hms_tui.widgets.bars import bar_rows
from hms_tui.widgets.queue_table import DiffTable
from tests.tui_helpers import make_app, run, screen_text, static_text, table_rows, wait_until


def test_bars_scale_to_the_largest_value() -> None:
    assert bar_rows([0, 1, 2, 4], 2, ascii_only=True) == ["   #", " ###"]
    assert bar_rows([0, 8, 16], 1) == [" ▄█"]
    assert bar_rows([1, 100], 1) == ["▁█"]  # a value above zero always shows
    assert bar_rows([], 3) == ["", "", ""]
    assert bar_rows([2, 0], 1, width=3, ascii_only=True) == ["###   "]


def test_statistics_tab_shows_the_days_figures_and_who_waits_too_long(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any],
) -> None:
    p = clinic["patients"]
    seen = desk.checkin("D1", p[0])
    desk.call_next("D1")
    desk.start(seen.visit_id)
    desk.complete(seen.visit_id)
    desk.checkin("D1", p[1])
    late = desk.checkin("D2", p[2])
    desk.checkin("D2", p[3])
    # Forty minutes cannot be waited out in a test: this arrival is written earlier directly.
    with sql.transaction():
        sql.execute("SET LOCAL session_replication_role = replica")
        sql.execute("UPDATE hms.visits SET checked_in_at = now() - interval '40 minutes'"
                    " WHERE id = %s", (late.visit_id,))
    expected = Reports(desk.db).daily()

    async def go() -> None:
        app = make_app(Role.ADMIN, desk, ascii_only=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("6")
            pane = app.screen.query_one(StatisticsPane)
            summary = pane.query_one("#stats-summary")
            await wait_until(pilot, lambda: "Arrived" in static_text(summary))  # type: ignore[arg-type]
            text = static_text(summary)  # type: ignore[arg-type]
            assert f"Arrived {expected.clinic.arrivals} (0 booked) · seen 1" in text
            doctors = pane.query_one("#stats-doctors", DiffTable)
            await wait_until(pilot, lambda: len(table_rows(doctors)) == 2)
            assert table_rows(doctors)[0][:4] == ["D1", "2", "1", "0"]
            board = pane.query_one("#stats-over", DiffTable)
            await wait_until(pilot, lambda: table_rows(board) != [])
            assert [row[:2] for row in table_rows(board)] == [[late.token, "D2"]]
            assert table_rows(board)[0][3] == "40 min"
            shown = screen_text(app)
            assert "Waiting beyond 30 min now: 1" in shown
            assert "Arrivals by hour" in shown and "#" in shown  # ASCII bars
            assert "6 Statistics" in shown and "^q Quit" in shown  # its keys, at 80x24

    run(go())
