"""Big tokens readable from across a waiting room, on any terminal.

Textual's ``Digits`` draws with box-drawing characters and knows only 0-9 and A-F; tokens have
any prefix (``ENT-012``) and a bare Linux console may lack box drawing. This is a 5-row font
of A-Z, 0-9 and '-' drawn with one fill character: a full block, or '#' in ASCII mode.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

HEIGHT = 5

_FONT: dict[str, tuple[str, ...]] = {
    "0": (" ### ", "#   #", "#   #", "#   #", " ### "),
    "1": ("  #  ", " ##  ", "  #  ", "  #  ", " ### "),
    "2": (" ### ", "#   #", "  ## ", " #   ", "#####"),
    "3": ("#### ", "    #", " ### ", "    #", "#### "),
    "4": ("#   #", "#   #", "#####", "    #", "    #"),
    "5": ("#####", "#    ", "#### ", "    #", "#### "),
    "6": (" ### ", "#    ", "#### ", "#   #", " ### "),
    "7": ("#####", "    #", "   # ", "  #  ", "  #  "),
    "8": (" ### ", "#   #", " ### ", "#   #", " ### "),
    "9": (" ### ", "#   #", " ####", "    #", " ### "),
    "A": (" ### ", "#   #", "#####", "#   #", "#   #"),
    "B": ("#### ", "#   #", "#### ", "#   #", "#### "),
    "C": (" ####", "#    ", "#    ", "#    ", " ####"),
    "D": ("#### ", "#   #", "#   #", "#   #", "#### "),
    "E": ("#####", "#    ", "#### ", "#    ", "#####"),
    "F": ("#####", "#    ", "#### ", "#    ", "#    "),
    "G": (" ####", "#    ", "#  ##", "#   #", " ### "),
    "H": ("#   #", "#   #", "#####", "#   #", "#   #"),
    "I": ("#####", "  #  ", "  #  ", "  #  ", "#####"),
    "J": ("#####", "   # ", "   # ", "#  # ", " ##  "),
    "K": ("#   #", "#  # ", "###  ", "#  # ", "#   #"),
    "L": ("#    ", "#    ", "#    ", "#    ", "#####"),
    "M": ("#   #", "## ##", "# # #", "#   #", "#   #"),
    "N": ("#   #", "##  #", "# # #", "#  ##", "#   #"),
    "O": (" ### ", "#   #", "#   #", "#   #", " ### "),
    "P": ("#### ", "#   #", "#### ", "#    ", "#    "),
    "Q": (" ### ", "#   #", "# # #", "#  # ", " ## #"),
    "R": ("#### ", "#   #", "#### ", "#  # ", "#   #"),
    "S": (" ####", "#    ", " ### ", "    #", "#### "),
    "T": ("#####", "  #  ", "  #  ", "  #  ", "  #  "),
    "U": ("#   #", "#   #", "#   #", "#   #", " ### "),
    "V": ("#   #", "#   #", "#   #", " # # ", "  #  "),
    "W": ("#   #", "#   #", "# # #", "## ##", "#   #"),
    "X": ("#   #", " # # ", "  #  ", " # # ", "#   #"),
    "Y": ("#   #", " # # ", "  #  ", "  #  ", "  #  "),
    "Z": ("#####", "   # ", "  #  ", " #   ", "#####"),
    "-": ("   ", "   ", "###", "   ", "   "),
    " ": ("  ", "  ", "  ", "  ", "  "),
}
_UNKNOWN = ("#####", "#   #", "#   #", "#   #", "#####")


def render_big(text: str, fill: str = "█") -> list[str]:
    """The rows of ``text`` in the big font (unknown characters become a hollow box)."""
    glyphs = [_FONT.get(ch, _UNKNOWN) for ch in text.upper()]
    rows = []
    for r in range(HEIGHT):
        rows.append(" ".join(g[r] for g in glyphs).replace("#", fill))
    return rows


class BigText(Widget):
    """Shows a short text (a token) in the big font; falls back to plain bold text when the
    widget is too narrow or too short for it."""

    DEFAULT_CSS = """
    BigText { height: 5; width: 1fr; content-align: center middle; text-style: bold; }
    """

    def __init__(self, text: str = "", *, ascii_only: bool = False, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = text
        self.ascii_only = ascii_only

    @property
    def text(self) -> str:
        return self._text

    def update(self, text: str) -> None:
        if text != self._text:
            self._text = text
            self.refresh(layout=True)

    def render(self) -> Text:
        if not self._text:
            return Text("")
        rows = render_big(self._text, "#" if self.ascii_only else "█")
        width, height = self.size.width, self.size.height
        if len(rows[0]) > width or height < HEIGHT:
            return Text(self._text)
        # Grow on big screens: each cell becomes scale x scale cells.
        scale = max(1, min(width // len(rows[0]), height // HEIGHT, 4))
        scaled = ["".join(ch * scale for ch in row) for row in rows for _ in range(scale)]
        return Text("\n".join(scaled))
