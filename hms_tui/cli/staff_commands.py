"""Staff logins (``hms-tui staff ...``): for the hms_admin role (or the schema owner)."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from hms_tui.cli import app as root
from hms_tui.cli import common, render
from hms_tui.cli.common import JsonFlag
from hms_tui.domain.errors import InvalidInput
from hms_tui.services.staff import StaffMember

staff_app = typer.Typer(
    help="Staff logins: one PostgreSQL role per person, in one of the groups hms_reception, "
    "hms_doctor, hms_display, hms_admin (admin only).",
    no_args_is_help=True,
)
root.add_typer(staff_app, name="staff")

LoginArg = Annotated[str, typer.Argument(metavar="LOGIN",
                                         help="The person's PostgreSQL login, e.g. asha.k.")]


def _show_staff(members: list[StaffMember], json_mode: bool, *, single: bool = False) -> None:
    render.output(members[0] if single else members, json_mode,
                  lambda _: render.print_staff(members))


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
    role: Annotated[str, typer.Option("--role", metavar="ROLE",
                                      help="reception, doctor, display or admin.")],
    doctor: Annotated[list[str] | None, typer.Option(
        "--doctor", metavar="CODE",
        help="Doctor code whose visits a doctor login may act on; repeat for more.")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the new password from one line of standard input.")] = False,
    no_password: Annotated[bool, typer.Option(
        "--no-password", help="No password (peer, certificate or trust authentication).")] = False,
    json_: JsonFlag = False,
) -> None:
    """Create a login for one person. Without --password-stdin or --no-password, asks for the
    password. Only its SCRAM verifier is sent; it is stored nowhere but in PostgreSQL."""
    password = _read_password(password_stdin, no_password)
    member = common.staff(ctx).add(login, role, doctor or (), password)
    _show_staff([member], json_, single=True)


@staff_app.command("list")
def staff_list(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Every login in an hms group, with its role and linked doctors."""
    _show_staff(common.staff(ctx).list(), json_)


@staff_app.command("disable")
def staff_disable(ctx: typer.Context, login: LoginArg, json_: JsonFlag = False) -> None:
    """Stop a login from logging in (and end its open sessions). Audited."""
    _show_staff([common.staff(ctx).disable(login)], json_, single=True)


@staff_app.command("enable")
def staff_enable(ctx: typer.Context, login: LoginArg, json_: JsonFlag = False) -> None:
    """Let a disabled login log in again (and re-apply the session timeouts). Audited."""
    _show_staff([common.staff(ctx).enable(login)], json_, single=True)


@staff_app.command("link")
def staff_link(
    ctx: typer.Context,
    login: LoginArg,
    doctor: common.DoctorOpt,
    unlink: Annotated[bool, typer.Option("--unlink", help="Remove the link instead.")] = False,
    json_: JsonFlag = False,
) -> None:
    """Let a doctor login act on another doctor's visits (or stop it, with --unlink)."""
    _show_staff([common.staff(ctx).link(login, doctor, linked=not unlink)], json_, single=True)
