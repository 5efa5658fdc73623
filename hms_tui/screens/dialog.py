"""The modal every dialog is: a titled box in the middle, an inline error line, Esc to close.

Its look is one CSS rule set here, inherited by every dialog; forms add their field layout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Static

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


class FormDialog(Dialog):
    """A dialog of labelled fields, each with its own error line under it."""

    DEFAULT_CSS = """
    FormDialog Label { width: 14; padding: 1 1 0 0; }
    FormDialog Horizontal { height: auto; }
    FormDialog Input { width: 1fr; }
    FormDialog .field-error { color: $error; padding-left: 14; height: auto; }
    """
