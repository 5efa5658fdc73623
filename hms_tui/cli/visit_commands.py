"""Visit commands: check in, book, call, consult, move and finish visits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import typer

from hms_tui.cli import app as root
from hms_tui.cli import common, render
from hms_tui.cli.common import DoctorOpt, JsonFlag, PatientOpt, VisitArg
from hms_tui.domain.errors import SlipNotPrinted
from hms_tui.domain.models import Visit, to_jsonable
from hms_tui.domain.textsafe import printable
from hms_tui.services.desk import Desk
from hms_tui.services.slip_delivery import print_visit_slip

PrintFlag = Annotated[bool, typer.Option(
    "--print", help="Then print the token slip on the configured printer. A slip not "
    "printed is exit 12; the visit stands.")]


def _show(visit: Visit, json_mode: bool) -> None:
    render.output(visit, json_mode, render.print_visit)


def _show_and_print(ctx: typer.Context, visit: Visit, json_mode: bool, print_: bool) -> None:
    """The visit, then (``--print``) its slip: with --json one document with ``slip``. The
    action has happened whatever the printer does; a slip not printed is one line on stderr
    and exit 12 (SlipNotPrinted)."""
    if not print_:
        _show(visit, json_mode)
        return
    # A replayed keyed check-in is usually a retry after a lost reply, whose slip never
    # printed: its slip is not marked as a reprint.
    outcome = print_visit_slip(common.desk(ctx), visit, common.context(ctx).settings)
    if json_mode:
        render.emit_json({**to_jsonable(visit), "slip": outcome.as_json()})
    else:
        render.print_visit(visit)
        if outcome.printed:
            render.console.print(render.t(outcome.message))
    if not outcome.printed:
        raise SlipNotPrinted(printable(f"{visit.token} was issued but its slip was not printed: "
                                       f"{outcome.message}"))


def _visit_action(name: str, help_text: str, action: Callable[[Desk, int], Visit]) -> None:
    """Register ``hms-tui NAME VISIT [--json]`` for a one-argument visit action."""

    def command(ctx: typer.Context, visit: VisitArg, json_: JsonFlag = False) -> None:
        _show(action(common.desk(ctx), visit), json_)

    command.__doc__ = help_text
    root.command(name)(command)


@root.command()
def checkin(
    ctx: typer.Context,
    doctor: DoctorOpt,
    patient: PatientOpt,
    priority: Annotated[str, typer.Option(metavar="LEVEL", help="normal, urgent or emergency.")] = "normal",
    key: Annotated[
        str | None,
        typer.Option(metavar="KEY", help="Idempotency key: retrying with the same key returns "
                     "the same visit."),
    ] = None,
    print_: PrintFlag = False,
    json_: JsonFlag = False,
) -> None:
    """Check a patient in to a doctor's queue today and issue a token."""
    _show_and_print(ctx, common.desk(ctx).checkin(doctor, patient, priority, key), json_,
                    print_)


@root.command()
def arrive(ctx: typer.Context, visit: VisitArg, print_: PrintFlag = False,
           json_: JsonFlag = False) -> None:
    """Mark a booked patient arrived: issue the token and join the queue."""
    _show_and_print(ctx, common.desk(ctx).arrive(visit), json_, print_)


@root.command()
def queue(
    ctx: typer.Context,
    doctor: DoctorOpt,
    all_: Annotated[bool, typer.Option("--all", help="Include the day's finished visits.")] = False,
    json_: JsonFlag = False,
) -> None:
    """Today's queue of a doctor: being served, then waiting in order (position 1 is next)."""
    visits = common.desk(ctx).queue(doctor, include_all=all_)
    render.output(visits, json_,
                  lambda v: render.print_queue(doctor.upper(), v, datetime.now(UTC)))


ForceFlag = Annotated[bool, typer.Option(
    "--force", help="Call even though the doctor still has a patient called or in "
    "consultation (recorded in the audit trail).")]


@root.command("call-next")
def call_next(ctx: typer.Context, doctor: DoctorOpt, force: ForceFlag = False,
              json_: JsonFlag = False) -> None:
    """Call the patient at the head of the doctor's queue.

    One patient at a time: refused (exit 4, naming them) while another patient of the doctor
    is called or in consultation, unless the clinic allows calling ahead or --force."""
    _show(common.desk(ctx).call_next(doctor, force=force), json_)


@root.command("call")
def call(ctx: typer.Context, visit: VisitArg, force: ForceFlag = False,
         json_: JsonFlag = False) -> None:
    """Call a particular waiting patient out of turn.

    Refused like call-next while the doctor has another patient (--force to insist)."""
    _show(common.desk(ctx).call(visit, force=force), json_)


@root.command()
def cancel(
    ctx: typer.Context,
    visit: VisitArg,
    reason: Annotated[str | None, typer.Option(metavar="TEXT", help="Why (kept in the audit trail).")] = None,
    json_: JsonFlag = False,
) -> None:
    """Cancel a booked, waiting or called visit."""
    _show(common.desk(ctx).cancel(visit, reason), json_)


@root.command()
def skip(
    ctx: typer.Context,
    visit: VisitArg,
    places: Annotated[int | None, typer.Option(metavar="N", help="How many places back (default: clinic "
                                                    "setting skip_places).")] = None,
    json_: JsonFlag = False,
) -> None:
    """Move a waiting patient back in the queue."""
    _show(common.desk(ctx).skip(visit, places), json_)


@root.command()
def priority(
    ctx: typer.Context,
    visit: VisitArg,
    level: Annotated[str, typer.Argument(metavar="LEVEL", help="normal, urgent or emergency.")],
    json_: JsonFlag = False,
) -> None:
    """Change the priority of a waiting or booked visit."""
    _show(common.desk(ctx).set_priority(visit, level), json_)


@root.command()
def transfer(
    ctx: typer.Context,
    visit: VisitArg,
    to: Annotated[str, typer.Option("--to", metavar="CODE", help="Code of the doctor to transfer to.")],
    json_: JsonFlag = False,
) -> None:
    """Move a visit to another doctor: a new token from that doctor's series, linked to this one."""
    _show(common.desk(ctx).transfer(visit, to), json_)


_visit_action("recall", "Call a called patient again (up to the clinic's recall limit).",
              Desk.recall)
_visit_action("start", "Start the consultation of a called patient.", Desk.start)
_visit_action("complete", "Complete a consultation.", Desk.complete)
_visit_action("no-show", "Mark a called patient absent once the recall limit is used up.",
              Desk.no_show)
_visit_action("requeue", "Put a no-show back in the queue, after the clinic's requeue_after "
              "patients.", Desk.requeue)
_visit_action("show", "Show one visit.", Desk.visit)
