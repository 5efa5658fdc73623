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

from hms_tui.cli._click import click_exceptions
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


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Config file (else $HMS_TUI_CONFIG, else "
                     "$XDG_CONFIG_HOME/hms-tui/config.toml)."),
    ] = None,
) -> None:
    ctx.obj = AppContext(config)
    ctx.call_on_close(ctx.obj.close)


def _register() -> None:
    # Imported for their side effect of adding commands to ``app``.
    from hms_tui.cli import (  # noqa: F401
        audit_commands,
        bill_commands,
        booking_commands,
        clinic_commands,
        db_commands,
        report_commands,
        staff_commands,
        tui_commands,
        visit_commands,
        watch_command,
    )


_register()


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
