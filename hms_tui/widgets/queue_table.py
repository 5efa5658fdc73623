"""A queue as a table that applies differences instead of rebuilding (a rebuild costs ~50 ms
and loses the cursor), with every user-supplied value shown literally."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from hms_tui.domain.textsafe import printable

Cell = str | Text


def cell(value: object, style: str = "") -> Text:
    """User data as a literal cell: never parsed as markup, controls neutralised."""
    return Text(printable(value), style=style)


def short_cell(value: object, cells: int, style: str = "") -> Text:
    """A literal cell cut to ``cells`` terminal cells with an ellipsis (a long name must not
    push the columns after it off a narrow screen); the dialogs show it whole."""
    text = cell(value, style)
    if text.cell_len > cells:
        text.truncate(cells, overflow="ellipsis")
    return text


def _cell_width(value: Cell) -> int:
    return value.cell_len if isinstance(value, Text) else cell_len(value)


class DiffTable(DataTable[Cell]):
    """A DataTable keyed by row id. ``sync(rows)`` adds, removes, moves and updates rows so
    the table equals ``rows`` in order, keeping the cursor on the same row where it can."""

    def __init__(self, columns: Sequence[str], *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._columns = list(columns)
        self._rows: dict[str, tuple[Cell, ...]] = {}
        self._order: list[str] = []

    def on_mount(self) -> None:
        for name in self._columns:
            self.add_column(name, key=name)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """DataTable measures new rows on its idle, but a repaint can come first (a loaded
        machine, a busy loop): those rows are then drawn at the header's widths ("M00  Pati")
        and cached under a key the measuring does not change, so they stay cut until some
        other change. When the widths changed, drop what was drawn with the old ones."""
        before = [column.content_width for column in self.ordered_columns]
        super()._update_dimensions(new_rows)
        if [column.content_width for column in self.ordered_columns] != before:
            self._update_count += 1
            self._clear_caches()
            self.refresh()

    def _update_row(self, key: str, old: tuple[Cell, ...], new: tuple[Cell, ...]) -> None:
        """Only the cells that differ. A column is measured again only when a cell grows
        wider than it: asking DataTable to fit a cell that got narrower makes it measure the
        whole column (every row) for every such cell -- 90 ms for one change of a 40-row
        queue, when every position moves up. Columns do not shrink back while rows change."""
        columns = self.ordered_columns
        for i, (was, value) in enumerate(zip(old, new, strict=True)):
            if was == value:
                continue
            wider = _cell_width(value) > columns[i].content_width
            self.update_cell(key, self._columns[i], value, update_width=wider)

    def selected_key(self) -> str | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= len(self._order):
            return None
        return self._order[self.cursor_row]

    def sync(self, rows: Sequence[tuple[str, Sequence[Cell]]]) -> None:
        selected = self.selected_key()
        wanted = [key for key, _ in rows]
        wanted_set = set(wanted)
        # Rows that stay in place: the longest common prefix, minus removed rows.
        for key in [k for k in self._order if k not in wanted_set]:
            self.remove_row(key)
            del self._rows[key]
        self._order = [k for k in self._order if k in wanted_set]
        keep = 0
        while keep < len(self._order) and keep < len(wanted) and self._order[keep] == wanted[keep]:
            keep += 1
        # Everything after the prefix is re-added in order (DataTable cannot move a row);
        # typical changes (append, head removed, one insert) touch only a few rows.
        for key in self._order[keep:]:
            self.remove_row(key)
            del self._rows[key]
        self._order = self._order[:keep]
        for key, values in rows:
            values_t = tuple(values)
            if key not in self._rows:
                self.add_row(*values_t, key=key)
                self._order.append(key)
            elif self._rows[key] != values_t:
                self._update_row(key, self._rows[key], values_t)
            self._rows[key] = values_t
        if selected in self._rows:
            self.move_cursor(row=self._order.index(selected), animate=False)
