"""(c) Commit-to-screen latency: N listening processes, each running the project's own
``Listener`` (LISTEN, coalesce, re-read the changed queues: what every screen runs), while a
writer checks patients in through the desk at a fixed rate. Latency is from just before the
writer's call to the moment the visit first appears in a listener's delivered queue; the raw
``pg_notify`` round trip of the same server is measured beside it."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import psycopg

from hms_tui.bench import seed
from hms_tui.bench.progress import Steps
from hms_tui.bench.sizes import Sizes
from hms_tui.bench.stats import percentile, ratio, summary
from hms_tui.db.connection import Database, first_line
from hms_tui.domain.errors import HmsError
from hms_tui.services.desk import Desk

DOCTORS = ("L1", "L2", "L3", "L4")
READY_TIMEOUT = 120.0
LISTEN_TIMEOUT = 900.0  # a listener gives up waiting for the writer after this
GRACE = 15.0  # seconds a listener waits for the last changes after the writer is done
WRITER_SLACK = 1.5  # a writer that cannot keep the rate stops at 1.5x the planned time


def _listen(dsn: str, pipe: Connection) -> None:
    """The listening process: report ready once live, record the first-seen time of each
    visit, and stop once it has seen as many as the writer says it sent (or a while after)."""
    from hms_tui.domain.events import ConnectionState, ConnectionUpdate, QueueUpdate
    from hms_tui.services.live import Listener

    async def main() -> None:
        listener = Listener(Database(dsn, terminal="bench-listener"))
        seen: dict[int, float] = {}
        sent = [-1]

        def on_event(event: Any) -> None:
            now = time.time()
            if isinstance(event, ConnectionUpdate) and event.state == ConnectionState.LIVE:
                pipe.send("ready")
            elif isinstance(event, QueueUpdate):
                for visit in event.visits:
                    seen.setdefault(visit.visit_id, now)

        listener.subscribe(on_event)
        runner = asyncio.create_task(listener.run())
        deadline = time.monotonic() + LISTEN_TIMEOUT
        while time.monotonic() < deadline and not (0 <= sent[0] <= len(seen)):
            if sent[0] < 0 and pipe.poll():
                sent[0] = int(pipe.recv())
                deadline = time.monotonic() + GRACE
            await asyncio.sleep(0.05)
        await listener.stop()
        runner.cancel()
        pipe.send(json.dumps({"seen": seen, "refetches": listener.stats.refetches}))

    asyncio.run(main())


def delays(sent: dict[int, float], seen: dict[str, float]) -> tuple[list[float], int]:
    """One listener's report against what was sent: the milliseconds from each visit's check-in
    to its first delivery, and how many it never saw (JSON keys the visit ids as text)."""
    got = {int(k): v for k, v in seen.items()}
    late = [(got[v] - t0) * 1000 for v, t0 in sent.items() if v in got]
    return late, len(sent) - len(late)


def raw_round_trip(dsn: str, samples: int) -> list[float]:
    """Milliseconds from a NOTIFY sent (autocommit: committed) to LISTEN receiving it."""
    out = []
    with psycopg.connect(dsn, autocommit=True) as listen, \
            psycopg.connect(dsn, autocommit=True) as send:
        listen.execute("LISTEN bench_raw")
        for i in range(samples):
            t0 = time.perf_counter()
            send.execute("SELECT pg_notify('bench_raw', %s)", (str(i),))
            for _ in listen.notifies(timeout=5, stop_after=1):
                out.append((time.perf_counter() - t0) * 1000)
    return out


def one_round(dsn: str, listeners: int, sizes: Sizes) -> dict[str, Any]:
    changes = max(1, int(sizes.live_rate * sizes.live_seconds))
    with psycopg.connect(dsn, autocommit=True) as conn:
        patients = seed.bulk_patients(conn, changes, "Live")
        # Every round starts from empty queues (the previous round's visits cancelled).
        conn.execute("UPDATE hms.visits SET status = 'CANCELLED' WHERE status = 'WAITING'")
    ctx = multiprocessing.get_context("fork")  # no re-import per listener: 50 start at once
    procs, pipes = [], []
    try:
        for _ in range(listeners):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=_listen, args=(dsn, theirs), daemon=True)
            proc.start()
            procs.append(proc)
            pipes.append(ours)
        for pipe in pipes:
            if not pipe.poll(READY_TIMEOUT) or pipe.recv() != "ready":
                raise RuntimeError("a listener did not go live")
        sent: dict[int, float] = {}
        refused = [0]
        # One writer thread per doctor (four desks), each at its share of the rate: a single
        # desk waits for each check-in's commit, which alone can be slower than 100 a second.
        desks = [Desk(Database(dsn, terminal=f"bench-writer-{d}")) for d in DOCTORS]
        for desk in desks:
            desk.doctors()
        start = time.perf_counter()
        stop = start + WRITER_SLACK * sizes.live_seconds

        def write(w: int) -> None:
            mine = patients[w::len(DOCTORS)]
            for i, patient in enumerate(mine):
                if time.perf_counter() > stop:
                    break
                delay = start + (i * len(DOCTORS) + w) / sizes.live_rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                t0 = time.time()
                try:
                    sent[desks[w].checkin(DOCTORS[w], patient).visit_id] = t0
                except HmsError:
                    refused[0] += 1  # (reported: a refused change is not a latency)

        writers = [threading.Thread(target=write, args=(w,)) for w in range(len(DOCTORS))]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        achieved = len(sent) / (time.perf_counter() - start)
        for desk in desks:
            desk.db.dispose()
        for pipe in pipes:
            pipe.send(str(len(sent)))
        latencies: list[float] = []
        missing = refetches = 0
        for pipe in pipes:
            if not pipe.poll(READY_TIMEOUT):
                raise RuntimeError("a listener did not report")
            result = json.loads(pipe.recv())
            refetches += result["refetches"]
            late, lost = delays(sent, result["seen"])
            latencies += late
            missing += lost
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
    return {"listeners": listeners, "changes": len(sent), "planned": changes,
            "rate_per_s": round(achieved, 1), "refused": refused[0],
            **summary(latencies), "missing": missing,
            "reads_per_listener": round(refetches / listeners, 1)}


def latency(dsn: str, sizes: Sizes, steps: Steps) -> dict[str, Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        seed.add_doctors(conn, list(DOCTORS))
    step = steps.step("c. commit-to-screen latency", len(sizes.listeners) + 1)
    raw = raw_round_trip(dsn, 200)
    step.advance()
    out: dict[str, Any] = {"raw_notify": summary(raw), "rate_per_s": sizes.live_rate}
    for n in sizes.listeners:
        try:
            result = one_round(dsn, n, sizes)
            result["p99_to_raw"] = ratio(result["p99_ms"], percentile(raw, 0.99))
        except (psycopg.OperationalError, HmsError, RuntimeError) as exc:
            result = {"error": first_line(exc)}  # e.g. out of connections on a shared server
        out[str(n)] = result
        step.advance()
    return out
