"""Run a Listener on its own event loop in a background thread and record what it delivers,
so synchronous tests can drive the database and check what a subscriber saw."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from hms_tui.db.connection import Database
from hms_tui.domain.events import ConnectionState, ConnectionUpdate, Event, QueueUpdate
from hms_tui.services.desk import Desk
from hms_tui.services.live import Listener

# Tests notice a dead connection in about 2 s and reconnect at once; the backup poll stays
# slow so that it cannot hide a missed signal.
FAST: dict[str, float] = {"heartbeat": 1.0, "heartbeat_timeout": 1.0, "poll_interval": 120.0,
                          "backoff_start": 0.05, "backoff_cap": 0.5, "offline_after": 1.0}


def fast_listener(db: Database, *, masked: bool = False, **overrides: float) -> Listener:
    """The listener every test uses (``overrides`` change the timings above)."""
    return Listener(db, masked=masked, **{**FAST, **overrides})


class ListenerHarness:
    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.events: list[Event] = []
        self.view: dict[str, tuple[Any, ...]] = {}  # the subscriber's picture of each queue
        self.state = ConnectionState.CONNECTING
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _on_event(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)
            if isinstance(event, QueueUpdate):
                self.view[event.doctor] = event.visits
            elif isinstance(event, ConnectionUpdate):
                self.state = event.state

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self.listener.subscribe(self._on_event)
        self._loop.run_until_complete(self.listener.run())

    def __enter__(self) -> ListenerHarness:
        self._thread.start()
        self.wait_for(lambda: self.state == ConnectionState.LIVE, 10, "listener never went live")
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.listener.stop(), self._loop).result(10)
        self._thread.join(10)
        self._loop.close()

    def wait_for(self, predicate: Callable[[], bool], timeout: float, message: str) -> float:
        """Wait until predicate() holds; return the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            with self._lock:
                if predicate():
                    return time.monotonic() - start
            time.sleep(0.01)
        raise AssertionError(f"{message} (after {timeout}s)")

    def states(self) -> list[ConnectionState]:
        with self._lock:
            return [e.state for e in self.events if isinstance(e, ConnectionUpdate)]

    def queue_events(self, doctor: str, reason: str | None = None) -> list[QueueUpdate]:
        with self._lock:
            return [e for e in self.events if isinstance(e, QueueUpdate) and e.doctor == doctor
                    and (reason is None or e.reason == reason)]

    def matches(self, desk: Desk, doctor: str) -> bool:
        """True when the subscriber's view of ``doctor`` equals the database right now."""
        return self.view.get(doctor) == tuple(desk.queue(doctor))

    def converge(self, desk: Desk, doctor: str, timeout: float = 2.0) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            truth = tuple(desk.queue(doctor))
            with self._lock:
                if self.view.get(doctor) == truth:
                    return time.monotonic() - start
            time.sleep(0.02)
        raise AssertionError(f"subscriber's view of {doctor} did not match the database "
                             f"within {timeout}s")
