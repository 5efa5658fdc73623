"""Admin's Sessions tab: the doctors' sessions (weekly, or an extra one on a date), adding one,
removing the selected one (asked first, naming it), and a doctor's leave, which lists the
bookings it affects so reception can move or cancel them. The database checks every rule
(overlaps, slot sizes, capacity) and its refusal is shown as it said it."""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Static

from hms_tui.domain import validation
from hms_tui.domain.errors import HmsError, InvalidInput
from hms_tui.domain.models import Session, Visit
from hms_tui.domain.textsafe import printable
from hms_tui.screens.dialog import Check, Dialog, FormDialog
from hms_tui.screens.pickers import ConfirmDialog
from hms_tui.widgets.keybar import KeyBar
from hms_tui.widgets.queue_table import DiffTable, cell
from hms_tui.widgets.text_input import TextInput

if TYPE_CHECKING:
    from hms_tui.app import HmsApp


def describe(s: Session) -> str:
    """'D1 mon,tue 09:00-13:00, 15 min slots of 2': a session, the way the questions name it."""
    when = s.days or (s.on_date.isoformat() if s.on_date else "")
    return (f"{s.doctor} {when} {s.starts:%H:%M}-{s.ends:%H:%M}, {s.slot_minutes} min slots "
            f"of {s.capacity}")


def whole_number(text: str, what: str) -> int:
    if not text.strip().isdigit():
        raise InvalidInput(f"{what} must be a whole number, not {text.strip()[:10]!r}")
    return int(text.strip())


def fields_row(field: str, label: str, value: str, hint: str) -> ComposeResult:
    with Horizontal():
        yield Label(label)
        yield TextInput(value=value, placeholder=hint, id=field, label=label.lower())
    yield Static("", id=f"{field}-error", classes="field-error")


class SessionDialog(FormDialog):
    """Add a session: weekly on some days, or an extra one on a date. Returns the Session."""

    BINDINGS = [Binding("escape", "close", "Cancel", key_display="Esc"),
                Binding("ctrl+s", "save", "Save"),
                Binding("up", "app.focus_previous", "Field above", show=False),
                Binding("down", "app.focus_next", "Field below", show=False)]
    DEFAULT_CSS = """
    SessionDialog .field-error { height: auto; }
    SessionDialog Horizontal { height: 1; }
    SessionDialog Label { padding: 0 1 0 0; }
    SessionDialog Input, SessionDialog Input:focus { border: none; height: 1; }
    SessionDialog Input:focus { background: $boost; text-style: bold; }
    """

    def __init__(self, doctor: str = "") -> None:
        super().__init__()
        self.doctor = doctor

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Add a session", classes="title")
            for field, label, value, hint in (
                ("doctor", "Doctor", self.doctor, "code, e.g. D1"),
                ("days", "Weekdays", "", "weekly: mon,tue,... (or a date below)"),
                ("on", "Or on date", "", "an extra session: YYYY-MM-DD"),
                ("start", "Start", "", "HH:MM"),
                ("end", "End", "", "HH:MM"),
                ("slot", "Slot minutes", "15", "5-240"),
                ("capacity", "Per slot", "1", "patients per slot, 1-50"),
                ("room", "Room", "", "optional: the doctor's room"),
            ):
                yield from fields_row(field, label, value, hint)
            yield Static("", classes="error")
            yield Static(Text("Enter next · ctrl+s save · Esc cancel", style="dim"))
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#days" if self.doctor else "#doctor", TextInput).focus()

    def checks(self) -> dict[str, Check]:
        return {
            "doctor": validation.doctor_code,
            "days": self._check_days,
            "on": lambda t: validation.a_date(t, "session date") if t.strip() else None,
            "start": lambda t: validation.clock_time(t, "start"),
            "end": lambda t: validation.clock_time(t, "end"),
            "slot": lambda t: whole_number(t, "slot minutes"),
            "capacity": lambda t: whole_number(t, "places per slot"),
            "room": lambda t: validation.optional_text(t, "room", validation.ROOM_MAX),
        }

    def _check_days(self, text: str) -> None:
        dated = bool(self.value("on").strip())
        if bool(text.strip()) == dated:
            raise InvalidInput("give the weekdays of a weekly session (mon,wed) or the date "
                               "of an extra one, not both")

    def action_save(self) -> None:
        self.show_error("")
        if not self.check_fields() or self.hms.busy("session"):
            return
        v = {f: self.value(f).strip() for f in self.checks()}
        self.show_error("Saving...")
        self.hms.db_call(self.hms.desk.add_session, v["doctor"], days=v["days"] or None,
                         on=v["on"] or None, start=v["start"], end=v["end"],
                         slot_minutes=int(v["slot"]), capacity=int(v["capacity"]),
                         room=v["room"] or None, done=self.dismiss, failed=self.fail,
                         group="session")


class LeaveDialog(FormDialog):
    """A doctor's leave from a date to a date (one day when no end is given), with a reason.
    Returns (doctor, from, to, the bookings it affects)."""

    BINDINGS = [Binding("escape", "close", "Cancel", key_display="Esc"),
                Binding("ctrl+s", "save", "Save")]

    def __init__(self, doctor: str = "") -> None:
        super().__init__()
        self.doctor = doctor

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Add leave: no sessions, no new bookings", classes="title")
            for field, label, value, hint in (
                ("doctor", "Doctor", self.doctor, "code, e.g. D1"),
                ("from", "From", "", "YYYY-MM-DD"),
                ("to", "To", "", "YYYY-MM-DD (empty: that day only)"),
                ("reason", "Reason", "", "optional"),
            ):
                yield from fields_row(field, label, value, hint)
            yield Static("", classes="error")
            yield Static(Text("Enter next · ctrl+s save · Esc cancel", style="dim"))
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#from" if self.doctor else "#doctor", TextInput).focus()

    def checks(self) -> dict[str, Check]:
        return {
            "doctor": validation.doctor_code,
            "from": self._check_from,
            "to": lambda t: validation.a_date(t, "leave end") if t.strip() else None,
            "reason": lambda t: validation.optional_text(t, "reason", validation.REASON_MAX),
        }

    @staticmethod
    def _check_from(text: str) -> object:
        if not text.strip():
            raise InvalidInput("give the first day of the leave (YYYY-MM-DD)")
        return validation.a_date(text, "leave start")

    def action_save(self) -> None:
        self.show_error("")
        if not self.check_fields() or self.hms.busy("leave"):
            return
        v = {f: self.value(f).strip() for f in self.checks()}
        self.show_error("Saving...")
        self.hms.db_call(self.hms.desk.add_leave, v["doctor"], v["from"], v["to"] or None,
                         v["reason"] or None,
                         done=lambda affected: self.dismiss(
                             (v["doctor"].upper(), v["from"], v["to"] or v["from"], affected)),
                         failed=self.fail, group="leave")


class AffectedDialog(Dialog):
    """The bookings a leave affects: reception must move (reschedule) or cancel them."""

    DEFAULT_CSS = """
    AffectedDialog > Vertical { width: 78; }
    AffectedDialog DiffTable { height: auto; max-height: 14; }
    """

    def __init__(self, title: str, visits: list[Visit], zone: tzinfo) -> None:
        super().__init__()
        self.title_text = title
        self.visits = visits
        self.zone = zone

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(printable(self.title_text)), classes="title")
            yield Static(Text("Move them (hms-tui reschedule VISIT) or cancel them.",
                              style="dim"))
            yield DiffTable(["When", "Patient", "MRN", "Visit"], id="affected")
            yield Static("", classes="error")
        yield KeyBar()

    def on_mount(self) -> None:
        table = self.query_one(DiffTable)
        table.sync([(str(v.visit_id), [
            v.appointment_at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")
            if v.appointment_at else str(v.business_date),
            cell(v.patient_name), cell(v.mrn), str(v.visit_id)]) for v in self.visits])
        table.focus()


class SessionsPane(Vertical):
    """The list, and the actions the admin screen's keys call on it."""

    DEFAULT_CSS = """
    SessionsPane { height: 1fr; }
    SessionsPane DiffTable { height: 1fr; }
    SessionsPane #sessions-msg { height: auto; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.sessions: dict[str, Session] = {}

    def compose(self) -> ComposeResult:
        yield DiffTable(["Id", "Dr", "Days or date", "Start", "End", "Slot", "Cap", "Room"],
                        id="sessions")
        yield Static("", id="sessions-msg")

    @property
    def hms(self) -> HmsApp:
        return self.app  # type: ignore[return-value]

    def load(self) -> None:
        self.hms.db_call(self.hms.desk.sessions, done=self.show, failed=self.say,
                         group="sessions", exclusive=True)

    def show(self, sessions: list[Session]) -> None:
        self.sessions = {str(s.id): s for s in sessions}
        self.query_one(DiffTable).sync([
            (str(s.id), [str(s.id), cell(s.doctor, "bold"),
                         cell(s.days or (s.on_date.isoformat() if s.on_date else "")),
                         f"{s.starts:%H:%M}", f"{s.ends:%H:%M}", f"{s.slot_minutes} min",
                         str(s.capacity), cell(s.room)])
            for s in sessions])

    def say(self, message: str | HmsError, style: str = "red") -> None:
        self.query_one("#sessions-msg", Static).update(Text(printable(str(message)), style=style))

    def selected(self) -> Session | None:
        key = self.query_one(DiffTable).selected_key()
        return self.sessions.get(key or "")

    def add(self) -> None:
        chosen = self.selected()

        def saved(session: Session | None) -> None:
            if session is not None:
                self.load()
                self.say(f"Added session {session.id}: {describe(session)}", "bold green")

        self.app.push_screen(SessionDialog(chosen.doctor if chosen else ""), saved)

    def remove_selected(self) -> None:
        session = self.selected()
        if session is None:
            self.say("Select a session first (arrows).")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.hms.db_call(self.hms.desk.remove_session, session.id, done=removed,
                                 failed=self.say)

        def removed(gone: Session) -> None:
            self.load()
            self.say(f"Removed session {gone.id}: {describe(gone)}", "bold green")

        self.app.push_screen(ConfirmDialog(
            f"Remove session {session.id}: {describe(session)}?", "y", "Remove it",
            "No new bookings go into it; bookings already made stay (move or cancel them)."),
            answered)

    def add_leave(self) -> None:
        chosen = self.selected()

        def saved(result: tuple[str, str, str, list[Visit]] | None) -> None:
            if result is None:
                return
            doctor, start, end, affected = result
            span = start if start == end else f"{start} to {end}"
            what = f"{len(affected)} booking(s) affected" if affected else "no booking affected"
            self.say(f"Leave for {doctor} on {span}: {what}", "bold green")
            if affected:
                self.app.push_screen(AffectedDialog(
                    f"Leave for {doctor} on {span}: {what}", affected, self.hms.clinic_zone))

        self.app.push_screen(LeaveDialog(chosen.doctor if chosen else ""), saved)
