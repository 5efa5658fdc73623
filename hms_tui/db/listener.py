"""Live refresh: a listener that never leaves a screen silently stale.

One listener per process, on its own asyncpg connection (never pooled, never in a transaction):

* LISTEN first, then re-read everything shown: a change committed in between is not lost.
* A change signal (NOTIFY from the triggers in migration 0002) only marks a queue dirty;
  only dirty queues are refetched, and only the rows changed since the version we hold
  (``queue_sync``; a signal for a version we already have is skipped). They are fetched at
  once after a quiet spell and at most once per ``coalesce`` seconds during a burst (a
  throttle, so a lone change is not delayed by the window).
* A self-notification every ``heartbeat`` seconds must come back within ``heartbeat_timeout``;
  together with a dropped socket this finds a dead connection within ~10 s.
* On loss: state RECONNECTING, capped exponential backoff with jitter, OFFLINE once a retry has
  failed for ``offline_after`` seconds; after every reconnect everything is re-read.
* A slow backup poll re-reads everything every ``poll_interval`` seconds and repairs any drift
  (the signal is a hint, the database is the truth).

Subscribers get typed events through ``events()`` (an async iterator) or ``subscribe(callback)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from hms_tui.core.models import DoctorBoard, Visit
from hms_tui.db.database import Database
from hms_tui.db.queue_sync import QueueCopy

log = logging.getLogger(__name__)

CHANNEL = "hms_changes"
LISTENER_APP_NAME = "hms-tui-listener"


class ConnectionState(StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"


@dataclass(frozen=True)
class ConnectionUpdate:
    state: ConnectionState
    last_refresh: datetime | None
    detail: str = ""


@dataclass(frozen=True)
class QueueUpdate:
    """The fresh queue of one doctor (same rows as ``hms-tui queue --json``)."""

    doctor: str
    business_date: date
    visits: tuple[Visit, ...]
    reason: str  # "initial", "change", "reconnect" or "poll"
    actions: tuple[str, ...] = ()  # the desk actions that caused it (for reason "change")


@dataclass(frozen=True)
class BoardUpdate:
    """Every doctor's day at a glance (the doctor list, with who is being served)."""

    board: tuple[DoctorBoard, ...]
    reason: str


@dataclass(frozen=True)
class BillUpdate:
    """Bills of a doctor's visits changed (screens that show bills refetch them)."""

    doctor: str


Event = ConnectionUpdate | QueueUpdate | BoardUpdate | BillUpdate


class ConnectionLost(Exception):
    pass


@dataclass
class ListenerStats:
    notifications: int = 0
    refetches: int = 0
    reconnects: int = 0
    polls: int = 0
    heartbeats: int = 0


@dataclass
class _Dirty:
    doctors: dict[str, list[str]] = field(default_factory=dict)  # doctor -> actions
    board: bool = False
    bills: set[str] = field(default_factory=set)
    everything: bool = False


QUEUE_CHANGES_SQL = "SELECT * FROM hms.queue_changes($1, $2)"
# Display terminals may not see names: they read the masked view, whole queues at a time.
DISPLAY_QUEUE_SQL = """
    SELECT * FROM hms.display_queue WHERE doctor = $1
     ORDER BY CASE status WHEN 'IN_CONSULTATION' THEN 0 WHEN 'CALLED' THEN 1
                          WHEN 'WAITING' THEN 2 ELSE 3 END,
              position, called_at DESC, serial"""
BOARD_SQL = "SELECT * FROM hms.doctor_board()"
DATE_SQL = "SELECT hms.business_date()"


class Listener:
    """Watches the given doctors' queues (``None``: every doctor) and the doctor board."""

    def __init__(
        self,
        db: Database,
        doctors: Iterable[str] | None = None,
        *,
        masked: bool = False,
        coalesce: float = 0.05,
        heartbeat: float = 5.0,
        heartbeat_timeout: float = 5.0,
        poll_interval: float = 30.0,
        backoff_start: float = 0.25,
        backoff_cap: float = 5.0,
        offline_after: float = 5.0,
    ) -> None:
        self.db = db
        self.only = None if doctors is None else {d.upper() for d in doctors}
        self.masked = masked
        self.coalesce = coalesce
        self.heartbeat = heartbeat
        self.heartbeat_timeout = heartbeat_timeout
        self.poll_interval = poll_interval
        self.backoff_start = backoff_start
        self.backoff_cap = backoff_cap
        self.offline_after = offline_after

        self.state = ConnectionState.CONNECTING
        self.last_refresh: datetime | None = None
        self.business_date: date | None = None
        self.queues: dict[str, tuple[Visit, ...]] = {}
        self.board: tuple[DoctorBoard, ...] = ()
        self.stats = ListenerStats()
        self.listen_pid: int | None = None
        self.fetch_pid: int | None = None

        self._subscribers: list[Callable[[Event], Any]] = []
        self._copies: dict[str, QueueCopy] = {}
        self._dirty = _Dirty()
        self._wake = asyncio.Event()
        self._lost = asyncio.Event()
        self._pong = asyncio.Event()
        self._ping_channel = f"hms_ping_{uuid.uuid4().hex[:16]}"
        self._stopping = False
        self._last_round = 0.0
        self._conn: Any = None
        self._fetch: Any = None

    # -- subscribing ---------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], Any]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (from the listener's task); returns an
        unsubscribe function. The current state is delivered at once."""
        self._subscribers.append(callback)
        callback(ConnectionUpdate(self.state, self.last_refresh))
        return lambda: self._subscribers.remove(callback)

    async def events(self) -> AsyncIterator[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        unsubscribe = self.subscribe(queue.put_nowait)
        try:
            while True:
                yield await queue.get()
        finally:
            unsubscribe()

    def _emit(self, event: Event) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # one broken subscriber must not silence the others
                log.exception("listener subscriber failed")

    def _set_state(self, state: ConnectionState, detail: str = "") -> None:
        if state != self.state:
            self.state = state
            self._emit(ConnectionUpdate(state, self.last_refresh, detail))

    def watching(self, doctor: str) -> bool:
        return self.only is None or doctor in self.only

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until ``stop()``; never raises for connection trouble."""
        backoff = self.backoff_start
        failing_since: float | None = None
        first = True
        while not self._stopping:
            try:
                await self._connect()
                await self._refresh_all("initial" if first else "reconnect", emit_all=True)
                if not first:
                    self.stats.reconnects += 1
                first = False
                backoff, failing_since = self.backoff_start, None
                self._set_state(ConnectionState.LIVE)
                await self._serve()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure means: reconnect and re-read
                if self._stopping:
                    break
                detail = _describe(exc)
                now = time.monotonic()
                failing_since = failing_since or now
                offline = now - failing_since >= self.offline_after
                self._set_state(
                    ConnectionState.OFFLINE if offline else ConnectionState.RECONNECTING, detail
                )
                log.info("listener connection lost: %s; retry in %.2fs", detail, backoff)
            finally:
                await self._close()
            if self._stopping:
                break
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, self.backoff_cap)

    async def stop(self) -> None:
        self._stopping = True
        self._lost.set()
        await self._close()

    async def _connect(self) -> None:
        self._lost.clear()
        self._dirty = _Dirty()
        self._conn = await self.db.connect_async(application_name=LISTENER_APP_NAME)
        self._conn.add_termination_listener(lambda _c: self._lost.set())
        await self._conn.add_listener(CHANNEL, self._on_notify)
        await self._conn.add_listener(self._ping_channel, self._on_ping)
        self.listen_pid = self._conn.get_server_pid()
        self._fetch = await self.db.connect_async()
        self.fetch_pid = self._fetch.get_server_pid()

    async def _close(self) -> None:
        for conn in (self._conn, self._fetch):
            if conn is not None and not conn.is_closed():
                conn.terminate()  # never blocks on a dead peer
        self._conn = self._fetch = None

    async def _serve(self) -> None:
        next_beat = time.monotonic() + self.heartbeat
        next_poll = time.monotonic() + self.poll_interval
        while not self._stopping:
            timeout = max(0.0, min(next_beat, next_poll) - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_wake_or_lost(), timeout)
            if self._lost.is_set() or self._conn is None or self._conn.is_closed():
                raise ConnectionLost("the listening connection was closed")
            if self._wake.is_set():
                # Throttle, leading edge: the first change of a quiet spell is fetched at once;
                # within a burst, at most one refetch round per `coalesce` seconds.
                await asyncio.sleep(max(0.0, self._last_round + self.coalesce - time.monotonic()))
                self._wake.clear()
                await self._refetch_dirty()
                self._last_round = time.monotonic()
            now = time.monotonic()
            if now >= next_beat:
                await self._heartbeat()
                next_beat = time.monotonic() + self.heartbeat
            if now >= next_poll:
                self.stats.polls += 1
                await self._refresh_all("poll", emit_all=False)
                next_poll = time.monotonic() + self.poll_interval

    async def _wait_wake_or_lost(self) -> None:
        wake = asyncio.create_task(self._wake.wait())
        lost = asyncio.create_task(self._lost.wait())
        try:
            await asyncio.wait({wake, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()
            lost.cancel()

    async def _heartbeat(self) -> None:
        self._pong.clear()
        self.stats.heartbeats += 1
        try:
            await asyncio.wait_for(
                self._conn.execute(f"NOTIFY {self._ping_channel}"), self.heartbeat_timeout
            )
            await asyncio.wait_for(self._pong.wait(), self.heartbeat_timeout)
        except TimeoutError:
            raise ConnectionLost("heartbeat not answered") from None

    # -- notifications -------------------------------------------------------------------------

    def _on_ping(self, *_args: Any) -> None:
        self._pong.set()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.stats.notifications += 1
        try:
            msg = json.loads(payload)
        except ValueError:
            msg = {}
        kind, doctor = msg.get("k"), msg.get("d")
        day = msg.get("bd")
        today = self.business_date.isoformat() if self.business_date else None
        version = msg.get("v")
        copy = self._copies.get(doctor) if isinstance(doctor, str) else None
        if (kind == "queue" and copy is not None and isinstance(version, int)
                and day == today and version <= copy.version):
            return  # a fetch already brought this change
        if kind == "queue" and isinstance(doctor, str):
            if day == today and self.watching(doctor):
                self._dirty.doctors.setdefault(doctor, []).append(str(msg.get("a", "")))
            elif isinstance(day, str) and today is not None and day > today:
                self._dirty.everything = True  # a new business day began: re-read it all
            self._dirty.board = True
        elif kind == "bill" and isinstance(doctor, str):
            self._dirty.bills.add(doctor)
        else:
            # Doctors or settings changed (names, rooms and estimates appear in every queue
            # row), or a payload we do not know: re-read everything.
            self._dirty.everything = True
        self._wake.set()

    # -- reading -------------------------------------------------------------------------------

    async def _refetch_dirty(self) -> None:
        dirty, self._dirty = self._dirty, _Dirty()
        if dirty.everything:
            await self._refresh_all("change", emit_all=False)
            dirty.doctors.clear()
            dirty.board = False
        for doctor, actions in dirty.doctors.items():
            visits = await self._fetch_queue(doctor)
            if doctor not in self.queues and self.only is None:
                dirty.board = True  # a doctor we have not seen yet
            self.queues[doctor] = visits
            assert self.business_date is not None
            self._emit(QueueUpdate(doctor, self.business_date, visits, "change", tuple(actions)))
        if dirty.board:
            await self._refresh_board("change", emit=True)
        for doctor in sorted(dirty.bills):
            self._emit(BillUpdate(doctor))
        self._mark_refreshed()

    async def _read(self, sql: str, *args: Any) -> list[Any]:
        """A read on the fetch connection that cannot hang the listener: a server that stops
        answering is a lost connection, like a missed heartbeat."""
        try:
            rows: list[Any] = await asyncio.wait_for(self._fetch.fetch(sql, *args),
                                                     self.heartbeat_timeout * 2)
        except TimeoutError:
            raise ConnectionLost("a refresh was not answered") from None
        return rows

    async def _fetch_queue(self, doctor: str, *, full: bool = False) -> tuple[Visit, ...]:
        """The doctor's queue now: only what changed since our version, or all of it."""
        self.stats.refetches += 1
        if self.masked:
            rows = await self._read(DISPLAY_QUEUE_SQL, doctor)
            return tuple(Visit.from_row(dict(r)) for r in rows)
        copy = self._copies.setdefault(doctor, QueueCopy())
        since = 0 if full else copy.version
        rows = await self._read(QUEUE_CHANGES_SQL, doctor, since)
        copy.apply(rows, full=since == 0)
        return copy.visits

    async def _refresh_board(self, reason: str, *, emit: bool) -> None:
        rows = await self._read(BOARD_SQL)
        board = tuple(DoctorBoard(**dict(r)) for r in rows)
        changed = board != self.board
        self.board = board
        if emit or changed:
            self._emit(BoardUpdate(board, reason))

    async def _refresh_all(self, reason: str, *, emit_all: bool) -> None:
        """Re-read the business date, the board and every watched queue."""
        day = (await self._read(DATE_SQL))[0][0]
        if day != self.business_date:
            self.business_date = day
            self.queues.clear()
            self._copies.clear()
            emit_all = True
        await self._refresh_board(reason, emit=emit_all)
        doctors = [b.code for b in self.board if self.watching(b.code)]
        for doctor in doctors:
            visits = await self._fetch_queue(doctor, full=True)
            if emit_all or visits != self.queues.get(doctor):
                self.queues[doctor] = visits
                self._emit(QueueUpdate(doctor, day, visits, reason))
        for gone in set(self.queues) - set(doctors):
            del self.queues[gone]
        self._mark_refreshed()

    def _mark_refreshed(self) -> None:
        self.last_refresh = datetime.now(UTC)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
