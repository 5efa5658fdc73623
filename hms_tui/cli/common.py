"""What every command module shares: the common options and the services of the context."""

from __future__ import annotations

from typing import Annotated

import typer

from hms_tui.cli.context import AppContext
from hms_tui.services.desk import Desk
from hms_tui.services.staff import Staff

ID_MAX = 2**63 - 1  # ids are PostgreSQL bigints: anything larger is bad input, not a crash
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
VisitArg = Annotated[int, typer.Argument(help="Visit id.", min=1, max=ID_MAX, metavar="VISIT")]
DoctorOpt = Annotated[str, typer.Option("--doctor", help="Doctor code, e.g. D1.", metavar="CODE")]
PatientOpt = Annotated[int, typer.Option("--patient", help="Patient id.", min=1, max=ID_MAX,
                                         metavar="ID")]


def context(ctx: typer.Context) -> AppContext:
    obj: AppContext = ctx.obj
    return obj


def desk(ctx: typer.Context) -> Desk:
    return context(ctx).desk()


def staff(ctx: typer.Context) -> Staff:
    return Staff(context(ctx).database())
