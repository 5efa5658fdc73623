"""Reception: find or register a patient, check them in, watch the queues, bill visits.

Typing goes straight into the search; Enter opens the check-in with the last-used doctor
preselected; Enter again confirms. Three keystrokes for a returning walk-in.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Input, Static

from hms_tui.domain.events import BoardUpdate, QueueUpdate
from hms_tui.domain.models import Bill, Patient, PatientMatch, Priority, Visit
from hms_tui.domain.textsafe import printable
from hms_tui.domain.timefmt import minutes_since
from hms_tui.screens.base import LiveScreen
from hms_tui.screens.forms import BillDialog, ReceiptDialog, RegisterDialog, VoidBillDialog
from hms_tui.screens.pickers import CheckinDialog, DoctorPicker, PriorityPicker, ReasonDialog
from hms_tui.widgets.bigtext import BigText
from hms_tui.widgets.queue_table import DiffTable, cell
from hms_tui.widgets.text_input import TextInput

SEARCH_DEBOUNCE = 0.15


def queue_row(v: Visit, now: datetime) -> tuple[str, list[Text | str]]:
    pos = str(v.position) if v.position is not None else ("now" if v.status.value ==
                                                          "IN_CONSULTATION" else "called")
    prio = "" if v.priority == Priority.NORMAL else v.priority.value
    est = f"~{v.wait_minutes}m" if v.wait_minutes is not None else ""
    return str(v.visit_id), [pos, cell(v.token, "bold"), cell(v.patient_name),
                             cell(prio, "bold red"), minutes_since(v.checked_in_at, now), est]


class ReceptionScreen(LiveScreen):
    BINDINGS = [
        *LiveScreen.BINDINGS,
        Binding("f2", "focus_search", "Find"),
        Binding("f3", "register", "New patient"),
        Binding("f4", "checkin", "Check in"),
        Binding("f5", "bill", "Bill"),
        Binding("f6", "void_bill", "Void bill"),
        Binding("c", "cancel_visit", "Cancel visit"),
        Binding("t", "transfer", "Transfer"),
        Binding("p", "priority", "Priority"),
        Binding("f7", "other_doctor(-1)", "Prev doctor", show=False),
        Binding("f8", "other_doctor(1)", "Next doctor", show=False),
        Binding("escape", "focus_search", "Find", show=False),
        Binding("ctrl+q", "app.quit", "Quit"),
    ]
    DEFAULT_CSS = """
    ReceptionScreen #main { height: 1fr; }
    ReceptionScreen #left, ReceptionScreen #right { width: 1fr; }
    ReceptionScreen .box { border: round $primary-darken-1; }
    ReceptionScreen .box:focus-within { border: round $accent; }
    ReceptionScreen #find { height: 1fr; }
    ReceptionScreen #results { height: 1fr; }
    ReceptionScreen #last { height: 9; }
    ReceptionScreen #last-token { height: 5; }
    ReceptionScreen #last-detail { height: 2; padding: 0 1; }
    ReceptionScreen #board-box { height: auto; max-height: 10; }
    ReceptionScreen #board { height: auto; max-height: 8; }
    ReceptionScreen #queue-box { height: 1fr; }
    ReceptionScreen #queue { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.doctor: str | None = None  # whose queue is shown on the right
        self.last_doctor: str | None = None  # preselected at the next check-in
        self.last_visit: Visit | None = None
        self.matches: dict[str, PatientMatch] = {}

    def compose(self) -> ComposeResult:
        label = self.hms.settings.terminal.label or ""
        yield self.title_bar(f"hms-tui · Reception{' · ' + label if label else ''}")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                with Vertical(id="find", classes="box") as find:
                    find.border_title = "Find or register (F2)"
                    yield TextInput(placeholder="name, MRN or phone · F3 new patient",
                                id="search", max_length=100)
                    yield DiffTable(["MRN", "Name", "Phone", "Age", "Today"], id="results")
                with Vertical(id="last", classes="box") as last:
                    last.border_title = "Last check-in"
                    yield BigText("", ascii_only=self.hms.ascii_only, id="last-token")
                    yield Static("", id="last-detail")
            with Vertical(id="right"):
                with Vertical(id="board-box", classes="box") as board:
                    board.border_title = "Queues today"
                    yield DiffTable(["Dr", "Name", "Room", "Serving", "Wait"], id="board")
                with Vertical(id="queue-box", classes="box"):
                    yield DiffTable(["#", "Token", "Patient", "Pri", "Waited", "Est"],
                                    id="queue")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#search", Input).focus()
        if self.hms.live.board:
            self.board_changed(BoardUpdate(self.hms.live.board, "initial"))
        self.run_search()
        self.set_interval(30, self.redraw_queue)  # waiting minutes tick on

    # -- helpers -------------------------------------------------------------------------------

    def table(self, name: str) -> DiffTable:
        return self.query_one(f"#{name}", DiffTable)

    def selected_patient(self) -> PatientMatch | None:
        key = self.table("results").selected_key()
        return self.matches.get(key) if key else None

    def selected_visit(self) -> Visit | None:
        key = self.table("queue").selected_key()
        for v in self.hms.live.queues.get(self.doctor or "", ()):
            if str(v.visit_id) == key:
                return v
        return None

    # -- search --------------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "search":
            self.run_search()

    def run_search(self) -> None:
        """Search for what the box holds; a newer search supersedes this one (typing on)."""
        text = self.query_one("#search", Input).value
        self.hms.db_call(self.hms.desk.search_patients, text, 50, done=self._show_matches,
                         group="search", exclusive=True, delay=SEARCH_DEBOUNCE)

    def _show_matches(self, found: list[PatientMatch]) -> None:
        self.matches = {str(p.id): p for p in found}
        results = self.table("results")
        results.sync([
            (str(p.id), [cell(p.mrn), cell(p.name, "bold"), cell(p.phone),
                         "" if p.age is None else str(p.age), cell(p.active_visits)])
            for p in found])
        if found:
            results.move_cursor(row=0, animate=False)  # a new search: the best match first

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "search":
            self.action_checkin()

    def on_key(self, event: object) -> None:
        key = getattr(event, "key", "")
        search = self.query_one("#search", Input)
        if search.has_focus and key in ("down", "up"):
            results = self.table("results")
            results.action_cursor_down() if key == "down" else results.action_cursor_up()

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    # -- check in and register -----------------------------------------------------------------

    def action_checkin(self) -> None:
        patient = self.selected_patient()
        if patient is None:
            self.notify("Find a patient first (or F3 to register one).", severity="warning")
            return
        self.open_checkin(patient.id, patient.name)

    def open_checkin(self, patient_id: int, name: str) -> None:
        dialog = CheckinDialog(patient_id, name, self.hms.live.board,
                               self.last_doctor or self.doctor)
        self.app.push_screen(dialog, self._checked_in)

    def _checked_in(self, visit: Visit | None) -> None:
        if visit is None:
            return
        self.last_visit = visit
        self.last_doctor = visit.doctor
        self.show_doctor(visit.doctor)
        self.show_last_checkin(visit)
        if visit.replayed:
            self.notify(f"{visit.token}: this check-in was already done (same request).")
        search = self.query_one("#search", Input)
        search.value = ""
        search.focus()

    def show_last_checkin(self, visit: Visit) -> None:
        self.query_one("#last-token", BigText).update(visit.token or "")
        where = ", ".join(p for p in (visit.doctor_name, visit.room) if p)
        wait = f" · ~{visit.wait_minutes} min" if visit.wait_minutes is not None else ""
        pos = f"position {visit.position}" if visit.position else visit.status.value
        first = printable(f"{visit.token}  {visit.patient_name} ({visit.mrn})")
        second = printable(f"{where} · {pos}{wait}")
        self.query_one("#last-detail", Static).update(Text(f"{first}\n{second}"))

    def action_register(self) -> None:
        text = self.query_one("#search", Input).value
        prefill = "" if any(ch.isdigit() for ch in text) else text
        self.app.push_screen(RegisterDialog(prefill), self._registered)

    def _registered(self, patient: Patient | None) -> None:
        if patient is not None:
            self.notify(printable(f"Registered {patient.name} ({patient.mrn})"), markup=False)
            self.open_checkin(patient.id, patient.name)

    # -- queues --------------------------------------------------------------------------------

    def board_changed(self, event: BoardUpdate) -> None:
        self.table("board").sync([
            (b.code, [cell(b.code, "bold"), cell(b.name), cell(b.room), cell(b.serving),
                      str(b.waiting)])
            for b in event.board if b.active])
        if self.doctor is None and event.board:
            self.show_doctor(event.board[0].code)

    def queue_changed(self, event: QueueUpdate) -> None:
        if event.doctor == self.doctor:
            self.redraw_queue()
        if self.last_visit is not None and event.doctor == self.last_visit.doctor:
            fresh = next((v for v in event.visits if v.visit_id == self.last_visit.visit_id), None)
            if fresh is not None:
                self.last_visit = fresh
                self.show_last_checkin(fresh)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "board" and event.row_key.value:
            self.show_doctor(str(event.row_key.value))

    def show_doctor(self, code: str) -> None:
        if code != self.doctor:
            self.doctor = code
            name = next((b.name for b in self.hms.live.board if b.code == code), code)
            # Text, not str: a str title is parsed as markup (a doctor named "[/b]" crashed it)
            self.query_one("#queue-box").border_title = Text(printable(f"{code} queue · {name}"))
            self.table("queue").sync([])
        self.redraw_queue()

    def redraw_queue(self) -> None:
        now = self.hms.now()
        visits = self.hms.live.queues.get(self.doctor or "", ())
        self.table("queue").sync([queue_row(v, now) for v in visits])

    def action_other_doctor(self, step: int) -> None:
        codes = [b.code for b in self.hms.live.board if b.active]
        if codes:
            i = codes.index(self.doctor) if self.doctor in codes else 0
            self.show_doctor(codes[(i + step) % len(codes)])

    # -- actions on the selected visit ---------------------------------------------------------

    def _visit_or_warn(self) -> Visit | None:
        """The visit under the queue's cursor, when the queue has the focus (so a letter typed
        elsewhere never acts on a visit by surprise)."""
        visit = self.selected_visit() if self.table("queue").has_focus else None
        if visit is None:
            self.notify("Select a visit in the queue first (Tab to the queue, arrows).",
                        severity="warning")
        return visit

    def action_cancel_visit(self) -> None:
        visit = self._visit_or_warn()
        if visit is None:
            return

        def confirmed(reason: str | None) -> None:
            if reason is not None:
                self.hms.db_call(self.hms.desk.cancel, visit.visit_id, reason or None,
                                 done=lambda v: self.notify(f"{v.token} cancelled"))

        self.app.push_screen(ReasonDialog(f"Cancel {visit.token} {visit.patient_name}?",
                                          required=False), confirmed)

    def action_transfer(self) -> None:
        visit = self._visit_or_warn()
        if visit is None:
            return

        def picked(code: str | None) -> None:
            if code:
                self.hms.db_call(self.hms.desk.transfer, visit.visit_id, code,
                                 done=self._transferred)

        self.app.push_screen(DoctorPicker(f"Transfer {visit.token} {visit.patient_name} to",
                                          self.hms.live.board, exclude=visit.doctor), picked)

    def _transferred(self, visit: Visit) -> None:
        self.notify(printable(f"Transferred: new token {visit.token} with {visit.doctor_name}"),
                    markup=False)
        self.last_visit = visit
        self.show_last_checkin(visit)
        self.show_doctor(visit.doctor)

    def action_priority(self) -> None:
        visit = self._visit_or_warn()
        if visit is None:
            return

        def picked(level: str | None) -> None:
            if level:
                self.hms.db_call(self.hms.desk.set_priority, visit.visit_id, level)

        self.app.push_screen(PriorityPicker(visit), picked)

    def action_bill(self) -> None:
        visit = self.selected_visit() if self.table("queue").has_focus else None
        visit = visit or self.last_visit or self.selected_visit()
        if visit is None:
            self.notify("Select a visit in the queue (or check one in) to bill it.",
                        severity="warning")
            return
        self.app.push_screen(BillDialog(visit), self._billed)

    def _billed(self, bill: Bill | None) -> None:
        if bill is not None:
            self.app.push_screen(ReceiptDialog(bill))

    def action_void_bill(self) -> None:
        def voided(bill: Bill | None) -> None:
            if bill is not None:
                self.notify(f"{bill.bill_number} is void")
                self.app.push_screen(ReceiptDialog(bill))

        self.app.push_screen(VoidBillDialog(), voided)
