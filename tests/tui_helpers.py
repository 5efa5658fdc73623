"""Shared helpers for the Textual terminal tests: build an app on the test database, wait for
state (never for time), and read what the widgets show as plain text."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

from rich.text import Text
from textual import events
from textual.content import Content
from textual.keys import _character_to_key
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from hms_tui.app import HmsApp, Role, create_app
from hms_tui.config import DisplaySettings, PrinterSettings, Settings
from hms_tui.domain.events import ConnectionState
from hms_tui.services.desk import Desk
from hms_tui.services.live import Listener
from tests.listener_harness import fast_listener

T = TypeVar("T")

# A fixed instant in the past: waiting times clamp to 0m, the clock and the badge read 09:41.
FROZEN = datetime(2025, 3, 3, 9, 41, 7, tzinfo=UTC)

# Names a hostile (or just international) front desk will meet. Each must show literally.
HOSTILE_NAMES = [
    "[/b]",
    "[bold red]x[/]",
    "[@click=app.quit]click[/]",
    "\\[escaped",
    "Zoë Ó Briain",
    "王小明",
    "José Garci\u0301a",  # a combining acute accent
    "Dr 👩\u200d⚕\ufe0f Nurse",  # a zero-width-joiner emoji sequence
    "A" * 49 + " " + "B" * 50,  # exactly 100 characters, the limit
]


def tui_listener(desk: Desk, *, masked: bool = False, **overrides: float) -> Listener:
    """The tests' listener with the default heartbeat: a loaded test machine running a
    Textual app must not look like a dead connection."""
    return fast_listener(desk.db, masked=masked,
                         **{"heartbeat": 5.0, "heartbeat_timeout": 5.0, **overrides})


# No slip after each check-in unless a test asks for one (tests/test_tui_slips.py does).
NO_SLIPS = PrinterSettings(kind="none")


def settings_with(**display: Any) -> Settings:
    """Settings with these display options (the bell off unless asked for), no slips."""
    display.setdefault("bell", False)
    return Settings(display=DisplaySettings(**display), printer=NO_SLIPS)


def make_app(role: Role, desk: Desk, *, settings: Settings | None = None,
             listener: Listener | None = None, **kwargs: Any) -> HmsApp:
    """An app on the test database with a frozen clock and no bell."""
    settings = settings or Settings(display=DisplaySettings(bell=False), printer=NO_SLIPS)
    kwargs.setdefault("clock", lambda: FROZEN)
    kwargs.setdefault("ascii_only", False)
    kwargs.setdefault("recover", False)  # a bug fails the test instead of being recovered from
    listener = listener or tui_listener(desk, masked=role == Role.DISPLAY)
    app = create_app(role, desk, settings, listener=listener, **kwargs)
    # Keep every notification (toasts expire; a slow machine must not lose one).
    log: list[tuple[str, str]] = []
    notify = app.notify

    def logged(message: str, **kw: Any) -> None:
        log.append((message, kw.get("severity", "information")))
        notify(message, **kw)

    app.notify = logged  # type: ignore[method-assign]
    app.test_notifications = log  # type: ignore[attr-defined]
    return app


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a pilot coroutine from a plain (sync) pytest test."""
    return asyncio.run(coro)


async def wait_until(pilot: Pilot[Any], predicate: Callable[[], Any], timeout: float = 10.0,
                     message: str = "") -> Any:
    """Let the app run until ``predicate()`` is truthy; return its value. Fails after
    ``timeout`` seconds with ``message`` (and, when the app has them, its notifications)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:  # a widget not mounted yet, a table not filled yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            notes = notifications(pilot.app) if isinstance(pilot.app, HmsApp) else []
            raise AssertionError(f"timed out after {timeout}s: {message or predicate}"
                                 f"; notifications: {notes}")
        await pilot.pause(0.05)


async def wait_live(pilot: Pilot[Any], board: int = 1) -> None:
    """Until the listener is live and the board (at least ``board`` doctors) has arrived."""
    app = pilot.app
    assert isinstance(app, HmsApp)
    await wait_until(pilot, lambda: app.live.state == ConnectionState.LIVE
                     and len(app.live.board) >= board, message="listener live with the board")
    await pilot.pause()


async def wait_screen(pilot: Pilot[Any], cls: type[Any], timeout: float = 10.0) -> Any:
    """Until the active screen is a ``cls`` that has been composed and mounted; return it."""
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, cls) and app.screen.is_mounted,
                     timeout, f"the {cls.__name__} screen")
    await pilot.pause()
    return app.screen


async def until_db(pilot: Pilot[Any], query: Callable[[], T], expect: Callable[[T], bool],
                   timeout: float = 10.0, message: str = "") -> T:
    """Poll the database (``query`` runs in a thread) until ``expect(result)``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await asyncio.to_thread(query)
        if expect(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"database never matched: {message} (last: {result!r})")
        await pilot.pause(0.05)


# -- reading what is shown ---------------------------------------------------------------------


def plain(value: object) -> str:
    """A cell, a Static's content, a Text or Content as plain text."""
    if isinstance(value, Text):
        return value.plain
    if isinstance(value, Content):
        return value.plain
    return str(value)


def static_text(widget: Static) -> str:
    return plain(widget.content)


def table_rows(table: DataTable[Any]) -> list[list[str]]:
    """Every row of a DataTable, top to bottom, as plain strings."""
    return [[plain(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def column(table: DataTable[Any], index: int) -> list[str]:
    return [row[index] for row in table_rows(table)]


def screen_text(app: HmsApp) -> str:
    """What the terminal shows for the current screen, as text (one line per row)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


def notifications(app: HmsApp) -> list[str]:
    """Every notification the app raised so far (from ``make_app``'s log)."""
    return [message for message, _ in getattr(app, "test_notifications", [])]


def error_notifications(app: HmsApp) -> list[str]:
    return [m for m, severity in getattr(app, "test_notifications", []) if severity == "error"]


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Type ``text`` as a burst of key events (as a fast typist or a terminal delivers them),
    then let the app take them in. ``pilot.press`` waits for idle after every key (~60 ms)."""
    for ch in text:
        pilot.app.post_message(events.Key(_character_to_key(ch), ch))
    await pilot.pause()


async def focus(pilot: Pilot[Any], widget: Any) -> None:
    """Give ``widget`` the focus and wait until it has it (focus is applied later)."""
    widget.focus()
    await wait_until(pilot, lambda: widget.has_focus, 5, f"focus on {widget!r}")


async def paste(pilot: Pilot[Any], text: str) -> None:
    """Paste ``text`` into the focused widget (one event, as a terminal delivers a paste)."""
    focused = pilot.app.focused
    assert focused is not None, "nothing has the focus to paste into"
    focused.post_message(events.Paste(text))
    await pilot.pause()

