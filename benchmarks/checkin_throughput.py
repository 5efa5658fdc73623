"""Check-in throughput through the desk path of any checkout of hms-tui, to compare versions.

    python benchmarks/checkin_throughput.py CHECKOUT CLIENTS PER_CLIENT

CHECKOUT is a directory holding a checkout (e.g. `git worktree add /tmp/before bf75eee^`);
its hms_tui is imported, so the same script measures old and new code alike. 20 doctors;
CLIENTS threads (one Desk and one connection each) check in PER_CLIENT patients each, spread
over the doctors; the rate is printed. Server: $HMS_BENCH_DSN (default: the PostgreSQL at
127.0.0.1:5432, user postgres), in a scratch database created and dropped. Run the versions
alternately, several times: figures compare only within one sitting on one machine.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid

CHECKOUT, CLIENTS, PER_CLIENT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, CHECKOUT)

import psycopg  # noqa: E402
from psycopg import conninfo as pg_conninfo  # noqa: E402

from hms_tui.db import migrate  # noqa: E402
from hms_tui.db.connection import Database  # noqa: E402
from hms_tui.services.desk import Desk  # noqa: E402

SERVER = os.environ.get("HMS_BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
DOCTORS = [f"D{i}" for i in range(1, 21)]


def on(dbname: str) -> str:
    params = pg_conninfo.conninfo_to_dict(SERVER)
    params["dbname"] = dbname
    return pg_conninfo.make_conninfo(**params)


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
    start = threading.Barrier(CLIENTS + 1)

    def work(client: int) -> None:
        start.wait()
        for k in range(PER_CLIENT):
            n = client * PER_CLIENT + k
            desks[client].checkin(DOCTORS[n % len(DOCTORS)], ids[n])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    for desk in [*desks, setup]:
        desk.db.dispose()
    return CLIENTS * PER_CLIENT / elapsed


def main() -> None:
    name = f"bench_checkin_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        rate = measure(on(name))
        print(f"{CHECKOUT} clients={CLIENTS} checkins={CLIENTS * PER_CLIENT} rate={rate:.0f}/s")
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
