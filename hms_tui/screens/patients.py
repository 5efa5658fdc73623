"""Patients at reception: register one (or correct one), and the question a second
registration of the same person asks.

Registering someone whose name and date of birth, or phone, match a patient already
registered is refused by the database; the dialog then shows the matches and asks: use one
of them (nothing is written), or register a new patient after all.
"""

from __future__ import annotations

from datetime import date

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from hms_tui.domain import validation
from hms_tui.domain.errors import DuplicatePatient, HmsError, InvalidInput
from hms_tui.domain.models import Patient, PatientMatch
from hms_tui.domain.textsafe import printable
from hms_tui.domain.timefmt import age_on
from hms_tui.screens.dialog import Check, Dialog, FormDialog
from hms_tui.widgets.text_input import TextInput

AnyPatient = Patient | PatientMatch


def patient_label(name: str, mrn: str, age: int | None) -> str:
    """'Kumar, Anil (M000231, 54 y)': who an action is about, the way reception says it."""
    return f"{name} ({mrn}{'' if age is None else f', {age} y'})"


def label_of(patient: AnyPatient, today: date) -> str:
    age = patient.age if isinstance(patient, PatientMatch) else age_on(patient.birth_date, today)
    return patient_label(patient.name, patient.mrn, age)


class RegisterDialog(FormDialog):
    """Register a patient, or correct one (``patient``); every field is checked here with the
    rules the database enforces, each error under its field. Returns the Patient saved, or
    the existing patient chosen instead of a duplicate."""

    BINDINGS = [Binding("escape", "close", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, name: str = "", patient: AnyPatient | None = None) -> None:
        super().__init__()
        self.initial_name = name
        self.patient = patient
        self.allow_duplicate = False

    def compose(self) -> ComposeResult:
        p = self.patient
        with Vertical():
            title = (f"Correct {label_of(p, self.hms.now().date())}" if p
                     else "Register a new patient")
            yield Static(Text(printable(title)), classes="title")
            for field, label, hint, length, value in (
                ("name", "Name", "Full name, as written", validation.NAME_MAX,
                 p.name if p else self.initial_name),
                ("phone", "Phone", "Optional: digits, spaces, -, leading +", 0,
                 (p.phone or "") if p else ""),
                ("dob", "Date of birth", "Optional: YYYY-MM-DD", 0,
                 p.birth_date.isoformat() if p and p.birth_date else ""),
            ):
                with Horizontal():
                    yield Label(label)
                    yield TextInput(value=value, placeholder=hint, id=field, max_length=length,
                                    label=label.lower())
                yield Static("", id=f"{field}-error", classes="field-error")
            yield Static("", classes="error")
            yield Static(Text("Enter next field / save · ctrl+s save · Esc cancel", style="dim"))
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#name", TextInput).focus()

    def checks(self) -> dict[str, Check]:
        return {"name": validation.person_name, "phone": validation.phone,
                "dob": self._check_dob}

    def _check_dob(self, text: str) -> object:
        born = validation.birth_date(text)
        if born is not None and born > self.hms.now().date():
            raise InvalidInput(f"date of birth {born} is in the future")
        return born

    def action_save(self) -> None:
        if not self.check_fields() or self.hms.busy("patient"):
            return
        name, phone, dob = self.value("name"), self.value("phone"), self.value("dob")
        self.show_error("Saving...")
        desk = self.hms.desk
        if self.patient is None:
            self.hms.db_call(desk.add_patient, name, phone or None, dob or None,
                             allow_duplicate=self.allow_duplicate, done=self.dismiss,
                             failed=self._failed, group="patient")
        else:
            self.hms.db_call(desk.update_patient, self.patient.id, name=name, phone=phone,
                             birth_date=dob, done=self.dismiss, failed=self._failed,
                             group="patient")

    def _failed(self, exc: HmsError) -> None:
        if not isinstance(exc, DuplicatePatient):
            self.fail(exc)
            return
        self.show_error("")
        matches = [m for m in exc.matches if isinstance(m, PatientMatch)]
        self.app.push_screen(DuplicateDialog(self.value("name"), matches), self._decided)

    def _decided(self, choice: PatientMatch | str | None) -> None:
        if isinstance(choice, PatientMatch):
            self.dismiss(choice)  # the patient was registered already: use that record
        elif choice == "new":
            self.allow_duplicate = True
            self.action_save()


class DuplicateDialog(Dialog):
    """'Already registered?': the matching patients, or register a new one anyway. Returns
    the chosen PatientMatch, "new", or None (back to the form)."""

    NEW = "__new__"

    def __init__(self, name: str, matches: list[PatientMatch]) -> None:
        super().__init__()
        self.name_typed = name
        self.matches = matches

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(printable(f"{self.name_typed} may be registered already")),
                         classes="title")
            yield Static(Text("Same name and date of birth, or same phone. Is it one of these?",
                              style="dim"))
            options = [Option(Text(printable(self._describe(m))), id=str(m.id))
                       for m in self.matches]
            options.append(Option(Text("Someone else: register a new patient", style="bold"),
                                  id=self.NEW))
            yield OptionList(*options)
            yield Static("", classes="error")
            yield Static(Text("Enter choose · Esc back to the form", style="dim"))
        yield Footer()

    @staticmethod
    def _describe(m: PatientMatch) -> str:
        born = f" · born {m.birth_date}" if m.birth_date else ""
        phone = f" · {m.phone}" if m.phone else ""
        return f"Use {patient_label(m.name, m.mrn, m.age)}{born}{phone}"

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0  # the first match: Enter uses the record already there
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id == self.NEW:
            self.dismiss("new")
            return
        self.dismiss(next(m for m in self.matches if str(m.id) == event.option.id))
