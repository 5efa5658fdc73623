"""The ``hms-tui`` command. Command names, flags and --json fields are a contract: keep them.

Every command takes ``--json``: one JSON object or array on stdout; an error is one line on
stderr and a non-zero exit code (see ``hms_tui.domain.errors`` for the codes).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from hms_tui.cli._click import click_exceptions, readable_help
from hms_tui.cli.context import AppContext
from hms_tui.domain.errors import HmsError
from hms_tui.domain.textsafe import printable

app = typer.Typer(
    name="hms-tui",
    help="A terminal front desk for outpatient queues, on PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"hms-tui {version('hms-tui')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            print("hms-tui (not installed)")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", metavar="PATH", help="Config file (else $HMS_TUI_CONFIG, "
                     "else $XDG_CONFIG_HOME/hms-tui/config.toml)."),
    ] = None,
    _version_flag: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True,
                           help="Print the version and exit.")
    ] = False,
) -> None:
    ctx.obj = AppContext(config)
    ctx.call_on_close(ctx.obj.close)


def _register() -> None:
    # Imported for their side effect of adding commands to ``app``.
    from hms_tui.cli import (  # noqa: F401
        audit_commands,
        bench_command,
        bill_commands,
        booking_commands,
        clinic_commands,
        db_commands,
        import_command,
        report_commands,
        staff_commands,
        tui_commands,
        visit_commands,
        watch_command,
    )


_register()
readable_help()


def report_error(message: str, kind: str, json_mode: bool,
                 details: dict[str, object] | None = None) -> None:
    if json_mode:
        sys.stderr.write(json.dumps({"error": message, "kind": kind, **(details or {})},
                                    ensure_ascii=False) + "\n")
    else:
        sys.stderr.write(f"hms-tui: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in args
    try:
        app(args=args, prog_name="hms-tui", standalone_mode=False)
    except HmsError as exc:
        report_error(printable(str(exc)), type(exc).__name__, json_mode, exc.details)
        sys.exit(exc.exit_code)
    except click_exceptions.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click_exceptions.UsageError as exc:
        hint = f" (see: hms-tui {exc.ctx.command_path.partition(' ')[2]} --help)" if exc.ctx else ""
        report_error(printable(exc.format_message()) + hint.replace("  ", " "), "UsageError",
                     json_mode)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
