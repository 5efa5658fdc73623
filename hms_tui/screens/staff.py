"""Admin's staff dialog: a new PostgreSQL login for one person, in one group role."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Label, Static

from hms_tui.domain.errors import HmsError, InvalidInput
from hms_tui.domain.textsafe import printable
from hms_tui.screens.dialog import Check, FormDialog
from hms_tui.services.staff import ROLES, Staff, StaffMember, check_login, check_password, check_role
from hms_tui.widgets.text_input import TextInput


class StaffDialog(FormDialog):
    """Add a staff login. The password goes to PostgreSQL only as a SCRAM verifier; leave it
    empty for peer or certificate authentication. Returns the new StaffMember."""

    BINDINGS = [Binding("escape", "close", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Add a staff login", classes="title")
            for field, label, hint, secret in (
                ("login", "Login", "e.g. asha or dr.rao", False),
                ("role", "Role", " / ".join(ROLES), False),
                ("doctors", "Doctors", "doctor logins: codes, e.g. D1, D2", False),
                ("password", "Password", "empty: no password (peer/cert login)", True),
                ("repeat", "Repeat", "the password again", True),
            ):
                with Horizontal():
                    yield Label(label)
                    yield TextInput(placeholder=hint, id=field, password=secret,
                                    label=label.lower())
            yield Static("", classes="error")
            yield Static(Text("Enter next · ctrl+s save · Esc cancel", style="dim"))
        yield Footer()

    def checks(self) -> dict[str, Check]:
        """Each field on Enter, all on save: the error shown, the focus on the first bad one."""
        return {"login": check_login, "role": check_role,
                "password": lambda t: check_password(t) if t else None,
                "repeat": self._check_repeat}

    def _check_repeat(self, text: str) -> None:
        if text != self.value("password"):
            raise InvalidInput("the two passwords differ")

    def action_save(self) -> None:
        if not self.check_fields():
            return
        self.show_error("")
        values = {f: self.query_one(f"#{f}", TextInput).value
                  for f in ("login", "role", "doctors", "password", "repeat")}
        try:
            login, role = check_login(values["login"]), check_role(values["role"])
            doctors = [c.strip() for c in values["doctors"].split(",") if c.strip()]
            password = values["password"] or None
            if password is not None:
                check_password(password)
                if values["repeat"] != password:
                    raise InvalidInput("the two passwords differ")
        except HmsError as exc:
            self.fail(exc)
            return
        self.show_error("Saving...")
        self.hms.db_call(Staff(self.hms.desk.db).add, login, role, doctors, password,
                         done=self.dismiss, failed=self.fail)


def staff_row(member: StaffMember) -> list[Text | str]:
    return [Text(printable(member.login), style="bold"), Text(printable(member.role or "")),
            Text(printable(", ".join(member.doctors))), "yes" if member.can_login else "no"]
