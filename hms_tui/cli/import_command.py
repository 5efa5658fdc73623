"""``hms-tui patient import FILE.csv``: a registry migration, with a progress bar."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hms_tui.cli import common, render
from hms_tui.cli.clinic_commands import patient_app
from hms_tui.cli.common import JsonFlag
from hms_tui.services import registry


@patient_app.command("import")
def patient_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE.csv", help="UTF-8 CSV; its header names "
                                         "the columns: name, and optionally phone and dob "
                                         "(YYYY-MM-DD).")],
    allow_duplicate: Annotated[bool, typer.Option(
        "--allow-duplicate", help="Register rows that look like a registered patient (or an "
        "earlier row) too.")] = False,
    skip: Annotated[int, typer.Option(min=0, metavar="N", help="Leave out the first N patients "
                                      "of the file (already imported).")] = 0,
    batch: Annotated[int, typer.Option(min=1, max=10000, metavar="N",
                                       help="Patients per transaction.")] = registry.BATCH,
    json_: JsonFlag = False,
) -> None:
    """Register every patient of a CSV file, audited like the desk's registrations.

    The whole file is checked first (a bad row is named by its line; nothing is added).
    Someone who looks registered already stops the import at their batch (exit 5), unless
    --allow-duplicate; the message says which --skip resumes it."""
    rows = registry.read_rows(file, skip=skip)
    desk = common.desk(ctx)
    began = time.perf_counter()
    console = Console(stderr=True)
    with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=True,
                  disable=not rows or not console.is_terminal) as bar:  # no bar into a pipe
        task = bar.add_task("import", total=len(rows))
        added = registry.import_rows(desk, rows, allow_duplicate=allow_duplicate, batch=batch,
                                     skipped=skip, advance=lambda n: bar.advance(task, n))
    seconds = time.perf_counter() - began
    result = {"imported": added, "skipped": skip, "seconds": round(seconds, 3),
              "us_per_patient": round(seconds / added * 1e6, 1) if added else None}
    render.output(result, json_, lambda r: print(
        f"imported {r['imported']} patients in {r['seconds']:.1f} s"
        + (f" ({r['us_per_patient']:.0f} us each)" if r["us_per_patient"] else "")))
