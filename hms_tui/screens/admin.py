"""Admin, used over SSH: doctors, clinic settings, today's numbers, the audit trail."""

from __future__ import annotations

import functools

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, Label, Static, TabbedContent, TabPane

from hms_tui.domain import validation
from hms_tui.domain.errors import HmsError, InvalidInput
from hms_tui.domain.events import BoardUpdate
from hms_tui.domain.models import AuditEntry, ClinicRules, Doctor
from hms_tui.domain.textsafe import printable
from hms_tui.screens.base import LiveScreen
from hms_tui.screens.dialog import FormDialog
from hms_tui.screens.forms import TimelineDialog
from hms_tui.screens.staff import StaffDialog, staff_row
from hms_tui.services.staff import Staff, StaffMember
from hms_tui.widgets.queue_table import Cell, DiffTable, cell
from hms_tui.widgets.text_input import TextInput


class DoctorDialog(FormDialog):
    """Add a doctor, or edit one (code fixed). Returns the saved Doctor."""

    BINDINGS = [Binding("escape", "close", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, doctor: Doctor | None = None) -> None:
        super().__init__()
        self.doctor = doctor

    def compose(self) -> ComposeResult:
        d = self.doctor
        with Vertical():
            yield Static("Edit doctor" if d else "Add a doctor", classes="title")
            for field, label, value, hint in (
                ("code", "Code", d.code if d else "", "e.g. D5"),
                ("name", "Name", d.name if d else "", "e.g. Dr Rao"),
                ("room", "Room", (d.room or "") if d else "", "optional"),
                ("prefix", "Token prefix", d.token_prefix if d else "", "default: the code"),
            ):
                with Horizontal():
                    yield Label(label)
                    yield TextInput(value=value, placeholder=hint, id=field,
                                disabled=bool(d) and field == "code")
            yield Static("", classes="error")
            yield Static(Text("Enter next · ctrl+s save · Esc cancel", style="dim"))
        yield Footer()

    def action_save(self) -> None:
        v = {f: self.query_one(f"#{f}", Input).value for f in ("code", "name", "room", "prefix")}
        desk = self.hms.desk
        if self.doctor is None:
            self.hms.db_call(desk.add_doctor, v["code"], v["name"], v["room"] or None,
                             v["prefix"] or None, done=self.dismiss, failed=self.fail)
        else:
            self.hms.db_call(desk.update_doctor, self.doctor.code, name=v["name"],
                             room=v["room"], prefix=v["prefix"] or None,
                             done=self.dismiss, failed=self.fail)


SETTINGS_FIELDS = (
    ("clinic_name", "Clinic name", "Shown on the display"),
    ("timezone", "Time zone", "IANA name, e.g. Asia/Kolkata"),
    ("recall_limit", "Recall limit", "Recalls before no-show (0-10)"),
    ("requeue_after", "Requeue after", "Waiting patients ahead of a requeued no-show"),
    ("skip_places", "Skip places", "Default places for skip"),
    ("consult_minutes", "Consult min", "For wait estimates"),
)


class AdminScreen(LiveScreen):
    BINDINGS = [
        *LiveScreen.BINDINGS,
        Binding("a", "add_doctor", "Add doctor"),
        Binding("e", "edit_doctor", "Edit doctor"),
        Binding("x", "toggle_doctor", "(De)activate"),
        Binding("s", "add_staff", "Add staff"),
        Binding("l", "toggle_staff", "Lock/unlock login"),
        Binding("ctrl+s", "save_settings", "Save settings"),
        Binding("f5", "reload_audit", "Reload audit"),
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

    def compose(self) -> ComposeResult:
        yield self.title_bar("hms-tui · Admin")
        with TabbedContent(id="tabs"):
            with TabPane("Doctors", id="tab-doctors"):
                yield DiffTable(["Code", "Name", "Room", "Prefix", "Active"], id="doctors")
            with TabPane("Staff", id="tab-staff"):
                yield DiffTable(["Login", "Role", "Doctors", "Can log in"], id="staff")
            with TabPane("Clinic settings", id="tab-settings"), Vertical():
                for field, label, hint in SETTINGS_FIELDS:
                    with Horizontal(classes="row"):
                        yield Label(label)
                        yield TextInput(id=f"set-{field}")
                        yield Static(hint, classes="hint")
                yield Static("", id="settings-msg")
            with TabPane("Today", id="tab-today"):
                yield DiffTable(["Code", "Doctor", "Room", "Serving", "Waiting", "Seen",
                                 "No-show", "Tokens"], id="today")
            with TabPane("Audit", id="tab-audit"):
                with Horizontal(id="filters", classes="row"):
                    yield TextInput(placeholder="who (login)", id="f-actor")
                    yield TextInput(placeholder="action, e.g. checkin", id="f-action")
                    yield TextInput(placeholder="visit id", id="f-visit")
                yield DiffTable(["Seq", "When", "Who", "Terminal", "Action", "Entity", "Visit",
                                 "Status"], id="audit")
        yield Footer()

    def on_mount(self) -> None:
        self.load_doctors()
        self.load_staff()
        self.hms.db_call(self.hms.desk.rules, done=self.show_rules)
        self.action_reload_audit()
        if self.hms.live.board:
            self.board_changed(BoardUpdate(self.hms.live.board, "initial"))

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
        self.hms.db_call(self.hms.desk.update_doctor, doctor.code, active=not doctor.active,
                         done=self._doctor_saved)

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
        action = staff.disable if member.can_login else staff.enable
        self.hms.db_call(action, member.login, done=self._staff_saved)

    def board_changed(self, event: BoardUpdate) -> None:
        self.query_one("#today", DiffTable).sync([
            (b.code, [cell(b.code, "bold"), cell(b.name), cell(b.room), cell(b.serving),
                      str(b.waiting), str(b.seen), str(b.no_shows), str(b.issued)])
            for b in event.board])
        if {b.code for b in event.board} != set(self.doctors):
            self.load_doctors()

    # -- settings ------------------------------------------------------------------------------

    def show_rules(self, rules: ClinicRules) -> None:
        for field, _, _ in SETTINGS_FIELDS:
            self.query_one(f"#set-{field}", Input).value = str(getattr(rules, field))

    def action_save_settings(self) -> None:
        values = {f: self.query_one(f"#set-{f}", Input).value.strip() for f, _, _ in
                  SETTINGS_FIELDS}
        try:
            numbers = {f: int(values[f]) for f in ("recall_limit", "requeue_after",
                                                   "skip_places", "consult_minutes")}
            name = validation.clean_text(values["clinic_name"], "clinic name", 80)
        except ValueError:
            self._settings_msg(InvalidInput("limits and minutes must be whole numbers"))
            return
        except HmsError as exc:
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

    def action_reload_audit(self) -> None:
        actor = self.query_one("#f-actor", Input).value.strip() or None
        action = self.query_one("#f-action", Input).value.strip() or None
        visit_text = self.query_one("#f-visit", Input).value.strip()
        if visit_text and not visit_text.isdigit():
            self.notify("The visit filter takes a visit id (a number).", severity="warning")
            return
        self.hms.db_call(self.hms.desk.audit_tail, 200, actor=actor, action=action,
                         visit_id=int(visit_text) if visit_text else None, done=self.show_audit)

    def show_audit(self, entries: list[AuditEntry]) -> None:
        self.audit = {str(e.seq): e for e in entries}
        zone = self.hms.clinic_zone
        rows: list[tuple[str, list[Cell]]] = []
        for e in entries:
            status = (f"{e.status_before or ''} -> {e.status_after or ''}"
                      if e.status_before or e.status_after else "")
            rows.append((str(e.seq), [str(e.seq), e.at.astimezone(zone).strftime("%m-%d %H:%M:%S"),
                                      cell(e.actor), cell(e.terminal), cell(e.action),
                                      cell(f"{e.entity} {e.entity_id or ''}"),
                                      str(e.visit_id or ""), cell(status)]))
        self.query_one("#audit", DiffTable).sync(rows)

    def on_data_table_row_selected(self, event: DiffTable.RowSelected) -> None:
        if event.data_table.id != "audit":
            return
        entry = self.audit.get(str(event.row_key.value))
        if entry is None or entry.visit_id is None:
            self.notify("This event is not about a visit.", severity="warning")
            return
        self.app.push_screen(TimelineDialog(entry.visit_id, f"Timeline of visit {entry.visit_id}"))
