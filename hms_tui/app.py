"""The Textual app, one per terminal role, and the factory the CLI and the tests both use.

The app receives its data layer (a ``Desk`` and a ``Listener``) in its constructor. Every
database call runs off the UI loop (``db_call``); failures become notifications, never a
traceback. Live events from the listener are handed to every screen on the stack.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from textual.app import App, SystemCommand
from textual.message import Message
from textual.screen import Screen

from hms_tui.config import Settings
from hms_tui.core.desk import Desk
from hms_tui.core.errors import HmsError
from hms_tui.core.models import DoctorBoard, Visit
from hms_tui.db.listener import (
    BoardUpdate,
    ConnectionState,
    ConnectionUpdate,
    Event,
    Listener,
    QueueUpdate,
)
from hms_tui.textsafe import printable

log = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], datetime]


class Role(StrEnum):
    RECEPTION = "reception"
    DOCTOR = "doctor"
    DISPLAY = "display"
    ADMIN = "admin"


@dataclass
class LiveState:
    """What the listener last delivered, kept by the app so a new screen starts complete."""

    connection: ConnectionState = ConnectionState.CONNECTING
    last_refresh: datetime | None = None  # by the app's clock
    queues: dict[str, tuple[Visit, ...]] = field(default_factory=dict)
    board: tuple[DoctorBoard, ...] = ()


class LiveEvent(Message):
    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


def ascii_terminal() -> bool:
    """A bare Linux console (or a request for ASCII) gets no box drawing or symbols."""
    return os.environ.get("TERM") == "linux" or os.environ.get("HMS_TUI_ASCII") == "1"


class HmsApp(App[None]):
    CSS = """
    Screen { layers: base overlay; }
    .error { color: $error; }
    .muted { color: $text-muted; }
    """
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        role: Role,
        desk: Desk,
        listener: Listener,
        settings: Settings,
        *,
        clock: Clock | None = None,
        doctor: str | None = None,
        doctors: Iterable[str] = (),
        ascii_only: bool | None = None,
        hint: str = "",
    ) -> None:
        super().__init__()
        self.role = role
        self.desk = desk
        self.listener = listener
        self.settings = settings
        self._clock = clock or (lambda: datetime.now(UTC))
        self.doctor_code = doctor
        self.display_doctors = tuple(doctors)
        self.ascii_only = ascii_terminal() if ascii_only is None else ascii_only
        self.hint = hint
        self.live = LiveState()
        self.clinic_zone: tzinfo = UTC
        self.clinic_name = ""
        self._unsubscribe: Callable[[], None] | None = None
        self._listener_task: asyncio.Task[None] | None = None
        self.title = f"hms-tui · {role.value}"

    # -- time ----------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The current time in the clinic's zone (the tests freeze it)."""
        return self._clock().astimezone(self.clinic_zone)

    # -- lifecycle -----------------------------------------------------------------------------

    async def on_mount(self) -> None:
        self._unsubscribe = self.listener.subscribe(lambda e: self.post_message(LiveEvent(e)))
        self._listener_task = asyncio.create_task(self.listener.run())
        self.db_call(self.desk.rules, done=self.apply_rules)
        self.push_screen(self._role_screen())
        if self.hint:
            self.notify(self.hint, title="Other terminals", timeout=15)

    def apply_rules(self, rules: Any) -> None:
        """The clinic's zone and name, for every screen (after start and after a change)."""
        try:
            self.clinic_zone = ZoneInfo(rules.timezone)
        except (ValueError, KeyError):
            self.clinic_zone = UTC
        self.clinic_name = rules.clinic_name
        for screen in self.screen_stack:
            refresh = getattr(screen, "rules_loaded", None)
            if refresh is not None:
                refresh()

    async def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        await self.listener.stop()
        if self._listener_task is not None:
            self._listener_task.cancel()

    def _role_screen(self) -> Screen[Any]:
        if self.role == Role.RECEPTION:
            from hms_tui.screens.reception import ReceptionScreen

            return ReceptionScreen()
        if self.role == Role.DOCTOR:
            from hms_tui.screens.doctor import DoctorScreen

            return DoctorScreen(self.doctor_code)
        if self.role == Role.DISPLAY:
            from hms_tui.screens.display import DisplayScreen

            return DisplayScreen(self.display_doctors)
        from hms_tui.screens.admin import AdminScreen

        return AdminScreen()

    # -- live events ---------------------------------------------------------------------------

    def on_live_event(self, message: LiveEvent) -> None:
        event = message.event
        if isinstance(event, ConnectionUpdate):
            self.live.connection = event.state
            if event.state == ConnectionState.LIVE:
                self.live.last_refresh = self._clock()
        elif isinstance(event, QueueUpdate):
            self.live.queues[event.doctor] = event.visits
            self.live.last_refresh = self._clock()
        elif isinstance(event, BoardUpdate):
            self.live.board = event.board
            self.live.last_refresh = self._clock()
        for screen in list(self.screen_stack):
            handler = getattr(screen, "apply_live", None)
            if handler is not None:
                handler(event)

    # -- database calls off the UI loop --------------------------------------------------------

    def db_call(
        self,
        fn: Callable[..., T],
        *args: Any,
        done: Callable[[T], Any] | None = None,
        failed: Callable[[HmsError], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Run ``fn`` in a thread; hand the result to ``done`` on the UI loop. An HmsError goes
        to ``failed`` (default: an error notification); anything else is reported, not raised."""

        async def task() -> None:
            try:
                result = await asyncio.to_thread(fn, *args, **kwargs)
            except HmsError as exc:
                if failed is not None:
                    failed(exc)
                else:
                    self.notify(printable(str(exc)), severity="error", timeout=8, markup=False)
                return
            except Exception as exc:  # a bug or an unexpected driver error: show it, keep running
                log.exception("database call failed")
                self.notify(printable(f"Unexpected error: {exc}"), severity="error", timeout=10,
                            markup=False)
                return
            if done is not None:
                done(result)

        self.run_worker(task(), group="db", exit_on_error=False)

    # -- command palette: every key of the current screen ---------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in screen.BINDINGS:
            key, action, description = _binding_parts(binding)
            if description and action:
                yield SystemCommand(description, f"key: {key}",
                                    _runner(screen, action))


def _binding_parts(binding: Any) -> tuple[str, str, str]:
    if isinstance(binding, tuple):
        key, action, *rest = binding
        return key, action, rest[0] if rest else ""
    return binding.key, binding.action, binding.description


def _runner(screen: Screen[Any], action: str) -> Callable[[], Any]:
    async def run() -> None:
        await screen.run_action(action)

    return run


def create_app(
    role: Role,
    desk: Desk,
    settings: Settings,
    *,
    listener: Listener | None = None,
    clock: Clock | None = None,
    doctor: str | None = None,
    doctors: Iterable[str] = (),
    ascii_only: bool | None = None,
    hint: str = "",
) -> HmsApp:
    """The one way to build an app: the CLI passes real settings, tests a test database."""
    if listener is None:
        # The display reads the masked view: initials only, even for a privileged login.
        listener = Listener(desk.db, masked=role == Role.DISPLAY)
    return HmsApp(role, desk, listener, settings, clock=clock, doctor=doctor, doctors=doctors,
                  ascii_only=ascii_only, hint=hint)
