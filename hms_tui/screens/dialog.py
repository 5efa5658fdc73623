"""The modal every dialog is: a titled box in the middle, an inline error line, Esc to close.

Its look is one CSS rule set here, inherited by every dialog; forms add their field layout
and the field rules: Enter on a field checks it (an empty required field says so instead of
moving on), saving checks every field and puts the focus on the first one that is wrong, so
the next thing typed lands where the error is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from hms_tui.domain.errors import HmsError
from hms_tui.domain.textsafe import printable

if TYPE_CHECKING:
    from hms_tui.app import HmsApp


class Dialog(ModalScreen[Any]):
    """A modal with a title, an inline error line and Esc to close."""

    BINDINGS = [Binding("escape", "close", "Cancel")]
    DEFAULT_CSS = """
    Dialog { align: center middle; }
    Dialog > Vertical { width: 64; max-width: 100%; height: auto; max-height: 100%;
                        border: round $accent; background: $surface; padding: 0 1; }
    Dialog .title { text-style: bold; }
    Dialog .error { color: $error; text-style: bold; }
    Dialog OptionList { height: auto; max-height: 12; }
    """

    @property
    def hms(self) -> HmsApp:
        return cast("HmsApp", self.app)

    def action_close(self) -> None:
        self.dismiss(None)

    def show_error(self, message: str) -> None:
        self.query_one(".error", Static).update(Text(printable(message)))

    def fail(self, exc: HmsError) -> None:
        self.show_error(str(exc))


Check = Callable[[str], object]


class FormDialog(Dialog):
    """A dialog of labelled fields, each with its own error line under it
    (``#<field>-error``). Subclasses list their fields' checks in ``checks()`` (in screen
    order) and save in ``action_save``."""

    DEFAULT_CSS = """
    FormDialog Label { width: 14; padding: 1 1 0 0; }
    FormDialog Horizontal { height: auto; }
    FormDialog Input { width: 1fr; }
    FormDialog .field-error { color: $error; padding-left: 14; height: auto; }
    """

    def checks(self) -> dict[str, Check]:
        """Field id -> a check raising HmsError with the message to show under it."""
        return {}

    def value(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value

    def field_error(self, field: str, message: str) -> bool:
        """Show ``message`` under the field; False when the field has no error line."""
        found = self.query(f"#{field}-error")
        if found:
            found.first(Static).update(Text(printable(message)))
        return bool(found)

    def check_fields(self, *fields: str) -> bool:
        """Check ``fields`` (all when none given); show each one's error, or clear it, and
        focus the first bad one. True when all are fine. (A form without error lines under
        its fields shows the first bad field's error on its one error line.)"""
        checks = self.checks()
        first_bad: str | None = None
        first_message = ""
        for field in fields or tuple(checks):
            check = checks.get(field)
            if check is None:
                continue
            message = ""
            try:
                check(self.value(field))
            except HmsError as exc:
                message = str(exc)
                if first_bad is None:
                    first_bad, first_message = field, message
            has_line = self.field_error(field, message)
            if not has_line and field == first_bad:
                self.show_error(first_message)
        if first_bad is not None:
            self.query_one(f"#{first_bad}", Input).focus()
        return first_bad is None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter: on the last field, save (every field checked); on another, check it and
        stay on it if it is wrong, else go to the field after it. (After the field that was
        submitted, not after whatever has the focus now: keys typed fast are dispatched
        before this message is handled, and a second Enter must not skip a field.)"""
        event.stop()
        inputs = [i for i in self.query(Input) if not i.disabled]
        if inputs and event.input is inputs[-1]:
            self.action_save()
        elif self.check_fields(event.input.id or "") and event.input in inputs:
            inputs[inputs.index(event.input) + 1].focus()

    def action_save(self) -> None:
        """Check every field, then save (subclasses)."""
