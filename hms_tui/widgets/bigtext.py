"""Big tokens readable from across a waiting room, on any terminal.

Textual's ``Digits`` draws with box-drawing characters and knows only 0-9 and A-F; tokens have
any prefix (``ENT-012``) and a bare Linux console may lack box drawing. The 5-row font of
``services/bigfont.py`` (the one the slips print) is drawn with one fill character: a full
block, or '#' in ASCII mode, and scaled up by whole cells to fill the space it is given.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from hms_tui.services.bigfont import HEIGHT, render_big

__all__ = ["HEIGHT", "BigText", "render_big"]

MAX_SCALE = 12


def big_width(text: str) -> int:
    """Columns ``text`` takes in the big font at scale 1."""
    return len(render_big(text)[0]) if text else 0


class BigText(Widget):
    """Shows a short text (a token) in the big font, as large as fits; falls back to plain bold
    text when there is no room for it. ``reference`` is the widest text this widget is expected
    to show (e.g. ``D1-000``): every token of a panel is drawn at the same scale, and a short
    placeholder ("-") is shown as plain text, never blown up into a block."""

    DEFAULT_CSS = """
    BigText { height: 5; width: 1fr; content-align: center middle; text-style: bold; }
    """

    def __init__(self, text: str = "", *, ascii_only: bool = False, reference: str = "",
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = text
        self.reference = reference
        self.ascii_only = ascii_only

    @property
    def text(self) -> str:
        return self._text

    def update(self, text: str, reference: str | None = None) -> None:
        if reference is not None and reference != self.reference:
            self.reference = reference
            self.refresh(layout=True)
        if text != self._text:
            self._text = text
            self.refresh(layout=True)

    @property
    def scale(self) -> int:
        """Cells per font cell at the widget's size; 0 when drawn as plain text."""
        if len(self._text) < 2:  # nothing, or a placeholder such as "-"
            return 0
        width = max(big_width(self._text), big_width(self.reference))
        return max(0, min(self.size.width // width, self.size.height // HEIGHT, MAX_SCALE))

    def render(self) -> Text:
        scale = self.scale
        if scale == 0:
            return Text(self._text)
        rows = render_big(self._text, "#" if self.ascii_only else "█")
        scaled = ["".join(ch * scale for ch in row) for row in rows for _ in range(scale)]
        return Text("\n".join(scaled))
