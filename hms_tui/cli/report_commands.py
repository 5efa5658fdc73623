"""Statistics and the day close: ``hms-tui report daily|range``, ``hms-tui day close``
(hms_admin)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from hms_tui.cli import app as root
from hms_tui.cli import common, render, report_render
from hms_tui.cli.common import JsonFlag
from hms_tui.domain.errors import InvalidInput
from hms_tui.services import reports
from hms_tui.services.reports import Reports
from hms_tui.services.trail import Trail

report_app = typer.Typer(help="Clinic statistics: waits, consultations, no-shows, estimates.",
                         no_args_is_help=True)
root.add_typer(report_app, name="report")
day_app = typer.Typer(help="The business day: close it when the clinic ends.",
                      no_args_is_help=True)
root.add_typer(day_app, name="day")

DateOpt = Annotated[str | None, typer.Option("--date", metavar="YYYY-MM-DD",
                                             help="The business date (default: today).")]
DoctorFilter = Annotated[str | None, typer.Option("--doctor", metavar="CODE",
                                                  help="Only this doctor.")]
CsvFlag = Annotated[bool, typer.Option("--csv", help="Print CSV (one row per doctor or day).")]


def _one_format(json_: bool, csv_: bool) -> None:
    if json_ and csv_:
        raise InvalidInput("choose one of --json and --csv")


@report_app.command("daily")
def report_daily(ctx: typer.Context, date: DateOpt = None, doctor: DoctorFilter = None,
                 json_: JsonFlag = False, csv_: CsvFlag = False) -> None:
    """A day per doctor and for the clinic: arrivals, seen, no-shows, waits (arrival to first
    call) and consultations (p50, p90), the share over the wait target, hours, logins, and how
    good the quoted estimates were."""
    _one_format(json_, csv_)
    report = Reports(common.context(ctx).database()).daily(date, doctor)
    if csv_:
        sys.stdout.write(reports.day_csv(report))
    elif json_:
        render.emit_json(report.to_doc())
    else:
        report_render.print_day(report)


@report_app.command("range")
def report_range(
    ctx: typer.Context,
    first: Annotated[str, typer.Option("--from", metavar="YYYY-MM-DD", help="First day.")],
    last: Annotated[str, typer.Option("--to", metavar="YYYY-MM-DD", help="Last day.")],
    doctor: DoctorFilter = None, json_: JsonFlag = False, csv_: CsvFlag = False,
) -> None:
    """Trends: the clinic's figures, one row per day (up to a year)."""
    _one_format(json_, csv_)
    days = Reports(common.context(ctx).database()).range(first, last, doctor)
    if csv_:
        sys.stdout.write(reports.range_csv(days))
    elif json_:
        render.emit_json([{"date": d.date, **vars(d.figures)} for d in days])
    else:
        report_render.print_range(days)


@day_app.command("close")
def day_close(ctx: typer.Context, date: DateOpt = None, json_: JsonFlag = False) -> None:
    """Close a business day: visits still waiting or called become the clinic's close_as
    (NO_SHOW or CANCELLED), bookings that never arrived become NO_SHOW, and the day's
    summary is kept. Safe to run twice."""
    context = common.context(ctx)
    result = Trail(context.database()).close_day(date)
    zone = context.desk().zone()
    render.output(result, json_, lambda r: report_render.print_day_close(r, zone))
