"""The shared widgets on their own (no database): the diffing table drawn before it measured
its rows, the key bar at 80 columns, pastes and over-long input that must not vanish."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input

from hms_tui.widgets.keybar import KeyBar
from hms_tui.widgets.queue_table import DiffTable, cell
from hms_tui.widgets.text_input import TextInput
from tests.tui_helpers import run, type_text, wait_until


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield DiffTable(["MRN", "Name", "Phone"], id="t")


def lines(app: App[Any]) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


def test_rows_drawn_before_the_table_measured_them_are_redrawn_at_full_width() -> None:
    """The tmux failure ("M00  Pati" for 30 s under load): a repaint between add_row and the
    table's idle cached the row at the header's widths, and nothing redrew it."""

    async def go() -> None:
        app = TableApp()
        async with app.run_test(size=(80, 10)) as pilot:
            table = app.query_one(DiffTable)
            await pilot.pause()
            table.sync([("1", [cell("M000001"), cell("Patient 00"), cell("98450 12345")])])
            table.render_line(1)  # a repaint before the table's idle (as under load)
            await pilot.pause()
            await pilot.pause()
            shown = "\n".join(lines(app))
            assert "M000001  Patient 00  98450 12345" in shown, shown

    run(go())


def test_a_changed_row_rewrites_only_its_changed_cells_and_a_longer_value_widens_its_column(
) -> None:
    """A change of a queue rewrites the cells that differ, nothing else (each write makes the
    table repaint), and a value longer than its column widens it rather than being cut."""

    async def go() -> None:
        app = TableApp()
        async with app.run_test(size=(80, 10)) as pilot:
            table = app.query_one(DiffTable)
            await pilot.pause()
            table.sync([("1", [cell("M1"), cell("Ann"), cell("1")]),
                        ("2", [cell("M2"), cell("Bob"), cell("2")])])
            await pilot.pause()
            written: list[tuple[str, str]] = []
            update = table.update_cell

            def counting(row: Any, column: Any, value: Any, **kw: Any) -> None:
                written.append((str(row), str(column)))
                update(row, column, value, **kw)

            table.update_cell = counting  # type: ignore[method-assign]
            table.sync([("1", [cell("M1"), cell("Ann"), cell("1")]),
                        ("2", [cell("M2"), cell("Bob Longname-Whitfield"), cell("2")])])
            await pilot.pause()
            await pilot.pause()
            assert written == [("2", "Name")]
            assert "M2   Bob Longname-Whitfield  2" in "\n".join(lines(app))

    run(go())


class KeysScreen(Screen[None]):
    BINDINGS = [Binding("f1", "help", "Help"), Binding("f2", "find", "Find"),
                Binding("f3", "new", "New patient"), Binding("f4", "checkin", "Check in"),
                Binding("f5", "bill", "Bill"), Binding("f6", "void", "Void bill"),
                Binding("f7", "other(-1)", "Doctor"), Binding("f8", "other(1)", "Doctor"),
                Binding("c", "cancel", "Cancel visit"), Binding("t", "transfer", "Transfer"),
                Binding("p", "priority", "Priority"), Binding("ctrl+q", "quit", "Quit"),
                Binding("x", "hidden", "Hidden", show=False)]

    def compose(self) -> ComposeResult:
        yield Input()  # letter keys typed here are text, yet c/t/p are listed
        yield KeyBar()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "void"  # not available right now: not shown


class KeysApp(App[None]):
    def on_mount(self) -> None:
        self.push_screen(KeysScreen())


def test_key_bar_wraps_instead_of_cutting_at_80_columns() -> None:
    async def go() -> None:
        app = KeysApp()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            bar = app.screen.query_one(KeyBar)
            await wait_until(pilot, lambda: bar.items)
            await pilot.pause()
            shown = "\n".join(lines(app)[-2:])
            for word in ("F1 Help", "F4 Check in", "F7/F8 Doctor", "c Cancel visit",
                         "t Transfer", "p Priority", "^q Quit"):
                assert word in shown, (word, shown)
            assert "Void bill" not in shown and "Hidden" not in shown
            assert all(len(line) <= 80 for line in shown.splitlines())

    run(go())


class InputApp(App[None]):
    def compose(self) -> ComposeResult:
        yield TextInput(id="i", max_length=10, label="phone")


def test_over_long_input_and_multi_line_pastes_say_so() -> None:
    async def go() -> None:
        app = InputApp()
        notes: list[str] = []
        notify = app.notify
        app.notify = lambda message, **kw: (notes.append(message), notify(message, **kw))[1]  # type: ignore[method-assign,func-returns-value]
        async with app.run_test() as pilot:
            box = app.query_one(TextInput)
            box.focus()
            await pilot.pause()
            box.post_message(__import__("textual").events.Paste("12345678901234"))
            await wait_until(pilot, lambda: notes)
            assert box.value == "" and "phone takes at most 10 characters" in notes[-1]
            await type_text(pilot, "1234567890")
            await type_text(pilot, "1")
            await wait_until(pilot, lambda: len(notes) == 2)
            assert box.value == "1234567890"
            box.value = ""
            box.post_message(__import__("textual").events.Paste("one\ntwo\n"))
            await wait_until(pilot, lambda: len(notes) == 3)
            assert box.value == "" and "2 lines" in notes[-1]
            box.post_message(__import__("textual").events.Paste("M000004\n"))  # a scanner
            await wait_until(pilot, lambda: box.value == "M000004")

    run(go())
