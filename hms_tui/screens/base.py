"""What every role's screen shares: the title bar with the live badge, live-event dispatch,
and the help screen listing the screen's keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static

from hms_tui.domain.events import (
    BillUpdate,
    BoardUpdate,
    ConnectionUpdate,
    Event,
    QueueUpdate,
    Refreshed,
)
from hms_tui.widgets.keybar import key_label
from hms_tui.widgets.queue_table import cell
from hms_tui.widgets.status import ConnectionBadge, TitleBar

if TYPE_CHECKING:
    from hms_tui.app import HmsApp


class LiveScreen(Screen[None]):
    """A role's main screen. Subclasses override the ``*_changed`` hooks they care about."""

    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
    ]

    @property
    def hms(self) -> HmsApp:
        return cast("HmsApp", self.app)

    def title_bar(self, title: str) -> TitleBar:
        return TitleBar(title)

    def on_mount(self) -> None:
        # Every live event reaches the screen through the app's one signal; what the screen
        # draws comes from the app's one copy of the live state (app.live).
        self.hms.live_signal.subscribe(self, self.apply_live)
        self.refresh_badge()

    def on_screen_resume(self) -> None:
        self.refresh_badge()

    def refresh_badge(self) -> None:
        last = self.hms.refreshed_at
        shown = last.astimezone(self.hms.clinic_zone) if last else None
        for badge in self.query(ConnectionBadge):
            badge.show(self.hms.live.state, shown, self.hms.ascii_only)

    def apply_live(self, event: Event) -> None:
        try:
            self.refresh_badge()
            match event:
                case QueueUpdate():
                    self.queue_changed(event)
                case BoardUpdate():
                    self.board_changed(event)
                case BillUpdate():
                    self.bills_changed(event)
                case ConnectionUpdate():
                    self.connection_changed()
                case Refreshed():
                    self.refreshed(event)
        except NoMatches:
            pass  # the screen is being taken down (the app is exiting): nothing to draw

    def queue_changed(self, event: QueueUpdate) -> None:
        """A doctor's queue has new contents."""

    def board_changed(self, event: BoardUpdate) -> None:
        """The doctor board has new contents."""

    def bills_changed(self, event: BillUpdate) -> None:
        """Bills of a doctor's visits changed."""

    def connection_changed(self) -> None:
        """The listener's connection state changed (the badge is already updated)."""

    def refreshed(self, event: Refreshed) -> None:
        """A read round finished (after a change anywhere, and the backup poll)."""

    def rules_loaded(self) -> None:
        """The clinic's settings (zone, name) arrived."""
        self.refresh_badge()

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self))


class HelpScreen(ModalScreen[None]):
    """Every key of the screen it was opened from, in a list that scrolls (arrows, PgDn) when
    it is longer than the terminal."""

    BINDINGS = [Binding("escape,f1,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 70; max-width: 100%; height: auto; max-height: 100%;
                            border: round $accent; background: $surface; padding: 0 1; }
    HelpScreen DataTable { height: auto; }
    HelpScreen .muted { height: auto; }
    """

    def __init__(self, owner: Screen[Any]) -> None:
        super().__init__()
        self.owner = owner

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(f"Keys — {type(self.owner).__name__.removesuffix('Screen')}",
                              style="bold"))
            table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True)
            yield table
            hint = getattr(self.app, "hint", "")
            if hint:
                yield Static(Text(hint), classes="muted")
            yield Static(Text("ctrl+p: command palette (every key is there too) · "
                              "arrows scroll · Esc closes this", style="dim"), classes="muted")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Key", "Action")
        seen: set[tuple[str, str]] = set()
        for binding in self.owner.BINDINGS:
            if isinstance(binding, Binding) and binding.description:
                keys = ", ".join(key_label(self.app, Binding(k.strip(), binding.action))
                                 for k in binding.key.split(","))
                if (keys, binding.description) not in seen:
                    seen.add((keys, binding.description))
                    table.add_row(cell(keys), cell(binding.description))
        table.add_row(cell(self.app.get_key_display(Binding("ctrl+p", ""))),
                      cell("Command palette"))
        if not any(b.description == "Quit" for b in self.owner.BINDINGS
                   if isinstance(b, Binding)):
            table.add_row(cell(self.app.get_key_display(Binding("ctrl+q", ""))), cell("Quit"))
        table.focus()
        self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """The list gets what the box has left, so the lines under it are never cut."""
        below = sum(w.outer_size.height or 1 for w in self.query(".muted"))
        spare = self.size.height - 2 - 1 - below  # border, title
        self.query_one(DataTable).styles.max_height = max(3, spare)
