"""The change feed: one LISTEN connection that never leaves a screen silently stale.

Transport only -- what the signals mean and what to re-read is ``services/live.py``'s:

* One asyncpg connection per process, never pooled, never left in a transaction: it LISTENs
  and then serves the handler's reads too (asyncpg delivers notifications between queries),
  so live refresh costs one server connection.
* LISTEN first, then the handler re-reads everything shown: a change committed in between
  is not lost.
* A change signal (NOTIFY from the triggers in ``sql/routines/60_notify.sql``) is a hint:
  its payload is checked (shape, types, lengths) and anything that does not fit is counted
  and ignored. Valid signals wake the handler at once after a quiet spell and at most once
  per ``coalesce`` seconds during a burst (a throttle, so a lone change is not delayed).
* A self-notification every ``heartbeat`` seconds must come back within ``heartbeat_timeout``,
  and every read has a timeout: a server that stops answering is a lost connection.
* On loss: state RECONNECTING, capped exponential backoff with jitter, OFFLINE once a retry has
  failed for ``offline_after`` seconds; after every reconnect the handler re-reads everything.
* Every ``poll_interval`` seconds the handler re-reads everything anyway and repairs drift.
* After connecting, the feed makes sure notifications can reach it: when the backend pid the
  connection announced is not the server's (a pooler is in front), a NOTIFY sent from another
  connection must arrive. Through a transaction-mode pooler it does not (LISTEN registers on
  a server connection lent to someone else): state UNSUPPORTED with one line saying so,
  never LIVE. No named prepared statements are used (``pooled=True``), so the reads are safe
  through any pooler too.
* It then identifies the server (``hms.observe_server``: system identifier, timeline,
  standby or not, numbering hold); a standby is refused with one line. The handler compares
  the identity with the previous connection's to notice a failover (``server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from hms_tui.db.connection import Database, first_line
from hms_tui.domain.errors import DatabaseUnavailable, StandbyOnly
from hms_tui.domain.events import ConnectionState, ServerInfo

log = logging.getLogger(__name__)

CHANNEL = "hms_changes"
LISTENER_APP_NAME = "hms-tui-listener"
PROBE_APP_NAME = "hms-tui-probe"
OBSERVE_SQL = "SELECT * FROM hms.observe_server()"
SIGNAL_KINDS = ("queue", "bill", "doctors")
_DOCTOR_CODE = re.compile(r"[A-Z][A-Z0-9]{0,7}")
_ACTION = re.compile(r"[a-z_]{1,24}")


class ConnectionLost(Exception):
    pass


class PoolerUnsupported(Exception):
    """Notifications cannot reach this connection: a transaction-mode pooler is in front."""


@dataclass(frozen=True)
class Signal:
    """A change signal whose payload passed the checks."""

    kind: str  # "queue", "bill" or "doctors"
    doctor: str | None
    business_date: date | None
    action: str
    version: int | None


def parse_signal(payload: str) -> Signal | None:
    """The signal in a NOTIFY payload, or None when it is not one the triggers send. Anyone
    may NOTIFY the channel: nothing in a payload is trusted beyond these checks."""
    if len(payload) > 500:
        return None
    try:
        msg = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(msg, dict):
        return None
    kind, doctor, day, action, version = (msg.get(k) for k in ("k", "d", "bd", "a", "v"))
    if kind not in SIGNAL_KINDS:
        return None
    if kind == "doctors":
        doctor = day = None
    elif not (isinstance(doctor, str) and _DOCTOR_CODE.fullmatch(doctor)):
        return None
    business_date = None
    if day is not None:
        if not isinstance(day, str) or len(day) != 10:
            return None
        try:
            business_date = date.fromisoformat(day)
        except ValueError:
            return None
    if kind != "doctors" and business_date is None:
        return None
    if not (isinstance(action, str) and _ACTION.fullmatch(action)):
        action = "sql"
    if version is not None and not (isinstance(version, int) and not isinstance(version, bool)
                                    and 0 <= version < 2**63):
        return None
    return Signal(kind, doctor, business_date, action, version)


class FeedHandler(Protocol):
    """What the feed drives (``services.live.LiveQueues``)."""

    async def refresh_all(self, feed: ChangeFeed, reason: str) -> None:
        """Re-read everything shown (after connecting, and on the backup poll)."""

    def signal(self, signal: Signal) -> bool:
        """Take in a signal; True when there is something to re-read."""

    async def flush(self, feed: ChangeFeed) -> None:
        """Re-read what the signals since the last flush made stale."""

    def state_changed(self, state: ConnectionState, detail: str) -> None:
        """The connection's state changed."""


@dataclass
class FeedStats:
    notifications: int = 0
    ignored: int = 0  # payloads that failed the checks
    refetches: int = 0  # read rounds (flushes and full refreshes)
    reconnects: int = 0
    polls: int = 0
    heartbeats: int = 0


class ChangeFeed:
    def __init__(
        self,
        db: Database,
        handler: FeedHandler,
        *,
        coalesce: float = 0.05,
        heartbeat: float = 5.0,
        heartbeat_timeout: float = 5.0,
        poll_interval: float = 30.0,
        backoff_start: float = 0.25,
        backoff_cap: float = 5.0,
        offline_after: float = 5.0,
    ) -> None:
        self.db = db
        self.handler = handler
        self.coalesce = coalesce
        self.heartbeat = heartbeat
        self.heartbeat_timeout = heartbeat_timeout
        self.poll_interval = poll_interval
        self.backoff_start = backoff_start
        self.backoff_cap = backoff_cap
        self.offline_after = offline_after

        self.state = ConnectionState.CONNECTING
        self.stats = FeedStats()
        self.listen_pid: int | None = None
        self.server: ServerInfo | None = None  # the server of the current connection
        self._wake = asyncio.Event()
        self._lost = asyncio.Event()
        self._pong = asyncio.Event()
        self._stopped = asyncio.Event()
        self._ping_channel = f"hms_ping_{uuid.uuid4().hex[:16]}"
        self._stopping = False
        self._last_round = 0.0
        self._conn: Any = None

    def _set_state(self, state: ConnectionState, detail: str = "") -> None:
        if state != self.state:
            self.state = state
            self.handler.state_changed(state, detail)

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until ``stop()``; never raises for connection trouble."""
        backoff = self.backoff_start
        failing_since: float | None = None
        first = True
        while not self._stopping:
            try:
                await self._connect()
                await self.handler.refresh_all(self, "initial" if first else "reconnect")
                self.stats.refetches += 1
                if not first:
                    self.stats.reconnects += 1
                first = False
                backoff, failing_since = self.backoff_start, None
                self._set_state(ConnectionState.LIVE)
                await self._serve()
            except asyncio.CancelledError:
                raise
            except PoolerUnsupported as exc:
                # Retrying at once cannot help: say so once, look again after a while.
                self._set_state(ConnectionState.UNSUPPORTED, str(exc))
                log.info("listener: %s", exc)
                await self._close()
                await self._pause(self.poll_interval)
                continue
            except Exception as exc:  # any failure means: reconnect and re-read
                if self._stopping:
                    break
                detail = first_line(exc)
                now = time.monotonic()
                failing_since = failing_since or now
                offline = now - failing_since >= self.offline_after
                self._set_state(
                    ConnectionState.OFFLINE if offline else ConnectionState.RECONNECTING, detail
                )
                if not isinstance(exc, (ConnectionLost, DatabaseUnavailable, OSError)):
                    log.warning("listener error: %s", detail, exc_info=exc)
                log.info("listener connection lost: %s; retry in %.2fs", detail, backoff)
            finally:
                await self._close()
            if self._stopping:
                break
            await self._pause(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, self.backoff_cap)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once on ``stop()``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)

    async def stop(self) -> None:
        self._stopping = True
        self._stopped.set()
        self._lost.set()
        await self._close()

    async def _connect(self) -> None:
        from hms_tui.db.libpq_target import connect_listener

        self._lost.clear()
        self._conn = await connect_listener(self.db, application_name=LISTENER_APP_NAME)
        self._conn.add_termination_listener(lambda _c: self._lost.set())
        self.server = await self.observe()  # first: a standby cannot even LISTEN
        if self.server.in_recovery:
            raise StandbyOnly(f"this server is a read-only standby ({self.db.describe()}); "
                              "point hms-tui at the primary")
        await self._conn.add_listener(CHANNEL, self._on_notify)
        await self._conn.add_listener(self._ping_channel, self._on_ping)
        self.listen_pid = self._conn.get_server_pid()
        await self._check_delivery()

    async def _check_delivery(self) -> None:
        """Raise PoolerUnsupported when notifications cannot reach this connection. Direct to
        PostgreSQL the pid the connection announced is the backend's own, and nothing more is
        needed; otherwise a pooler is in front (it announces a cancel key of its own) and a
        NOTIFY from a second, short-lived connection must arrive."""
        from hms_tui.db.libpq_target import connect_listener

        backend = (await self.fetch("SELECT pg_backend_pid()"))[0][0]
        if backend == self.listen_pid:
            return
        self._pong.clear()
        try:
            probe = await asyncio.wait_for(
                connect_listener(self.db, application_name=PROBE_APP_NAME),
                self.heartbeat_timeout * 2)
        except TimeoutError:  # e.g. a session pool with no server connection to spare
            raise ConnectionLost("a pooler is in front and a second connection to check that "
                                 "notifications arrive was not let in") from None
        try:
            await asyncio.wait_for(probe.execute(f"NOTIFY {self._ping_channel}"),
                                   self.heartbeat_timeout)
        finally:
            probe.terminate()
        try:
            await asyncio.wait_for(self._pong.wait(), self.heartbeat_timeout)
        except TimeoutError:
            raise PoolerUnsupported(
                f"live refresh cannot work through a transaction-mode pooler in front of "
                f"{self.db.describe()} (LISTEN needs a session of its own): set "
                "database.listen_url to PostgreSQL itself or to a session-mode pool") from None

    async def observe(self) -> ServerInfo:
        """Who the server is now (and keep its record current: ``hms.observe_server``)."""
        row = (await self.fetch(OBSERVE_SQL))[0]
        return ServerInfo(int(row["system_identifier"]), int(row["timeline"]),
                          bool(row["in_recovery"]), bool(row["synchronous"]),
                          row["hold_message"])

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()  # never blocks on a dead peer

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
                self.stats.refetches += 1
                await self.handler.flush(self)
                self._last_round = time.monotonic()
            now = time.monotonic()
            if now >= next_beat:
                await self._heartbeat()
                next_beat = time.monotonic() + self.heartbeat
            if now >= next_poll:
                self.stats.polls += 1
                self.stats.refetches += 1
                self.server = await self.observe()
                await self.handler.refresh_all(self, "poll")
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

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """A read on the feed's connection that cannot hang it: a server that stops
        answering is a lost connection, like a missed heartbeat."""
        if self._conn is None:
            raise ConnectionLost("not connected")
        try:
            rows: list[Any] = await asyncio.wait_for(self._conn.fetch(sql, *args),
                                                     self.heartbeat_timeout * 2)
        except TimeoutError:
            raise ConnectionLost("a refresh was not answered") from None
        return rows

    # -- notifications -------------------------------------------------------------------------

    def _on_ping(self, *_args: Any) -> None:
        self._pong.set()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.stats.notifications += 1
        signal = parse_signal(payload)
        if signal is None:
            self.stats.ignored += 1
            return
        if self.handler.signal(signal):
            self._wake.set()
