"""The Textual app, one per terminal role, and the factory the CLI and the tests both use.

The app receives its data layer (a ``Desk`` and a ``Listener``) in its constructor and runs
the listener as a worker on its own loop. The listener's live state is the one copy of what
the screens show (``app.live``); its events reach every screen through one Textual signal
(``app.live_signal``) that each screen subscribes to. Every database call runs off the UI
loop (``db_call``); failures become notifications, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from textual._context import active_message_pump
from textual.app import App, SystemCommand
from textual.notifications import Notify
from textual.screen import Screen
from textual.signal import Signal

from hms_tui.config import Settings
from hms_tui.domain.errors import HmsError
from hms_tui.domain.events import ConnectionState, ConnectionUpdate, Event, Refreshed
from hms_tui.domain.models import ClinicRules
from hms_tui.domain.textsafe import printable
from hms_tui.services.crashlog import write_crash_log
from hms_tui.services.desk import Desk
from hms_tui.services.live import Listener, LiveQueues

log = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], datetime]

MAX_TOASTS = 3  # more would cover the queue; the oldest goes first
RESTART_EXIT = 75  # the app's own loop failed: the CLI starts the display again
STOPPED_EXIT = 70  # failing again and again: give up, non-zero
MAX_RESTARTS = 5  # within RESTART_WINDOW seconds
RESTART_WINDOW = 60.0
RULES_EVERY = 1.0  # after read rounds, re-read the clinic's settings at most this often


class Role(StrEnum):
    RECEPTION = "reception"
    DOCTOR = "doctor"
    DISPLAY = "display"
    ADMIN = "admin"


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
        recover: bool | None = None,
    ) -> None:
        super().__init__()
        if role == Role.DISPLAY and not listener.live.masked:
            raise ValueError("the waiting-room display must read the masked rows")
        self.role = role
        self.desk = desk
        self.listener = listener
        self.settings = settings
        self._clock = clock or (lambda: datetime.now(UTC))
        self.doctor_code = doctor
        self.display_doctors = tuple(doctors)
        self.ascii_only = ascii_terminal() if ascii_only is None else ascii_only
        self.hint = hint
        self.live_signal: Signal[Event] = Signal(self, "live")
        self.refreshed_at: datetime | None = None  # by the app's clock: the badge's time
        self.clinic_zone: tzinfo = UTC
        self.clinic_name = ""
        self.rules: ClinicRules | None = None
        # The waiting room recovers from an unexpected failure by itself (tests turn it off,
        # so that a bug fails the test instead of being recovered from).
        self.recover = role == Role.DISPLAY if recover is None else recover
        self.crashes: list[float] = []
        self._throttled: set[str] = set()
        self._last_run: dict[str, float] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self.title = f"hms-tui · {role.value}"

    # -- time ----------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The current time in the clinic's zone (the tests freeze it)."""
        return self._clock().astimezone(self.clinic_zone)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def live(self) -> LiveQueues:
        """What the listener last read: the queues, the board, the connection state."""
        return self.listener.live

    async def on_mount(self) -> None:
        self._unsubscribe = self.listener.subscribe(self._on_live)
        self.run_worker(self.listener.run(), name="listener", group="listener", exclusive=True,
                        exit_on_error=False)
        self.db_call(self.desk.rules, done=self.apply_rules, failed=_ignore)
        self.push_screen(self._role_screen())
        if self.hint:
            self.notify(self.hint, title="Other terminals", timeout=15)

    def apply_rules(self, rules: ClinicRules) -> None:
        """The clinic's zone and name, for every screen (after start and after a change)."""
        if rules == self.rules:
            return
        self.rules = rules
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

    def _role_screen(self, *, restarting: bool = False) -> Screen[Any]:
        if self.role == Role.RECEPTION:
            from hms_tui.screens.reception import ReceptionScreen

            return ReceptionScreen()
        if self.role == Role.DOCTOR:
            from hms_tui.screens.doctor import DoctorScreen

            return DoctorScreen(self.doctor_code)
        if self.role == Role.DISPLAY:
            from hms_tui.screens.display import DisplayScreen

            return DisplayScreen(self.display_doctors, restarting=restarting)
        from hms_tui.screens.admin import AdminScreen

        return AdminScreen()

    # -- live events ---------------------------------------------------------------------------

    def _on_live(self, event: Event) -> None:
        """From the listener (a worker on this loop): note the time, tell every screen."""
        if isinstance(event, Refreshed) or (isinstance(event, ConnectionUpdate)
                                            and event.last_refresh is not None
                                            and self.refreshed_at is None):
            self.refreshed_at = self._clock()
        if isinstance(event, ConnectionUpdate) and event.state == ConnectionState.UNSUPPORTED:
            self.notify(printable(event.detail), title="No live refresh", severity="error",
                        timeout=60, markup=False)  # the badge cannot say why; this does, once
        if isinstance(event, Refreshed):
            # Settings carry no queue: after read rounds (a change anywhere, the backup poll)
            # re-read them, so a rename or a new rule reaches every running screen.
            self.throttle("rules", RULES_EVERY, lambda: self.db_call(
                self.desk.rules, done=self.apply_rules, failed=_ignore, group="rules"))
        self.live_signal.publish(event)

    def throttle(self, name: str, every: float, start: Callable[[], Any]) -> None:
        """Run ``start`` soon, at most once per ``every`` seconds: requests while one is
        waiting are merged into it. (A debounce would never run under a steady stream of
        changes; this runs at a steady pace.)"""
        if name in self._throttled:
            return
        wait = max(0.0, self._last_run.get(name, -every) + every - time.monotonic())

        def fire() -> None:
            self._throttled.discard(name)
            self._last_run[name] = time.monotonic()
            start()

        self._throttled.add(name)
        if wait:
            self.set_timer(wait, fire)
        else:
            self.call_later(fire)

    # -- notifications: at most a few at a time -------------------------------------------

    def _on_notify(self, event: Notify) -> None:
        shown = list(self._notifications)
        for old in shown[: max(0, len(shown) - MAX_TOASTS + 1)]:
            self._unnotify(old, refresh=False)
        super()._on_notify(event)

    # -- an unexpected failure ----------------------------------------------------------------

    def _handle_exception(self, error: Exception) -> None:
        """Textual ends the app on any unhandled exception and prints a traceback. The
        waiting-room display instead logs it to a file, shows a calm banner on a fresh screen
        and carries on; if its own loop failed, it exits for the CLI to start it again; only
        failing again and again makes it stop (non-zero)."""
        if not self.recover:
            super()._handle_exception(error)
            return
        path = write_crash_log(self.role.value, error)
        log.error("unexpected failure (logged to %s): %s", path, error)
        now = time.monotonic()
        self.crashes = [t for t in self.crashes if now - t < RESTART_WINDOW] + [now]
        if len(self.crashes) > MAX_RESTARTS:
            self.exit(return_code=STOPPED_EXIT,
                      message=f"hms-tui {self.role.value}: stopped after repeated failures; "
                              f"see {path}")
        elif active_message_pump.get(None) is self:
            self.exit(return_code=RESTART_EXIT)
        else:
            self.call_later(self._restart_screen)

    def _restart_screen(self) -> None:
        self.switch_screen(self._role_screen(restarting=True))

    # -- database calls off the UI loop --------------------------------------------------------

    def db_call(
        self,
        fn: Callable[..., T],
        *args: Any,
        done: Callable[[T], Any] | None = None,
        failed: Callable[[HmsError], Any] | None = None,
        group: str = "db",
        exclusive: bool = False,
        delay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        """Run ``fn`` in a thread; hand the result to ``done`` on the UI loop. An HmsError goes
        to ``failed`` (default: an error notification); anything else is reported, not raised.
        ``exclusive``: a newer call of the same group supersedes an older one, whose result is
        dropped (searches as you type); with ``delay`` it may be superseded before it is sent.
        """

        async def task() -> None:
            if delay:
                await asyncio.sleep(delay)
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

        # A callable, not a coroutine: a call superseded before it starts creates none.
        self.run_worker(task, group=group, exclusive=exclusive,  # type: ignore[arg-type]
                        exit_on_error=False)

    def busy(self, group: str) -> bool:
        """Is a call of this group still running? (An action is not sent twice.)"""
        return any(w.group == group and not w.is_finished for w in self.workers)

    # -- command palette: every key of the current screen ---------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in screen.BINDINGS:
            key, action, description = _binding_parts(binding)
            if description and action:
                yield SystemCommand(description, f"key: {key}",
                                    _runner(screen, action))


def _ignore(_exc: HmsError) -> None:
    """A background re-read that failed: the next round tries again."""


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
    recover: bool | None = None,
) -> HmsApp:
    """The one way to build an app: the CLI passes real settings, tests a test database."""
    if listener is None:
        # The display reads the masked view: initials only, even for a privileged login.
        listener = Listener(desk.db, masked=role == Role.DISPLAY)
    return HmsApp(role, desk, listener, settings, clock=clock, doctor=doctor, doctors=doctors,
                  ascii_only=ascii_only, hint=hint, recover=recover)
