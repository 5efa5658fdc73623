"""Reception: find or register a patient, check them in, watch the queues, bill visits.

Typing goes straight into the search; Enter opens the check-in with the last-used doctor
preselected; Enter again confirms. Three keystrokes for a returning walk-in.

Enter acts on exactly what the text typed finds, never on rows left from an earlier search: a
barcode scanner or a paste types an MRN and Enter within milliseconds, long before the search
for it has answered. So Enter waits for the answer to the text in the box (and an exact MRN
or phone match goes straight to that patient); an empty box does nothing; a search that
failed (an outage) forgets the Enter, so nothing typed meanwhile fires later.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Static

from hms_tui.domain.errors import HmsError
from hms_tui.domain.events import BillUpdate, BoardUpdate, QueueUpdate, Refreshed
from hms_tui.domain.models import Bill, Patient, PatientMatch, Priority, Visit
from hms_tui.domain.textsafe import printable
from hms_tui.domain.timefmt import minutes_since
from hms_tui.screens.arrivals import ExpectedDialog
from hms_tui.screens.base import LiveScreen
from hms_tui.screens.booking import BookDialog
from hms_tui.screens.forms import BillDialog, ReceiptDialog, VoidBillDialog
from hms_tui.screens.patients import AnyPatient, RegisterDialog, label_of
from hms_tui.screens.pickers import CheckinDialog, DoctorPicker, PriorityPicker, ReasonDialog
from hms_tui.screens.slip_preview import REPRINT_KEY, ReprintPicker, offer_slip
from hms_tui.widgets.bigtext import BigText
from hms_tui.widgets.keybar import KeyBar
from hms_tui.widgets.queue_table import DiffTable, cell, short_cell
from hms_tui.widgets.text_input import TextInput

SEARCH_DEBOUNCE = 0.15
REFRESH_SEARCH_EVERY = 1.0  # the list is read again after changes at most this often
QUEUE_TICK = 1.0  # seconds between redraws of the waiting minutes (only changed cells)
NAME_CELLS = 24  # a queue row shows this much of a name (the dialogs show it whole)
VISIT_ACTIONS = ("cancel_visit", "transfer", "priority")
QUEUE_COLUMNS = ["#", "Token", "Priority", "Patient", "Waited", "Est"]
PRI_COL, PATIENT_COL = 2, 3


def eta(v: Visit, zone: tzinfo) -> str:
    """When a waiting patient may expect to be called: '10:05-10:20' (the database's range)."""
    if v.eta_from is None or v.eta_to is None:
        return ""
    return f"{v.eta_from.astimezone(zone):%H:%M}-{v.eta_to.astimezone(zone):%H:%M}"


def queue_row(v: Visit, now: datetime) -> tuple[str, list[Text | str]]:
    pos = str(v.position) if v.position is not None else ("now" if v.status.value ==
                                                          "IN_CONSULTATION" else "called")
    prio = "" if v.priority == Priority.NORMAL else v.priority.value
    est = eta(v, now.tzinfo or UTC)
    # Priority before the name: a long name must never push it off a narrow screen.
    return str(v.visit_id), [pos, cell(v.token, "bold"), cell(prio, "bold red"),
                             short_cell(v.patient_name, NAME_CELLS),
                             minutes_since(v.checked_in_at, now), est]


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def exact_match(text: str, found: list[PatientMatch]) -> PatientMatch | None:
    """The one patient an MRN or a whole phone number names (what a scanner or a paste
    types), else None."""
    wanted = text.strip().lower()
    by_mrn = [p for p in found if p.mrn.lower() == wanted]
    if len(by_mrn) == 1:
        return by_mrn[0]
    number = digits(text)
    if len(number) >= 6 and re.fullmatch(r"[\d\s+-]+", text.strip()):
        by_phone = [p for p in found if p.phone and digits(p.phone) == number]
        if len(by_phone) == 1:
            return by_phone[0]
    return None


class ReceptionScreen(LiveScreen):
    BINDINGS = [
        *LiveScreen.BINDINGS,
        # At 80 columns the key bar has two rows: short words, and F2 is named in the box title.
        Binding("f2", "focus_search", "Find", show=False),
        Binding("f3", "register", "New"),
        Binding("f4", "checkin", "Check in"),
        Binding("f5", "bill", "Bill"),
        Binding("f6", "void_bill", "Void bill"),
        Binding("f7", "other_doctor(-1)", "Doctor"),
        Binding("f8", "other_doctor(1)", "Doctor"),
        Binding("f9", "edit_patient", "Edit"),
        Binding("f10", "book", "Book"),
        Binding("f12", "expected", "Expected"),
        Binding("c", "cancel_visit", "Cancel"),
        Binding("t", "transfer", "Transfer"),
        Binding("p", "priority", "Priority"),
        Binding(REPRINT_KEY, "reprint", "Reprint"),
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
        self.shown_query: str | None = None  # the text whose results the table shows
        self.pending_enter: str | None = None  # Enter pressed for this text, not answered yet
        self.picked = False  # the person moved the cursor in these results (arrows)

    def compose(self) -> ComposeResult:
        label = self.hms.settings.terminal.label or ""
        yield self.title_bar(f"hms-tui · Reception{' · ' + label if label else ''}")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                with Vertical(id="find", classes="box") as find:
                    find.border_title = "Find or register (F2)"
                    yield TextInput(placeholder="name, MRN or phone · F3 new patient",
                                    id="search", max_length=100, label="the search")
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
                    yield DiffTable(QUEUE_COLUMNS, id="queue")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#search", Input).focus()
        if self.hms.live.board:
            self.board_changed(BoardUpdate(self.hms.live.board, "initial"))
        self.run_search()
        self.set_interval(QUEUE_TICK, self.redraw_queue)  # waiting minutes tick on

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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys for the selected visit work when the queue has the focus (a letter typed in
        the search is text): elsewhere they are shown dimmed."""
        if action in VISIT_ACTIONS:
            return True if self.table("queue").has_focus else None
        return True

    # -- search --------------------------------------------------------------------------------

    def search_text(self) -> str:
        return self.query_one("#search", Input).value

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "search":
            self.run_search()

    def run_search(self, delay: float = SEARCH_DEBOUNCE) -> None:
        """Search for what the box holds; a newer search supersedes this one (typing on)."""
        text = self.search_text()
        self.hms.db_call(self.hms.desk.search_patients, text, 50,
                         done=lambda found: self._show_matches(text, found),
                         failed=lambda exc: self._search_failed(text, exc),
                         group="search", exclusive=True, delay=delay)

    def _show_matches(self, text: str, found: list[PatientMatch]) -> None:
        new_query = text != self.shown_query
        self.shown_query = text
        self.matches = {str(p.id): p for p in found}
        results = self.table("results")
        results.sync([
            (str(p.id), [cell(p.mrn), cell(p.name, "bold"), cell(p.phone),
                         "" if p.age is None else str(p.age), cell(p.active_visits)])
            for p in found])
        self.query_one("#find").border_subtitle = None
        if found and new_query:
            results.move_cursor(row=0, animate=False)  # a new search: the best match first
            self.picked = False
        if self.pending_enter is not None and self.pending_enter == text == self.search_text():
            self.pending_enter = None
            self._enter_on_results(text)

    def _search_failed(self, text: str, exc: HmsError) -> None:
        """The search did not answer: show no rows that belong to another text, and forget
        an Enter waiting for it (it must not fire later on whatever is shown then)."""
        if text != self.search_text():
            return
        dropped = self.pending_enter is not None
        self.pending_enter = None
        self.shown_query = None
        self.matches = {}
        self.table("results").sync([])
        self.query_one("#find").border_subtitle = Text("search failed", style="bold red")
        what = " Enter was not acted on." if dropped else ""
        self.notify(printable(f"Search failed: {exc}.{what}"), severity="error", timeout=8,
                    markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "search":
            return
        text = event.value
        if not text.strip() and not (self.picked and self.shown_query == text):
            return  # nothing typed and nothing picked: nothing to act on
        if self.shown_query == text:
            self._enter_on_results(text)
        else:
            self.pending_enter = text  # acted on when this text's results arrive
            self.run_search(delay=0)

    def _enter_on_results(self, text: str) -> None:
        found = list(self.matches.values())
        patient = exact_match(text, found) or self.selected_patient()
        if patient is None:
            self.notify(printable(f"No patient matches {text.strip()!r}. F3 registers one."),
                        severity="warning", markup=False)
            return
        self.open_checkin(patient)

    def on_key(self, event: object) -> None:
        key = getattr(event, "key", "")
        search = self.query_one("#search", Input)
        if search.has_focus and key in ("down", "up"):
            results = self.table("results")
            results.action_cursor_down() if key == "down" else results.action_cursor_up()
            self.picked = True

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    def refreshed(self, event: Refreshed) -> None:
        """After every read round (a change anywhere, the backup poll): the patient list is
        read again (at most every REFRESH_SEARCH_EVERY), so recent patients and their visits of
        today stay live."""

        def again() -> None:
            if self.pending_enter is None and self.is_attached:
                self.run_search(delay=0)

        self.hms.throttle(f"search-{id(self)}", REFRESH_SEARCH_EVERY, again)

    # -- check in and register -----------------------------------------------------------------

    def action_checkin(self) -> None:
        """F4: what Enter in the search does, from anywhere."""
        text = self.search_text()
        if text.strip() and self.shown_query != text:
            self.pending_enter = text
            self.run_search(delay=0)
            return
        patient = self.selected_patient() if text.strip() or self.picked else None
        if patient is None:
            self.notify("Find a patient first (or F3 to register one).", severity="warning")
            return
        self.open_checkin(patient)

    def open_checkin(self, patient: AnyPatient) -> None:
        dialog = CheckinDialog(patient.id, label_of(patient, self.hms.now().date()),
                               self.hms.live.board, self.last_doctor or self.doctor)
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
        self.token_issued(visit)

    def token_issued(self, visit: Visit) -> None:
        """A visit got its token here (a check-in, an arrival): its slip, as configured."""
        offer_slip(self.hms, visit)

    def action_reprint(self) -> None:
        """The slip of the queue's selected visit (when the queue has the focus), else of any
        of today's visits, picked by token or name."""
        visit = self.selected_visit() if self.table("queue").has_focus else None
        if visit is not None and visit.token:
            offer_slip(self.hms, visit, reprint=True)
            return
        codes = tuple(b.code for b in self.hms.live.board)
        preselect = self.last_visit.visit_id if self.last_visit else None

        def picked(chosen: Visit | None) -> None:
            if chosen is not None:
                offer_slip(self.hms, chosen, reprint=True)

        self.app.push_screen(ReprintPicker(codes, preselect), picked)

    def show_last_checkin(self, visit: Visit) -> None:
        self.query_one("#last-token", BigText).update(visit.token or "")
        where = ", ".join(p for p in (visit.doctor_name, visit.room) if p)
        wait = f" · ~{visit.wait_minutes} min" if visit.wait_minutes is not None else ""
        pos = f"position {visit.position}" if visit.position else visit.status.value
        first = printable(f"{visit.token}  {visit.patient_name} ({visit.mrn})")
        second = printable(f"{where} · {pos}{wait}")
        self.query_one("#last-detail", Static).update(Text(f"{first}\n{second}"))

    def action_register(self) -> None:
        text = self.search_text()
        prefill = "" if any(ch.isdigit() for ch in text) else text
        self.app.push_screen(RegisterDialog(prefill), self._registered)

    def _registered(self, patient: Patient | PatientMatch | None) -> None:
        if isinstance(patient, Patient):
            self.notify(printable(f"Registered {patient.name} ({patient.mrn})"), markup=False)
        if patient is not None:
            self.open_checkin(patient)

    def action_edit_patient(self) -> None:
        """Correct the selected patient: the queue's selected visit when the queue has the
        focus, else the selected search result."""
        if self.table("queue").has_focus:
            visit = self.selected_visit()
            if visit is not None:
                self.hms.db_call(self.hms.desk.patient, visit.patient_id,
                                 done=lambda p: self.app.push_screen(
                                     RegisterDialog(patient=p), self._edited))
                return
        patient = self.selected_patient()
        if patient is None:
            self.notify("Select a patient (search) or a visit (queue) to correct.",
                        severity="warning")
            return
        self.app.push_screen(RegisterDialog(patient=patient), self._edited)

    def _edited(self, patient: Patient | PatientMatch | None) -> None:
        if patient is not None:
            self.notify(printable(f"Saved {patient.name} ({patient.mrn})"), markup=False)
            self.run_search(delay=0)

    # -- bookings (screens/booking.py, screens/arrivals.py) ----------------------------------

    def action_book(self) -> None:
        """F10: book the selected patient of the search results into a doctor's slot."""
        text = self.search_text()
        shown = self.shown_query == text and (text.strip() or self.picked)
        patient = self.selected_patient() if shown else None
        if patient is None:
            self.notify("Find the patient to book first (type, arrows), then F10.",
                        severity="warning")
            return
        dialog = BookDialog(patient.id, label_of(patient, self.hms.now().date()),
                            self.hms.live.board, self.last_doctor or self.doctor)
        self.app.push_screen(dialog, self._booked)

    def _booked(self, visit: Visit | None) -> None:
        if visit is not None:
            self.run_search(delay=0)  # the result's "Today" column names the booking

    def action_expected(self) -> None:
        """F12: today's expected arrivals; marking one arrived shows their token here."""
        self.app.push_screen(ExpectedDialog(), self._checked_in)

    # -- queues --------------------------------------------------------------------------------

    def board_changed(self, event: BoardUpdate) -> None:
        # Doctors taking patients, and any doctor who still has patients today (a doctor
        # deactivated with patients waiting must not make them vanish from reception).
        self.table("board").sync([
            (b.code, [cell(b.code, "bold"), cell(b.name if b.active else f"{b.name} (off)"),
                      cell(b.room), cell(b.serving), str(b.waiting)])
            for b in event.board if b.active or b.waiting or b.serving])
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

    def bills_changed(self, event: BillUpdate) -> None:
        """Nothing shown here depends on bills."""

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "board" and event.row_key.value:
            self.show_doctor(str(event.row_key.value))
        elif event.data_table.id == "queue":
            self.show_eta()
        elif event.data_table.id == "results" and event.data_table.has_focus:
            self.picked = True  # arrows in the results table itself

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
        self.show_eta()

    def show_eta(self) -> None:
        """The selected waiting patient's expected call time, under the queue while it has the
        focus (at 80 columns the Est column is off to the right)."""
        visit = self.selected_visit() if self.table("queue").has_focus else None
        when = eta(visit, self.hms.clinic_zone) if visit is not None else ""
        self.query_one("#queue-box").border_subtitle = (
            Text(printable(f"{visit.token} call ~{when}")) if visit and when else None)

    def action_other_doctor(self, step: int) -> None:
        codes = [b.code for b in self.hms.live.board if b.active or b.waiting or b.serving]
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

    def _with_patient(self, visit: Visit, then: object) -> None:
        """Open a dialog about ``visit`` once its patient is read: every dialog names the
        patient it acts on by name, MRN and age."""

        def got(patient: Patient) -> None:
            then(f"{visit.token} {label_of(patient, self.hms.now().date())}")  # type: ignore[operator]

        self.hms.db_call(self.hms.desk.patient, visit.patient_id, done=got)

    def action_cancel_visit(self) -> None:
        visit = self._visit_or_warn()
        if visit is None:
            return

        def confirmed(reason: str | None) -> None:
            if reason is not None:
                self.hms.db_call(self.hms.desk.cancel, visit.visit_id, reason or None,
                                 done=lambda v: self.notify(f"{v.token} cancelled"))

        self._with_patient(visit, lambda who: self.app.push_screen(
            ReasonDialog(f"Cancel {who}?", required=False), confirmed))

    def action_transfer(self) -> None:
        visit = self._visit_or_warn()
        if visit is None:
            return

        def picked(code: str | None) -> None:
            if code:
                self.hms.db_call(self.hms.desk.transfer, visit.visit_id, code,
                                 done=self._transferred)

        self._with_patient(visit, lambda who: self.app.push_screen(
            DoctorPicker(f"Transfer {who} to", self.hms.live.board, exclude=visit.doctor),
            picked))

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

        self._with_patient(visit, lambda who: self.app.push_screen(
            PriorityPicker(visit, who), picked))

    def action_bill(self) -> None:
        visit = self.selected_visit() if self.table("queue").has_focus else None
        visit = visit or self.last_visit or self.selected_visit()
        if visit is None:
            self.notify("Select a visit in the queue (or check one in) to bill it.",
                        severity="warning")
            return
        self._with_patient(visit, lambda who: self.app.push_screen(BillDialog(visit, who),
                                                                   self._billed))

    def _billed(self, bill: Bill | None) -> None:
        if bill is not None:
            self.app.push_screen(ReceiptDialog(bill))

    def action_void_bill(self) -> None:
        def voided(bill: Bill | None) -> None:
            if bill is not None:
                self.notify(f"{bill.bill_number} is void")
                self.app.push_screen(ReceiptDialog(bill))

        self.app.push_screen(VoidBillDialog(), voided)
