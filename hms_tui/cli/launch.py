"""Opening the front desk from ``hms-tui demo``."""

from __future__ import annotations

from hms_tui.cli import render
from hms_tui.cli.context import AppContext
from hms_tui.services.demo import DemoSummary

OTHER_TERMINALS = (
    "In other terminals (same user, same database): "
    "hms-tui doctor --doctor D1 · hms-tui display · hms-tui admin"
)


def open_front_desk(ctx: AppContext, summary: DemoSummary) -> None:
    """Open reception on the demo clinic, and say how to open the other terminals."""
    from hms_tui.cli.tui_commands import run_terminal

    where = ctx.settings.database_url
    hint = OTHER_TERMINALS if not where else OTHER_TERMINALS + " (with the same HMS_DATABASE_URL)"
    render.console.print(render.t(hint))
    run_terminal(ctx, "reception", hint=hint)
    render.console.print(render.t(hint))
