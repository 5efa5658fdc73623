"""How CLI results look: one JSON document with --json, otherwise rich tables.

User-supplied text always goes into ``rich.text.Text`` (never markup), after ``printable``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, tzinfo
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hms_tui.domain.models import (
    AuditEntry,
    Bill,
    ClinicRules,
    Doctor,
    DoctorBoard,
    Expected,
    Patient,
    PatientMatch,
    Session,
    Slot,
    TimelineEntry,
    Visit,
    to_jsonable,
)
from hms_tui.domain.textsafe import printable
from hms_tui.domain.timefmt import duration, minutes_since
from hms_tui.services.audit import VerifyResult
from hms_tui.services.staff import StaffMember

T = TypeVar("T")

# Piped output is read by programs and people with wide screens: do not wrap it at 80 columns
# (unless COLUMNS says how wide).
console = Console(highlight=False,
                  width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)


def t(value: object, style: str = "") -> Text:
    """A table cell holding ``value`` literally."""
    return Text(printable(value), style=style)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def output(data: T, json_mode: bool, show: Callable[[T], None]) -> None:
    """Every command's result: one JSON document with --json, else ``show(data)``."""
    if json_mode:
        emit_json(data)
    else:
        show(data)


def table(title: str, columns: Sequence[str]) -> Table:
    tbl = Table(title=Text(title), title_justify="left", header_style="bold")
    for col in columns:
        tbl.add_column(col)
    return tbl


def visit_line(visit: Visit) -> Text:
    """One line summarising a visit after an action."""
    line = Text()
    line.append(printable(visit.token or "booked"), style="bold reverse")
    line.append("  ")
    line.append(printable(visit.patient_name), style="bold")
    line.append(f" ({printable(visit.mrn)}) · {printable(visit.doctor_name)}")
    if visit.room:
        line.append(f", {printable(visit.room)}")
    line.append(f" · {visit.status.value}")
    if visit.position is not None:
        line.append(f" · position {visit.position}")
        if visit.wait_minutes is not None:
            line.append(f" · ~{visit.wait_minutes} min")
    if visit.priority.value != "NORMAL":
        line.append(f" · {visit.priority.value}", style="bold red")
    if visit.replayed:
        line.append(" · (already checked in: same key)")
    line.append(f"  [visit {visit.visit_id}]", style="dim")
    return line


def print_visit(visit: Visit) -> None:
    console.print(visit_line(visit))


def print_queue(doctor: str, visits: Iterable[Visit], now: datetime) -> None:
    tbl = table(f"Queue for {printable(doctor)}",
                ["#", "Token", "Patient", "MRN", "Priority", "Status", "Waiting", "Est.", "Visit"])
    for v in visits:
        tbl.add_row(
            str(v.position or ""),
            t(v.token, "bold"),
            t(v.patient_name),
            t(v.mrn),
            t(v.priority.value, "bold red" if v.priority.value != "NORMAL" else ""),
            t(v.status.value),
            minutes_since(v.checked_in_at, now),
            f"~{v.wait_minutes}m" if v.wait_minutes is not None else "",
            str(v.visit_id),
        )
    console.print(tbl)


def print_doctor(doctor: Doctor) -> None:
    print_doctors([doctor])


def print_doctors(doctors: Iterable[Doctor | DoctorBoard]) -> None:
    rows = list(doctors)
    boards = all(isinstance(d, DoctorBoard) for d in rows)
    cols = ["Code", "Name", "Room", "Prefix", "Active"]
    if boards:
        cols += ["Serving", "Waiting", "Seen", "No-show", "Tokens"]
    tbl = table("Doctors", cols)
    for d in rows:
        cells: list[Text | str] = [t(d.code, "bold"), t(d.name), t(d.room), t(d.token_prefix),
                                   "yes" if d.active else "no"]
        if isinstance(d, DoctorBoard):
            cells += [t(d.serving), str(d.waiting), str(d.seen), str(d.no_shows), str(d.issued)]
        tbl.add_row(*cells)
    console.print(tbl)


def print_patient(patient: Patient) -> None:
    print_patients([patient])


def print_patients(patients: Iterable[Patient | PatientMatch]) -> None:
    tbl = table("Patients", ["Id", "MRN", "Name", "Phone", "Born", "Today"])
    for p in patients:
        today = p.active_visits if isinstance(p, PatientMatch) else None
        tbl.add_row(str(p.id), t(p.mrn), t(p.name, "bold"), t(p.phone),
                    p.birth_date.isoformat() if p.birth_date else "", t(today))
    console.print(tbl)


def print_bill(bill: Bill) -> None:
    title = f"Bill {printable(bill.bill_number)}"
    if bill.status == "VOID":
        title += f" — VOID ({printable(bill.void_reason)})"
    tbl = table("", ["#", "Item", "Amount"])
    tbl.title = Text(title)  # user text: never markup
    tbl.columns[2].justify = "right"
    for item in bill.items:
        tbl.add_row(str(item.line), t(item.description), f"{item.amount:.2f}")
    tbl.add_row("", Text("Total", style="bold"), Text(f"{bill.total:.2f}", style="bold"))
    tbl.caption = Text(f"{printable(bill.patient_name)} ({printable(bill.mrn)}) · "
                       f"{printable(bill.token or '')} · {printable(bill.doctor_name)}")
    console.print(tbl)


def print_timeline(visit_id: int, entries: Iterable[TimelineEntry], zone: tzinfo) -> None:
    tbl = table(f"Timeline of visit {visit_id}",
                ["Seq", "Time", "+", "Action", "Status", "Who", "Terminal", "Detail"])
    for e in entries:
        status = (f"{e.status_before or ''} → {e.status_after or ''}"
                  if e.status_before != e.status_after else (e.status_after or ""))
        detail = ", ".join(f"{k}={v}" for k, v in e.detail.items())
        tbl.add_row(str(e.seq or "…"), e.at.astimezone(zone).strftime("%H:%M:%S"),
                    duration(e.since_previous),
                    t(e.action), t(status), t(e.actor), t(e.terminal), t(detail))
    console.print(tbl)


def print_audit(entries: Iterable[AuditEntry], zone: tzinfo) -> None:
    tbl = table("Audit trail (newest first)",
                ["Seq", "When", "Who", "Terminal", "Action", "Entity", "Visit", "Status"])
    for e in entries:
        status = (f"{e.status_before or ''} → {e.status_after or ''}"
                  if e.status_before or e.status_after else "")
        tbl.add_row(str(e.seq or "…"), e.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                    t(e.actor),
                    t(e.terminal),
                    t(e.action), t(f"{e.entity} {e.entity_id or ''}"), str(e.visit_id or ""),
                    t(status))
    console.print(tbl)


def print_staff(members: Iterable[StaffMember]) -> None:
    tbl = table("Staff", ["Login", "Role", "Doctors", "Can log in"])
    for m in members:
        tbl.add_row(t(m.login, "bold"), t(m.role), t(", ".join(m.doctors)),
                    "yes" if m.can_login else "no")
    console.print(tbl)


def print_verify(result: VerifyResult) -> None:
    console.print(t(result.describe(), "" if result.ok else "bold red"))


def print_upgrade(info: dict[str, Any]) -> None:
    rules: ClinicRules = info["rules"]
    console.print(t(f"Schema version {info['version']} on {info['database']}."))
    console.print(t(f"Clinic: {rules.clinic_name} · time zone {rules.timezone} · recall limit "
                    f"{rules.recall_limit} · requeue after {rules.requeue_after}"))


def print_status(info: dict[str, Any]) -> None:
    """``db status``: one row per fact, the clinic's rules spelled out."""
    rules: ClinicRules = info["rules"]
    tbl = table("Database", ["", ""])
    tbl.show_header = False
    rows = [("Database", info["database"]), ("Schema version", str(info["version"])),
            ("Business date", str(info["business_date"])), ("Clinic", rules.clinic_name),
            ("Time zone", rules.timezone), ("Recall limit", str(rules.recall_limit)),
            ("Requeue after", f"{rules.requeue_after} patients"),
            ("Skip places", str(rules.skip_places)),
            ("Consultation", f"{rules.consult_minutes} min (default estimate)"),
            ("Calls ahead", f"{rules.calls_ahead} (0: one patient at a time per doctor)")]
    server = info["server"]
    rows += [("Server", f"system {server.system_identifier}, timeline {server.timeline}"),
             ("synchronous_commit", info["synchronous_commit"]),
             ("Synchronous standbys", info["synchronous_standby_names"] or "none")]
    for s in info["standbys"] or ():
        lag = f", replay lag {s.replay_lag}" if s.replay_lag is not None else ""
        rows.append((f"Standby {s.name}", f"{s.state}, {s.sync_state}{lag}" if s.visible
                     else "(state hidden from this login)"))
    rows.append(("Numbering", "ON HOLD" if info["numbering_held"] else "issuing"))
    for key, value in rows:
        tbl.add_row(Text(key, style="bold"), t(value))
    console.print(tbl)
    for line in info["warnings"]:
        console.print(t(f"warning: {line}", "bold red"))


def print_confirmed(result: Any) -> None:
    skipped = (f"; today's token numbers of {result.doctors} doctors moved forward by "
               f"{result.skipped}" if result.skipped else "")
    console.print(t(f"Numbering resumes ({result.lifted} hold(s) lifted{skipped})."))


def print_booking(visit: Visit, prefix: str, zone: tzinfo) -> None:
    when = visit.appointment_at
    line = Text()
    line.append("booked ", style="bold")
    line.append(when.astimezone(zone).strftime("%Y-%m-%d %H:%M") if when else "?", style="bold")
    line.append(f"  {printable(visit.patient_name)} ({printable(visit.mrn)}) with "
                f"{printable(visit.doctor_name)}")
    if visit.room:
        line.append(f", {printable(visit.room)}")
    line.append(f" · token {printable(prefix)}-… on arrival", style="dim")
    line.append(f"  [visit {visit.visit_id}]", style="dim")
    console.print(line)


def print_slots(slots: Iterable[Slot], zone: tzinfo) -> None:
    tbl = table("Slots", ["Start", "Capacity", "Booked", "Free", "Room"])
    for s in slots:
        tbl.add_row(s.starts.astimezone(zone).strftime("%H:%M"), str(s.capacity), str(s.booked),
                    Text(str(s.free), style="bold green" if s.free else "red"), t(s.room))
    console.print(tbl)


def print_sessions(sessions: Iterable[Session]) -> None:
    tbl = table("Sessions", ["Id", "Doctor", "Days", "From", "To", "Slot", "Capacity", "Room"])
    for s in sessions:
        tbl.add_row(str(s.id), t(s.doctor, "bold"), t(s.days or s.on_date),
                    s.starts.strftime("%H:%M"), s.ends.strftime("%H:%M"),
                    f"{s.slot_minutes} min", str(s.capacity), t(s.room))
    console.print(tbl)


def print_expected(entries: Iterable[Expected], zone: tzinfo) -> None:
    tbl = table("Expected (booked, not arrived)", ["Slot", "Dr", "Patient", "MRN", "State",
                                                    "Visit"])
    for e in entries:
        style = {"late": "yellow", "not arrived": "bold red"}.get(e.state, "")
        tbl.add_row(e.appointment_at.astimezone(zone).strftime("%H:%M"), t(e.doctor, "bold"),
                    t(e.patient_name), t(e.mrn), Text(e.state, style=style), str(e.visit_id))
    console.print(tbl)


def print_affected(visits: Iterable[Visit], zone: tzinfo) -> None:
    rows = list(visits)
    if not rows:
        console.print(Text("No bookings are affected."))
        return
    tbl = table(f"{len(rows)} booking(s) fall in the leave: move or cancel them",
                ["Slot", "Patient", "MRN", "Visit"])
    for v in rows:
        when = v.appointment_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if v.appointment_at else ""
        tbl.add_row(when, t(v.patient_name), t(v.mrn), str(v.visit_id))
    console.print(tbl)
