"""Live queues: the one copy of what the screens show, kept up to date by the change feed.

``LiveQueues`` decides what a signal makes stale and re-reads it: every changed queue of a
round in one call of ``hms.live_queues`` (``hms.live_display`` for the waiting room, which
may not see names), which answers in the queue's own order with positions and estimates and
sends a full row only for visits that changed since the version held here. So the order is
never computed in Python, and a change usually costs one row. Subscribers get typed events
(``hms_tui.domain.events``); ``Listener`` puts the feed and the queues together.

After a failover the versions held here belong to another server: a lossy failover moves
them backwards, and a new primary that took writes since may reach the same numbers with
other contents. So when the feed's server identity (system identifier, timeline) changed,
or a queue's version or the day's token count went backwards, everything held is forgotten
and read again from scratch (reason ``server_changed``), and what this terminal saw that the
server no longer has is reported to it (``hms.report_lost_numbers``): if tokens are missing,
the server stops issuing numbers until an admin confirms (``sql/routines/45_failover.sql``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from hms_tui.db.connection import Database
from hms_tui.db.listener import ChangeFeed, FeedStats, Signal
from hms_tui.domain.events import (
    BillUpdate,
    BoardUpdate,
    ConnectionState,
    ConnectionUpdate,
    Event,
    QueueUpdate,
    Refreshed,
    ServerInfo,
)
from hms_tui.domain.models import DoctorBoard, Visit

log = logging.getLogger(__name__)

LIVE_QUEUES_SQL = "SELECT * FROM hms.live_queues($1::text[], $2::bigint[])"
LIVE_DISPLAY_SQL = "SELECT * FROM hms.live_display($1::text[], $2::bigint[])"
BOARD_SQL = "SELECT * FROM hms.doctor_board()"
DATE_SQL = "SELECT hms.business_date()"
REPORT_SQL = "SELECT hms.report_lost_numbers($1::jsonb)"


@dataclass
class _Dirty:
    doctors: dict[str, list[str]] = field(default_factory=dict)  # doctor -> actions
    board: bool = False
    bills: set[str] = field(default_factory=set)
    everything: bool = False


@dataclass(frozen=True)
class _Seen:
    """What was held before a full re-read: to notice numbers that went backwards."""

    business_date: date | None
    tokens: dict[str, int]  # doctor -> tokens issued today (the board)
    versions: dict[str, int]  # doctor -> queue version
    server: ServerInfo | None


def _reranked(visit: Visit, row: Any) -> Visit:
    """``visit`` with the position and estimates of ``row``: the same object when they did
    not change. Every row of a queue is re-ranked on every change of it (the estimates are
    reckoned from the queue's last change), so this is the listener's hot path: a plain copy
    of the frozen dataclass's fields, not ``dataclasses.replace`` (which runs ``__init__``)."""
    position, wait, eta_from, eta_to = row["position"], row["wait_minutes"], \
        row["eta_from"], row["eta_to"]
    held = visit.__dict__
    if (held["position"] == position and held["wait_minutes"] == wait
            and held["eta_from"] == eta_from and held["eta_to"] == eta_to):
        return visit
    copy = object.__new__(Visit)
    copy.__dict__.update(held, position=position, wait_minutes=wait, eta_from=eta_from,
                         eta_to=eta_to)
    return copy


class LiveQueues:
    """The watched doctors' queues (``None``: every doctor) and the board, as last read."""

    def __init__(self, doctors: Iterable[str] | None = None, *, masked: bool = False) -> None:
        self.only = None if doctors is None else {d.upper() for d in doctors}
        self.masked = masked
        self.state = ConnectionState.CONNECTING
        self.last_refresh: datetime | None = None
        self.business_date: date | None = None
        self.queues: dict[str, tuple[Visit, ...]] = {}
        self.board: tuple[DoctorBoard, ...] = ()
        self.versions: dict[str, int] = {}
        self.server: ServerInfo | None = None  # the server what is held was read from
        self.reports: list[str] = []  # the server's answers to lost-numbers reports
        self._unsent: list[str] = []  # reports not delivered yet (the evidence is gone else)
        self._subscribers: list[Callable[[Event], Any]] = []
        self._dirty = _Dirty()

    def watching(self, doctor: str) -> bool:
        return self.only is None or doctor in self.only

    # -- subscribers ---------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], Any]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns an unsubscribe function. The
        current state is delivered at once."""
        self._subscribers.append(callback)
        callback(ConnectionUpdate(self.state, self.last_refresh))
        return lambda: self._subscribers.remove(callback)

    def _emit(self, event: Event) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # one broken subscriber must not silence the others
                log.exception("live subscriber failed")

    # -- the feed's handler --------------------------------------------------------------------

    def state_changed(self, state: ConnectionState, detail: str) -> None:
        self.state = state
        self._emit(ConnectionUpdate(state, self.last_refresh, detail))

    def signal(self, signal: Signal) -> bool:
        today = self.business_date
        if signal.kind == "queue" and signal.doctor is not None:
            if signal.business_date == today:
                if not self.watching(signal.doctor):
                    self._dirty.board = True
                    return True
                version = self.versions.get(signal.doctor)
                if (signal.version is not None and version is not None
                        and signal.version <= version):
                    return False  # a read already brought this change
                self._dirty.doctors.setdefault(signal.doctor, []).append(signal.action)
                self._dirty.board = True
                return True
            if today is not None and signal.business_date is not None \
                    and signal.business_date > today:
                self._dirty.everything = True  # a new business day began: re-read it all
                return True
            return False  # a change to another day's queue
        if signal.kind == "bill" and signal.doctor is not None:
            self._dirty.bills.add(signal.doctor)
            return True
        # Doctors, settings or names changed: they show in every queue row.
        self._dirty.everything = True
        return True

    async def flush(self, feed: ChangeFeed) -> None:
        dirty, self._dirty = self._dirty, _Dirty()
        if dirty.everything:
            await self.refresh_all(feed, "change")
        else:
            if dirty.doctors:
                await self._read_queues(feed, dirty.doctors, "change", full=False)
            if dirty.board:
                await self._read_board(feed, "change", emit=False)
        for doctor in sorted(dirty.bills):
            self._emit(BillUpdate(doctor))
        self._refreshed()

    async def refresh_all(self, feed: ChangeFeed, reason: str) -> None:
        """Re-read the business date, the board and every watched queue from scratch; after a
        change of server, first forget everything held (see the module docstring)."""
        seen = _Seen(self.business_date, {b.code: b.issued for b in self.board},
                     dict(self.versions), self.server)
        self.server = feed.server
        if seen.server is not None and self.server is not None \
                and seen.server.identity != self.server.identity:
            reason = "server_changed"
            self._forget()
        emit_all = reason in ("initial", "reconnect", "server_changed")
        day = (await feed.fetch(DATE_SQL))[0][0]
        if day != self.business_date:
            self.business_date = day
            self.queues.clear()
            self.versions.clear()
            emit_all = True
        await self._read_board(feed, reason, emit=emit_all)
        doctors = [b.code for b in self.board if self.watching(b.code)]
        await self._read_queues(feed, {d: [] for d in doctors}, reason, full=True, emit=emit_all)
        for gone in set(self.queues) - set(doctors):
            del self.queues[gone]
            self.versions.pop(gone, None)
        if seen.business_date == self.business_date and seen.server is not None:
            self._note_backwards(feed, seen)
        await self._send_reports(feed)
        self._refreshed()

    def _forget(self) -> None:
        self.queues.clear()
        self.versions.clear()
        self.board = ()

    def _note_backwards(self, feed: ChangeFeed, seen: _Seen) -> None:
        """What this terminal saw that the server no longer has, as a report for it (the
        server compares with its own counters and decides)."""
        tokens = {b.code: b.issued for b in self.board}
        behind = sorted(code for code, issued in seen.tokens.items()
                        if issued > tokens.get(code, 0)
                        or seen.versions.get(code, 0) > self.versions.get(code, 0))
        if not behind:
            return
        assert seen.server is not None
        report = {"terminal": feed.db.terminal, "system_identifier": seen.server.system_identifier,
                  "timeline": seen.server.timeline,
                  "queues": [{"doctor": code, "tokens": seen.tokens.get(code, 0),
                              "version": seen.versions.get(code, 0)} for code in behind]}
        log.warning("queues went backwards after reconnecting: %s", ", ".join(behind))
        self._unsent.append(json.dumps(report))

    async def _send_reports(self, feed: ChangeFeed) -> None:
        while self._unsent:
            answer = str((await feed.fetch(REPORT_SQL, self._unsent[0]))[0][0])
            self._unsent.pop(0)  # delivered: a failure above keeps it for the next round
            self.reports.append(answer)
            log.warning("lost-numbers report delivered; the server says: %s", answer)

    # -- reading -------------------------------------------------------------------------------

    async def _read_queues(self, feed: ChangeFeed, doctors: dict[str, list[str]], reason: str,
                           *, full: bool, emit: bool = False) -> None:
        """One read for every doctor in ``doctors``; emit the queues that changed."""
        codes = sorted(doctors)
        if not codes:
            return
        since = [0 if full else self.versions.get(code, 0) for code in codes]
        rows = await feed.fetch(LIVE_DISPLAY_SQL if self.masked else LIVE_QUEUES_SQL, codes, since)
        grouped: dict[str, list[Any]] = {}
        for row in rows:
            grouped.setdefault(row["doctor"], []).append(row)
        incomplete = []
        for code in codes:
            answer = grouped.get(code)
            if answer is None:
                continue  # not a doctor (any more): the board says who is
            held = self.queues.get(code)
            visits = self._apply(code, answer, since[codes.index(code)])
            if visits is None:
                incomplete.append(code)
                continue
            # _apply reuses every unchanged row as the same object: compare identities first.
            changed = held is None or len(held) != len(visits) \
                or any(a is not b for a, b in zip(held, visits, strict=True))
            if code not in self.queues and self.only is None:
                self._dirty.board = True  # a doctor we have not seen yet
            self.queues[code] = visits
            if emit or changed:
                assert self.business_date is not None
                self._emit(QueueUpdate(code, self.business_date, visits, reason,
                                       tuple(doctors[code])))
        if incomplete:  # a row we should hold was missing: read those queues whole
            await self._read_queues(feed, {c: doctors[c] for c in incomplete}, reason, full=True,
                                    emit=emit)

    def _apply(self, code: str, rows: list[Any], since: int) -> tuple[Visit, ...] | None:
        """The queue from an answer of hms.live_queues, reusing the rows held here that did
        not change; None if the answer refers to a row this copy does not hold. Asked from
        scratch (``since`` 0), a lone empty row is an empty queue, whatever version it has."""
        head = int(rows[0]["head_version"])
        if since and len(rows) == 1 and rows[0]["visit_id"] is None and head == since:
            return self.queues.get(code, ())
        held = {v.visit_id: v for v in self.queues.get(code, ())}
        visits: list[Visit] = []
        for row in rows:
            if row["visit_id"] is None:
                continue
            info = row["info"]
            if info is not None:
                visit = Visit.from_row(dict(info))
            elif row["visit_id"] in held:
                visit = _reranked(held[row["visit_id"]], row)
            else:
                return None
            visits.append(visit)
        self.versions[code] = head
        return tuple(visits)

    async def _read_board(self, feed: ChangeFeed, reason: str, *, emit: bool) -> None:
        board = tuple(DoctorBoard(**dict(r)) for r in await feed.fetch(BOARD_SQL))
        changed = board != self.board
        self.board = board
        if emit or changed:
            self._emit(BoardUpdate(board, reason))

    def _refreshed(self) -> None:
        self.last_refresh = datetime.now(UTC)
        self._emit(Refreshed(self.last_refresh))


class Listener:
    """Live refresh for one process: the change feed (one connection) driving ``LiveQueues``.
    Run it with ``await run()`` (a Textual worker, or ``asyncio.run``); stop with ``stop()``."""

    def __init__(self, db: Database, doctors: Iterable[str] | None = None, *,
                 masked: bool = False, **feed_options: float) -> None:
        self.live = LiveQueues(doctors, masked=masked)
        self.feed = ChangeFeed(db, self.live, **feed_options)

    @property
    def state(self) -> ConnectionState:
        return self.feed.state

    @property
    def stats(self) -> FeedStats:
        return self.feed.stats

    @property
    def listen_pid(self) -> int | None:
        return self.feed.listen_pid

    @property
    def queues(self) -> dict[str, tuple[Visit, ...]]:
        return self.live.queues

    @property
    def board(self) -> tuple[DoctorBoard, ...]:
        return self.live.board

    @property
    def business_date(self) -> date | None:
        return self.live.business_date

    def subscribe(self, callback: Callable[[Event], Any]) -> Callable[[], None]:
        return self.live.subscribe(callback)

    async def events(self) -> AsyncIterator[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        unsubscribe = self.subscribe(queue.put_nowait)
        try:
            while True:
                yield await queue.get()
        finally:
            unsubscribe()

    async def run(self) -> None:
        await self.feed.run()

    async def stop(self) -> None:
        await self.feed.stop()
