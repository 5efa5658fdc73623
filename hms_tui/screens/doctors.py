"""Admin's doctors: the add/edit form, and taking a doctor off for the day.

Deactivating is destructive for the patients waiting: it asks first, naming the doctor and
how many patients are waiting or called, and offers to transfer them to another doctor (in
their order) before the doctor is taken off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Label, Static

from hms_tui.domain import validation
from hms_tui.domain.models import Doctor, Status
from hms_tui.domain.textsafe import printable
from hms_tui.screens.dialog import Check, FormDialog
from hms_tui.screens.pickers import ChoiceDialog, DoctorPicker
from hms_tui.services.desk import Desk
from hms_tui.widgets.text_input import TextInput

if TYPE_CHECKING:
    from hms_tui.app import HmsApp


class DoctorDialog(FormDialog):
    """Add a doctor, or edit one (code fixed). Returns the saved Doctor."""

    BINDINGS = [Binding("escape", "close", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, doctor: Doctor | None = None) -> None:
        super().__init__()
        self.doctor = doctor

    def compose(self) -> ComposeResult:
        d = self.doctor
        with Vertical():
            yield Static(Text(printable(f"Edit {d.name} ({d.code})")) if d else "Add a doctor",
                         classes="title")
            for field, label, value, hint in (
                ("code", "Code", d.code if d else "", "e.g. D5"),
                ("name", "Name", d.name if d else "", "e.g. Dr Rao"),
                ("room", "Room", (d.room or "") if d else "", "optional"),
                ("prefix", "Token prefix", d.token_prefix if d else "", "default: the code"),
            ):
                with Horizontal():
                    yield Label(label)
                    yield TextInput(value=value, placeholder=hint, id=field, label=label.lower(),
                                    disabled=bool(d) and field == "code")
                yield Static("", id=f"{field}-error", classes="field-error")
            yield Static("", classes="error")
            yield Static(Text("Enter next · ctrl+s save · Esc cancel", style="dim"))
        yield Footer()

    def checks(self) -> dict[str, Check]:
        found: dict[str, Check] = {
            "name": validation.person_name,
            "room": lambda t: validation.optional_text(t, "room", validation.ROOM_MAX),
            "prefix": lambda t: validation.token_prefix(t) if t.strip() else None,
        }
        if self.doctor is None:
            found = {"code": validation.doctor_code, **found}
        return found

    def action_save(self) -> None:
        if not self.check_fields():
            return
        v = {f: self.value(f) for f in ("code", "name", "room", "prefix")}
        desk = self.hms.desk
        if self.doctor is None:
            self.hms.db_call(desk.add_doctor, v["code"], v["name"], v["room"] or None,
                             v["prefix"] or None, done=self.dismiss, failed=self.fail)
        else:
            self.hms.db_call(desk.update_doctor, self.doctor.code, name=v["name"],
                             room=v["room"], prefix=v["prefix"] or None,
                             done=self.dismiss, failed=self.fail)


def take_off(desk: Desk, code: str, to: str | None) -> tuple[Doctor, int]:
    """Off the UI loop: transfer the doctor's waiting and called patients (if ``to``), then
    deactivate. Returns the doctor and how many patients moved."""
    moved = desk.transfer_all(code, to) if to else []
    return desk.update_doctor(code, active=False), len(moved)


def deactivate(app: HmsApp, doctor: Doctor, done: Callable[[tuple[Doctor, int]], object]
               ) -> None:
    """Ask, naming the doctor and the patients still in their queue; then deactivate, after
    transferring those patients when asked to."""
    queue = app.live.queues.get(doctor.code, ())
    waiting = sum(1 for v in queue if v.status == Status.WAITING)
    called = sum(1 for v in queue if v.status == Status.CALLED)
    inside = sum(1 for v in queue if v.status == Status.IN_CONSULTATION)
    who = f"{doctor.name} ({doctor.code})"
    choices = [("y", "Deactivate: no new patients", "off")]
    detail = "Nobody is waiting for them."
    if waiting or called or inside:
        parts = [f"{n} {what}" for n, what in ((waiting, "waiting"), (called, "called"),
                                                (inside, "in consultation")) if n]
        detail = (f"{', '.join(parts)}. They stay in this queue unless transferred"
                  + (" (a patient in consultation is finished here)." if inside else "."))
        choices.insert(0, ("t", f"Transfer the {waiting + called} waiting and called to "
                              "another doctor, then deactivate", "transfer"))

    def answered(choice: str | None) -> None:
        if choice == "off":
            app.db_call(take_off, app.desk, doctor.code, None, done=done)
        elif choice == "transfer":
            app.push_screen(DoctorPicker(f"Transfer the patients of {who} to", app.live.board,
                                         exclude=doctor.code), picked)

    def picked(target: str | None) -> None:
        if target:
            app.db_call(take_off, app.desk, doctor.code, target, done=done)

    app.push_screen(ChoiceDialog(f"Deactivate {who}?", choices, detail), answered)

