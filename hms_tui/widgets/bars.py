"""Small vertical bar charts drawn as text: they draw the same over SSH, in any terminal that
shows the other screens, and (with ``ascii_only``) on a bare Linux console."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

EIGHTHS = " ▁▂▃▄▅▆▇█"


def bar_rows(values: Sequence[float], height: int, *, ascii_only: bool = False,
             width: int = 1) -> list[str]:
    """The chart's rows, top first: one column of ``width`` cells per value, scaled so the
    largest value fills ``height`` rows (eighths of a row with block characters; whole rows
    of ``#`` in ASCII). A value above zero always shows at least a sliver."""
    top = max(values, default=0)
    steps = 1 if ascii_only else 8
    levels = [0 if top <= 0 or v <= 0 else max(1, round(v / top * height * steps))
              for v in values]
    rows = []
    for row in range(height - 1, -1, -1):
        line = []
        for level in levels:
            fill = min(max(level - row * steps, 0), steps)
            glyph = ("#" if fill else " ") if ascii_only else EIGHTHS[fill]
            line.append(glyph * width)
        rows.append("".join(line))
    return rows


def chart(title: str, values: Sequence[float], labels: str, *, height: int = 4,
          ascii_only: bool = False, width: int = 1, style: str = "cyan") -> Text:
    """A titled chart with an axis line of labels under it (``labels`` already spaced to the
    columns)."""
    text = Text(title + "\n", style="bold")
    for row in bar_rows(values, height, ascii_only=ascii_only, width=width):
        text.append(row + "\n", style=style)
    text.append(labels, style="dim")
    return text
