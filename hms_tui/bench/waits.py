"""What the server's backends are doing while a cell runs: pg_stat_activity sampled every
few milliseconds, each active backend counted under its wait event (``CPU`` when it waits
for nothing). Tells a lock (``Lock:transactionid``, ``Lock:tuple``), the WAL flush
(``IO:WALSync``, ``LWLock:WALWrite``), NOTIFY's commit lock (``Lock:object``) and plain
server CPU apart: what stands in the way of a ceiling."""

from __future__ import annotations

import threading
from collections import Counter
from types import TracebackType
from typing import Any

import psycopg

SAMPLE = ("SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity"
          " WHERE datname = current_database() AND state = 'active'"
          " AND pid <> pg_backend_pid() AND backend_type = 'client backend'")


class WaitSampler:
    def __init__(self, dsn: str, every: float = 0.02) -> None:
        self.dsn, self.every = dsn, every
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.wait(self.every):
                rows = conn.execute(SAMPLE).fetchall()
                self.samples += 1
                self.counts.update(str(r[0]) for r in rows)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(5)

    def result(self) -> dict[str, Any]:
        """The share of active-backend samples under each wait, the largest first."""
        total = sum(self.counts.values())
        return {"samples": self.samples, "active_backend_samples": total,
                "share": {k: round(v / total, 3) for k, v in self.counts.most_common(8)}
                if total else {}}
