"""The title bar every screen shows: where you are, and whether what you see is live."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from hms_tui.domain.events import ConnectionState
from hms_tui.domain.textsafe import printable


def badge_text(state: ConnectionState, last: datetime | None, *, ascii_only: bool) -> Text:
    """'● live 09:41:07', '○ reconnecting… last 09:40:12', '✕ offline · last 09:40:12'."""
    stamp = last.strftime("%H:%M:%S") if last else "never"
    if state == ConnectionState.LIVE:
        return Text(f"{'*' if ascii_only else '●'} live {stamp}", style="bold green")
    if state == ConnectionState.CONNECTING:
        return Text(f"{'.' if ascii_only else '○'} connecting...", style="yellow")
    if state == ConnectionState.UNSUPPORTED:  # e.g. a transaction pooler: the app says why
        return Text(f"{'!' if ascii_only else '✕'} no live refresh · last {stamp}",
                    style="bold white on red")
    mark = "!" if ascii_only else ("○" if state == ConnectionState.RECONNECTING else "✕")
    return Text(f"{mark} {state.value} · last {stamp}", style="bold black on yellow"
                if state == ConnectionState.RECONNECTING else "bold white on red")


class ConnectionBadge(Static):
    DEFAULT_CSS = "ConnectionBadge { width: auto; padding: 0 1; }"

    _shown: Text | None = None

    def show(self, state: ConnectionState, last: datetime | None, ascii_only: bool) -> None:
        # Every live event asks (several per change): repaint only when the text differs.
        text = badge_text(state, last, ascii_only=ascii_only)
        if text != self._shown:
            self._shown = text
            self.update(text)


class TitleBar(Horizontal):
    """One line: the title on the left, the connection badge on the right."""

    DEFAULT_CSS = """
    TitleBar { height: 1; background: $primary; color: $text; }
    TitleBar > #title { width: 1fr; padding: 0 1; text-style: bold; }
    """

    def __init__(self, title: str) -> None:
        super().__init__()
        self._title = title

    def compose(self) -> ComposeResult:
        yield Static(Text(printable(self._title)), id="title")
        yield ConnectionBadge()

    def set_title(self, title: str) -> None:
        self.query_one("#title", Static).update(Text(printable(title)))
