"""The doctor's console: who is with me now, who is next, and one key per action.

One patient at a time: calling while someone is still called or in consultation asks first,
naming them (the database refuses it otherwise, so every terminal agrees); the keys act on
the patient shown on the "Now" line. The clocks tick every second by themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from hms_tui.domain.errors import DoctorBusy, HmsError
from hms_tui.domain.events import BoardUpdate, QueueUpdate
from hms_tui.domain.models import SERVING_STATUSES, Priority, Status, Visit, now_serving
from hms_tui.domain.textsafe import printable
from hms_tui.domain.timefmt import minutes_since
from hms_tui.screens.arrivals import DoctorBookingsDialog
from hms_tui.screens.base import LiveScreen
from hms_tui.screens.dialog import Dialog
from hms_tui.screens.forms import TimelineDialog
from hms_tui.screens.pickers import ConfirmDialog, DoctorPicker
from hms_tui.services.staff import Staff, StaffMember
from hms_tui.widgets.keybar import KeyBar
from hms_tui.widgets.queue_table import Cell, DiffTable, cell


def clock_since(then: datetime | None, now: datetime) -> str:
    if then is None:
        return ""
    seconds = max(0, int((now - then).total_seconds()))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


class NoShowPicker(Dialog):
    """Today's no-shows of this doctor; Enter puts the chosen one back in the queue."""


    def __init__(self, visits: list[Visit]) -> None:
        super().__init__()
        self.visits = visits

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Requeue a no-show", classes="title")
            yield OptionList(*[Option(Text(printable(f"{v.token}  {v.patient_name} ({v.mrn})")),
                                      id=str(v.visit_id)) for v in self.visits])
            yield Static("" if self.visits else "No no-shows today.", classes="error")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id or 0))


class DoctorScreen(LiveScreen):
    BINDINGS = [
        *LiveScreen.BINDINGS,
        Binding("n", "call_next", "Call next"),
        Binding("r", "recall", "Recall"),
        Binding("s", "start", "Start"),
        Binding("d", "complete", "Done"),
        Binding("x", "no_show", "No-show"),
        Binding("k", "skip", "Skip"),
        Binding("q", "requeue", "Requeue"),
        Binding("c", "call_selected", "Call selected"),
        Binding("t", "timeline", "Timeline"),
        Binding("b", "bookings", "Bookings"),
        Binding("ctrl+q", "app.quit", "Quit"),
    ]
    DEFAULT_CSS = """
    DoctorScreen #now { height: 3; padding: 0 1; border-bottom: solid $primary; }
    DoctorScreen #queue { height: 1fr; }
    DoctorScreen #today { height: 2; padding: 0 1; border-top: solid $primary; }
    """

    def __init__(self, doctor: str | None) -> None:
        super().__init__()
        self.doctor = doctor
        self.picking = False
        self.asking = False  # a "call anyway?" question is open

    def compose(self) -> ComposeResult:
        yield self.title_bar("hms-tui · Doctor")
        yield Static("", id="now")
        yield DiffTable(["#", "Token", "Patient", "Priority", "Waiting", "Calls"], id="queue")
        yield Static("", id="today")
        yield KeyBar()

    def on_mount(self) -> None:
        self.set_interval(1, self.tick)  # the clocks move without a database change
        self.query_one(DiffTable).focus()
        if self.doctor is None:
            # A doctor login linked to one doctor opens that doctor's console; else ask.
            self.hms.db_call(Staff(self.hms.desk.db).whoami, done=self._whoami,
                             failed=lambda _exc: self.pick_doctor())
        else:
            self.show_everything()

    def _whoami(self, me: StaffMember) -> None:
        if me.role == "doctor" and len(me.doctors) == 1:
            self.doctor = me.doctors[0]
            self.show_everything()
        else:
            self.pick_doctor()

    def pick_doctor(self) -> None:
        if not self.hms.live.board:
            self.picking = True  # the board is on its way: board_changed picks then
            return
        self.picking = False

        def chosen(code: str | None) -> None:
            if code is None:
                self.app.exit()
            else:
                self.doctor = code
                self.show_everything()

        self.app.push_screen(DoctorPicker("Whose console is this?", self.hms.live.board), chosen)

    # -- what is shown -------------------------------------------------------------------------

    def tick(self) -> None:
        self.show_now()
        self.show_queue()  # waiting minutes (the table updates only the cells that changed)

    def visits(self) -> tuple[Visit, ...]:
        return self.hms.live.queues.get(self.doctor or "", ())

    def current(self) -> Visit | None:
        """The patient the doctor's keys act on: the selected row if it is being served,
        else the one called most recently."""
        selected = self.selected()
        if selected is not None and selected.status in (Status.CALLED, Status.IN_CONSULTATION):
            return selected
        return now_serving(self.visits())

    def selected(self) -> Visit | None:
        key = self.query_one(DiffTable).selected_key()
        return next((v for v in self.visits() if str(v.visit_id) == key), None)

    def show_everything(self) -> None:
        board = next((b for b in self.hms.live.board if b.code == self.doctor), None)
        if board is not None:
            where = ", ".join(p for p in (board.name, board.room) if p)
            self.query_one("TitleBar").set_title(f"hms-tui · {where}")  # type: ignore[attr-defined]
            self.query_one("#today", Static).update(Text(
                f"Today: {board.seen} seen · {board.waiting} waiting · {board.no_shows} no-show"
                f" · {board.issued} tokens"))
        self.show_queue()
        self.show_now()

    def show_queue(self) -> None:
        now = self.hms.now()
        rows: list[tuple[str, list[Cell]]] = []
        for v in self.visits():
            pos = str(v.position) if v.position is not None else (
                "now" if v.status == Status.IN_CONSULTATION else "called")
            rows.append((str(v.visit_id), [
                pos, cell(v.token, "bold"), cell(v.patient_name),
                cell("" if v.priority == Priority.NORMAL else v.priority.value, "bold red"),
                minutes_since(v.checked_in_at, now), str(v.call_count or "")]))
        self.query_one(DiffTable).sync(rows)

    def show_now(self) -> None:
        visit = self.current()
        now = self.hms.now()
        if visit is None:
            waiting = sum(1 for v in self.visits() if v.position is not None)
            text = Text(f"Nobody with you. {waiting} waiting — n calls the next patient.")
        elif visit.status == Status.IN_CONSULTATION:
            text = Text.assemble(("Now: ", "bold"), (printable(visit.token), "bold reverse"),
                                 f"  {printable(visit.patient_name)} ({printable(visit.mrn)})",
                                 f"\nin consultation {clock_since(visit.started_at, now)}"
                                 "  — d done")
        else:
            text = Text.assemble(("Called: ", "bold"), (printable(visit.token), "bold reverse"),
                                 f"  {printable(visit.patient_name)} ({printable(visit.mrn)})",
                                 f"\ncalled {visit.call_count}x, {clock_since(visit.called_at, now)}"
                                 " ago — s start · r recall · x no-show")
        self.query_one("#now", Static).update(text)

    def queue_changed(self, event: QueueUpdate) -> None:
        if event.doctor == self.doctor:
            self.show_queue()
            self.show_now()

    def board_changed(self, event: BoardUpdate) -> None:
        if self.doctor is not None:
            self.show_everything()
        elif self.picking:
            self.pick_doctor()

    # -- actions -------------------------------------------------------------------------------

    def act(self, fn: object, *args: object, what: str,
            failed: Callable[[HmsError], object] | None = None, **kwargs: Any) -> None:
        """Run a desk action off the UI loop; the listener brings the new state. A key pressed
        again while the action is on its way does nothing."""
        if self.hms.busy("doctor-action"):
            return

        def done(visit: Visit) -> None:
            self.notify(printable(f"{visit.token} {what}"), markup=False, timeout=3)

        self.hms.db_call(fn, *args, done=done, failed=failed,  # type: ignore[arg-type]
                         group="doctor-action", **kwargs)

    def _need(self, visit: Visit | None, hint: str) -> Visit | None:
        if visit is None:
            self.notify(hint, severity="warning")
        return visit

    def serving(self) -> list[Visit]:
        return [v for v in self.visits() if v.status in SERVING_STATUSES]

    def _call(self, fn: Callable[..., Visit], *args: object) -> None:
        """Call (next, or the selected patient): while someone is still with the doctor, ask
        first, naming them; the database has the last word (another terminal may have just
        called), and its refusal asks the same question."""
        ahead = self.hms.rules.calls_ahead if self.hms.rules is not None else 0
        busy = self.serving()

        def ask(reason: str) -> None:
            if self.asking:
                return  # the question is already open (a key pressed again)
            self.asking = True

            def answered(yes: bool | None) -> None:
                self.asking = False
                if yes:
                    self.act(fn, *args, what="called", force=True)

            self.app.push_screen(ConfirmDialog(reason, "y", "Call anyway"), answered)

        def refused(exc: HmsError) -> None:
            if isinstance(exc, DoctorBusy):
                ask(f"{exc}.")
            else:
                self.notify(printable(str(exc)), severity="error", timeout=8, markup=False)

        if len(busy) > ahead:
            who = ", ".join(f"{v.token} {v.patient_name} ({v.mrn}, "
                            f"{'called' if v.status == Status.CALLED else 'in consultation'})"
                            for v in busy)
            ask(f"Still with you: {who}. Call another patient anyway?")
            return
        self.act(fn, *args, what="called", failed=refused)

    def action_call_next(self) -> None:
        if self.doctor:
            self._call(self.hms.desk.call_next, self.doctor)

    def action_call_selected(self) -> None:
        visit = self._need(self.selected(), "Select a waiting patient to call out of turn.")
        if visit is not None:
            if visit.status != Status.WAITING:
                self.notify(printable(f"{visit.token} is {visit.status.value}, not waiting."),
                            severity="warning", markup=False)
                return
            self._call(self.hms.desk.call, visit.visit_id)

    def action_recall(self) -> None:
        visit = self._need(self.current(), "Nobody has been called.")
        if visit is not None:
            self.act(self.hms.desk.recall, visit.visit_id, what="called again")

    def action_start(self) -> None:
        visit = self._need(self.current(), "Call a patient first (n).")
        if visit is not None:
            self.act(self.hms.desk.start, visit.visit_id, what="consultation started")

    def action_complete(self) -> None:
        visit = self._need(self.current(), "Nobody is in consultation.")
        if visit is not None:
            self.act(self.hms.desk.complete, visit.visit_id, what="done")

    def action_no_show(self) -> None:
        visit = self._need(self.current(), "Nobody has been called.")
        if visit is not None:
            self.act(self.hms.desk.no_show, visit.visit_id, what="marked no-show")

    def action_skip(self) -> None:
        visit = self._need(self.selected(), "Select a waiting patient to move back.")
        if visit is not None:
            self.act(self.hms.desk.skip, visit.visit_id, what="moved back")

    def action_requeue(self) -> None:
        if not self.doctor:
            return

        def show(visits: list[Visit]) -> None:
            absent = [v for v in visits if v.status == Status.NO_SHOW]
            self.app.push_screen(NoShowPicker(absent), picked)

        def picked(visit_id: int | None) -> None:
            if visit_id:
                self.act(self.hms.desk.requeue, visit_id, what="back in the queue")

        self.hms.db_call(self.hms.desk.queue, self.doctor, include_all=True, done=show)

    def action_timeline(self) -> None:
        visit = self._need(self.selected() or self.current(), "Select a visit.")
        if visit is not None:
            self.app.push_screen(TimelineDialog(
                visit.visit_id, f"Timeline of {visit.token} {visit.patient_name}"))

    def action_bookings(self) -> None:
        """The day's bookings of this doctor: time, patient, and how each stands."""
        if self.doctor:
            name = next((b.name for b in self.hms.live.board if b.code == self.doctor),
                        self.doctor)
            self.app.push_screen(DoctorBookingsDialog(self.doctor, name))
