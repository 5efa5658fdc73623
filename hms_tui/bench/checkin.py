"""(a) Check-in throughput through the desk (``Desk.checkin``, one pooled connection per
client, as reception calls it) beside two ceilings run by the same clients with the same
spread: a counter ``UPDATE ... RETURNING`` and the same plus ``pg_notify`` (every notifying
commit takes NOTIFY's server-wide lock: no notifying write can beat it).
(b) The replaced system's numbering ("read max(serial), add one, insert", no lock) beside
ours, one doctor, the same clients: its rate and the duplicates it made; ours counted too."""

from __future__ import annotations

from typing import Any

import psycopg

from hms_tui.bench import seed
from hms_tui.bench.clients import Op, Rate, Tickets, close_all, connections, run_clients
from hms_tui.bench.progress import Steps
from hms_tui.bench.sizes import Sizes
from hms_tui.bench.stats import ratio
from hms_tui.bench.waits import WaitSampler
from hms_tui.db.connection import Database, first_line
from hms_tui.domain.errors import HmsError
from hms_tui.services.desk import Desk

SPREAD = 20  # doctors (and counter rows) of a spread run
MAX_RATE = 5_000  # per second: patients prepared per cell (a cell stops when they run out)
DAY = 200  # check-ins per doctor in a cell at most: a busy doctor's whole day (a queue grown
# longer than any real one would measure the queue's length, not the check-in)
CEILING_SQL = "UPDATE bench_ceiling.counters SET n = n + 1 WHERE id = %s RETURNING n"
NOTIFY_SQL = ("WITH u AS (UPDATE bench_ceiling.counters SET n = n + 1 WHERE id = %s RETURNING n)"
              " SELECT pg_notify('bench_ceiling', n::text) FROM u")
PATTERN_READ = "SELECT coalesce(max(serial), 0) + 1 FROM bench_pattern.tokens WHERE doctor = %s"
PATTERN_WRITE = "INSERT INTO bench_pattern.tokens (doctor, serial) VALUES (%s, %s)"


def prepare(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench_ceiling")
        conn.execute("CREATE TABLE IF NOT EXISTS bench_ceiling.counters"
                     " (id integer PRIMARY KEY, n bigint NOT NULL DEFAULT 0)")
        conn.execute("INSERT INTO bench_ceiling.counters (id) SELECT generate_series(1, %s)"
                     " ON CONFLICT DO NOTHING", (SPREAD,))
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench_pattern")
        conn.execute("CREATE TABLE IF NOT EXISTS bench_pattern.tokens"
                     " (doctor integer NOT NULL, serial integer NOT NULL)")
        conn.execute("CREATE INDEX IF NOT EXISTS tokens_doctor ON bench_pattern.tokens"
                     " (doctor, serial)")


class _Cells:
    """Fresh doctors and patients for each measured cell, so no cell inherits a long day."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.count = 0

    def doctors_and_patients(self, doctors: int, patients: int) -> tuple[list[str], list[int]]:
        """The cell's doctors (the last one is for warming up, off the clock) and patients."""
        self.count += 1
        codes = [f"T{self.count}D{j}" for j in range(1, doctors + 2)]
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            seed.add_doctors(conn, codes)
            ids = seed.bulk_patients(conn, patients, f"Cell {self.count}")
        return codes, ids


def desk_rate(dsn: str, cells: _Cells, clients: int, doctors: int, seconds: float,
              waits: dict[str, Any] | None = None) -> Rate:
    """Check-ins per second; ``waits``, if given, receives what the backends waited on."""
    budget = min(max(200, int(MAX_RATE * seconds)), DAY * doctors)
    codes, ids = cells.doctors_and_patients(doctors, budget + clients)
    warm, codes = codes[-1], codes[:-1]
    tickets = Tickets(ids[:budget])
    desks = [Desk(Database(dsn, terminal=f"bench-{i}")) for i in range(clients)]
    for i, desk in enumerate(desks):  # connected and warm (function plans) before the clock
        desk.checkin(warm, ids[budget + i])

    def op_for(desk: Desk) -> Op:
        def op() -> bool:
            ticket = tickets.take()
            if ticket is None:
                return False
            n, patient = ticket
            desk.checkin(codes[n % len(codes)], patient)
            return True
        return op

    try:
        with WaitSampler(dsn) as sampler:
            rate = run_clients([op_for(d) for d in desks], seconds, warmup=0)
        if waits is not None:
            waits.update(sampler.result())
        return rate
    finally:
        for desk in desks:
            desk.db.dispose()


def ceiling_rate(conns: list[psycopg.Connection[Any]], sql: str, rows: int,
                 seconds: float) -> Rate:
    def op_for(i: int, conn: psycopg.Connection[Any]) -> Op:
        k = [i]

        def op() -> bool:
            conn.execute(sql, (k[0] % rows + 1,))
            k[0] += 1
            return True
        return op

    return run_clients([op_for(i, c) for i, c in enumerate(conns)], seconds)


def _cell(dsn: str, cells: _Cells, clients: int, doctors: int, seconds: float) -> dict[str, Any]:
    conns = connections(dsn, clients)
    try:
        counter = ceiling_rate(conns, CEILING_SQL, doctors, seconds)
        notify = ceiling_rate(conns, NOTIFY_SQL, doctors, seconds)
    finally:
        close_all(conns)
    waits: dict[str, Any] = {}
    ours = desk_rate(dsn, cells, clients, doctors, seconds, waits)
    return {
        "server_waits": waits,
        "checkin_per_s": ours.per_second, "checkins": ours.ops,
        "checkins_refused": ours.failed, "first_refusal": ours.first_error,
        "counter_update_per_s": counter.per_second,
        "update_notify_per_s": notify.per_second,
        "ratio_to_counter": ratio(ours.per_second, counter.per_second),
        "ratio_to_update_notify": ratio(ours.per_second, notify.per_second),
        "ms_per_checkin": round(1000 * ours.seconds / ours.ops * clients, 3)
        if ours.ops else None,
    }


def throughput(dsn: str, sizes: Sizes, steps: Steps) -> dict[str, Any]:
    """Part (a): for each spread and client count, ours and both ceilings, and the ratios."""
    prepare(dsn)
    cells = _Cells(dsn)
    out: dict[str, Any] = {}
    step = steps.step("a. check-in throughput vs ceilings", 2 * len(sizes.clients))
    for spread, doctors in (("spread", SPREAD), ("one_doctor", 1)):
        out[spread] = {}
        for clients in sizes.clients:
            try:
                out[spread][str(clients)] = _cell(dsn, cells, clients, doctors, sizes.seconds)
            except (psycopg.OperationalError, HmsError) as exc:
                # e.g. the server ran out of connections (shared with others): the cell says so
                out[spread][str(clients)] = {"error": first_line(exc)}
            step.advance()
    return out


def pattern_rate(dsn: str, doctor: int, clients: int, seconds: float) -> Rate:
    conns = connections(dsn, clients)

    def op_for(conn: psycopg.Connection[Any]) -> Op:
        def op() -> bool:
            row = conn.execute(PATTERN_READ, (doctor,)).fetchone()
            assert row is not None
            conn.execute(PATTERN_WRITE, (doctor, row[0]))
            return True
        return op

    try:
        return run_clients([op_for(c) for c in conns], seconds)
    finally:
        close_all(conns)


def numbering(dsn: str, sizes: Sizes, steps: Steps) -> dict[str, Any]:
    """Part (b): the replaced pattern and ours, one doctor, at each client count; the
    duplicates of both counted by query afterwards (and our gaps)."""
    prepare(dsn)
    cells = _Cells(dsn)
    out: dict[str, Any] = {}
    step = steps.step("b. replaced numbering vs ours", len(sizes.clients))
    for doctor, clients in enumerate(sizes.clients, start=1):
        try:
            theirs = pattern_rate(dsn, doctor, clients, sizes.seconds)
            ours = desk_rate(dsn, cells, clients, 1, sizes.seconds)
        except (psycopg.OperationalError, HmsError) as exc:
            out[str(clients)] = {"error": first_line(exc)}
            step.advance()
            continue
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT count(*), count(*) - count(DISTINCT serial)"
                               " FROM bench_pattern.tokens WHERE doctor = %s",
                               (doctor,)).fetchone()
        assert row is not None
        out[str(clients)] = {"pattern_per_s": theirs.per_second, "pattern_rows": row[0],
                             "pattern_duplicates": row[1], "checkin_per_s": ours.per_second,
                             "checkins": ours.ops}
        step.advance()
    with psycopg.connect(dsn, autocommit=True) as conn:
        counted = conn.execute(
            "SELECT count(*), count(*) - count(DISTINCT (doctor_id, business_date, serial)),"
            " (SELECT coalesce(sum(top - n), 0) FROM (SELECT max(serial) AS top, count(*) AS n"
            "   FROM hms.visits WHERE serial IS NOT NULL GROUP BY doctor_id, business_date) s)"
            " FROM hms.visits WHERE serial IS NOT NULL").fetchone()
    assert counted is not None
    return {"by_clients": out, "ours_visits_counted": counted[0],
            "ours_duplicates": counted[1], "ours_gaps": int(counted[2])}
