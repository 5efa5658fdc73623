"""The audit trail: a visit's timeline, the latest events, checking the hash chain
(``hms-tui audit verify``, ``hms-tui audit anchor``), the queues replayed at a past moment
(``audit replay``), the trail against the tables (``audit check``) and a visit restored from it
(``audit restore``); all but the timeline for hms_admin or the schema owner."""

from __future__ import annotations

from typing import Annotated

import typer

from hms_tui.cli import app as root
from hms_tui.cli import common, render, report_render
from hms_tui.cli.common import JsonFlag, VisitArg
from hms_tui.services import audit
from hms_tui.services.trail import Trail, TrailMismatch

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


@audit_app.command("replay")
def audit_replay(
    ctx: typer.Context,
    at: Annotated[str, typer.Option("--at", metavar="\"YYYY-MM-DD HH:MM[:SS]\"",
                                    help="A past moment, in the clinic's local time.")],
    doctor: Annotated[str | None, typer.Option("--doctor", metavar="CODE",
                                               help="Only this doctor's queue.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Every queue as it stood at a past moment, rebuilt from the audit trail alone (the same
    rows, order and positions `queue --json` gave then)."""
    context = common.context(ctx)
    visits = Trail(context.database()).replay(at, doctor)
    zone = context.desk().zone()
    render.output(visits, json_, lambda v: report_render.print_replay(at.strip(), v, zone))


@audit_app.command("check")
def audit_check(
    ctx: typer.Context,
    date: Annotated[str | None, typer.Option("--date", metavar="YYYY-MM-DD",
                                             help="Only visits of this business date.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Compare the tables with the trail: every live row must equal its latest image, and
    every row the trail says exists must exist. Exit code 10 on any difference."""
    differences = Trail(common.context(ctx).database()).check(date)
    render.output(differences, json_, report_render.print_differences)
    if differences:
        raise TrailMismatch(f"the tables and the audit trail differ in {len(differences)} "
                            "place(s)")


@audit_app.command("restore")
def audit_restore(
    ctx: typer.Context,
    visit: Annotated[int, typer.Option("--visit", metavar="ID", min=1, max=common.ID_MAX,
                                       help="The visit to put back as the trail has it.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would change.")]
    = False,
    json_: JsonFlag = False,
) -> None:
    """Put a visit back to its latest image in the trail (audited as 'restore'); with
    --dry-run, only show the columns that differ."""
    changes = Trail(common.context(ctx).database()).restore(visit, apply=not dry_run)
    render.output(changes, json_,
                  lambda c: report_render.print_restore(visit, c, applied=not dry_run))
