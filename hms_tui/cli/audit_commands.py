"""The audit trail: a visit's timeline, the latest events, and checking the hash chain
(``hms-tui audit verify``, ``hms-tui audit anchor``, for hms_admin or the schema owner)."""

from __future__ import annotations

from typing import Annotated

import typer

from hms_tui.cli import app as root
from hms_tui.cli import common, render
from hms_tui.cli.common import JsonFlag, VisitArg
from hms_tui.services import audit

audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
root.add_typer(audit_app, name="audit")


@audit_app.command("timeline")
def audit_timeline(ctx: typer.Context, visit: VisitArg, json_: JsonFlag = False) -> None:
    """Every event of a visit, with the time between events."""
    desk = common.desk(ctx)
    render.output(desk.timeline(visit), json_,
                  lambda entries: render.print_timeline(visit, entries, desk.zone()))


@audit_app.command("tail")
def audit_tail(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=10000, metavar="N")] = 20,
    actor: Annotated[str | None, typer.Option(metavar="LOGIN", help="Only this login.")] = None,
    action: Annotated[str | None, typer.Option(metavar="ACTION",
                                               help="Only this action, e.g. checkin.")] = None,
    visit: Annotated[int | None, typer.Option(metavar="VISIT", min=1, max=common.ID_MAX,
                                              help="Only this visit.")] = None,
    json_: JsonFlag = False,
) -> None:
    """The latest audit events, newest first."""
    desk = common.desk(ctx)
    entries = desk.audit_tail(limit, actor=actor, action=action, visit_id=visit)
    render.output(entries, json_, lambda e: render.print_audit(e, desk.zone()))


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    anchor: Annotated[str | None, typer.Option(
        "--anchor", metavar="SEQ:HASH", help="From an earlier `hms-tui audit anchor`: row SEQ "
        "must still have that hash.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Recompute every row's hash and check the chain; exit code 10 if it was tampered with."""
    checked = audit.Anchor.parse(anchor) if anchor is not None else None
    result = audit.verify(common.context(ctx).database(), checked)
    render.output(result, json_, render.print_verify)
    if not result.ok:
        raise audit.TamperDetected(
            f"the audit trail was tampered with: first broken row {result.first_broken_seq}"
        )


@audit_app.command("anchor")
def audit_anchor(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Print the head of the trail as SEQ:HASH; keep it outside the database and check later
    with `hms-tui audit verify --anchor SEQ:HASH`."""
    head = audit.anchor(common.context(ctx).database())
    render.output({"seq": head.seq, "hash": head.hash}, json_,
                  lambda _: render.console.print(render.t(str(head))))
