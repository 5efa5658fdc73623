"""Admin, used over SSH: doctors, clinic settings, today's numbers, the audit trail, statistics,
the doctors' sessions.

Each tab's keys work on that tab only (and only those show in the key bar); 1-7 switch tabs
and the tab's table takes the focus. Deactivating a doctor and locking a login ask first,
naming what they act on. The audit tab follows new events, newest first and in view.
"""

from __future__ import annotations

import functools

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static, TabbedContent, TabPane, Tabs

from hms_tui.domain import validation
from hms_tui.domain.errors import HmsError, InvalidInput
from hms_tui.domain.events import BoardUpdate, Refreshed
from hms_tui.domain.models import AuditEntry, ClinicRules, Doctor
from hms_tui.domain.textsafe import printable
from hms_tui.screens.base import LiveScreen
from hms_tui.screens.doctors import DoctorDialog, deactivate
from hms_tui.screens.forms import TimelineDialog
from hms_tui.screens.pickers import ConfirmDialog
from hms_tui.screens.sessions import SessionsPane
from hms_tui.screens.staff import StaffDialog, staff_row
from hms_tui.screens.statistics import REFRESH_EVERY, StatisticsPane
from hms_tui.services.failover import Durability, Failover, warnings
from hms_tui.services.staff import Staff, StaffMember
from hms_tui.widgets.keybar import KeyBar
from hms_tui.widgets.queue_table import Cell, DiffTable, cell
from hms_tui.widgets.text_input import TextInput

__all__ = ["AdminScreen", "DoctorDialog"]

SETTINGS_FIELDS = (
    ("clinic_name", "Clinic name", "Shown on the display"),
    ("timezone", "Time zone", "IANA name, e.g. Asia/Kolkata"),
    ("recall_limit", "Recall limit", "Recalls before no-show (0-10)"),
    ("requeue_after", "Requeue after", "Waiting patients ahead of a requeued no-show"),
    ("skip_places", "Skip places", "Default places for skip"),
    ("consult_minutes", "Consult min", "For wait estimates"),
    ("calls_ahead", "Calls ahead", "More calls while a patient is with the doctor (0-10)"),
)
NUMBERS = ("recall_limit", "requeue_after", "skip_places", "consult_minutes", "calls_ahead")
TABS = ("tab-doctors", "tab-staff", "tab-settings", "tab-today", "tab-audit", "tab-stats",
        "tab-sessions")
# Which tab each action belongs to (the others work everywhere).
ACTION_TAB = {
    "add_doctor": "tab-doctors", "edit_doctor": "tab-doctors", "toggle_doctor": "tab-doctors",
    "add_staff": "tab-staff", "toggle_staff": "tab-staff",
    "save_settings": "tab-settings", "reload_audit": "tab-audit",
    "add_session": "tab-sessions", "remove_session": "tab-sessions",
    "add_leave": "tab-sessions",
}
AUDIT_ROWS = 200


class AdminScreen(LiveScreen):
    BINDINGS = [
        *LiveScreen.BINDINGS,
        Binding("1", "tab('tab-doctors')", "Doctors"),
        Binding("2", "tab('tab-staff')", "Staff"),
        Binding("3", "tab('tab-settings')", "Settings"),
        Binding("4", "tab('tab-today')", "Today"),
        Binding("5", "tab('tab-audit')", "Audit"),
        Binding("6", "tab('tab-stats')", "Statistics"),
        Binding("7", "tab('tab-sessions')", "Sessions"),
        Binding("a", "add_doctor", "Add doctor"),
        Binding("e", "edit_doctor", "Edit doctor"),
        Binding("x", "toggle_doctor", "(De)activate"),
        Binding("s", "add_staff", "Add staff"),
        Binding("l", "toggle_staff", "Lock/unlock login"),
        Binding("ctrl+s", "save_settings", "Save settings"),
        Binding("f5", "reload_audit", "Reload audit"),
        # The Sessions tab (screens/sessions.py): the same letters as the other tabs' add,
        # remove and lock, on that tab only.
        Binding("a", "add_session", "Add session"),
        Binding("x", "remove_session", "Remove session"),
        Binding("l", "add_leave", "Leave"),
        Binding("escape", "leave_field", "Leave the field", show=False),
        Binding("ctrl+q", "app.quit", "Quit"),
    ]
    DEFAULT_CSS = """
    AdminScreen TabbedContent { height: 1fr; }
    AdminScreen DiffTable { height: 1fr; }
    AdminScreen Label { width: 16; padding: 1 1 0 0; }
    AdminScreen .row { height: auto; }
    AdminScreen .row Input { width: 40; }
    AdminScreen .hint { padding: 1 0 0 1; color: $text-muted; }
    AdminScreen #filters Input { width: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.doctors: dict[str, Doctor] = {}
        self.staff: dict[str, StaffMember] = {}
        self.audit: dict[str, AuditEntry] = {}
        self.durability: Durability | None = None

    def compose(self) -> ComposeResult:
        yield self.title_bar("hms-tui · Admin")
        durability = Static("", id="durability", classes="error")  # failover risks (db status)
        durability.display = False
        yield durability
        with TabbedContent(id="tabs"):
            with TabPane("1 Doctors", id="tab-doctors"):
                yield DiffTable(["Code", "Name", "Room", "Prefix", "Active"], id="doctors")
            with TabPane("2 Staff", id="tab-staff"):
                yield DiffTable(["Login", "Role", "Doctors", "Can log in"], id="staff")
            with TabPane("3 Settings", id="tab-settings"), Vertical():
                for field, label, hint in SETTINGS_FIELDS:
                    with Horizontal(classes="row"):
                        yield Label(label)
                        yield TextInput(id=f"set-{field}", label=label.lower())
                        yield Static(hint, classes="hint")
                yield Static("", id="settings-msg")
            with TabPane("4 Today", id="tab-today"):
                yield DiffTable(["Code", "Doctor", "Room", "Serving", "Waiting", "Seen",
                                 "No-show", "Tokens"], id="today")
            with TabPane("5 Audit", id="tab-audit"):
                with Horizontal(id="filters", classes="row"):
                    yield TextInput(placeholder="who (login)", id="f-actor")
                    yield TextInput(placeholder="action, e.g. checkin", id="f-action")
                    yield TextInput(placeholder="visit id", id="f-visit")
                yield DiffTable(["Seq", "When", "Who", "Terminal", "Action", "Entity", "Visit",
                                 "Status"], id="audit")
            with TabPane("6 Statistics", id="tab-stats"):
                yield StatisticsPane(id="stats")
            with TabPane("7 Sessions", id="tab-sessions"):
                yield SessionsPane(id="sessions-pane")
        yield KeyBar()

    def on_mount(self) -> None:
        self.load_doctors()
        self.load_staff()
        self.hms.db_call(self.hms.desk.rules, done=self.show_rules)
        self.hms.db_call(Failover(self.hms.desk.db).status, done=self.show_durability)
        self.action_reload_audit()
        if self.hms.live.board:
            self.board_changed(BoardUpdate(self.hms.live.board, "initial"))
        self.query_one("#doctors", DiffTable).focus()
        self.set_interval(REFRESH_EVERY, self._follow_stats)  # waits grow without a change

    # -- tabs: their keys, their focus ---------------------------------------------------------

    def active_tab(self) -> str:
        return self.query_one(TabbedContent).active

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        tab = ACTION_TAB.get(action)
        if tab is not None and tab != self.active_tab():
            return False  # another tab's key: not shown, does nothing
        if action == "tab" and isinstance(self.focused, Input):
            return None  # digits typed in a field are text: Esc leaves the field first
        return True

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_leave_field(self) -> None:
        if isinstance(self.focused, Input):
            self._focus_tab_body(self.active_tab(), fields=False)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        tab = event.pane.id or ""
        self.refresh_bindings()
        self._focus_tab_body(tab)
        if tab == "tab-audit":
            self.action_reload_audit()
        if tab == "tab-stats":
            self.query_one(StatisticsPane).load()
        if tab == "tab-sessions":
            self.query_one(SessionsPane).load()

    def _focus_tab_body(self, tab: str, *, fields: bool = True) -> None:
        """The tab's table takes the focus (the settings: their first field), so arrows and
        the tab's keys act on what the tab shows, not on the tab bar."""
        pane = self.query_one(f"#{tab}", TabPane)
        tables = pane.query(DiffTable)
        if tables:
            tables.first().focus()
        elif fields and pane.query(Input):
            pane.query(Input).first().focus()
        else:
            self.query_one(Tabs).focus()

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    # -- doctors -------------------------------------------------------------------------------

    def load_doctors(self) -> None:
        self.hms.db_call(self.hms.desk.doctors, done=self.show_doctors)

    def show_doctors(self, doctors: list[Doctor]) -> None:
        self.doctors = {d.code: d for d in doctors}
        self.query_one("#doctors", DiffTable).sync([
            (d.code, [cell(d.code, "bold"), cell(d.name), cell(d.room), cell(d.token_prefix),
                      "yes" if d.active else "no"]) for d in doctors])

    def selected_doctor(self) -> Doctor | None:
        key = self.query_one("#doctors", DiffTable).selected_key()
        return self.doctors.get(key) if key else None

    def action_add_doctor(self) -> None:
        self.app.push_screen(DoctorDialog(), self._doctor_saved)

    def action_edit_doctor(self) -> None:
        doctor = self.selected_doctor()
        if doctor is None:
            self.notify("Select a doctor on the Doctors tab.", severity="warning")
            return
        self.app.push_screen(DoctorDialog(doctor), self._doctor_saved)

    def _doctor_saved(self, doctor: Doctor | None) -> None:
        if doctor is not None:
            self.load_doctors()
            self.notify(printable(f"Saved {doctor.code} {doctor.name}"), markup=False)

    def action_toggle_doctor(self) -> None:
        doctor = self.selected_doctor()
        if doctor is None:
            self.notify("Select a doctor on the Doctors tab.", severity="warning")
            return
        if not doctor.active:  # taking patients again: nothing is lost, no question
            self.hms.db_call(self.hms.desk.update_doctor, doctor.code, active=True,
                             done=self._doctor_saved)
            return

        def done(result: tuple[Doctor, int]) -> None:
            off, moved = result
            self.load_doctors()
            what = f"; {moved} patient(s) transferred" if moved else ""
            self.notify(printable(f"{off.name} ({off.code}) deactivated{what}"), markup=False)

        deactivate(self.hms, doctor, done)

    # -- sessions (screens/sessions.py) -------------------------------------------------------

    def action_add_session(self) -> None:
        self.query_one(SessionsPane).add()

    def action_remove_session(self) -> None:
        self.query_one(SessionsPane).remove_selected()

    def action_add_leave(self) -> None:
        self.query_one(SessionsPane).add_leave()

    # -- staff ---------------------------------------------------------------------------------

    def load_staff(self) -> None:
        self.hms.db_call(Staff(self.hms.desk.db).list, done=self.show_staff,
                         failed=lambda exc: self.query_one("#staff", DiffTable).sync([]))

    def show_staff(self, members: list[StaffMember]) -> None:
        self.staff = {m.login: m for m in members}
        self.query_one("#staff", DiffTable).sync([(m.login, staff_row(m)) for m in members])

    def action_add_staff(self) -> None:
        self.app.push_screen(StaffDialog(), self._staff_saved)

    def _staff_saved(self, member: StaffMember | None) -> None:
        if member is not None:
            self.load_staff()
            state = "can log in" if member.can_login else "is locked"
            self.notify(printable(f"{member.login} ({member.role}) {state}"), markup=False)

    def action_toggle_staff(self) -> None:
        key = self.query_one("#staff", DiffTable).selected_key()
        member = self.staff.get(key or "")
        if member is None:
            self.notify("Select a login on the Staff tab.", severity="warning")
            return
        staff = Staff(self.hms.desk.db)
        if not member.can_login:
            self.hms.db_call(staff.enable, member.login, done=self._staff_saved)
            return
        doctors = f", doctors {', '.join(member.doctors)}" if member.doctors else ""

        def answered(yes: bool | None) -> None:
            if yes:
                self.hms.db_call(staff.disable, member.login, done=self._staff_saved)

        self.app.push_screen(ConfirmDialog(
            f"Lock the login {member.login} ({member.role}{doctors})?", "y", "Lock it",
            "They can no longer log in, and their open sessions end. l unlocks it again."),
            answered)

    def board_changed(self, event: BoardUpdate) -> None:
        self.query_one("#today", DiffTable).sync([
            (b.code, [cell(b.code, "bold"), cell(b.name), cell(b.room), cell(b.serving),
                      str(b.waiting), str(b.seen), str(b.no_shows), str(b.issued)])
            for b in event.board])
        if {b.code for b in event.board} != set(self.doctors) or any(
                self.doctors[b.code].active != b.active or self.doctors[b.code].name != b.name
                or self.doctors[b.code].room != b.room for b in event.board
                if b.code in self.doctors):
            self.load_doctors()

    # -- settings ------------------------------------------------------------------------------

    def show_durability(self, status: Durability) -> None:
        """The first warning `hms-tui db status` gives (a hold, an asynchronous standby, ...)."""
        self.durability = status
        lines = warnings(status)
        more = f" (+{len(lines) - 1} more: hms-tui db status)" if len(lines) > 1 else ""
        widget = self.query_one("#durability", Static)
        widget.update(Text(printable(f"! {lines[0]}{more}")) if lines else "")
        widget.display = bool(lines)

    def show_rules(self, rules: ClinicRules) -> None:
        for field, _, _ in SETTINGS_FIELDS:
            self.query_one(f"#set-{field}", Input).value = str(getattr(rules, field))

    def rules_loaded(self) -> None:
        """Settings changed (here or on another terminal): show them, unless someone is
        typing in them right now."""
        super().rules_loaded()
        editing = isinstance(self.focused, Input) and (self.focused.id or "").startswith("set-")
        if self.hms.rules is not None and not editing:
            self.show_rules(self.hms.rules)

    def action_save_settings(self) -> None:
        values = {f: self.query_one(f"#set-{f}", Input).value.strip() for f, _, _ in
                  SETTINGS_FIELDS}
        try:
            numbers = {f: int(values[f]) for f in NUMBERS}
            name = validation.clean_text(values["clinic_name"], "clinic name", 80)
        except ValueError:
            bad = next(f for f in NUMBERS if not values[f].lstrip("-").isdigit())
            self.query_one(f"#set-{bad}", Input).focus()
            self._settings_msg(InvalidInput("limits and minutes must be whole numbers"))
            return
        except HmsError as exc:
            self.query_one("#set-clinic_name", Input).focus()
            self._settings_msg(exc)
            return
        save = functools.partial(self.hms.desk.configure, clinic_name=name,
                                 timezone=values["timezone"], **numbers)
        self.hms.db_call(save, done=self._saved_rules, failed=self._settings_msg)

    def _saved_rules(self, rules: ClinicRules) -> None:
        self.show_rules(rules)
        self.query_one("#settings-msg", Static).update(Text("Saved.", style="bold green"))
        self.hms.apply_rules(rules)

    def _settings_msg(self, exc: HmsError) -> None:
        self.query_one("#settings-msg", Static).update(Text(printable(str(exc)), style="red"))

    # -- audit ---------------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if (event.input.id or "").startswith("f-"):
            self.action_reload_audit()

    def refreshed(self, event: Refreshed) -> None:
        """Something changed somewhere (or the backup poll ran): on the audit tab, its newest
        events come in."""
        if self.active_tab() == "tab-audit":
            self.hms.throttle(f"audit-{id(self)}", 1.0, self._follow_audit)
        if self.active_tab() == "tab-stats":
            self.hms.throttle(f"stats-{id(self)}", REFRESH_EVERY, self._follow_stats)
        if self.active_tab() == "tab-sessions":  # another admin's change, or the poll
            self.hms.throttle(f"sessions-{id(self)}", REFRESH_EVERY, self._follow_sessions)

    def _follow_sessions(self) -> None:
        if self.is_attached and self.active_tab() == "tab-sessions":
            self.query_one(SessionsPane).load()

    def _follow_stats(self) -> None:
        if self.is_attached and self.active_tab() == "tab-stats":
            self.query_one(StatisticsPane).load()

    def _follow_audit(self) -> None:
        if self.is_attached:
            self.action_reload_audit(quiet=True)

    def action_reload_audit(self, quiet: bool = False) -> None:
        actor = self.query_one("#f-actor", Input).value.strip() or None
        action = self.query_one("#f-action", Input).value.strip() or None
        visit_text = self.query_one("#f-visit", Input).value.strip()
        if visit_text and not visit_text.isdigit():
            if not quiet:
                self.notify("The visit filter takes a visit id (a number).", severity="warning")
            return
        self.hms.db_call(self.hms.desk.audit_tail, AUDIT_ROWS, actor=actor, action=action,
                         visit_id=int(visit_text) if visit_text else None, done=self.show_audit,
                         group="audit", exclusive=True)

    def show_audit(self, entries: list[AuditEntry]) -> None:
        table = self.query_one("#audit", DiffTable)
        at_top = table.cursor_row <= 0
        self.audit = {audit_key(e): e for e in entries}
        zone = self.hms.clinic_zone
        rows: list[tuple[str, list[Cell]]] = []
        for e in entries:
            status = (f"{e.status_before or ''} -> {e.status_after or ''}"
                      if e.status_before or e.status_after else "")
            rows.append((audit_key(e), [str(e.seq or "…"), e.at.astimezone(zone).strftime("%m-%d %H:%M:%S"),
                                      cell(e.actor), cell(e.terminal), cell(e.action),
                                      cell(f"{e.entity} {e.entity_id or ''}"),
                                      str(e.visit_id or ""), cell(status)]))
        table.sync(rows)
        if at_top and rows:
            # Following the trail: the newest stays in view (unless someone is reading
            # further down, where the cursor keeps its row).
            table.move_cursor(row=0, animate=False)
            table.scroll_home(animate=False)

    def on_data_table_row_selected(self, event: DiffTable.RowSelected) -> None:
        if event.data_table.id != "audit":
            return
        entry = self.audit.get(str(event.row_key.value))
        if entry is None or entry.visit_id is None:
            self.notify("This event is not about a visit.", severity="warning")
            return
        self.app.push_screen(TimelineDialog(entry.visit_id, f"Timeline of visit {entry.visit_id}"))


def audit_key(entry: AuditEntry) -> str:
    """A row's key: its seq, or its ticket while it is not sealed yet."""
    return str(entry.seq) if entry.seq is not None else f"t{entry.ticket}"
