"""Staff logins (``hms-tui staff ...``) and checking the audit trail (``hms-tui audit verify``,
``hms-tui audit anchor``). All of it is for the hms_admin role (or the schema owner)."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from hms_tui.cli import app as root
from hms_tui.cli import render
from hms_tui.cli.admin_commands import audit_app
from hms_tui.cli.context import AppContext
from hms_tui.cli.visit_commands import JsonFlag
from hms_tui.domain.errors import InvalidInput
from hms_tui.services import audit
from hms_tui.services.staff import Staff, StaffMember

staff_app = typer.Typer(
    help="Staff logins: one PostgreSQL role per person, in one of the groups hms_reception, "
    "hms_doctor, hms_display, hms_admin (admin only).",
    no_args_is_help=True,
)
root.add_typer(staff_app, name="staff")

LoginArg = Annotated[str, typer.Argument(help="The person's PostgreSQL login, e.g. asha.k.")]


def _staff(ctx: typer.Context) -> Staff:
    obj: AppContext = ctx.obj
    return Staff(obj.database())


def _show_staff(members: list[StaffMember], json_mode: bool, *, single: bool = False) -> None:
    if json_mode:
        render.emit_json(members[0] if single else members)
        return
    tbl = render.table("Staff", ["Login", "Role", "Doctors", "Can log in"])
    for m in members:
        tbl.add_row(render.t(m.login, "bold"), render.t(m.role), render.t(", ".join(m.doctors)),
                    "yes" if m.can_login else "no")
    render.console.print(tbl)


def _read_password(password_stdin: bool, no_password: bool) -> str | None:
    if password_stdin and no_password:
        raise InvalidInput("give --password-stdin or --no-password, not both")
    if no_password:
        return None
    if password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise InvalidInput("no terminal to ask for the new password: use --password-stdin "
                           "(one line on standard input) or --no-password")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        raise InvalidInput("the two passwords differ; nothing was changed")
    return first


@staff_app.command("add")
def staff_add(
    ctx: typer.Context,
    login: LoginArg,
    role: Annotated[str, typer.Option("--role", help="reception, doctor, display or admin.")],
    doctor: Annotated[list[str] | None, typer.Option(
        "--doctor", help="Doctor code whose visits a doctor login may act on; repeat for more.")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the new password from one line of standard input.")] = False,
    no_password: Annotated[bool, typer.Option(
        "--no-password", help="No password (peer, certificate or trust authentication).")] = False,
    json_: JsonFlag = False,
) -> None:
    """Create a login for one person. Without --password-stdin or --no-password, asks for the
    password. Only its SCRAM verifier is sent; it is stored nowhere but in PostgreSQL."""
    password = _read_password(password_stdin, no_password)
    member = _staff(ctx).add(login, role, doctor or (), password)
    _show_staff([member], json_, single=True)


@staff_app.command("list")
def staff_list(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Every login in an hms group, with its role and linked doctors."""
    _show_staff(_staff(ctx).list(), json_)


@staff_app.command("disable")
def staff_disable(ctx: typer.Context, login: LoginArg, json_: JsonFlag = False) -> None:
    """Stop a login from logging in (and end its open sessions). Audited."""
    _show_staff([_staff(ctx).disable(login)], json_, single=True)


@staff_app.command("enable")
def staff_enable(ctx: typer.Context, login: LoginArg, json_: JsonFlag = False) -> None:
    """Let a disabled login log in again (and re-apply the session timeouts). Audited."""
    _show_staff([_staff(ctx).enable(login)], json_, single=True)


@staff_app.command("link")
def staff_link(
    ctx: typer.Context,
    login: LoginArg,
    doctor: Annotated[str, typer.Option("--doctor", help="Doctor code.")],
    unlink: Annotated[bool, typer.Option("--unlink", help="Remove the link instead.")] = False,
    json_: JsonFlag = False,
) -> None:
    """Let a doctor login act on another doctor's visits (or stop it, with --unlink)."""
    _show_staff([_staff(ctx).link(login, doctor, linked=not unlink)], json_, single=True)


# -- audit ------------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    anchor: Annotated[str | None, typer.Option(
        "--anchor", help="SEQ:HASH from an earlier `hms-tui audit anchor`: row SEQ must still "
        "have that hash.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Recompute every row's hash and check the chain; exit code 10 if it was tampered with."""
    obj: AppContext = ctx.obj
    checked = audit.Anchor.parse(anchor) if anchor is not None else None
    result = audit.verify(obj.database(), checked)
    if json_:
        render.emit_json(result)
    else:
        render.console.print(render.t(result.describe(), "" if result.ok else "bold red"))
    if not result.ok:
        raise audit.TamperDetected(
            f"the audit trail was tampered with: first broken row {result.first_broken_seq}"
        )


@audit_app.command("anchor")
def audit_anchor(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Print the head of the trail as SEQ:HASH; keep it outside the database and check later
    with `hms-tui audit verify --anchor SEQ:HASH`."""
    obj: AppContext = ctx.obj
    head = audit.anchor(obj.database())
    if json_:
        render.emit_json({"seq": head.seq, "hash": head.hash})
    else:
        render.console.print(render.t(str(head)))
