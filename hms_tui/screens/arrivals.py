"""Who is booked today: reception's expected arrivals (a key marks one arrived) and the
doctor's day of bookings. Both follow changes from every desk, and the states -- due, late,
not arrived -- are the database's (``hms.booking_state``), so every terminal says the same."""

from __future__ import annotations

from datetime import date, tzinfo
from typing import cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from hms_tui.domain.errors import HmsError
from hms_tui.domain.events import Event, Refreshed
from hms_tui.domain.models import Booking, Expected, Visit
from hms_tui.domain.textsafe import printable
from hms_tui.screens.dialog import Dialog
from hms_tui.services.desk import Desk
from hms_tui.widgets.keybar import KeyBar
from hms_tui.widgets.queue_table import Cell, DiffTable, cell, short_cell

FOLLOW_EVERY = 1.0  # seconds: at most this often the list is read again after changes
TICK = 30.0  # seconds: read again anyway, as due turns late and late turns not arrived
STATE_STYLE = {"due": "", "late": "bold yellow", "not arrived": "bold red"}


def state_cell(state: str) -> Text:
    """'late', or a visit's status as words once they came ('in consultation')."""
    return cell(state.lower().replace("_", " "), STATE_STYLE.get(state, "dim"))


class FollowingDialog(Dialog):
    """A dialog whose list is read off the UI loop on open, after every change anywhere (at
    most every FOLLOW_EVERY) and every TICK seconds. Subclasses define ``read`` and ``show``."""

    DEFAULT_CSS = """
    FollowingDialog > Vertical { width: 80; height: 1fr; }
    FollowingDialog DiffTable { height: 1fr; }
    FollowingDialog .error { height: auto; }
    """

    def on_mount(self) -> None:
        self.query_one(DiffTable).focus()
        self.hms.live_signal.subscribe(self, self._live)
        self.set_interval(TICK, self.load)
        self.load()

    def _live(self, event: Event) -> None:
        if isinstance(event, Refreshed):
            self.hms.throttle(f"follow-{id(self)}", FOLLOW_EVERY, self._follow)

    def _follow(self) -> None:
        if self.is_attached:
            self.load()

    def load(self) -> None:
        self.hms.db_call(self.read, self.hms.desk, done=self.show, failed=self.fail,
                         group=f"follow-{id(self)}", exclusive=True)

    def read(self, desk: Desk) -> object:
        raise NotImplementedError

    def show(self, data: object) -> None:
        raise NotImplementedError


class ExpectedDialog(FollowingDialog):
    """Today's bookings not arrived yet, by slot: due, late, or not arrived (past the late
    window). Enter (or a) marks the selected one arrived: they get their token and join the
    queue by the clinic's rule. Returns that visit."""

    BINDINGS = [
        Binding("escape", "close", "Close", key_display="Esc"),
        Binding("a", "arrive", "Arrived"),
        Binding("enter", "arrive", "Arrived", key_display="Enter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.expected: dict[str, Expected] = {}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Expected today: booked, not arrived"), id="expected-title",
                         classes="title")
            yield DiffTable(["Slot", "Dr", "Patient", "MRN", "State"], id="expected")
            yield Static("", classes="error")
            yield Static(Text("Arrived: the token is issued; within the window around the slot "
                              "they queue by slot time, else by arrival.", style="dim"))
        yield KeyBar()

    def read(self, desk: Desk) -> tuple[tzinfo, list[Expected]]:
        return desk.zone(), desk.expected()

    def show(self, data: object) -> None:
        zone, found = cast(tuple[tzinfo, list[Expected]], data)
        self.expected = {str(e.visit_id): e for e in found}
        self.query_one(DiffTable).sync([
            (str(e.visit_id), [cell(e.appointment_at.astimezone(zone).strftime("%H:%M"), "bold"),
                               cell(e.doctor), short_cell(e.patient_name, 28), cell(e.mrn),
                               state_cell(e.state)])
            for e in found])
        late = sum(1 for e in found if e.state != "due")
        self.query_one("#expected-title", Static).update(Text(
            f"Expected today: {len(found)} booked, not arrived ({late} late or not arrived)"
            if found else "Expected today: nobody booked is still to come"))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_arrive()

    def action_arrive(self) -> None:
        key = self.query_one(DiffTable).selected_key()
        chosen = self.expected.get(key or "")
        if chosen is None:
            self.show_error("Select a booking first (arrows).")
            return
        if self.hms.busy("arrive"):
            return
        self.show_error(printable(f"Marking {chosen.patient_name} arrived..."))
        self.hms.db_call(self.hms.desk.arrive, chosen.visit_id, done=self._arrived,
                         failed=self._refused, group="arrive")

    def _arrived(self, visit: Visit) -> None:
        self.dismiss(visit)

    def _refused(self, exc: HmsError) -> None:
        self.fail(exc)
        self.load()  # another desk may have acted on it: show what is true now


def booking_row(b: Booking, zone: tzinfo) -> list[Cell]:
    return [cell(b.appointment_at.astimezone(zone).strftime("%H:%M"), "bold"),
            short_cell(b.patient_name + (" (overbooked)" if b.overbooked else ""), 30),
            cell(b.mrn), cell(b.token), state_cell(b.state)]


class DoctorBookingsDialog(FollowingDialog):
    """A doctor's bookings of today, in slot order: who, and how each stands (due, late, not
    arrived, or the visit's state once they came)."""

    BINDINGS = [Binding("escape", "close", "Close", key_display="Esc")]

    def __init__(self, doctor: str, name: str) -> None:
        super().__init__()
        self.doctor = doctor
        self.doctor_name = name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(printable(f"Bookings today · {self.doctor_name} ({self.doctor})")),
                         id="bookings-title", classes="title")
            yield DiffTable(["Time", "Patient", "MRN", "Token", "State"], id="bookings")
            yield Static("", classes="error")
        yield KeyBar()

    def read(self, desk: Desk) -> tuple[tzinfo, date, list[Booking]]:
        return desk.zone(), desk.business_date(), desk.bookings(self.doctor)

    def show(self, data: object) -> None:
        zone, day, found = cast(tuple[tzinfo, date, list[Booking]], data)
        waiting = sum(1 for b in found if b.status == "BOOKED")
        self.query_one("#bookings-title", Static).update(Text(printable(
            f"Bookings {day:%a %d %b} · {self.doctor_name} ({self.doctor}) · "
            f"{len(found)} booked, {waiting} to come")))
        self.query_one(DiffTable).sync([(str(b.visit_id), booking_row(b, zone)) for b in found])
