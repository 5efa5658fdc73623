"""Bills (``hms-tui bill create|void|show``): gap-free yearly numbers, voided never deleted."""

from __future__ import annotations

from typing import Annotated

import typer

from hms_tui.cli import app as root
from hms_tui.cli import common, render
from hms_tui.cli.common import JsonFlag, VisitArg
from hms_tui.domain import validation

bill_app = typer.Typer(help="Bills: gap-free yearly numbers, voided never deleted.",
                       no_args_is_help=True)
root.add_typer(bill_app, name="bill")

BillArg = Annotated[str, typer.Argument(metavar="BILL", help="Bill number (B-2026-0001) or id.")]


@bill_app.command("create")
def bill_create(
    ctx: typer.Context,
    visit: VisitArg,
    item: Annotated[list[str], typer.Option("--item", metavar="DESC=AMOUNT", help='"Description='
                                            'Amount"; repeat for more lines.')],
    json_: JsonFlag = False,
) -> None:
    """Issue a bill with the next number of the year (B-YYYY-NNNN)."""
    items = [validation.bill_item(spec) for spec in item]
    render.output(common.desk(ctx).create_bill(visit, items), json_, render.print_bill)


@bill_app.command("void")
def bill_void(
    ctx: typer.Context,
    bill: BillArg,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT",
                                        help="Why (required, audited).")],
    json_: JsonFlag = False,
) -> None:
    """Void a bill. Its number stays used: the series has no gaps."""
    render.output(common.desk(ctx).void_bill(bill, reason), json_, render.print_bill)


@bill_app.command("show")
def bill_show(ctx: typer.Context, bill: BillArg, json_: JsonFlag = False) -> None:
    """Show a bill."""
    render.output(common.desk(ctx).bill(bill), json_, render.print_bill)
