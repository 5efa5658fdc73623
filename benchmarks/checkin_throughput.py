"""Check-in throughput through the desk path of any checkout of hms-tui, to compare versions.

    python benchmarks/checkin_throughput.py CHECKOUT CLIENTS PER_CLIENT [DOCTORS]

CHECKOUT is a directory holding a checkout (e.g. `git worktree add /tmp/before bf75eee^`);
its hms_tui is imported, so the same script measures old and new code alike. DOCTORS (20
unless given; 1: every check-in on one doctor);
CLIENTS threads (one Desk and one connection each) check in PER_CLIENT patients each, spread
over the doctors; the rate is printed, beside the ceiling measured in the same run with the
same clients and spread: one counter row per doctor, `UPDATE ... RETURNING` plus `pg_notify`
in one statement, from the same Python threads. Server: $HMS_BENCH_DSN (default: the PostgreSQL at
127.0.0.1:5432, user postgres), in a scratch database created and dropped. Run the versions
alternately, several times: figures compare only within one sitting on one machine.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable

CHECKOUT, CLIENTS, PER_CLIENT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, CHECKOUT)

import psycopg  # noqa: E402
from psycopg import conninfo as pg_conninfo  # noqa: E402

from hms_tui.db import migrate  # noqa: E402
from hms_tui.db.connection import Database  # noqa: E402
from hms_tui.services.desk import Desk  # noqa: E402

SERVER = os.environ.get("HMS_BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
DOCTORS = [f"D{i}" for i in range(1, 1 + (int(sys.argv[4]) if len(sys.argv) > 4 else 20))]


def on(dbname: str) -> str:
    params = pg_conninfo.conninfo_to_dict(SERVER)
    params["dbname"] = dbname
    return pg_conninfo.make_conninfo(**params)


def per_second(one: Callable[[int, int], None]) -> float:
    """CLIENTS threads each doing PER_CLIENT calls of one(client, n), released together; the
    clock runs from their release to the last one's end."""
    start = threading.Barrier(CLIENTS + 1)

    def work(client: int) -> None:
        start.wait()
        for k in range(PER_CLIENT):
            one(client, client * PER_CLIENT + k)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return CLIENTS * PER_CLIENT / (time.perf_counter() - began)


def measure(dsn: str) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate.upgrade(conn)
    setup = Desk(Database(dsn))
    for code in DOCTORS:
        setup.add_doctor(code, f"Dr {code}")
    with psycopg.connect(dsn, autocommit=True) as conn:  # patients in bulk: not what is timed
        conn.execute("ALTER TABLE hms.patients DISABLE TRIGGER USER")
        conn.execute("INSERT INTO hms.patients (name) SELECT 'P' || g"
                     " FROM generate_series(1, %s) g", (CLIENTS * PER_CLIENT,))
        conn.execute("ALTER TABLE hms.patients ENABLE TRIGGER USER")
        ids = [row[0] for row in conn.execute("SELECT id FROM hms.patients ORDER BY id")]
    desks = [Desk(Database(dsn)) for _ in range(CLIENTS)]
    for desk in desks:
        desk.doctors()  # connected before the clock starts

    def one(client: int, n: int) -> None:
        desks[client].checkin(DOCTORS[n % len(DOCTORS)], ids[n])

    rate = per_second(one)
    for desk in [*desks, setup]:
        desk.db.dispose()
    return rate


def ceiling(dsn: str) -> float:
    """The update-plus-notify ceiling: what any notifying single-row write can reach here."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_counter (id integer PRIMARY KEY, n bigint NOT NULL)")
        conn.execute("INSERT INTO bench_counter SELECT g, 0 FROM generate_series(1, %s) g",
                     (len(DOCTORS),))
    conns = [psycopg.connect(dsn, autocommit=True) for _ in range(CLIENTS)]

    def one(client: int, n: int) -> None:
        conns[client].execute(
            "WITH u AS (UPDATE bench_counter SET n = n + 1 WHERE id = %s RETURNING n)"
            " SELECT pg_notify('bench', n::text) FROM u", (n % len(DOCTORS) + 1,))

    rate = per_second(one)
    for conn in conns:
        conn.close()
    return rate


def main() -> None:
    name = f"bench_checkin_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        rate = measure(on(name))
        top = ceiling(on(name))
        print(f"{CHECKOUT} clients={CLIENTS} doctors={len(DOCTORS)}"
              f" checkins={CLIENTS * PER_CLIENT} rate={rate:.0f}/s"
              f" update+notify={top:.0f}/s ratio={rate / top:.3f}")
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
