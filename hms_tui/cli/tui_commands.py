"""The terminals: reception, doctor console, waiting-room display, admin."""

from __future__ import annotations

from typing import Annotated

import typer

from hms_tui.cli import app as root
from hms_tui.cli.context import AppContext

MAX_STARTS = 20  # the display starts itself again after its own loop failed, this often


def run_terminal(ctx: AppContext, role: str, *, doctor: str | None = None,
                 doctors: tuple[str, ...] = (), hint: str = "") -> None:
    """Run a terminal until it is quit. The waiting-room display, whose own loop failed
    (logged under the XDG state dir), is started again; any other non-zero end of the app
    is the command's exit code, never a silent 0."""
    from hms_tui.app import RESTART_EXIT, Role, create_app

    desk = ctx.desk()
    if doctor:
        doctor = desk.doctor(doctor).code  # unknown codes fail here, with one clear line
    for each in doctors:
        desk.doctor(each)
    for _ in range(MAX_STARTS):
        app = create_app(Role(role), desk, ctx.settings, doctor=doctor, doctors=doctors,
                         hint=hint)
        app.run()
        if app.return_code != RESTART_EXIT:
            break
    if app.return_code:
        raise typer.Exit(app.return_code)


@root.command()
def reception(ctx: typer.Context) -> None:
    """Open the reception terminal: find or register, check in, queues, bills."""
    run_terminal(ctx.obj, "reception")


@root.command()
def display(
    ctx: typer.Context,
    doctors: Annotated[str | None, typer.Option(metavar="CODES",
                                                help="Doctor codes to show, e.g. D1,D2 "
                                                "(default: display.doctors, else every "
                                                "active doctor).")] = None,
) -> None:
    """Open the waiting-room display (full screen, no input needed; ctrl+q quits)."""
    obj: AppContext = ctx.obj
    codes = tuple(c.strip().upper() for c in doctors.split(",") if c.strip()) if doctors else \
        obj.settings.display.doctors
    run_terminal(obj, "display", doctors=codes)


@root.command()
def admin(ctx: typer.Context) -> None:
    """Open the admin terminal: doctors, staff, settings, today's numbers, audit."""
    run_terminal(ctx.obj, "admin")

