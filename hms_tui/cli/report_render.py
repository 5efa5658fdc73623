"""How reports, the replay, trail checks and the day close look on a terminal."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import tzinfo
from typing import Any

from rich.text import Text

from hms_tui.cli.render import console, t, table
from hms_tui.domain.models import Visit
from hms_tui.services.reports import DayFigures, DayReport, Figures
from hms_tui.services.trail import ColumnChange, DayClose, Difference

# (label, figure, unit) in the order a manager reads them.
ROWS = (
    ("Arrivals", "arrivals", ""), ("  booked", "booked", ""), ("  walk-in", "walk_in", ""),
    ("Transfers in", "transfers_in", ""), ("Seen", "seen", ""), ("No-shows", "no_shows", ""),
    ("No-show rate", "no_show_rate", "%"), ("Cancelled", "cancellations", ""),
    ("Transferred out", "transfers", ""), ("Called", "called", ""),
    ("Wait p50", "wait_p50", "min"), ("Wait p90", "wait_p90", "min"),
    ("Wait max", "wait_max", "min"), ("Consultation p50", "consult_p50", "min"),
    ("Consultation p90", "consult_p90", "min"), ("Over target", "over_target", ""),
    ("Over target share", "over_target_share", "%"), ("Estimates quoted", "estimates", ""),
    ("Estimate error p50", "estimate_abs_error_p50", "min"),
    ("Called within estimate", "estimate_within_share", "%"),
)


def figure(value: Any, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "%":
        return f"{value * 100:.0f}%"
    if unit == "min":
        return f"{value:g} min"
    return str(value)


def print_day(report: DayReport) -> None:
    title = f"Clinic report for {report.date} (wait target {report.target_minutes} min)"
    columns: list[tuple[str, Figures]] = [(d.doctor, d.figures) for d in report.doctors]
    if report.doctor is None:
        columns.append(("Clinic", report.clinic))
    tbl = table(title, ["", *(name for name, _ in columns)])
    for label, name, unit in ROWS:
        tbl.add_row(Text(label, style="bold"),
                    *(figure(getattr(f, name), unit) for _, f in columns))
    console.print(tbl)
    busy = [h for h in report.hours if h.arrivals or h.calls or h.over_target]
    if busy:
        hours = table("By hour", ["Hour", "Arrivals", "Calls", "Over target"])
        for h in busy:
            hours.add_row(f"{h.hour:02d}:00", str(h.arrivals), str(h.calls), str(h.over_target))
        console.print(hours)
    if report.staff:
        staff = table("By login", ["Login", "Check-ins", "Calls", "Consultations"])
        for s in report.staff:
            staff.add_row(t(s.login, "bold"), str(s.checkins), str(s.calls), str(s.consultations))
        console.print(staff)


def print_range(days: Sequence[DayFigures]) -> None:
    tbl = table("Clinic by day", ["Date", "Arrivals", "Seen", "No-show", "Wait p50",
                                  "Wait p90", "Over target", "Consult p50"])
    for d in days:
        f = d.figures
        tbl.add_row(str(d.date), str(f.arrivals), str(f.seen), figure(f.no_show_rate, "%"),
                    figure(f.wait_p50, "min"), figure(f.wait_p90, "min"),
                    figure(f.over_target_share, "%"), figure(f.consult_p50, "min"))
    console.print(tbl)


def print_replay(at: str, visits: Iterable[Visit], zone: tzinfo) -> None:
    rows = list(visits)
    tbl = table(f"Queues at {at} (from the audit trail)",
                ["Dr", "#", "Token", "Patient", "MRN", "Priority", "Status", "Arrived", "Est."])
    for v in rows:
        arrived = v.checked_in_at.astimezone(zone).strftime("%H:%M") if v.checked_in_at else ""
        est = (f"{v.eta_from.astimezone(zone):%H:%M}–{v.eta_to.astimezone(zone):%H:%M}"
               if v.eta_from and v.eta_to else "")
        tbl.add_row(t(v.doctor, "bold"), str(v.position or ""), t(v.token, "bold"),
                    t(v.patient_name), t(v.mrn),
                    t(v.priority.value, "bold red" if v.priority.value != "NORMAL" else ""),
                    t(v.status.value), arrived, est)
    console.print(tbl)
    if not rows:
        console.print(Text("No one was waiting or being seen then."))


def _value(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, ensure_ascii=False)


def print_differences(differences: Sequence[Difference]) -> None:
    if not differences:
        console.print(Text("audit check OK: every row matches its latest image in the trail"))
        return
    tbl = table(f"audit check: {len(differences)} difference(s) between the tables and the trail",
                ["Table", "Key", "Column", "Trail says", "Table holds", "Problem"])
    for d in differences:
        key = ", ".join(f"{k}={v}" for k, v in d.key.items())
        if d.column is None:
            tbl.add_row(t(d.entity), t(key), "(row)", "", "", t(d.problem, "bold red"))
        else:
            tbl.add_row(t(d.entity), t(key), t(d.column), t(_value(d.trail_value)),
                        t(_value(d.table_value)), t(d.problem, "bold red"))
    console.print(tbl)


def print_restore(visit_id: int, changes: Sequence[ColumnChange], applied: bool) -> None:
    if not changes:
        console.print(Text(f"Visit {visit_id} matches the trail; nothing to restore."))
        return
    verb = "restored" if applied else "would be restored (dry run; nothing changed)"
    tbl = table(f"Visit {visit_id}: {len(changes)} column(s) {verb}",
                ["Column", "Trail says", "Table held"])
    for c in changes:
        tbl.add_row(t(c.column, "bold"), t(_value(c.trail_value)), t(_value(c.table_value)))
    console.print(tbl)


def print_day_close(result: DayClose, zone: tzinfo) -> None:
    when = result.closed_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    clinic = result.summary.get("clinic") or {}
    if result.closed_now:
        head = f"Closed {result.business_date}: {result.closed_now} open visit(s) closed"
    else:
        head = f"{result.business_date} was already closed: nothing left open"
    console.print(t(f"{head} ({when}, by {result.closed_by}). Seen {clinic.get('seen', 0)}, "
                    f"no-shows {clinic.get('no_shows', 0)}, cancelled "
                    f"{clinic.get('cancellations', 0)}; the summary is kept."))
