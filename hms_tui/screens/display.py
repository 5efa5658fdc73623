"""The waiting-room display: full screen, no input needed.

Per doctor, the token now being served in big characters, the next few tokens and the room.
Names are hidden (or initials, if configured). A new call or recall is announced — the panel
lights up and the bell rings — and announcements queue, so none cuts another off. While the
listener is not live, a banner replaces every number so nobody reads a stale one.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.events import Resize
from textual.widgets import Static

from hms_tui.domain.events import BoardUpdate, ConnectionState, QueueUpdate
from hms_tui.domain.models import Status, Visit, now_serving
from hms_tui.domain.textsafe import printable
from hms_tui.screens.base import LiveScreen
from hms_tui.widgets.bigtext import BigText
from hms_tui.widgets.status import ConnectionBadge


@dataclass(frozen=True)
class Announcement:
    doctor: str
    token: str
    where: str
    recall: bool


def fit_tokens(tokens: list[str], width: int) -> str:
    """As many whole tokens as fit (never a cut one: a patient must read their whole token)."""
    shown: list[str] = []
    for token in tokens:
        if len("  ".join([*shown, token])) > width and shown:
            break
        shown.append(token)
    return "  ".join(shown) if shown else "-"


class DoctorPanel(Vertical):
    DEFAULT_CSS = """
    DoctorPanel { border: round $primary; padding: 0 1; height: 1fr; }
    DoctorPanel.ascii { border: ascii $primary; }
    DoctorPanel.calling { border: heavy $warning; background: $warning 30%; }
    DoctorPanel.ascii.calling { border: ascii $warning; background: $warning 30%; }
    DoctorPanel > .where { text-style: bold; width: 1fr; }
    DoctorPanel > BigText { height: 1fr; min-height: 1; }
    DoctorPanel > .who { color: $text-muted; height: 1; display: none; }
    DoctorPanel.initials > .who { display: block; }
    DoctorPanel > .next { width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, code: str, ascii_only: bool, show_initials: bool) -> None:
        classes = " ".join(c for c, on in (("ascii", ascii_only), ("initials", show_initials)) if on)
        super().__init__(id=f"panel-{code}", classes=classes)
        self.code = code
        self.ascii_only = ascii_only
        self.upcoming: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("", classes="where")
        yield BigText("", ascii_only=self.ascii_only)
        yield Static("", classes="who")
        yield Static("", classes="next")

    def show(self, where: str, serving: str, who: str, upcoming: list[str]) -> None:
        self.query_one(".where", Static).update(Text(printable(where)))
        self.query_one(BigText).update(serving or "-")
        self.query_one(".who", Static).update(Text(printable(who)))
        self.upcoming = upcoming
        self._show_next()

    def on_resize(self) -> None:
        self._show_next()

    def _show_next(self) -> None:
        width = self.content_size.width - len("Next: ") if self.content_size.width else 200
        self.query_one(".next", Static).update(Text(f"Next: {fit_tokens(self.upcoming, width)}"))


class DisplayScreen(LiveScreen):
    BINDINGS = [
        *LiveScreen.BINDINGS,
        Binding("ctrl+q", "app.quit", "Quit", show=False),
    ]
    DEFAULT_CSS = """
    DisplayScreen { layout: vertical; }
    DisplayScreen #top { height: 1; background: $primary; }
    DisplayScreen #clinic { width: 1fr; padding: 0 1; text-style: bold; }
    DisplayScreen #clock { width: auto; padding: 0 1; text-style: bold; }
    DisplayScreen #panels { layout: grid; height: 1fr; grid-gutter: 0 1; }
    DisplayScreen #offline { height: 1fr; content-align: center middle; text-style: bold;
                             background: $error; color: $text; display: none; }
    DisplayScreen #announce { height: 2; content-align: left middle; padding: 0 1;
                              text-style: bold; background: $boost; }
    DisplayScreen #announce.active { background: $warning; color: $background; }
    """

    def __init__(self, doctors: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.chosen = tuple(d.upper() for d in doctors)
        self.codes: list[str] = []
        self.rooms: dict[str, str] = {}
        self.seen_calls: dict[str, set[tuple[int, int]]] = {}
        self.pending: deque[Announcement] = deque()
        self.current: Announcement | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield Static("", id="clinic")
            yield ConnectionBadge()
            yield Static("", id="clock")
        yield Container(id="panels")
        yield Static("", id="offline")
        yield Static("", id="announce")

    def on_mount(self) -> None:
        self.tick()
        self.set_interval(1, self.tick)
        if self.hms.live.board:
            self.board_changed(BoardUpdate(self.hms.live.board, "initial"))
        self.connection_changed()

    # -- time and layout -----------------------------------------------------------------------

    def tick(self) -> None:
        self.query_one("#clock", Static).update(self.hms.now().strftime("%H:%M"))
        self.query_one("#clinic", Static).update(Text(printable(self.hms.clinic_name)))

    def rules_loaded(self) -> None:
        super().rules_loaded()
        self.tick()

    def on_resize(self, event: Resize) -> None:
        self.relayout()

    def relayout(self) -> None:
        panels = self.query_one("#panels", Container)
        count = max(1, len(self.codes))
        cols = max(1, min(count, self.size.width // 36))
        panels.styles.grid_size_columns = cols
        panels.styles.grid_size_rows = math.ceil(count / cols)

    # -- live data -----------------------------------------------------------------------------

    def board_changed(self, event: BoardUpdate) -> None:
        by_code = {b.code: b for b in event.board}
        codes = [c for c in self.chosen if c in by_code] if self.chosen else [
            b.code for b in event.board if b.active]
        for b in event.board:
            self.rooms[b.code] = ", ".join(p for p in (b.name, b.room) if p)
        if codes != self.codes:
            self.codes = codes
            panels = self.query_one("#panels", Container)
            panels.remove_children()
            show_initials = self.hms.settings.display.names == "initials"
            panels.mount_all([DoctorPanel(c, self.hms.ascii_only, show_initials) for c in codes])
            self.relayout()
            self.call_after_refresh(self._fill_all)
        else:
            self._fill_all()

    def _fill_all(self) -> None:
        for code in self.codes:
            visits = self.hms.live.queues.get(code)
            if visits is not None:
                self._fill(code, visits)

    def queue_changed(self, event: QueueUpdate) -> None:
        if event.doctor not in self.codes:
            return
        self._announce_new_calls(event.doctor, event.visits)
        self._fill(event.doctor, event.visits)

    def _fill(self, code: str, visits: tuple[Visit, ...]) -> None:
        panels = self.query(f"#panel-{code}")
        if not panels:
            return
        panel = panels.first(DoctorPanel)
        serving = now_serving(visits)
        waiting = [v for v in visits if v.position is not None]
        who = ""
        if serving is not None and self.hms.settings.display.names == "initials":
            who = serving.patient_name  # the display's rows carry initials, never names
        panel.show(self.rooms.get(code, code), serving.token or "" if serving else "",
                   who, [str(v.token) for v in waiting[: self.hms.settings.display.next_count]])

    def connection_changed(self) -> None:
        live = self.hms.live.state == ConnectionState.LIVE
        panels = self.query_one("#panels")
        offline = self.query_one("#offline", Static)
        panels.display = live
        offline.display = not live
        if not live:
            last = self.hms.refreshed_at
            stamp = last.astimezone(self.hms.clinic_zone).strftime("%H:%M:%S") if last else "-"
            what = ("Connecting..." if self.hms.live.state == ConnectionState.CONNECTING
                    else "Connection lost - reconnecting...")
            offline.update(Text(f"{what}\nlast update {stamp}", justify="center"))

    # -- announcements -------------------------------------------------------------------------

    def _announce_new_calls(self, code: str, visits: tuple[Visit, ...]) -> None:
        calls = {(v.visit_id, v.call_count) for v in visits if v.status == Status.CALLED}
        seen = self.seen_calls.get(code)
        self.seen_calls[code] = (seen or set()) | calls
        if seen is None:
            return  # the first picture of this queue: nothing is new
        for v in sorted((v for v in visits if v.status == Status.CALLED
                         and (v.visit_id, v.call_count) not in seen),
                        key=lambda v: v.called_at or self.hms.now()):
            self.pending.append(Announcement(code, v.token or "", self.rooms.get(code, code),
                                             v.call_count > 1))
        if self.current is None:
            self._next_announcement()

    def _next_announcement(self) -> None:
        bar = self.query_one("#announce", Static)
        for each in self.query(DoctorPanel):
            each.remove_class("calling")
        if not self.pending:
            self.current = None
            bar.remove_class("active")
            bar.update("")
            return
        self.current = self.pending.popleft()
        arrow = ">>" if self.hms.ascii_only else "▶"
        again = " (again)" if self.current.recall else ""
        bar.update(Text(f"{arrow} Now calling {self.current.token}{again} - "
                        f"{printable(self.current.where)}"))
        bar.add_class("active")
        for panel in self.query(f"#panel-{self.current.doctor}"):
            panel.add_class("calling")
        if self.hms.settings.display.bell:
            self.app.bell()
        self.set_timer(self.hms.settings.display.announce_seconds, self._next_announcement)
