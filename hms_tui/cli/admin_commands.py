"""Everything that is not a visit: the database, doctors, patients, bills, audit, the demo."""

from __future__ import annotations

from typing import Annotated

import typer

from hms_tui.cli import app as root
from hms_tui.cli import render
from hms_tui.cli.context import AppContext
from hms_tui.cli.visit_commands import JsonFlag, _desk
from hms_tui.domain import validation

db_app = typer.Typer(help="The database: schema upgrades and status.", no_args_is_help=True)
doctor_app = typer.Typer(
    help="The doctor console (hms-tui doctor [--doctor CODE]), and managing doctors.",
    invoke_without_command=True,
)
patient_app = typer.Typer(help="Patients.", no_args_is_help=True)
bill_app = typer.Typer(help="Bills: gap-free yearly numbers, voided never deleted.",
                       no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
root.add_typer(db_app, name="db")
root.add_typer(doctor_app, name="doctor")
root.add_typer(patient_app, name="patient")
root.add_typer(bill_app, name="bill")
root.add_typer(audit_app, name="audit")


# -- db -------------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Apply pending schema migrations (idempotent) and the [clinic] settings of the config."""
    from hms_tui.db import migrate
    from hms_tui.services.desk import Desk

    obj: AppContext = ctx.obj
    db = obj.database(upgrade=True)
    with db.connect() as conn:
        version = migrate.current_version(conn)
    clinic = obj.settings.clinic
    rules = Desk(db).configure(
        clinic_name=clinic.name, timezone=clinic.timezone, recall_limit=clinic.recall_limit,
        requeue_after=clinic.requeue_after, skip_places=clinic.skip_places,
        consult_minutes=clinic.consult_minutes,
    )
    if json_:
        render.emit_json({"version": version, "database": db.describe(), "rules": rules})
    else:
        render.console.print(render.t(f"Schema version {version} on {db.describe()}."))
        render.console.print(render.t(
            f"Clinic: {rules.clinic_name} · time zone {rules.timezone} · recall limit "
            f"{rules.recall_limit} · requeue after {rules.requeue_after}"))


@db_app.command("status")
def db_status(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Where the data is, the schema version and the business date."""
    from hms_tui.db import migrate

    obj: AppContext = ctx.obj
    desk = obj.desk()
    with desk.db.connect() as conn:
        version = migrate.current_version(conn)
    info = {"database": desk.db.describe(), "version": version,
            "business_date": desk.business_date(), "rules": desk.rules()}
    if json_:
        render.emit_json(info)
    else:
        for key, value in info.items():
            render.console.print(render.t(f"{key}: {value}"))


# -- doctors ----------------------------------------------------------------------------------------


@doctor_app.callback()
def doctor_main(
    ctx: typer.Context,
    doctor: Annotated[str | None, typer.Option("--doctor", help="Open the console of this "
                                               "doctor (code, e.g. D1).")] = None,
) -> None:
    """Without a subcommand: open the doctor console."""
    if ctx.invoked_subcommand is None:
        from hms_tui.cli.tui_commands import doctor_console

        doctor_console(ctx, doctor)


@doctor_app.command("add")
def doctor_add(
    ctx: typer.Context,
    code: Annotated[str, typer.Option("--code", help="Short code, e.g. D1.")],
    name: Annotated[str, typer.Option("--name", help="Name as shown, e.g. 'Dr Rao'.")],
    room: Annotated[str | None, typer.Option(help="Room shown on the display.")] = None,
    prefix: Annotated[str | None, typer.Option(help="Token prefix (default: the code).")] = None,
    json_: JsonFlag = False,
) -> None:
    """Add a doctor."""
    doctor = _desk(ctx).add_doctor(code, name, room, prefix)
    if json_:
        render.emit_json(doctor)
    else:
        render.print_doctors([doctor])


@doctor_app.command("update")
def doctor_update(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="Doctor code.")],
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    room: Annotated[str | None, typer.Option(help="New room ('' clears it).")] = None,
    prefix: Annotated[str | None, typer.Option(help="New token prefix (new tokens only).")] = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive",
                                                help="Taking patients or not.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Change a doctor's name, room, prefix or whether they take patients."""
    doctor = _desk(ctx).update_doctor(code, name=name, room=room, prefix=prefix, active=active)
    if json_:
        render.emit_json(doctor)
    else:
        render.print_doctors([doctor])


@doctor_app.command("list")
def doctor_list(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Doctors with today's numbers."""
    board = _desk(ctx).board()
    if json_:
        render.emit_json(board)
    else:
        render.print_doctors(board)


# -- patients ---------------------------------------------------------------------------------------


@patient_app.command("add")
def patient_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help=f"Full name, 1-{validation.NAME_MAX} "
                                                       "characters.")],
    phone: Annotated[str | None, typer.Option(help="Digits, spaces or '-', optional '+'.")] = None,
    dob: Annotated[str | None, typer.Option(help="Date of birth, YYYY-MM-DD.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Register a patient; prints the new MRN."""
    patient = _desk(ctx).add_patient(name, phone, dob)
    if json_:
        render.emit_json(patient)
    else:
        render.print_patients([patient])


@patient_app.command("search")
def patient_search(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="Part of a name, an MRN or phone digits.")],
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    json_: JsonFlag = False,
) -> None:
    """Find patients by name, MRN or phone."""
    found = _desk(ctx).search_patients(text, limit)
    if json_:
        render.emit_json(found)
    else:
        render.print_patients(found)


# -- bills ------------------------------------------------------------------------------------------


@bill_app.command("create")
def bill_create(
    ctx: typer.Context,
    visit: Annotated[int, typer.Argument(help="Visit id.", min=1)],
    item: Annotated[list[str], typer.Option("--item", help='"Description=Amount"; repeat for '
                                                           "more lines.")],
    json_: JsonFlag = False,
) -> None:
    """Issue a bill with the next number of the year (B-YYYY-NNNN)."""
    items = [validation.bill_item(spec) for spec in item]
    bill = _desk(ctx).create_bill(visit, items)
    if json_:
        render.emit_json(bill)
    else:
        render.print_bill(bill)


@bill_app.command("void")
def bill_void(
    ctx: typer.Context,
    bill: Annotated[str, typer.Argument(help="Bill number (B-2026-0001) or id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (required, audited).")],
    json_: JsonFlag = False,
) -> None:
    """Void a bill. Its number stays used: the series has no gaps."""
    voided = _desk(ctx).void_bill(bill, reason)
    if json_:
        render.emit_json(voided)
    else:
        render.print_bill(voided)


@bill_app.command("show")
def bill_show(
    ctx: typer.Context,
    bill: Annotated[str, typer.Argument(help="Bill number (B-2026-0001) or id.")],
    json_: JsonFlag = False,
) -> None:
    """Show a bill."""
    found = _desk(ctx).bill(bill)
    if json_:
        render.emit_json(found)
    else:
        render.print_bill(found)


# -- audit ------------------------------------------------------------------------------------------


@audit_app.command("timeline")
def audit_timeline(
    ctx: typer.Context,
    visit: Annotated[int, typer.Argument(help="Visit id.", min=1)],
    json_: JsonFlag = False,
) -> None:
    """Every event of a visit, with the time between events."""
    entries = _desk(ctx).timeline(visit)
    if json_:
        render.emit_json(entries)
    else:
        render.print_timeline(visit, entries)


@audit_app.command("tail")
def audit_tail(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 20,
    actor: Annotated[str | None, typer.Option(help="Only this login.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. checkin.")] = None,
    visit: Annotated[int | None, typer.Option(help="Only this visit.")] = None,
    json_: JsonFlag = False,
) -> None:
    """The latest audit events, newest first."""
    entries = _desk(ctx).audit_tail(limit, actor=actor, action=action, visit_id=visit)
    if json_:
        render.emit_json(entries)
    else:
        render.print_audit(entries)


# -- demo -------------------------------------------------------------------------------------------


@root.command()
def demo(
    ctx: typer.Context,
    seed_only: Annotated[bool, typer.Option("--seed-only", help="Seed and exit.")] = False,
    json_: JsonFlag = False,
) -> None:
    """Seed a demo clinic when the database is empty, then open the front desk."""
    from hms_tui.services.demo import seed_demo

    obj: AppContext = ctx.obj
    desk = obj.desk()
    summary = seed_demo(desk)
    if json_:
        render.emit_json(summary)
        return
    render.console.print(render.t(summary.describe()))
    if seed_only:
        return
    from hms_tui.cli.launch import open_front_desk

    open_front_desk(obj, summary)
