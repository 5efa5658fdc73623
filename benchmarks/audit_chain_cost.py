"""What the hash chain costs in the write path, and how fast `audit verify` walks a trail.

    python benchmarks/audit_chain_cost.py [--checkins 2000] [--rounds 3] [--clients 8]
                                          [--verify-rows 200000]

Three copies of one migrated database, differing only in hms.audit_append:
  chain    as shipped: canonical text + sha256, chained to the previous row
  nochain  the same row and head update, without the canonical text and sha256 (baseline)
  noaudit  audit_append returns at once (what the whole trail costs, for context)
Each round times the same check-ins in every copy, one terminal after another and then
--clients terminals at once (every check-in writes one audit row under the global audit head
lock, so concurrency is where the hash work could hurt). Variants alternate within a round;
the median round is reported, as check-ins per second and as a ratio to `nochain` measured in
the same run. Then a trail of --verify-rows rows is written and verified from Python.

Server: $HMS_BENCH_DSN (a database we may create databases in), else a throwaway embedded
server. Results are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hms_tui.db import migrate
from hms_tui.db.connection import Database
from hms_tui.services import audit

DOCTORS = ("D1", "D2", "D3", "D4", "D5", "D6", "D7", "D8")

def nochain_variant() -> str:
    """The shipped hms.audit_append with only the hash work taken out (no canonical text, no
    sha256), read from the migration so the baseline never drifts from the real function."""
    from importlib import resources

    core = (resources.files("hms_tui.db") / "sql" / "routines" / "10_audit.sql").read_text()
    match = re.search(r"CREATE FUNCTION hms\.audit_append\(.*?END \$\$;", core, re.S)
    assert match is not None, "hms.audit_append not found in 0001_core.sql"
    hashing = "r.hash      := sha256(r.prev_hash || convert_to(hms.audit_canon(r), 'UTF8'));"
    assert hashing in match[0], "the hash line of hms.audit_append changed: update this benchmark"
    return (match[0].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
            .replace(hashing, "r.hash      := head.last_hash;  -- no canonical text, no sha256"))


NOAUDIT = """
CREATE OR REPLACE FUNCTION hms.audit_append(
    p_entity text, p_entity_id bigint, p_visit_id bigint, p_op text, p_before jsonb, p_after jsonb
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = hms, pg_temp SET lock_timeout = '5s' AS $$
BEGIN
END $$;
"""

VARIANTS = {"chain": None, "nochain": nochain_variant(), "noaudit": NOAUDIT}


def with_dbname(dsn: str, name: str) -> str:
    params: dict[str, Any] = pg_conninfo.conninfo_to_dict(dsn)
    params["dbname"] = name
    return pg_conninfo.make_conninfo(**params)


def make_databases(admin: str) -> dict[str, str]:
    base = f"hms_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{base}"')
    with psycopg.connect(with_dbname(admin, base), autocommit=True) as conn:
        migrate.upgrade(conn)
        for code in DOCTORS:
            conn.execute("SELECT hms.add_doctor(%s, %s, NULL, NULL)", (code, f"Dr {code}"))
    dsns = {}
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in VARIANTS:
            conn.execute(f'CREATE DATABASE "{base}_{name}" TEMPLATE "{base}"')
            dsns[name] = with_dbname(admin, f"{base}_{name}")
        conn.execute(f'DROP DATABASE "{base}"')
    for name, sql in VARIANTS.items():
        if sql:
            with psycopg.connect(dsns[name], autocommit=True) as conn:
                conn.execute(sql)
    return dsns


def drop_databases(admin: str, dsns: dict[str, str]) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        for dsn in dsns.values():
            name = pg_conninfo.conninfo_to_dict(dsn)["dbname"]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_patients(dsn: str, n: int) -> list[int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT (hms.add_patient('Bench ' || g, NULL, NULL)).id FROM generate_series(1, %s) g",
            (n,))]


def checkins(dsn: str, patients: list[int], clients: int) -> float:
    """Check each patient in (doctor by position) from `clients` connections; seconds taken."""
    conns = [psycopg.connect(dsn, autocommit=True) for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            for n in range(i, len(patients), clients):
                conns[i].execute("SELECT hms.checkin(%s, %s)", (DOCTORS[n % len(DOCTORS)], patients[n]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    if errors:
        raise errors[0]
    return elapsed


def measure(dsns: dict[str, str], n: int, rounds: int, clients: int) -> dict[tuple[str, int], float]:
    rates: dict[tuple[str, int], list[float]] = {}
    for r in range(rounds):
        for c in (1, clients):
            order = list(VARIANTS) if r % 2 == 0 else list(reversed(VARIANTS))
            for name in order:
                patients = new_patients(dsns[name], n)
                rates.setdefault((name, c), []).append(n / checkins(dsns[name], patients, c))
    return {k: statistics.median(v) for k, v in rates.items()}


def verify_speed(dsn: str, rows: int) -> tuple[float, float, int]:
    """Append `rows` chained rows (in one statement), then time a Python verify of the trail."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT hms.audit_append('bench', g, NULL, 'INSERT', NULL,"
                     " jsonb_build_object('id', g, 'name', 'Patient ' || g, 'status', 'WAITING'))"
                     " FROM generate_series(1, %s) g", (rows,))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = audit.verify(Database(dsn))
    elapsed = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert result.ok, result
    return result.rows_checked / elapsed, (rss_after - rss_before) / 1024, result.rows_checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkins", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--verify-rows", type=int, default=200_000)
    args = parser.parse_args()

    admin = os.environ.get("HMS_BENCH_DSN")
    server = None
    if not admin:
        from hms_tui.db.embedded import EmbeddedServer

        server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="hms-bench-")) / "pg")
        admin = with_dbname(server.start(), "postgres")
    dsns = make_databases(admin)
    try:
        with psycopg.connect(dsns["chain"]) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        print(f"PostgreSQL {version[0] if version else '?'}; {os.cpu_count()} cores; "
              f"{args.checkins} check-ins per run, median of {args.rounds} rounds")
        rates = measure(dsns, args.checkins, args.rounds, args.clients)
        print(f"{'variant':>8} {'terminals':>9} {'check-ins/s':>12} {'vs nochain':>11} "
              f"{'us/check-in':>12}")
        for c in (1, args.clients):
            base = rates[("nochain", c)]
            for name in VARIANTS:
                rate = rates[(name, c)]
                print(f"{name:>8} {c:>9} {rate:>12.0f} {rate / base:>11.3f} "
                      f"{1e6 / rate:>12.0f}")
            extra = 1e6 / rates[("chain", c)] - 1e6 / base
            print(f"{'':>8} {'':>9} chain work: {extra:+.0f} us of wall time per check-in"
                  f" ({c} terminal{'s' if c > 1 else ''})")
        speed, rss_mb, rows = verify_speed(dsns["chain"], args.verify_rows)
        print(f"audit verify (Python): {rows} rows at {speed:,.0f} rows/s; "
              f"peak memory grew by {rss_mb:.1f} MB")
    finally:
        drop_databases(admin, dsns)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
