"""The waiting-room display: full screen, no input needed.

Per doctor, the token now being served in big characters, the next few tokens and the room.
Names are hidden (or initials, if configured). A new call or recall is announced — the panel
lights up and the bell rings — and announcements queue, so none cuts another off. While the
listener is not live, a banner replaces every number so nobody reads a stale one.

Doctors come and go while the display runs (admin adds, edits or deactivates them): the panels
are changed in place, one change at a time, never rebuilt with ids still in use. The grid is
chosen for the number of doctors and the screen: the largest token that fits, no lonely panel.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.css.query import NoMatches
from textual.events import Resize
from textual.widgets import Static

from hms_tui.domain.events import BoardUpdate, ConnectionState, QueueUpdate
from hms_tui.domain.models import Priority, Status, Visit, now_serving
from hms_tui.domain.textsafe import ascii_only, printable
from hms_tui.screens.base import LiveScreen
from hms_tui.services import voice
from hms_tui.widgets.bigtext import HEIGHT, BigText, big_width
from hms_tui.widgets.status import ConnectionBadge

log = logging.getLogger(__name__)
PANEL_MIN_WIDTH = 14
RESTART_BANNER_SECONDS = 1.5


@dataclass(frozen=True)
class Announcement:
    """One call to announce. ``key`` tells calls apart: the visit and the time of the call, so
    a recall, or a call after a requeue (its count starts again at 1), is a new one."""

    doctor: str
    token: str
    where: str
    recall: bool
    key: tuple[int, datetime | None] = (0, None)


def fit_tokens(tokens: Sequence[tuple[str, Priority]], width: int, *,
               ascii_mode: bool = False) -> Text:
    """As many whole tokens as fit (never a cut one: a patient must read their whole token);
    an emergency stands out (reverse video, and a '!' before it on a bare console)."""
    shown = Text()
    for token, priority in tokens:
        label = f"!{token}" if ascii_mode and priority == Priority.EMERGENCY else token
        sep = "  " if shown.plain else ""
        if shown.plain and len(shown.plain) + len(sep) + len(label) > width:
            break
        style = {"EMERGENCY": "bold reverse", "URGENT": "bold"}.get(priority.value, "")
        shown.append(sep)
        shown.append(label, style=style)
    return shown if shown.plain else Text("-")


def grid_shape(n: int, width: int, height: int, *, token_width: int,
               extra_rows: int = 0) -> tuple[int, int]:
    """Columns and rows for ``n`` panels in ``width`` x ``height`` cells: the shape where the
    token can be drawn largest, counting empty cells as lost space (so four doctors make two
    by two, not three and a lonely one). A panel needs its border, the room and Next lines."""
    n = max(1, n)
    best: tuple[float, float, int] | None = None
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        w = (width - (cols - 1)) / cols
        h = height / rows
        if cols > 1 and w < PANEL_MIN_WIDTH:
            break
        room_w, room_h = w - 4, h - 4 - extra_rows
        scale = min(room_w / max(1, token_width), room_h / HEIGHT)
        feasible = 1.0 if h >= 5 else 0.0
        score = (feasible, scale * n / (rows * cols), -cols)
        if best is None or score > best:
            best = score
    assert best is not None
    cols = int(-best[2])
    return cols, math.ceil(n / cols)


class DoctorPanel(Vertical):
    DEFAULT_CSS = """
    DoctorPanel { border: round $primary; padding: 0 1; height: 1fr; }
    DoctorPanel.ascii { border: ascii $primary; }
    DoctorPanel.emergency { border: heavy $error; }
    DoctorPanel.ascii.emergency { border: ascii $error; }
    DoctorPanel.calling { border: heavy $warning; background: $warning 30%; }
    DoctorPanel.ascii.calling { border: ascii $warning; background: $warning 30%; }
    DoctorPanel > .where { text-style: bold; width: 1fr; height: 1; text-wrap: nowrap;
                           text-overflow: ellipsis; }
    DoctorPanel > BigText { height: 1fr; min-height: 1; }
    DoctorPanel > .who { color: $text-muted; height: 1; display: none; }
    DoctorPanel.initials > .who { display: block; }
    DoctorPanel > .next { width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, code: str, ascii_mode: bool, show_initials: bool) -> None:
        classes = " ".join(c for c, on in (("ascii", ascii_mode), ("initials", show_initials)) if on)
        super().__init__(id=f"panel-{code}", classes=classes)
        self.code = code
        self.ascii_mode = ascii_mode
        self.where = ""
        self.upcoming: list[tuple[str, Priority]] = []
        self._shown: tuple[str, str, str, list[tuple[str, Priority]], str, bool] | None = None
        self._next_line: Text | None = None

    def compose(self) -> ComposeResult:
        yield Static("", classes="where")
        yield BigText("", ascii_only=self.ascii_mode)
        yield Static("", classes="who")
        yield Static("", classes="next")

    def text(self, value: object) -> str:
        return ascii_only(value) if self.ascii_mode else printable(value)

    def show(self, where: str, serving: str, who: str, upcoming: list[tuple[str, Priority]],
             *, reference: str = "", emergency: bool = False) -> None:
        """Only what differs from what is shown is updated: every update costs a repaint of
        that widget (and a layout), and most changes of a queue touch one line of its panel."""
        shown = (self.text(where), serving, self.text(who), list(upcoming), reference, emergency)
        if shown == self._shown:
            return
        before = self._shown
        self._shown = shown
        where, _, who, upcoming, _, _ = shown
        if before is None or before[0] != where:
            self.where = where
            self.query_one(".where", Static).update(Text(where))
        self.query_one(BigText).update(serving or "-", reference)
        if before is None or before[2] != who:
            self.query_one(".who", Static).update(Text(who))
        self.set_class(emergency, "emergency")
        if before is None or before[0] != where or before[3] != upcoming:
            self.upcoming = upcoming
            self._fit()

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        """Room for everything: when the panel is very short, the room moves into the border
        so that the token and the Next line keep their rows."""
        height = self.content_size.height
        where = self.query_one(".where", Static)
        tight = 0 < height < 3 + (1 if self.has_class("initials") else 0)
        where.display = not tight
        self.border_title = Text(self.where) if tight else None
        width = self.content_size.width - len("Next: ") if self.content_size.width else 200
        line = Text("Next: ")
        line.append_text(fit_tokens(self.upcoming, width, ascii_mode=self.ascii_mode))
        if line != self._next_line:
            self._next_line = line
            self.query_one(".next", Static).update(line)


class DisplayScreen(LiveScreen):
    BINDINGS = [
        *LiveScreen.BINDINGS,
        Binding("ctrl+q", "app.quit", "Quit", show=False),
    ]
    DEFAULT_CSS = """
    DisplayScreen { layout: vertical; }
    DisplayScreen #top { height: 1; background: $primary; }
    DisplayScreen #clinic { width: 1fr; padding: 0 1; text-style: bold; text-wrap: nowrap;
                            text-overflow: ellipsis; }
    DisplayScreen #clock { width: auto; padding: 0 1; text-style: bold; }
    DisplayScreen #panels { layout: grid; height: 1fr; grid-gutter: 0 1; }
    DisplayScreen #offline { height: 1fr; content-align: center middle; text-style: bold;
                             background: $error; color: $text; display: none; }
    DisplayScreen #offline.restarting { background: $primary-darken-2; }
    DisplayScreen #announce { height: 2; content-align: left middle; padding: 0 1;
                              text-style: bold; background: $boost; }
    DisplayScreen #announce.active { background: $warning; color: $background; }
    """

    def __init__(self, doctors: tuple[str, ...] = (), *, restarting: bool = False) -> None:
        super().__init__()
        self.chosen = tuple(d.upper() for d in doctors)
        self.codes: list[str] = []  # the panels wanted, in order
        self.rooms: dict[str, str] = {}
        self.prefixes: dict[str, str] = {}
        self.names: dict[str, tuple[str, str | None]] = {}  # doctor's name and room
        self.seen_calls: dict[str, set[tuple[int, datetime | None]]] = {}
        self.pending: deque[Announcement] = deque()
        self.current: Announcement | None = None
        self.restarting = restarting
        self._panel_lock = asyncio.Lock()
        # An announcement is done when it has been up announce_seconds and, with a voice
        # engine ([voice] enabled), once it has been said: only then does the next start.
        self.voice: voice.Announcer | None = None
        self.spoken_n: int | None = None
        self.waiting_for: set[str] = set()

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield Static("", id="clinic")
            yield ConnectionBadge()
            yield Static("", id="clock")
        yield Container(id="panels")
        yield Static("", id="offline")
        yield Static("", id="announce")

    def on_mount(self) -> None:
        settings = self.hms.settings.voice
        engine = voice.detect_engine(settings)
        if engine.available:
            self.voice = voice.Announcer(settings, on_done=self._said)
        elif settings.enabled:
            log.warning("%s", engine.reason)
        self.tick()
        self.set_interval(1, self.tick)
        if self.restarting:
            self.set_timer(RESTART_BANNER_SECONDS, self._restarted)
        if self.hms.live.board:
            self.board_changed(BoardUpdate(self.hms.live.board, "initial"))
        self.connection_changed()

    def on_unmount(self) -> None:
        if self.voice is not None:
            self.voice.stop(drain=False, timeout=2)

    def _restarted(self) -> None:
        self.restarting = False
        self.connection_changed()

    def text(self, value: object) -> str:
        """User text as this terminal can show it (ASCII only on a bare console)."""
        return ascii_only(value) if self.hms.ascii_only else printable(value)

    # -- time and layout -----------------------------------------------------------------------

    def tick(self) -> None:
        self.query_one("#clock", Static).update(self.hms.now().strftime("%H:%M"))
        self.query_one("#clinic", Static).update(Text(self.text(self.hms.clinic_name)))

    def rules_loaded(self) -> None:
        super().rules_loaded()
        self.tick()

    def on_resize(self, event: Resize) -> None:
        self.relayout()

    def relayout(self) -> None:
        container = self.query_one("#panels", Container)
        panels = list(container.query_children(DoctorPanel))
        count = max(1, len(panels))
        width = container.size.width or self.size.width
        height = container.size.height or max(1, self.size.height - 3)
        token = max((big_width(f"{self.prefixes.get(p.code, p.code)}-000") for p in panels),
                    default=big_width("D1-000"))
        initials = 1 if self.hms.settings.display.names == "initials" else 0
        cols, rows = grid_shape(count, width, height, token_width=token, extra_rows=initials)
        container.styles.grid_size_columns = cols
        container.styles.grid_size_rows = rows
        # The last row's panels share it whole: no hole at the end of the grid.
        empty = cols * rows - len(panels)
        for i, panel in enumerate(panels):
            panel.styles.column_span = 1 + empty if i == len(panels) - 1 else 1

    # -- live data -----------------------------------------------------------------------------

    def board_changed(self, event: BoardUpdate) -> None:
        by_code = {b.code: b for b in event.board}
        codes = [c for c in self.chosen if c in by_code and by_code[c].active] \
            if self.chosen else [b.code for b in event.board if b.active]
        # The board comes after every change of any queue (its counts move), but a panel
        # shows only the doctor's name, room and token prefix from it: the queue's own event
        # redraws the rest. Refill only the panels whose doctor changed.
        renamed = []
        for b in event.board:
            room = ", ".join(p for p in (b.name, b.room) if p)
            if (self.rooms.get(b.code), self.prefixes.get(b.code)) != (room, b.token_prefix):
                renamed.append(b.code)
            self.rooms[b.code] = room
            self.names[b.code] = (b.name, b.room)
            self.prefixes[b.code] = b.token_prefix
        if codes != self.codes:
            self.codes = codes
            self.run_worker(self._sync_panels(), group="panels", exit_on_error=False)
        else:
            self._fill_all(renamed)

    async def _sync_panels(self) -> None:
        """Make the panels match ``self.codes``: remove those gone, mount the new ones in
        place. One change at a time (a lock), each awaited, so an id is never used twice."""
        async with self._panel_lock:
            container = self.query_one("#panels", Container)
            wanted = list(self.codes)
            gone = [p for p in container.query_children(DoctorPanel) if p.code not in wanted]
            if gone:
                await container.remove_children(gone)
            show_initials = self.hms.settings.display.names == "initials"
            for i, code in enumerate(wanted):
                present = [p.code for p in container.query_children(DoctorPanel)]
                if code in present:
                    continue
                later = [p for p in container.query_children(DoctorPanel)
                         if p.code in wanted[i + 1:]]
                panel = DoctorPanel(code, self.hms.ascii_only, show_initials)
                if later:
                    await container.mount(panel, before=later[0])
                else:
                    await container.mount(panel)
            self.relayout()
            self._fill_all()
            if self.current is not None:
                self._highlight(self.current)

    def _fill_all(self, codes: list[str] | None = None) -> None:
        for code in self.codes if codes is None else codes:
            visits = self.hms.live.queues.get(code)
            if visits is not None and code in self.codes:
                self._fill(code, visits)

    def queue_changed(self, event: QueueUpdate) -> None:
        if event.doctor not in self.codes:
            return
        self._announce_new_calls(event.doctor, event.visits)
        self._fill(event.doctor, event.visits)

    def _fill(self, code: str, visits: tuple[Visit, ...]) -> None:
        try:  # by id, not a query: no walk over every panel's widgets
            panel = self.query_one("#panels", Container).get_child_by_id(f"panel-{code}",
                                                                         DoctorPanel)
        except NoMatches:
            return
        serving = now_serving(visits)
        waiting = [v for v in visits if v.position is not None]
        who = ""
        if serving is not None and self.hms.settings.display.names == "initials":
            who = serving.patient_name  # the display's rows carry initials, never names
        upcoming = [(str(v.token), v.priority)
                    for v in waiting[: self.hms.settings.display.next_count]]
        panel.show(self.rooms.get(code, code), serving.token or "" if serving else "", who,
                   upcoming, reference=f"{self.prefixes.get(code, code)}-000",
                   emergency=serving is not None and serving.priority == Priority.EMERGENCY)

    def connection_changed(self) -> None:
        live = self.hms.live.state == ConnectionState.LIVE and not self.restarting
        panels = self.query_one("#panels")
        offline = self.query_one("#offline", Static)
        panels.display = live
        offline.display = not live
        offline.set_class(self.restarting, "restarting")
        if self.restarting:
            offline.update(Text("Display restarting...\none moment", justify="center"))
        elif not live:
            last = self.hms.refreshed_at
            stamp = last.astimezone(self.hms.clinic_zone).strftime("%H:%M:%S") if last else "-"
            what = ("Connecting..." if self.hms.live.state == ConnectionState.CONNECTING
                    else "Connection lost - reconnecting...")
            offline.update(Text(f"{what}\nlast update {stamp}", justify="center"))

    # -- announcements -------------------------------------------------------------------------

    def _announce_new_calls(self, code: str, visits: tuple[Visit, ...]) -> None:
        """Queue an announcement for every call not seen before, oldest call first."""
        called = [v for v in visits if v.status in (Status.CALLED, Status.IN_CONSULTATION)
                  and v.called_at is not None]
        calls = {(v.visit_id, v.called_at) for v in called}
        seen = self.seen_calls.get(code)
        # Only the calls still shown are kept (a visit that leaves and is called again has a
        # new call time): the set stays the size of the queue on a display that runs for days.
        self.seen_calls[code] = calls
        if seen is None:
            return  # the first picture of this queue: nothing is new
        fresh = [v for v in called if (v.visit_id, v.called_at) not in seen]
        for v in sorted(fresh, key=lambda v: (v.called_at, v.visit_id)):
            self.pending.append(Announcement(code, v.token or "", self.rooms.get(code, code),
                                             v.call_count > 1, (v.visit_id, v.called_at)))
        if self.current is None and self.pending:
            self._next_announcement()

    def _next_announcement(self) -> None:
        """Show the next queued call; it stays up until it is done (``announce_seconds``, and
        with a voice engine until it has been said), and only then does the next one start."""
        bar = self.query_one("#announce", Static)
        for each in self.query(DoctorPanel):
            each.remove_class("calling")
        if not self.pending:
            self.current = None
            bar.remove_class("active")
            bar.update("")
            return
        self.current = current = self.pending.popleft()
        arrow = ">>" if self.hms.ascii_only else "▶"
        again = " (again)" if current.recall else ""
        bar.update(Text(f"{arrow} Now calling {current.token}{again} - "
                        f"{self.text(current.where)}"))
        bar.add_class("active")
        self._highlight(current)
        self.waiting_for = {"time"}
        if self.voice is not None:
            self.waiting_for.add("voice")
            name, room = self.names.get(current.doctor, (current.doctor, None))
            self.spoken_n = self.voice.announce(voice.Announcement(
                token=current.token, room=room or name, doctor=name, recall=current.recall,
                key=current.key))
        elif self.hms.settings.display.bell:
            self.app.bell()
        self.set_timer(self.hms.settings.display.announce_seconds,
                       lambda: self._part_done("time"))

    def _said(self, run: voice.AnnouncementRun) -> None:
        """The voice engine finished a call (on the announcer's thread)."""
        if run.n == self.spoken_n:
            self.app.call_from_thread(self._part_done, "voice")

    def _part_done(self, part: str) -> None:
        self.waiting_for.discard(part)
        if not self.waiting_for:
            self._next_announcement()

    def _highlight(self, announcement: Announcement) -> None:
        for panel in self.query(f"#panel-{announcement.doctor}"):
            panel.add_class("calling")
