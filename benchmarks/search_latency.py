"""Patient search latency at scale, through the desk path of any checkout of hms-tui.

    python benchmarks/search_latency.py CHECKOUT PATIENTS [--plans]

CHECKOUT is a directory holding a checkout (its hms_tui is imported, so the same script
measures old and new code alike). PATIENTS are loaded with COPY into a scratch database
(created and dropped) on $HMS_BENCH_DSN (default: the PostgreSQL at 127.0.0.1:5432, user
postgres): names from first and last name lists (both orders, some with an initial), phones
of two shapes. Then each kind of search a receptionist types -- a name prefix, a part of a
name, phone digits, an MRN, one or two letters -- runs for texts drawn from stored patients,
and p50/p99 are printed beside the ceiling measured in the same run (fetching one patient by
id through the same desk path). --plans prints EXPLAIN ANALYZE of each step of one search
of each kind.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import uuid

CHECKOUT, PATIENTS = sys.argv[1], int(sys.argv[2])
PLANS = "--plans" in sys.argv
sys.path.insert(0, CHECKOUT)

import psycopg  # noqa: E402
from psycopg import conninfo as pg_conninfo  # noqa: E402

from hms_tui.db import migrate  # noqa: E402
from hms_tui.db.connection import Database  # noqa: E402
from hms_tui.services.desk import Desk  # noqa: E402

SERVER = os.environ.get("HMS_BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
FIRST = [
    "Anil", "Sunita", "Rahul", "Priya", "Amit", "Neha", "Vikram", "Anjali", "Rohan", "Kavya",
    "Arjun", "Meera", "Sanjay", "Pooja", "Ravi", "Divya", "Karan", "Isha", "Manoj", "Lakshmi",
    "John", "Mary", "José", "Zoë", "Åsa", "Björn", "Nguyễn", "Mohammed", "Fatima", "Olga",
    "Ivan", "Chen", "Wei", "Aiko", "Kenji", "Liam", "Emma", "Noah", "Olivia", "Lucas",
]
LAST = [
    "Kumar", "Sharma", "Patel", "Singh", "Gupta", "Reddy", "Iyer", "Nair", "Menon", "Das",
    "Bose", "Khan", "Joshi", "Rao", "Verma", "Mehta", "Chopra", "Kapoor", "Malhotra", "Bhat",
    "Pillai", "D'Souza", "O'Brien", "Smith-Jones", "Müller", "García", "Ødegaard", "Tanaka",
    "Kowalski", "Novak", "Petrov", "Okafor", "Mensah", "Silva", "Santos", "Rossi", "Dubois",
]
PER_KIND = 150


def on(dbname: str) -> str:
    params = pg_conninfo.conninfo_to_dict(SERVER)
    params["dbname"] = dbname
    return pg_conninfo.make_conninfo(**params)


def load(dsn: str) -> None:
    rnd = random.Random(1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate.upgrade(conn)
        conn.execute("ALTER TABLE hms.patients DISABLE TRIGGER USER")  # not what is timed
        with conn.cursor().copy("COPY hms.patients (name, phone, birth_date) FROM STDIN") as cp:
            for i in range(PATIENTS):
                first, last = rnd.choice(FIRST), rnd.choice(LAST)
                name = f"{last}, {first}" if i % 3 == 0 else f"{first} {last}"
                if i % 7 == 0:
                    name += f" {rnd.choice(FIRST)[0]}."
                phone = (None if i % 10 == 0 else f"+91 {rnd.randrange(10**9, 10**10)}" if i % 2
                         else f"0{rnd.randrange(10**8, 10**9)}")
                cp.write_row((name, phone, f"19{rnd.randrange(30, 99)}-0{rnd.randrange(1, 9)}-15"))
        conn.execute("ALTER TABLE hms.patients ENABLE TRIGGER USER")
        conn.execute("VACUUM ANALYZE hms.patients")


def texts(conn: psycopg.Connection[object]) -> dict[str, list[str]]:
    rnd = random.Random(7)
    rows = conn.execute("SELECT name, mrn, phone FROM hms.patients TABLESAMPLE SYSTEM (1)"
                        " REPEATABLE (7) LIMIT 400").fetchall()
    kinds: dict[str, list[str]] = {"prefix": [], "substring": [], "phone": [], "mrn": [],
                                   "short": []}
    for name, mrn, phone in rows:
        name, mrn = str(name), str(mrn)
        kinds["prefix"].append(name[:rnd.randint(3, 6)])
        start = rnd.randint(1, max(1, len(name) - 4))
        kinds["substring"].append(name[start:start + rnd.randint(3, 5)])
        if phone:
            digits = "".join(ch for ch in str(phone) if ch.isdigit())
            at = rnd.randint(0, len(digits) - 7)
            kinds["phone"].append(digits[at:at + rnd.randint(7, len(digits) - at)])
        kinds["mrn"].append(mrn)
        kinds["short"].append(name[:rnd.randint(1, 2)])
    return {kind: found[:PER_KIND] for kind, found in kinds.items()}


def timed(call: object, args: list[object]) -> list[float]:
    out = []
    for arg in args:
        began = time.perf_counter()
        call(arg)  # type: ignore[operator]
        out.append((time.perf_counter() - began) * 1000)
    return sorted(out)


def p99(samples: list[float]) -> float:
    return samples[max(0, int(len(samples) * 0.99) - 1)]


def show_plans(dsn: str, kinds: dict[str, list[str]]) -> None:
    """EXPLAIN ANALYZE of every statement of one search per kind (auto_explain, nested)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("LOAD 'auto_explain'")
        for setting in ("auto_explain.log_min_duration = 0", "auto_explain.log_analyze = on",
                        "auto_explain.log_nested_statements = on",
                        "client_min_messages = log", "auto_explain.log_level = log"):
            conn.execute(f"SET {setting}")
        conn.add_notice_handler(lambda diag: print(diag.message_primary))
        for kind, found in kinds.items():
            print(f"===== {kind}: {found[0]!r}")
            conn.execute("SELECT * FROM hms.search_patients(%s, 50)", (found[0],)).fetchall()


def main() -> None:
    name = f"bench_search_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = on(name)
        began = time.perf_counter()
        load(dsn)
        print(f"{CHECKOUT}: {PATIENTS} patients loaded and indexed in "
              f"{time.perf_counter() - began:.0f} s")
        desk = Desk(Database(dsn))
        with psycopg.connect(dsn, autocommit=True) as conn:
            kinds = texts(conn)
            ids = [int(r[0]) for r in conn.execute("SELECT id FROM hms.patients"
                                                   " TABLESAMPLE SYSTEM (1) LIMIT 150")]
        ceiling = timed(desk.patient, list(ids))
        print(f"ceiling (one patient by id) p50={statistics.median(ceiling):6.2f}"
              f" p99={p99(ceiling):6.2f} ms")
        for kind, found in kinds.items():
            got = timed(lambda text: desk.search_patients(text, 50), list(found))
            print(f"search {kind:10s} n={len(got):3d}  p50={statistics.median(got):6.2f}"
                  f" p99={p99(got):6.2f} max={got[-1]:6.2f} ms"
                  f"  p99/ceiling p99={p99(got) / p99(ceiling):5.1f}")
        desk.db.dispose()
        if PLANS:
            show_plans(dsn, kinds)
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
