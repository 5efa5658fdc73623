"""An Input that never sends a control character to the terminal and never drops text silently.

Typed keys are filtered by Textual, but a paste is inserted as it comes, escape sequences
included. The value keeps what was pasted (so the form's check can name the character); only
the rendering shows each control or direction-changing character as U+FFFD.

Textual refuses a key or a paste that would pass ``max_length`` with nothing but a bell, and
pastes only the first line of a multi-line paste: here both say so in a message, and a paste
of several lines inserts nothing (a scanner's trailing newline is not a second line).
"""

from __future__ import annotations

from typing import Any

from rich.highlighter import Highlighter
from rich.text import Text
from textual import events
from textual.widgets import Input

from hms_tui.domain.textsafe import printable


class ControlCharHighlighter(Highlighter):
    def __call__(self, text: str | Text) -> Text:
        if isinstance(text, str):
            text = Text(text)
        safe = printable(text.plain)
        if safe == text.plain:
            return text
        shown = text.copy()
        shown.plain = safe  # same length: one replacement character per control character
        return shown

    def highlight(self, text: Text) -> None:
        """Everything happens in ``__call__`` (the characters change, not only styles)."""


class TextInput(Input):
    def __init__(self, *args: Any, label: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("highlighter", ControlCharHighlighter())
        super().__init__(*args, **kwargs)
        self.label = label  # how messages name the field

    def field_name(self) -> str:
        return self.label or (self.placeholder.split("·")[0].strip() if self.placeholder
                              else "this field")

    def restricted(self) -> None:
        """A key or paste would pass ``max_length``: say so (nothing was inserted)."""
        self.app.bell()
        self.notify(f"Too long: {self.field_name()} takes at most {self.max_length} characters; "
                    "nothing was added.", severity="warning", timeout=6, markup=False)

    def _on_paste(self, event: events.Paste) -> None:
        # Instead of Input's own handler (Textual calls each class's handler in turn unless
        # the default is prevented).
        event.stop()
        event.prevent_default()
        lines = [line for line in event.text.splitlines() if line.strip()]
        if len(lines) > 1:
            self.app.bell()
            self.notify(f"The pasted text has {len(lines)} lines; {self.field_name()} takes one. "
                        "Nothing was pasted.", severity="warning", timeout=6, markup=False)
        elif lines:
            if self.selection.is_empty:
                self.insert_text_at_cursor(lines[0])
            else:
                self.replace(lines[0], *self.selection)
