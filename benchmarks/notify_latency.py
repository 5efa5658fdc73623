"""Commit -> subscriber latency of live refresh, beside the raw pg_notify round trip.

    python benchmarks/notify_latency.py [--listeners 1,10,50] [--rate 100] [--seconds 5]

Each listener is its own process running hms_tui's Listener (LISTEN, coalesce, refetch the
queue) and timestamps every visit the moment it first appears in a delivered queue snapshot.
A writer checks patients in at a fixed rate across four doctors and timestamps each call just
before sending it (so the figure includes the check-in itself). In the same run, the raw
round trip is measured: one connection NOTIFYs, another LISTENs, nothing else.

Server: $HMS_BENCH_DSN (a database we may create databases in), else a throwaway embedded
server (max_connections raised to fit the listeners). Results are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from hms_tui.bench.live import delays, raw_round_trip
from hms_tui.bench.stats import percentile
from hms_tui.db import migrate
from hms_tui.db.connection import Database
from hms_tui.domain.events import ConnectionState, ConnectionUpdate, QueueUpdate
from hms_tui.services.live import Listener

DOCTORS = ("D1", "D2", "D3", "D4")


# -- the listener process ---------------------------------------------------------------------


async def child(dsn: str, expect: int, timeout: float) -> None:
    listener = Listener(Database(dsn), coalesce=0.05)
    seen: dict[int, float] = {}
    done = asyncio.Event()

    def on_event(event: Any) -> None:
        now = time.time()
        if isinstance(event, ConnectionUpdate) and event.state == ConnectionState.LIVE:
            print("ready", flush=True)
        elif isinstance(event, QueueUpdate) and event.reason == "change":
            for visit in event.visits:
                seen.setdefault(visit.visit_id, now)
            if len(seen) >= expect:
                done.set()

    listener.subscribe(on_event)
    runner = asyncio.create_task(listener.run())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout)
    await listener.stop()
    runner.cancel()
    print(json.dumps({"seen": seen, "refetches": listener.stats.refetches}), flush=True)


# -- the run ----------------------------------------------------------------------------------


def fresh_database(admin_dsn: str) -> str:
    name = f"hms_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params: dict[str, Any] = pg_conninfo.conninfo_to_dict(admin_dsn)
    params["dbname"] = name
    dsn = pg_conninfo.make_conninfo(**params)
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate.upgrade(conn)
        for code in DOCTORS:
            conn.execute("SELECT hms.add_doctor(%s, %s, NULL, NULL)", (code, f"Dr {code}"))
    return dsn


def measure(dsn: str, listeners: int, rate: float, seconds: float) -> dict[str, Any]:
    changes = int(rate * seconds)
    with psycopg.connect(dsn, autocommit=True) as conn:
        patients = [r[0] for r in conn.execute(
            "SELECT (hms.add_patient('Bench ' || g, NULL, NULL)).id FROM generate_series(1, %s) g",
            (changes,))]
        conn.execute("UPDATE hms.visits SET status = 'CANCELLED' WHERE status = 'WAITING'")
    procs = [subprocess.Popen([sys.executable, __file__, "--child", dsn, str(changes)],
                              stdout=subprocess.PIPE, text=True) for _ in range(listeners)]
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("a listener did not start")
    sent: dict[int, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        start = time.perf_counter()
        for i, patient in enumerate(patients):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t0 = time.time()
            row = conn.execute("SELECT visit_id FROM hms.checkin(%s, %s)",
                               (DOCTORS[i % len(DOCTORS)], patient)).fetchone()
            assert row is not None
            sent[row[0]] = t0
        achieved = changes / (time.perf_counter() - start)
    latencies, missing, refetches = [], 0, 0
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        result = json.loads(out.strip().splitlines()[-1])
        refetches += result["refetches"]
        late, lost = delays(sent, result["seen"])
        latencies += late
        missing += lost
    return {"listeners": listeners, "changes": changes, "rate": achieved,
            "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
            "max": max(latencies), "missing": missing,
            "refetches_per_listener": refetches / listeners}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", default="1,10,50")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--child", nargs=2, metavar=("DSN", "EXPECT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child[0], int(args.child[1]), timeout=120))
        return

    counts = [int(n) for n in args.listeners.split(",")]
    admin = os.environ.get("HMS_BENCH_DSN")
    server = None
    if not admin:
        from hms_tui.db.embedded import EmbeddedServer

        scratch = Path(tempfile.mkdtemp(prefix="hms-bench-"))
        scratch.chmod(0o755)  # the embedded server may run as another user
        data = scratch / "pg"
        server = EmbeddedServer(data)
        uri = server.start()
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET max_connections = {max(100, 3 * max(counts) + 20)}")
        server.stop()
        server = EmbeddedServer(data)
        admin = server.start()
    try:
        dsn = fresh_database(admin)
        with psycopg.connect(dsn) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        raw = raw_round_trip(dsn, 500)
        print(f"PostgreSQL {version[0] if version else '?'}; {os.cpu_count()} cores; "
              f"writer {args.rate:g} check-ins/s for {args.seconds:g}s over {len(DOCTORS)} doctors")
        print(f"raw pg_notify round trip: p50 {percentile(raw, 0.5):.2f} ms, "
              f"p99 {percentile(raw, 0.99):.2f} ms ({len(raw)} samples)")
        print(f"{'listeners':>9} {'rate/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
              f"{'p50/raw':>8} {'p99/raw':>8} {'refetch/listener':>17} {'missing':>7}")
        for n in counts:
            r = measure(dsn, n, args.rate, args.seconds)
            print(f"{n:>9} {r['rate']:>7.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['max']:>8.1f} "
                  f"{r['p50'] / percentile(raw, 0.5):>8.0f} {r['p99'] / percentile(raw, 0.99):>8.0f} "
                  f"{r['refetches_per_listener']:>17.0f} {r['missing']:>7}", flush=True)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
