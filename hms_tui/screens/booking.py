"""Booking at reception: a doctor's day as slots -- start, capacity, booked, free and who holds
each place -- a slot chosen with the keyboard and confirmed.

The database decides. Enter on a full slot still asks it (another desk may have just freed a
place, or taken the last one): its refusal names the next free slots, offered as choices next
to overbooking with a reason. Nothing here counts places to refuse a booking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from hms_tui.domain import validation
from hms_tui.domain.errors import Conflict, HmsError
from hms_tui.domain.events import Event, Refreshed
from hms_tui.domain.models import Booking, DoctorBoard, Slot, Visit
from hms_tui.domain.textsafe import printable
from hms_tui.screens.dialog import Dialog
from hms_tui.screens.pickers import ChoiceDialog, ConfirmDialog, DoctorPicker, ReasonDialog
from hms_tui.services.desk import Desk
from hms_tui.widgets.keybar import KeyBar
from hms_tui.widgets.queue_table import Cell, DiffTable, cell, short_cell
from hms_tui.widgets.text_input import TextInput

WHO_CELLS = 44  # the "booked by" column; the names of a slot of three still fit at 80 columns
FOLLOW_EVERY = 1.0  # seconds: at most this often the day is read again after changes elsewhere


@dataclass(frozen=True)
class DayPlan:
    """One doctor's day as read in one go: its slots and who holds their places."""

    doctor: str
    day: date
    zone: tzinfo
    slots: list[Slot]
    bookings: list[Booking]

    def holders(self, slot: Slot) -> list[Booking]:
        return [b for b in self.bookings if b.appointment_at == slot.starts]


def read_day(desk: Desk, doctor: str, day: date | None) -> DayPlan:
    """Off the UI loop: the day (today by the database's date when None), its slots and its
    bookings, and the clinic's zone the times are shown and typed in."""
    day = day or desk.business_date()
    return DayPlan(doctor, day, desk.zone(), desk.slots(doctor, day), desk.bookings(doctor, day))


def local_hm(at: datetime, zone: tzinfo) -> str:
    return at.astimezone(zone).strftime("%H:%M")


def slot_row(plan: DayPlan, slot: Slot, begun: bool) -> list[Cell]:
    holders = plan.holders(slot)
    names = "; ".join(b.patient_name + ("+" if b.overbooked else "") for b in holders)
    over = slot.booked - slot.capacity
    free = str(slot.free) if slot.free else (f"over {over}" if over > 0 else "full")
    time_style = "dim" if begun else "bold"
    return [cell(local_hm(slot.starts, plan.zone), time_style), str(slot.capacity),
            str(slot.booked), cell(free, "bold green" if slot.free else "bold red"),
            short_cell(names, WHO_CELLS)]


class SlotTable(DiffTable):
    """The day's slots, the cursor's row in the middle when a day is shown, and kept there
    when the table's height settles after that (the key bar below takes its second row)."""

    def center_cursor(self) -> None:
        visible = max(1, self.size.height - 1)  # under the header
        self.scroll_to(y=max(0, self.cursor_row - visible // 2), animate=False)

    def _on_resize(self, event: events.Resize) -> None:
        super()._on_resize(event)
        self.call_after_refresh(self.center_cursor)


class DateDialog(Dialog):
    """Type a date (YYYY-MM-DD); returns it, or None."""

    def __init__(self, title: str, value: date) -> None:
        super().__init__()
        self.title_text = title
        self.initial = value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(printable(self.title_text)), classes="title")
            yield TextInput(value=self.initial.isoformat(), placeholder="YYYY-MM-DD",
                            max_length=10, label="the date")
            yield Static("", classes="error")
            yield Static(Text("Enter show that day · Esc cancel", style="dim"))
        yield KeyBar()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            day = validation.a_date(event.value, "date")
        except HmsError as exc:
            self.fail(exc)
            return
        if day is None:
            self.show_error("Type a date, e.g. 2026-12-02.")
            return
        self.dismiss(day)


class BookDialog(Dialog):
    """Book one patient: the doctor's day as slots; Enter books the selected slot (after a
    confirmation naming patient, doctor and time), o overbooks it with a reason. The day
    stays open after booking, so the person sees it fill. Returns the last booking made."""

    BINDINGS = [
        Binding("escape", "close", "Close", key_display="Esc"),
        Binding("enter", "book", "Book the slot", show=True, key_display="Enter"),
        Binding("o", "overbook", "Overbook"),
        Binding("left", "day(-1)", "Day", priority=True),
        Binding("right", "day(1)", "Day", priority=True),
        Binding("g", "go_to_date", "Date"),
        Binding("t", "today", "Today"),
        Binding("d", "pick_doctor", "Doctor"),
        Binding("f7", "other_doctor(-1)", "Doctor"),
        Binding("f8", "other_doctor(1)", "Doctor"),
    ]
    DEFAULT_CSS = """
    BookDialog > Vertical { width: 80; height: 1fr; }
    BookDialog #slots { height: 1fr; }
    BookDialog #day { height: 1; }
    BookDialog .error { height: auto; min-height: 1; }
    """

    def __init__(self, patient_id: int, who: str, board: tuple[DoctorBoard, ...],
                 preselect: str | None) -> None:
        super().__init__()
        self.patient_id = patient_id
        self.who = who  # 'Kumar, Anil (M000231, 54 y)'
        self.board = [b for b in board if b.active]
        codes = [b.code for b in self.board]
        self.doctor: str | None = preselect if preselect in codes else (
            codes[0] if codes else None)
        self.day: date | None = None  # None: today, by the database's date
        self.plan: DayPlan | None = None
        self.booked: Visit | None = None
        self.asking = False  # a confirmation or a question is open

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(f"Book {printable(self.who)}"), classes="title")
            yield Static("", id="day")
            yield SlotTable(["Time", "Cap", "Booked", "Free", "Booked by"], id="slots")
            yield Static("", classes="error")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#slots", DiffTable).focus()
        self.hms.live_signal.subscribe(self, self._live)
        if self.doctor is None:
            self.show_error("No doctor is taking patients.")
            return
        self.load(move_cursor=True)

    def _live(self, event: Event) -> None:
        """Another desk booked or cancelled: the day is read again (at most every second)."""
        if isinstance(event, Refreshed):
            self.hms.throttle(f"book-day-{id(self)}", FOLLOW_EVERY, self._follow)

    def _follow(self) -> None:
        if self.is_attached:
            self.load()

    # -- the day -------------------------------------------------------------------------------

    def doctor_name(self) -> str:
        return next((b.name for b in self.board if b.code == self.doctor), self.doctor or "")

    def load(self, *, move_cursor: bool = False) -> None:
        if self.doctor is None:
            return
        doctor, day = self.doctor, self.day
        self.hms.db_call(read_day, self.hms.desk, doctor, day,
                         done=lambda plan: self.show(plan, move_cursor),
                         failed=self.fail, group="book-day", exclusive=True)

    def show(self, plan: DayPlan, move_cursor: bool) -> None:
        if plan.doctor != self.doctor or (self.day is not None and plan.day != self.day):
            return  # the person moved on to another doctor or day meanwhile
        self.plan = plan
        self.day = plan.day
        now = self.hms.now()
        free = sum(s.free for s in plan.slots)
        room = next((b.room for b in self.board if b.code == plan.doctor), None)
        where = f" · {room}" if room else ""
        if plan.slots:
            summary = f"{len(plan.slots)} slots · {free} places free"
        else:
            summary = "no session this day (leave, or none held): ←/→ another day"
        self.query_one("#day", Static).update(Text.assemble(
            (printable(f"{self.doctor_name()} ({plan.doctor}){where}"), "bold"),
            f" · {plan.day:%a %d %b %Y} · ", summary))
        table = self.query_one("#slots", SlotTable)
        table.sync([(s.starts.isoformat(), slot_row(plan, s, s.starts <= now))
                    for s in plan.slots])
        if move_cursor and plan.slots:
            ahead = [i for i, s in enumerate(plan.slots) if s.free and s.starts > now]
            row = ahead[0] if ahead else 0
            table.move_cursor(row=row, animate=False, scroll=False)
            self.call_after_refresh(table.center_cursor)

    def selected_slot(self) -> Slot | None:
        """The slot under the cursor, as shown (the person acts on the row they see)."""
        if self.plan is None:
            return None
        key = self.query_one("#slots", DiffTable).selected_key()
        return next((s for s in self.plan.slots if s.starts.isoformat() == key), None)

    def action_day(self, step: int) -> None:
        if self.day is not None:
            self.go_to(self.day + timedelta(days=step))

    def action_today(self) -> None:
        self.day = None
        self.plan = None
        self.load(move_cursor=True)

    def go_to(self, day: date | None) -> None:
        if day is not None:
            self.day = day
            self.load(move_cursor=True)

    def action_go_to_date(self) -> None:
        self.app.push_screen(DateDialog("Show the day", self.day or self.hms.now().date()),
                             self.go_to)

    def action_pick_doctor(self) -> None:
        def picked(code: str | None) -> None:
            if code:
                self.switch_doctor(code)

        self.app.push_screen(DoctorPicker(f"Book {self.who} with", tuple(self.board)), picked)

    def action_other_doctor(self, step: int) -> None:
        codes = [b.code for b in self.board]
        if codes:
            i = codes.index(self.doctor) if self.doctor in codes else 0
            self.switch_doctor(codes[(i + step) % len(codes)])

    def switch_doctor(self, code: str) -> None:
        if code != self.doctor:
            self.doctor = code
            self.query_one("#slots", DiffTable).sync([])
            self.load(move_cursor=True)

    # -- booking -------------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_book()

    def action_book(self) -> None:
        slot = self._slot_or_say()
        if slot is None or self.asking:
            return
        self.asking = True
        at = self._at(slot)
        places = f"{slot.free} of {slot.capacity} places free" if slot.free else (
            f"all {slot.capacity} places are booked; the database will say what is free")

        def answered(yes: bool | None) -> None:
            self.asking = False
            if yes:
                self.send(at)

        self.app.push_screen(ConfirmDialog(
            f"Book {self.who} with {self.doctor_name()} at {at}?", "y", "Book", places),
            answered)

    def action_overbook(self) -> None:
        slot = self._slot_or_say()
        if slot is not None:
            self.ask_overbook(self._at(slot))

    def ask_overbook(self, at: str) -> None:
        if self.asking:
            return
        self.asking = True

        def reason_given(reason: str | None) -> None:
            self.asking = False
            if reason:
                self.send(at, reason)

        self.app.push_screen(ReasonDialog(
            f"Overbook {self.who} at {at} with {self.doctor_name()}: why?", required=True),
            reason_given)

    def _slot_or_say(self) -> Slot | None:
        slot = self.selected_slot()
        if slot is None:
            self.show_error("Choose a slot first (arrows), or another day (←/→).")
        return slot

    def _at(self, slot: Slot) -> str:
        """The slot's start as the clinic's wall clock, the way the database reads it."""
        zone = self.plan.zone if self.plan is not None else self.hms.clinic_zone
        return slot.starts.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def send(self, at: str, overbook: str | None = None) -> None:
        if self.doctor is None or self.hms.busy("book"):
            return
        self.show_error("Booking...")
        self.hms.db_call(self.hms.desk.book, self.doctor, self.patient_id, at, overbook=overbook,
                         done=self._booked, failed=lambda exc: self._refused(at, exc),
                         group="book")

    def _booked(self, visit: Visit) -> None:
        self.booked = visit
        at = local_hm(visit.appointment_at, self.plan.zone if self.plan else self.hms.clinic_zone
                      ) if visit.appointment_at else ""
        self.query_one(".error", Static).update(Text(printable(
            f"Booked {visit.patient_name} at {at} on {visit.business_date} with "
            f"{visit.doctor_name}. Esc closes."), style="bold green"))
        self.load()

    def _refused(self, at: str, exc: HmsError) -> None:
        """The database's refusal, as it said it; a full slot offers its next free slots and
        overbooking, each an explicit choice."""
        self.fail(exc)
        nexts = exc.details.get("next_free") if isinstance(exc, Conflict) else None
        if not isinstance(nexts, list):
            return
        choices = [(str(i), f"Book {when} instead", f"at:{when}")
                   for i, when in enumerate(nexts[:3], start=1) if isinstance(when, str)]
        choices.append(("o", f"Overbook {at[-5:]} with a reason", "overbook"))
        self.asking = True

        def decided(choice: str | None) -> None:
            self.asking = False
            if choice == "overbook":
                self.ask_overbook(at)
            elif choice and choice.startswith("at:"):
                self.send(choice[3:])

        self.app.push_screen(ChoiceDialog(str(exc), choices), decided)

    def action_close(self) -> None:
        self.dismiss(self.booked)
