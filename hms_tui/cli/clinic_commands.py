"""Doctors (``hms-tui doctor ...``, and the doctor console) and patients."""

from __future__ import annotations

from typing import Annotated

import typer

from hms_tui.cli import app as root
from hms_tui.cli import common, render
from hms_tui.cli.common import JsonFlag
from hms_tui.domain import validation

doctor_app = typer.Typer(
    help="The doctor console (hms-tui doctor [--doctor CODE]), and managing doctors.",
    invoke_without_command=True,
)
patient_app = typer.Typer(help="Patients.", no_args_is_help=True)
root.add_typer(doctor_app, name="doctor")
root.add_typer(patient_app, name="patient")


@doctor_app.callback()
def doctor_main(
    ctx: typer.Context,
    doctor: Annotated[str | None, typer.Option("--doctor", metavar="CODE", help="Open the "
                                               "console of this doctor (code, e.g. D1).")] = None,
) -> None:
    """Without a subcommand: open the doctor console."""
    if ctx.invoked_subcommand is None:
        from hms_tui.cli.tui_commands import run_terminal

        run_terminal(common.context(ctx), "doctor", doctor=doctor)


@doctor_app.command("add")
def doctor_add(
    ctx: typer.Context,
    code: Annotated[str, typer.Option("--code", metavar="CODE", help="Short code, e.g. D1.")],
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="Name as shown, e.g. "
                                      "'Dr Rao'.")],
    room: Annotated[str | None, typer.Option(metavar="ROOM",
                                             help="Room shown on the display.")] = None,
    prefix: Annotated[str | None, typer.Option(metavar="PREFIX", help="Token prefix (default: "
                                               "the code).")] = None,
    json_: JsonFlag = False,
) -> None:
    """Add a doctor."""
    render.output(common.desk(ctx).add_doctor(code, name, room, prefix), json_,
                  render.print_doctor)


@doctor_app.command("update")
def doctor_update(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(metavar="CODE", help="Doctor code.")],
    name: Annotated[str | None, typer.Option(metavar="NAME", help="New name.")] = None,
    room: Annotated[str | None, typer.Option(metavar="ROOM",
                                             help="New room ('' clears it).")] = None,
    prefix: Annotated[str | None, typer.Option(metavar="PREFIX", help="New token prefix (new "
                                               "tokens only).")] = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive",
                                                help="Taking patients or not.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Change a doctor's name, room, prefix or whether they take patients."""
    render.output(common.desk(ctx).update_doctor(code, name=name, room=room, prefix=prefix,
                                                 active=active), json_, render.print_doctor)


@doctor_app.command("list")
def doctor_list(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Doctors with today's numbers."""
    render.output(common.desk(ctx).board(), json_, render.print_doctors)


@patient_app.command("add")
def patient_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", metavar="NAME", help=f"Full name, "
                                      f"1-{validation.NAME_MAX} characters.")],
    phone: Annotated[str | None, typer.Option(metavar="PHONE", help="Digits, spaces or '-', "
                                              "optional '+'.")] = None,
    dob: Annotated[str | None, typer.Option(metavar="DATE",
                                            help="Date of birth, YYYY-MM-DD.")] = None,
    allow_duplicate: Annotated[bool, typer.Option(
        "--allow-duplicate", help="Register even though a patient with the same name and "
        "date of birth, or the same phone, exists (it is someone else).")] = False,
    json_: JsonFlag = False,
) -> None:
    """Register a patient; prints the new MRN.

    Someone who looks registered already (same name and date of birth, or same phone) is
    refused with exit 5, listing the matches; check them, then --allow-duplicate if it is
    really someone else."""
    render.output(common.desk(ctx).add_patient(name, phone, dob, allow_duplicate=allow_duplicate),
                  json_, render.print_patient)


@patient_app.command("update")
def patient_update(
    ctx: typer.Context,
    patient: Annotated[int, typer.Argument(metavar="ID", min=1, help="Patient id.")],
    name: Annotated[str | None, typer.Option(metavar="NAME", help="The corrected name.")] = None,
    phone: Annotated[str | None, typer.Option(metavar="PHONE",
                                              help="New phone ('' clears it).")] = None,
    dob: Annotated[str | None, typer.Option(metavar="DATE", help="Date of birth, YYYY-MM-DD "
                                            "('' clears it).")] = None,
    json_: JsonFlag = False,
) -> None:
    """Correct a patient's name, phone or date of birth (audited; every screen follows)."""
    render.output(common.desk(ctx).update_patient(patient, name=name, phone=phone,
                                                  birth_date=dob), json_, render.print_patient)


@patient_app.command("search")
def patient_search(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="Part of a name, an MRN or phone "
                                        "digits.")],
    limit: Annotated[int, typer.Option(min=1, max=500, metavar="N",
                                       help="At most N patients (1-500).")] = 50,
    json_: JsonFlag = False,
) -> None:
    """Find patients by name, MRN or phone."""
    render.output(common.desk(ctx).search_patients(text, limit), json_, render.print_patients)
