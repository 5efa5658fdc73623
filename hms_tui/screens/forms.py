"""Form dialogs: bill a visit, void a bill, a receipt, a visit timeline. (Registering and
correcting a patient: ``patients.py``.)"""

from __future__ import annotations

import subprocess
from decimal import Decimal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Input, Label, Static

from hms_tui.domain import validation
from hms_tui.domain.errors import HmsError
from hms_tui.domain.models import Bill, TimelineEntry, Visit
from hms_tui.domain.textsafe import printable
from hms_tui.domain.timefmt import duration
from hms_tui.screens.dialog import Check, Dialog, FormDialog
from hms_tui.screens.pickers import ConfirmDialog
from hms_tui.services.receipt import format_receipt, print_receipt, save_receipt
from hms_tui.widgets.queue_table import cell
from hms_tui.widgets.text_input import TextInput


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

    def __init__(self, visit: Visit, who: str = "") -> None:
        super().__init__()
        self.visit = visit
        self.who = who or f"{visit.token or 'visit'} {visit.patient_name} ({visit.mrn})"
        self.items: list[tuple[str, Decimal]] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(printable(f"Bill for {self.who} · {self.visit.doctor_name}")),
                         classes="title")
            yield DataTable(cursor_type="none", id="lines")
            with Horizontal():
                yield Label("Item")
                yield TextInput(placeholder="e.g. Consultation", id="desc",
                                max_length=validation.ITEM_MAX, label="the item")
            with Horizontal():
                yield Label("Amount")
                yield TextInput(placeholder="e.g. 500 or 120.50", id="amount", label="the amount")
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
        event.stop()
        event.prevent_default()  # this form's Enter: add the line (not FormDialog's)
        desc, amount = self.query_one("#desc", Input), self.query_one("#amount", Input)
        if event.input.id == "desc":
            try:
                validation.clean_text(desc.value, "the item", validation.ITEM_MAX)
            except HmsError as exc:
                self.fail(exc)
                return
            self.show_error("")
            amount.focus()
            return
        try:
            item = validation.bill_item(f"{desc.value}={amount.value}")
        except HmsError as exc:
            self.fail(exc)
            (desc if not desc.value.strip() else amount).focus()
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
        desc, amount = self.query_one("#desc", Input), self.query_one("#amount", Input)
        if desc.value.strip() or amount.value.strip():
            # A half-typed line is never dropped on the way to the bill.
            self.show_error("Finish the line being typed (Enter adds it) or clear it first.")
            (amount if desc.value.strip() else desc).focus()
            return
        if not self.items:
            self.show_error("Add at least one line (item, then amount, then Enter).")
            return
        self.show_error("Issuing...")
        self.hms.db_call(self.hms.desk.create_bill, self.visit.visit_id, list(self.items),
                         done=self.dismiss, failed=self.fail, group="bill")


class VoidBillDialog(FormDialog):
    """Void a bill by number, with a reason; the bill is read and shown first, and voided
    only once confirmed. Returns the voided Bill."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Void a bill (its number stays used)", classes="title")
            with Horizontal():
                yield Label("Bill")
                yield TextInput(placeholder="B-2026-0001", id="bill", max_length=40,
                                label="the bill number")
            yield Static("", id="bill-error", classes="field-error")
            with Horizontal():
                yield Label("Reason")
                yield TextInput(placeholder="Required", id="reason",
                                max_length=validation.REASON_MAX, label="the reason")
            yield Static("", id="reason-error", classes="field-error")
            yield Static("", classes="error")
        yield Footer()

    def checks(self) -> dict[str, Check]:
        return {"bill": lambda t: validation.clean_text(t, "bill number", 40),
                "reason": lambda t: validation.clean_text(t, "reason", validation.REASON_MAX)}

    def action_save(self) -> None:
        if not self.check_fields():
            return
        self.show_error("Finding the bill...")
        self.hms.db_call(self.hms.desk.bill, self.value("bill"), done=self._confirm,
                         failed=self.fail)

    def _confirm(self, bill: Bill) -> None:
        self.show_error("")
        if bill.status == "VOID":
            self.show_error(f"{bill.bill_number} is void already.")
            return
        what = (f"Void {bill.bill_number}: {bill.patient_name} ({bill.mrn}), "
                f"{bill.token or ''} {bill.doctor_name}, total {bill.total:.2f}?")

        def answered(yes: bool | None) -> None:
            if yes:
                self.show_error("Voiding...")
                self.hms.db_call(self.hms.desk.void_bill, bill.bill_number, self.value("reason"),
                                 done=self.dismiss, failed=self.fail)

        self.app.push_screen(ConfirmDialog(what, "v", "Void it"), answered)


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
