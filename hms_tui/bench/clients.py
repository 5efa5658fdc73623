"""N concurrent clients, each a thread with its own connection, running one operation in a
loop for a fixed time: the same harness for the desk path and for the ceilings beside it, so
a ratio compares like with like (the same Python, the same connections, the same spread)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from hms_tui.domain.errors import HmsError

Op = Callable[[], bool]  # one operation; False: out of work (stop this client)


@dataclass(frozen=True)
class Rate:
    ops: int
    seconds: float
    failed: int = 0  # operations refused (e.g. a lock wait past the function's lock_timeout)
    first_error: str | None = None

    @property
    def per_second(self) -> float:
        return round(self.ops / self.seconds, 1) if self.seconds > 0 else 0.0


def run_clients(ops: Sequence[Op], seconds: float, warmup: int = 3) -> Rate:
    """Start every client at once; each stops at the deadline (or when out of work). Each
    first runs ``warmup`` operations off the clock: a terminal's connection is long-lived,
    so the server's first-call costs (plans of the functions) are not what is measured."""
    counts = [0] * len(ops)
    failures: list[str] = []
    ends = [0.0] * len(ops)
    errors: list[BaseException] = []
    warm = threading.Barrier(len(ops) + 1)  # everyone warmed up: the clock may start
    go = threading.Barrier(len(ops) + 1)  # the clock has started
    clock: dict[str, float] = {}

    def work(i: int) -> None:
        try:
            for _ in range(warmup):
                ops[i]()
        except BaseException as exc:
            errors.append(exc)
        warm.wait()
        go.wait()
        deadline = clock["deadline"]
        n = 0
        while not errors and time.perf_counter() < deadline:
            try:
                if not ops[i]():
                    break
                n += 1
            except HmsError as exc:  # refused by the server: counted, the client goes on
                failures.append(str(exc))
            except BaseException as exc:  # a bug: reported below, on the caller's thread
                errors.append(exc)
        counts[i], ends[i] = n, time.perf_counter()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(ops))]
    for thread in threads:
        thread.start()
    warm.wait()
    start = time.perf_counter()
    clock["deadline"] = start + seconds
    go.wait()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return Rate(sum(counts), max(ends) - start, len(failures),
                failures[0] if failures else None)


class Tickets:
    """Hands out items of a list to many threads, each item once."""

    def __init__(self, items: Sequence[Any]) -> None:
        self.items = items
        self._next = itertools.count()
        self._lock = threading.Lock()

    def take(self) -> tuple[int, Any] | None:
        with self._lock:
            i = next(self._next)
        return (i, self.items[i]) if i < len(self.items) else None


def connections(dsn: str, n: int) -> list[psycopg.Connection[Any]]:
    return [psycopg.connect(dsn, autocommit=True) for _ in range(n)]


def close_all(conns: Sequence[psycopg.Connection[Any]]) -> None:
    for conn in conns:
        conn.close()
