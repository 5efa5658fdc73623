"""An Input that never sends a control character to the terminal.

Typed keys are filtered by Textual, but a paste is inserted as it comes, escape sequences
included. The value keeps what was pasted (so the form's check can name the character); only
the rendering shows each control or direction-changing character as U+FFFD.
"""

from __future__ import annotations

from typing import Any

from rich.highlighter import Highlighter
from rich.text import Text
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
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("highlighter", ControlCharHighlighter())
        super().__init__(*args, **kwargs)
