"""Appointments: doctors' sessions and leave, their slots, booking and moving bookings, and
who is expected today."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from hms_tui.cli import app as root
from hms_tui.cli import common, render
from hms_tui.cli.common import DoctorOpt, JsonFlag, PatientOpt, VisitArg
from hms_tui.domain.models import Visit, to_jsonable
from hms_tui.services.desk import Desk

session_app = typer.Typer(help="Doctors' sessions (when they see booked patients) and leave.",
                          no_args_is_help=True)
root.add_typer(session_app, name="session")

AtOpt = Annotated[str | None, typer.Option("--at", metavar="TIME",
                                           help='The slot: clinic local time, "YYYY-MM-DD HH:MM".')]
DateOpt = Annotated[str | None, typer.Option("--date", metavar="DATE",
                                             help="A day (YYYY-MM-DD): the first free slot.")]
OverbookOpt = Annotated[str | None, typer.Option(
    "--overbook", metavar="REASON", help="Book past a full slot; the reason is audited.")]


def _booked(desk: Desk, visit: Visit, json_mode: bool) -> None:
    """The booking, the slot it got and the prefix its token will have on arrival."""
    prefix = desk.doctor(visit.doctor).token_prefix
    doc: dict[str, Any] = {**to_jsonable(visit), "slot": to_jsonable(visit.appointment_at),
                           "token_prefix": prefix}
    render.output(doc, json_mode, lambda _: render.print_booking(visit, prefix, desk.zone()))


@root.command()
def book(ctx: typer.Context, doctor: DoctorOpt, patient: PatientOpt, at: AtOpt = None,
         date: DateOpt = None, overbook: OverbookOpt = None, json_: JsonFlag = False) -> None:
    """Book a patient into a doctor's slot (--at), or the first free slot of a day (--date);
    the token is issued on arrival. A full slot is refused (exit 5) with the next free ones."""
    desk = common.desk(ctx)
    _booked(desk, desk.book(doctor, patient, at, day=date, overbook=overbook), json_)


@root.command()
def reschedule(ctx: typer.Context, visit: VisitArg, at: AtOpt = None, date: DateOpt = None,
               overbook: OverbookOpt = None, json_: JsonFlag = False) -> None:
    """Move a booking to another slot (its old place is freed; the trail keeps both)."""
    desk = common.desk(ctx)
    _booked(desk, desk.reschedule(visit, at, day=date, overbook=overbook), json_)


@root.command()
def slots(ctx: typer.Context, doctor: DoctorOpt, date: Annotated[str | None, typer.Option(
        "--date", metavar="DATE", help="The day (default: today).")] = None,
          json_: JsonFlag = False) -> None:
    """A doctor's slots of a day: start, capacity, booked, free."""
    desk = common.desk(ctx)
    render.output(desk.slots(doctor, date), json_, lambda s: render.print_slots(s, desk.zone()))


@root.command()
def bookings(ctx: typer.Context, date: Annotated[str | None, typer.Option(
        "--date", metavar="DATE", help="The day (default: today).")] = None,
             doctor: Annotated[str | None, typer.Option("--doctor", metavar="CODE",
                                                        help="Only this doctor.")] = None,
             json_: JsonFlag = False) -> None:
    """Bookings that have not arrived yet: due, late, or not arrived (window closed)."""
    desk = common.desk(ctx)
    render.output(desk.expected(date, doctor), json_,
                  lambda e: render.print_expected(e, desk.zone()))


@session_app.command("add")
def session_add(
    ctx: typer.Context,
    doctor: DoctorOpt,
    start: Annotated[str, typer.Option("--start", metavar="HH:MM", help="When it starts.")],
    end: Annotated[str, typer.Option("--end", metavar="HH:MM", help="When it ends.")],
    slot: Annotated[int, typer.Option("--slot", metavar="MIN", min=5, max=240,
                                      help="Minutes per slot.")],
    capacity: Annotated[int, typer.Option("--capacity", metavar="N", min=1, max=50,
                                          help="Patients per slot.")],
    days: Annotated[str | None, typer.Option("--days", metavar="DAYS",
                                             help="Weekly on these days, e.g. mon,wed,fri.")] = None,
    on: Annotated[str | None, typer.Option("--on", metavar="DATE",
                                           help="An extra session on this date instead.")] = None,
    room: Annotated[str | None, typer.Option("--room", metavar="ROOM",
                                             help="Room (default: the doctor's).")] = None,
    json_: JsonFlag = False,
) -> None:
    """Add a session (weekly with --days, or an extra one with --on)."""
    session = common.desk(ctx).add_session(doctor, days=days, on=on, start=start, end=end,
                                           slot_minutes=slot, capacity=capacity, room=room)
    render.output(session, json_, lambda s: render.print_sessions([s]))


@session_app.command("list")
def session_list(ctx: typer.Context, doctor: Annotated[str | None, typer.Option(
        "--doctor", metavar="CODE", help="Only this doctor.")] = None,
                 json_: JsonFlag = False) -> None:
    """Every session (of a doctor)."""
    render.output(common.desk(ctx).sessions(doctor), json_, render.print_sessions)


@session_app.command("remove")
def session_remove(ctx: typer.Context, session: Annotated[int, typer.Argument(
        metavar="ID", min=1, max=2**31 - 1, help="Session id.")],
                   json_: JsonFlag = False) -> None:
    """Remove a session (no new bookings in it; bookings made stay, to be moved)."""
    render.output(common.desk(ctx).remove_session(session), json_,
                  lambda s: render.print_sessions([s]))


@session_app.command("leave")
def session_leave(
    ctx: typer.Context,
    doctor: DoctorOpt,
    start: Annotated[str, typer.Option("--from", metavar="DATE", help="First day of leave.")],
    end: Annotated[str | None, typer.Option("--to", metavar="DATE",
                                            help="Last day (default: the first).")] = None,
    reason: Annotated[str | None, typer.Option("--reason", metavar="TEXT")] = None,
    json_: JsonFlag = False,
) -> None:
    """Put a doctor on leave: no sessions then. Lists the bookings it affects."""
    desk = common.desk(ctx)
    affected = desk.add_leave(doctor, start, end, reason)
    render.output(affected, json_, lambda a: render.print_affected(a, desk.zone()))
