"""The key bar at the bottom of every screen: each key that works right now, never cut off.

Textual's ``Footer`` is one row and drops what does not fit: at 80 columns reception lost
cancel, transfer, priority and F7/F8. This bar wraps onto a second row instead (only when it
must), keeps each key and its word together, and follows the screen's bindings as they
change: keys a screen disables for the moment (``check_action`` returning False) are not
shown, so the bar says what pressing a key will do here, on this tab, with this focus.
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


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: auto; max-height: 2; width: 1fr; background: $panel;
             color: $text;
             padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.items: list[tuple[str, str]] = []

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
        """Read the screen's bindings that are active and shown, in their order."""
        if not self.is_attached:
            return
        try:
            bindings = self.screen.active_bindings
        except NoScreen:
            return
        items: list[tuple[str, str]] = []
        by_description: dict[str, int] = {}
        for active in bindings.values():
            binding = active.binding
            if not binding.show or not binding.description or not active.enabled:
                continue
            label = key_label(self.app, binding)
            if binding.description in by_description:
                i = by_description[binding.description]
                items[i] = (f"{items[i][0]}/{label}", binding.description)
                continue
            by_description[binding.description] = len(items)
            items.append((label, binding.description))
        if items != self.items:
            self.items = items
            self._draw()

    def _draw(self) -> None:
        width = max(20, (self.size.width or self.app.size.width) - 2)
        text = Text(no_wrap=True, overflow="fold")
        used = 0
        rows = 1
        for label, description in self.items:
            item = cell_len(label) + 1 + cell_len(description)
            gap = 2 if used else 0
            if used and used + gap + item > width and rows < MAX_ROWS:
                text.append("\n")
                rows += 1
                used, gap = 0, 0
            text.append(" " * gap)
            text.append(label, style="bold reverse")
            text.append(f" {description}")
            used += gap + item
        self.update(text)
