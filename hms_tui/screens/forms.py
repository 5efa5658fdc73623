"""Form dialogs: register a patient, bill a visit, void a bill, a receipt, a visit timeline."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from decimal import Decimal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Input, Label, Static

from hms_tui.domain import validation
from hms_tui.domain.errors import HmsError
from hms_tui.domain.models import Bill, Patient, TimelineEntry, Visit
from hms_tui.domain.textsafe import printable
from hms_tui.domain.timefmt import duration
from hms_tui.screens.dialog import Dialog, FormDialog
from hms_tui.services.receipt import format_receipt, print_receipt, save_receipt
from hms_tui.widgets.queue_table import cell
from hms_tui.widgets.text_input import TextInput


class RegisterDialog(FormDialog):
    """Register a patient; every field is checked here with the same rules the database
    enforces, and each error appears under its field. Returns the new Patient."""

    BINDINGS = [Binding("escape", "close", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, name: str = "") -> None:
        super().__init__()
        self.initial_name = name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Register a new patient", classes="title")
            for field, label, hint, length in (
                ("name", "Name", "Full name, as written", validation.NAME_MAX),
                ("phone", "Phone", "Optional: digits, spaces, -, leading +", 21),
                ("dob", "Date of birth", "Optional: YYYY-MM-DD", 10),
            ):
                with Horizontal():
                    yield Label(label)
                    yield TextInput(placeholder=hint, id=field, max_length=length)
                yield Static("", id=f"{field}-error", classes="field-error")
            yield Static("", classes="error")
            yield Static(Text("Enter next field / save · ctrl+s save · Esc cancel", style="dim"))
        yield Footer()

    def on_mount(self) -> None:
        name = self.query_one("#name", Input)
        name.value = self.initial_name
        name.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "dob":
            self.action_save()
        else:
            self.focus_next()

    def action_save(self) -> None:
        values = {f: self.query_one(f"#{f}", Input).value for f in ("name", "phone", "dob")}
        checks: dict[str, Callable[[], object]] = {
            "name": lambda: validation.person_name(values["name"]),
            "phone": lambda: validation.phone(values["phone"]),
            "dob": lambda: validation.birth_date(values["dob"]),
        }
        ok = True
        for field, check in checks.items():
            message = ""
            try:
                check()
            except HmsError as exc:
                message, ok = str(exc), False
            self.query_one(f"#{field}-error", Static).update(Text(printable(message)))
        if not ok:
            return
        self.show_error("Saving...")
        self.hms.db_call(self.hms.desk.add_patient, values["name"], values["phone"] or None,
                         values["dob"] or None, done=self._saved, failed=self.fail)

    def _saved(self, patient: Patient) -> None:
        self.dismiss(patient)


class BillDialog(FormDialog):
    """Bill a visit: add lines (description, amount), then ctrl+s issues the bill with the
    next number of the year. Returns the Bill."""

    DEFAULT_CSS = """
    BillDialog DataTable { height: auto; max-height: 10; }
    """
    BINDINGS = [
        Binding("escape", "close", "Cancel"),
        Binding("ctrl+s", "issue", "Issue bill"),
        # priority: the focused Input binds ctrl+d (delete right) and would swallow it
        Binding("ctrl+d", "drop_line", "Remove last line", priority=True),
    ]

    def __init__(self, visit: Visit) -> None:
        super().__init__()
        self.visit = visit
        self.items: list[tuple[str, Decimal]] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(printable(f"Bill for {self.visit.token or 'visit'} "
                                        f"{self.visit.patient_name} · {self.visit.doctor_name}")),
                         classes="title")
            yield DataTable(cursor_type="none", id="lines")
            with Horizontal():
                yield Label("Item")
                yield TextInput(placeholder="e.g. Consultation", id="desc",
                            max_length=validation.ITEM_MAX)
            with Horizontal():
                yield Label("Amount")
                yield TextInput(placeholder="e.g. 500 or 120.50", id="amount", max_length=12)
            yield Static("", id="total")
            yield Static("", classes="error")
            yield Static(Text("Enter add line · ctrl+s issue · ctrl+d remove last · Esc cancel",
                              style="dim"))
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#lines", DataTable).add_columns("#", "Item", "Amount")
        self.query_one("#desc", Input).focus()
        self._show_total()

    def _show_total(self) -> None:
        total = sum((a for _, a in self.items), Decimal(0))
        self.query_one("#total", Static).update(
            Text(f"Total {total:.2f} · {len(self.items)} line(s)", style="bold"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "desc":
            self.query_one("#amount", Input).focus()
            return
        desc, amount = self.query_one("#desc", Input), self.query_one("#amount", Input)
        try:
            item = validation.bill_item(f"{desc.value}={amount.value}")
        except HmsError as exc:
            self.fail(exc)
            return
        if len(self.items) >= validation.BILL_ITEMS_MAX:
            self.show_error(f"A bill has at most {validation.BILL_ITEMS_MAX} lines.")
            return
        self.items.append(item)
        self.query_one("#lines", DataTable).add_row(
            str(len(self.items)), cell(item[0]), f"{item[1]:.2f}")
        desc.value = amount.value = ""
        desc.focus()
        self.show_error("")
        self._show_total()

    def action_drop_line(self) -> None:
        if self.items:
            self.items.pop()
            table = self.query_one("#lines", DataTable)
            table.clear()
            for i, (d, a) in enumerate(self.items, 1):
                table.add_row(str(i), cell(d), f"{a:.2f}")
            self._show_total()

    def action_issue(self) -> None:
        if self.hms.busy("bill"):
            return
        if not self.items:
            self.show_error("Add at least one line (item, then amount, then Enter).")
            return
        self.show_error("Issuing...")
        self.hms.db_call(self.hms.desk.create_bill, self.visit.visit_id, list(self.items),
                         done=self.dismiss, failed=self.fail, group="bill")


class VoidBillDialog(FormDialog):
    """Void a bill by number, with a reason. Returns the voided Bill."""


    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Void a bill (its number stays used)", classes="title")
            with Horizontal():
                yield Label("Bill")
                yield TextInput(placeholder="B-2026-0001", id="bill", max_length=40)
            with Horizontal():
                yield Label("Reason")
                yield TextInput(placeholder="Required", id="reason",
                            max_length=validation.REASON_MAX)
            yield Static("", classes="error")
        yield Footer()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "bill":
            self.query_one("#reason", Input).focus()
            return
        bill = self.query_one("#bill", Input).value
        reason = self.query_one("#reason", Input).value
        self.hms.db_call(self.hms.desk.void_bill, bill, reason, done=self.dismiss,
                         failed=self.fail)


class ReceiptDialog(Dialog):
    """A bill's receipt as plain text: s saves it to a file, p prints it with lp."""

    DEFAULT_CSS = """
    ReceiptDialog #receipt { height: auto; max-height: 20; overflow-y: auto; }
    """
    BINDINGS = [
        Binding("escape,enter", "close", "Close"),
        Binding("s", "save", "Save to file"),
        Binding("p", "print", "Print"),
    ]

    def __init__(self, bill: Bill) -> None:
        super().__init__()
        self.bill = bill
        self.text = ""

    def compose(self) -> ComposeResult:
        self.text = format_receipt(self.bill, self.hms.clinic_name, self.hms.clinic_zone)
        with Vertical():
            yield Static(Text(self.text), id="receipt")
            yield Static("", classes="error")
            yield Static(Text("s save to file · p print · Esc close", style="dim"))
        yield Footer()

    def action_save(self) -> None:
        try:
            path = save_receipt(self.bill, self.text)
        except OSError as exc:
            self.show_error(f"Could not save: {exc}")
            return
        self.show_error(f"Saved to {path}")

    def action_print(self) -> None:
        self.show_error("Printing...")
        self.run_worker(self._print, thread=True, exit_on_error=False)

    def _print(self) -> None:
        """In a thread: a slow or hung printer never freezes the screen."""
        try:
            answer = print_receipt(self.text)
        except (OSError, subprocess.SubprocessError) as exc:
            self.app.call_from_thread(self.show_error, str(exc))
            return
        self.app.call_from_thread(self.show_error, f"Sent to the printer {answer}".strip())


class TimelineDialog(Dialog):
    """A visit's history from the audit trail."""

    DEFAULT_CSS = """
    TimelineDialog > Vertical { width: 100; }
    TimelineDialog DataTable { height: auto; max-height: 20; }
    """

    def __init__(self, visit_id: int, title: str) -> None:
        super().__init__()
        self.visit_id = visit_id
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(printable(self.title_text)), classes="title")
            yield DataTable(cursor_type="row", id="events")
            yield Static("", classes="error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("Time", "+", "Action", "Status", "Who", "Terminal")
        self.hms.db_call(self.hms.desk.timeline, self.visit_id, done=self._show, failed=self.fail)

    def _show(self, entries: list[TimelineEntry]) -> None:
        table = self.query_one(DataTable)
        for e in entries:
            status = (f"{e.status_before or ''} -> {e.status_after or ''}"
                      if e.status_before != e.status_after else (e.status_after or ""))
            since = f"+{duration(e.since_previous)}" if e.since_previous is not None else ""
            table.add_row(e.at.astimezone(self.hms.clinic_zone).strftime("%H:%M:%S"), since,
                          cell(e.action), cell(status), cell(e.actor), cell(e.terminal))
        table.focus()
