"""The key bar at the bottom of every screen: each key that works right now, never cut off.

Textual's ``Footer`` is one row and drops what does not fit: at 80 columns reception lost
cancel, transfer, priority and F7/F8. This bar wraps onto a second row instead (only when it
must), keeps each key and its word together, and follows the screen's bindings as they
change: keys a screen leaves out for the moment (``check_action`` returning False) are not
shown and keys it disables (None) are dimmed, so the bar says what pressing a key will do
here, on this tab, with this focus.
Bindings that share a description are shown once (``F7/F8 Doctor``).
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.dom import NoScreen
from textual.widgets import Static

MAX_ROWS = 2


def key_label(app: Any, binding: Binding) -> str:
    """'F1', '^q', 'Esc': short, and function keys in capitals as printed on keyboards."""
    if binding.key_display:
        return binding.key_display
    if re.fullmatch(r"f\d{1,2}", binding.key):
        return binding.key.upper()
    return str(app.get_key_display(binding))


def bindings_of(screen: Any) -> list[Binding]:
    """A screen's BINDINGS as Binding objects, one per key of a multi-key binding."""
    found: list[Binding] = []
    for entry in screen.BINDINGS:
        binding = entry if isinstance(entry, Binding) else Binding(*entry)
        for key in binding.key.split(","):
            found.append(Binding(key.strip(), binding.action, binding.description,
                                 show=binding.show, key_display=binding.key_display))
    return found


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; max-height: 2; width: 1fr; background: $panel;
             color: $text;
             padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.items: list[tuple[str, str, bool]] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.call_after_refresh(self.update_keys)

    def on_unmount(self) -> None:
        with contextlib.suppress(NoScreen):  # the screen went first: nothing to undo
            self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, _screen: Any) -> None:
        if self.is_attached:
            self.call_after_refresh(self.update_keys)

    def on_resize(self) -> None:
        self._draw()

    def update_keys(self) -> None:
        """The screen's own keys in their order, each with its state right now. (Not
        Textual's active bindings: those leave out letter keys while an Input has the focus,
        and let the app's hidden ctrl+q shadow the screen's Quit.)"""
        if not self.is_attached:
            return
        try:
            screen = self.screen
        except NoScreen:
            return
        items: list[tuple[str, str, bool]] = []
        by_description: dict[str, int] = {}
        for binding in bindings_of(screen):
            if not binding.show or not binding.description:
                continue
            state = self.app._check_action_state(binding.action, screen)
            if state is False:
                continue
            label = key_label(self.app, binding)
            if binding.description in by_description:
                i = by_description[binding.description]
                items[i] = (f"{items[i][0]}/{label}", binding.description, items[i][2])
                continue
            by_description[binding.description] = len(items)
            items.append((label, binding.description, bool(state)))
        if items != self.items:
            self.items = items
            self._draw()

    def _draw(self) -> None:
        width = max(20, (self.size.width or self.app.size.width) - 2)
        # Two spaces between keys where they fit; one where two would push the last key off.
        text, rows, fits = self._layout(width, 2)
        if not fits:
            text, rows, _ = self._layout(width, 1)
        self.update(text)
        self.styles.height = rows  # (auto height was not always re-measured after an update)

    def _layout(self, width: int, spacing: int) -> tuple[Text, int, bool]:
        """The items in rows of ``width``, ``spacing`` apart; and whether all of them fit."""
        text = Text(no_wrap=True, overflow="fold")
        used = 0
        rows = 1
        fits = True
        for label, description, enabled in self.items:
            item = cell_len(label) + 1 + cell_len(description)
            gap = spacing if used else 0
            if used and used + gap + item > width and rows < MAX_ROWS:
                text.append("\n")
                rows += 1
                used, gap = 0, 0
            text.append(" " * gap)
            # A key that does nothing here right now is shown dimmed (it exists; see F1).
            text.append(label, style="bold reverse" if enabled else "dim reverse")
            text.append(f" {description}", style="" if enabled else "dim")
            used += gap + item
            fits = fits and used <= width
        return text, rows, fits
