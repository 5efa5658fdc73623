"""Opening the terminals from ``hms-tui demo``."""

from __future__ import annotations

from hms_tui.cli import render
from hms_tui.cli.context import AppContext
from hms_tui.core.demo import DemoSummary


def open_front_desk(ctx: AppContext, summary: DemoSummary) -> None:
    """Until the screens land, say how to drive the demo clinic from the command line."""
    lines = [
        "",
        "Try it (each command takes --json):",
        "  hms-tui doctor list",
        "  hms-tui queue --doctor D1",
        "  hms-tui patient search kumar",
        "  hms-tui call-next --doctor D1",
        "  hms-tui audit tail",
    ]
    for line in lines:
        render.console.print(render.t(line))
