"""Small modal dialogs: check in, pick a doctor, pick a priority, give a reason, confirm.

Each names what it acts on: the patient by name, MRN and age, the visit by its token."""

from __future__ import annotations

import uuid
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from hms_tui.domain.errors import HmsError
from hms_tui.domain.models import DoctorBoard, Expected, Priority, Visit
from hms_tui.domain.textsafe import printable
from hms_tui.screens.dialog import Dialog
from hms_tui.widgets.text_input import TextInput


def doctor_option(b: DoctorBoard) -> Option:
    room = f", {b.room}" if b.room else ""
    label = Text(printable(f"{b.code}  {b.name}{room}  ·  {b.waiting} waiting"))
    return Option(label, id=b.code)


class CheckinDialog(Dialog):
    """Check a patient in: the doctor list (last used preselected) and a priority; Enter
    confirms. The idempotency key is made once per dialog, so a retry after a lost reply
    returns the visit already created."""

    BINDINGS = [
        Binding("escape", "close", "Cancel"),
        Binding("n", "priority('NORMAL')", "Normal"),
        Binding("u", "priority('URGENT')", "Urgent"),
        Binding("e", "priority('EMERGENCY')", "Emergency"),
    ]

    def __init__(self, patient_id: int, who: str, board: tuple[DoctorBoard, ...],
                 preselect: str | None) -> None:
        super().__init__()
        self.patient_id = patient_id
        self.patient_name = who  # 'Kumar, Anil (M000231, 54 y)'
        self.board = [b for b in board if b.active]
        self.preselect = preselect
        self.priority = Priority.NORMAL
        self.key = str(uuid.uuid4())

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(f"Check in {printable(self.patient_name)}"), classes="title")
            yield Static("", id="booked")
            yield OptionList(*[doctor_option(b) for b in self.board], id="doctors")
            yield Static("", id="priority")
            yield Static("", classes="error")
            yield Static(Text("Enter check in · n/u/e priority · Esc cancel", style="dim"))
        yield Footer()

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        codes = [b.code for b in self.board]
        if self.preselect in codes:
            options.highlighted = codes.index(self.preselect)
        elif codes:
            options.highlighted = 0
        self._show_priority()
        if not codes:
            self.show_error("No doctor is taking patients.")
        self.hms.db_call(self.hms.desk.expected, done=self._show_booked,
                         failed=lambda _exc: None, group="checkin-booked", exclusive=True)

    def _show_booked(self, expected: list[Expected]) -> None:
        """A patient booked today: 'booked 10:30 with Dr Rao', and that doctor preselected
        unless the person has moved the highlight already (checking in with that doctor
        turns the booking into the waiting visit)."""
        mine = [e for e in expected if e.patient_id == self.patient_id]
        if not mine:
            return
        names = {b.code: b.name for b in self.board}
        zone = self.hms.clinic_zone
        said = "; ".join(f"booked {e.appointment_at.astimezone(zone):%H:%M} with "
                         f"{names.get(e.doctor, e.doctor)}" + (f" ({e.state})" if e.state != "due"
                                                                 else "")
                         for e in mine)
        self.query_one("#booked", Static).update(Text(printable(said), style="bold"))
        options = self.query_one(OptionList)
        codes = [b.code for b in self.board]
        initial = codes.index(self.preselect) if self.preselect in codes else 0
        if mine[0].doctor in codes and options.highlighted == initial:
            options.highlighted = codes.index(mine[0].doctor)

    def _show_priority(self) -> None:
        style = "bold" if self.priority == Priority.NORMAL else "bold red"
        self.query_one("#priority", Static).update(
            Text.assemble("Priority: ", (self.priority.value, style)))

    def action_priority(self, level: str) -> None:
        self.priority = Priority(level)
        self._show_priority()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if self.hms.busy("checkin") or event.option.id is None:
            return
        self.show_error("Checking in...")
        # A walk-in, or a patient booked with this doctor today (their booking arrives).
        self.hms.db_call(self.hms.desk.checkin, event.option.id, self.patient_id, self.priority,
                         self.key, done=self.dismiss, failed=self.fail, group="checkin")


class DoctorPicker(Dialog):
    """Pick a doctor (for transfer); returns the code."""


    def __init__(self, title: str, board: tuple[DoctorBoard, ...], exclude: str | None = None
                 ) -> None:
        super().__init__()
        self.title_text = title
        self.board = [b for b in board if b.active and b.code != exclude]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(printable(self.title_text)), classes="title")
            yield OptionList(*[doctor_option(b) for b in self.board])
            yield Static("", classes="error")
        yield Footer()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class PriorityPicker(Dialog):

    def __init__(self, visit: Visit, who: str = "") -> None:
        super().__init__()
        self.visit = visit
        self.who = who or f"{visit.token} {visit.patient_name} ({visit.mrn})"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(printable(f"Priority of {self.who}")), classes="title")
            yield OptionList(*[Option(p.value, id=p.value) for p in Priority])
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = list(Priority).index(self.visit.priority)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class ReasonDialog(Dialog):
    """Ask for a reason (optional or required); returns the text, or None if cancelled."""


    def __init__(self, title: str, *, required: bool, max_length: int = 200) -> None:
        super().__init__()
        self.title_text = title
        self.required = required
        self.max_length = max_length

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(printable(self.title_text)), classes="title")
            yield TextInput(placeholder="Reason" + ("" if self.required else " (optional)"),
                        max_length=self.max_length)
            yield Static("", classes="error")
            yield Static(Text("Enter confirm · Esc cancel", style="dim"))
        yield Footer()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from hms_tui.domain import validation

        try:
            text = validation.clean_text(event.value, "reason", self.max_length,
                                         required=self.required)
        except HmsError as exc:
            self.fail(exc)
            return
        self.dismiss(text)


class ChoiceDialog(Dialog):
    """A question naming what it acts on, and its answers, each with a key: ``choices`` are
    (key, label, value). The first line, the default, is always "Esc  No, leave it": Enter
    alone changes nothing, and the key that opened the dialog, pressed again, does nothing.
    Returns the chosen value, or None."""

    def __init__(self, question: str, choices: list[tuple[str, str, str]],
                 detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.choices = choices
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(printable(self.question)), classes="title")
            if self.detail:
                yield Static(Text(printable(self.detail)))
            yield OptionList(Option(Text("Esc  No, leave it"), id=""),
                             *[Option(Text(f"{key}  {label}", style="bold"), id=value)
                               for key, label, value in self.choices])
            yield Static("", classes="error")
        yield Footer()

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0
        options.focus()

    def on_key(self, event: object) -> None:
        key = getattr(event, "key", "")
        for choice_key, _label, value in self.choices:
            if key == choice_key:
                self.dismiss(value)
                return

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id or None)


class ConfirmDialog(ChoiceDialog):
    """'Void B-2026-0001 ...?': one way to say yes (``key``). Returns True or None."""

    def __init__(self, question: str, key: str, verb: str, detail: str = "") -> None:
        super().__init__(question, [(key, verb, "yes")], detail)

    def dismiss(self, result: object = None) -> Any:
        return super().dismiss(True if result == "yes" else None)
