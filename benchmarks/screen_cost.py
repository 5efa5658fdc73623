"""What one queue change costs a screen: the waiting-room display of 30 doctors x 40 waiting,
and reception showing a 40-patient queue, beside Textual's own one-widget frame.

    python benchmarks/screen_cost.py [--changes 300] [--memory 10000] [--json]

The screens are the real ones, in a headless app, fed exactly what the listener hands them
after one change (``services/live.py``): the changed doctor's ``QueueUpdate``, the
``BoardUpdate`` of that read round, and ``Refreshed``. No database is involved: the subject is
the screen, so the events are built here, the same for every version measured. The changes
cycle through a check-in (a patient joins the end of the line), a call (the patient served
leaves, the first waiting one is called, everyone moves up) and the start of the
consultation, spread over the doctors (reception: all on the doctor it shows).

Time per change: the UI thread's CPU time from handing the events to the screen until every
message they caused is handled and the screen has painted (as Pilot waits, without its idle
sleeps); the wall time beside it. The ceiling,
measured in the same app and run: one ``Static`` of the same screen updated and painted.
Memory: tracemalloc's traced size after a warm-up and again after ``--memory`` changes.

``measure_display(changes)`` and ``measure_reception(changes)`` return one dict each
(``hms-tui bench`` may call them). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
import tracemalloc
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.pilot import Pilot
from textual.widgets import Static

from hms_tui.app import HmsApp, Role
from hms_tui.config import DisplaySettings, PrinterSettings, Settings
from hms_tui.db.connection import Database
from hms_tui.domain.events import (
    BoardUpdate,
    ConnectionState,
    ConnectionUpdate,
    Event,
    QueueUpdate,
    Refreshed,
)
from hms_tui.domain.models import DoctorBoard, Priority, Status, Visit
from hms_tui.services.desk import Desk
from hms_tui.services.live import Listener

FROZEN = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
TODAY = date(2026, 12, 1)
DOCTORS = 30
WAITING = 40
DISPLAY_SIZE = (200, 60)
RECEPTION_SIZE = (120, 50)
PACE = 6  # minutes per patient in the estimates


class _Clinic:
    """30 doctors' queues as the listener holds them, and the events one change sends."""

    def __init__(self, masked: bool) -> None:
        self.masked = masked
        self.next_id = 1
        self.serial: dict[str, int] = {}
        self.codes = [f"D{i:02d}" for i in range(1, DOCTORS + 1)]
        self.queues: dict[str, list[Visit]] = {}
        self.steps: dict[str, int] = {}
        for code in self.codes:
            self.serial[code] = 0
            self.steps[code] = 0
            serving = replace(self._new(code), status=Status.IN_CONSULTATION,
                              called_at=FROZEN, started_at=FROZEN, call_count=1)
            self.queues[code] = [serving, *(self._new(code) for _ in range(WAITING))]
        self.clock = FROZEN

    def _new(self, code: str) -> Visit:
        self.serial[code] += 1
        n, self.next_id = self.next_id, self.next_id + 1
        name = f"P. {n}" if self.masked else f"Patient {n:05d}, Test"
        return Visit(visit_id=n, token=f"{code}-{self.serial[code]:03d}",
                     serial=self.serial[code], position=None, status=Status.WAITING,
                     priority=Priority.URGENT if n % 17 == 0 else Priority.NORMAL,
                     patient_id=0 if self.masked else n, patient_name=name,
                     mrn="" if self.masked else f"M{n:06d}", doctor=code,
                     doctor_name=f"Dr {code}", room=f"Room {code[1:]}", business_date=TODAY,
                     appointment_at=None, checked_in_at=FROZEN - timedelta(minutes=n % 50),
                     called_at=None, call_count=0, started_at=None, ended_at=None,
                     cancel_reason=None, transferred_from=None, transferred_to=None,
                     wait_minutes=None, replayed=False)

    def _ranked(self, code: str) -> tuple[Visit, ...]:
        """Positions and estimates as hms.ranked gives them (served first, then the line)."""
        visits = self.queues[code]
        serving = [v for v in visits if v.status != Status.WAITING]
        line = [v for v in visits if v.status == Status.WAITING]
        out = [replace(v, position=None, wait_minutes=None, eta_from=None, eta_to=None)
               for v in serving]
        for pos, v in enumerate(line, start=1):
            wait = PACE * (pos - 1 + len(serving))
            out.append(replace(v, position=pos, wait_minutes=wait,
                               eta_from=self.clock + timedelta(minutes=wait * 0.8),
                               eta_to=self.clock + timedelta(minutes=wait * 1.2 + 5)))
        return tuple(out)

    def board(self) -> tuple[DoctorBoard, ...]:
        rows = []
        for code in self.codes:
            visits = self.queues[code]
            serving = next((v.token for v in visits if v.status != Status.WAITING), None)
            rows.append(DoctorBoard(code, f"Dr {code}", f"Room {code[1:]}", code, True, serving,
                                    sum(v.status == Status.WAITING for v in visits),
                                    self.steps[code] // 3, 0, self.serial[code]))
        return tuple(rows)

    def initial(self) -> dict[str, tuple[Visit, ...]]:
        return {code: self._ranked(code) for code in self.codes}

    def change(self, code: str) -> tuple[Visit, ...]:
        """The next step of ``code``'s queue: check-in, call, start, in turn."""
        step = self.steps[code] % 3
        self.steps[code] += 1
        self.clock += timedelta(seconds=1)
        visits = self.queues[code]
        if step == 0:
            visits.append(self._new(code))
        elif step == 1:
            visits = [v for v in visits if v.status == Status.WAITING]
            head = replace(visits[0], status=Status.CALLED, called_at=self.clock, call_count=1)
            visits = [head, *visits[1:]]
        else:
            head = visits[0]
            visits[0] = replace(head, status=Status.IN_CONSULTATION, started_at=self.clock)
        self.queues[code] = visits
        return self._ranked(code)


class _BenchApp(HmsApp):
    """The real app and screen, with no database behind it: the listener is not started and
    desk calls are not sent (the benchmark hands the screen the listener's events itself)."""

    async def on_mount(self) -> None:
        self.push_screen(self._role_screen())

    def db_call(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def _app(role: Role) -> _BenchApp:
    db = Database("postgresql://bench@127.0.0.1:1/none")  # never connected
    # Announcements queue by design, each up for announce_seconds: a benchmark that calls
    # thousands of patients a minute would otherwise measure that queue. Up for 1 ms here.
    settings = Settings(display=DisplaySettings(bell=False, announce_seconds=0.001),  # type: ignore[arg-type]
                        printer=PrinterSettings(kind="none"))
    listener = Listener(db, masked=role == Role.DISPLAY)
    return _BenchApp(role, Desk(db), listener, settings, clock=lambda: FROZEN,
                     ascii_only=False, recover=False)


async def _painted(pilot: Pilot[Any]) -> None:
    """Until every pending message is handled and the screen has painted."""
    await pilot._wait_for_screen()
    pilot.app.screen._on_timer_update()
    await pilot._wait_for_screen()


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 3),
            "max_ms": round(ordered[-1] * 1000, 3)}


async def _measure(role: Role, changes: int, memory_changes: int) -> dict[str, Any]:
    clinic = _Clinic(masked=role == Role.DISPLAY)
    app = _app(role)
    size = DISPLAY_SIZE if role == Role.DISPLAY else RECEPTION_SIZE
    codes = clinic.codes if role == Role.DISPLAY else clinic.codes[:1]
    async with app.run_test(size=size) as pilot:
        live = app.listener.live
        live.business_date = TODAY
        live.queues.update(clinic.initial())
        live.board = clinic.board()
        live.state = ConnectionState.LIVE

        def publish(*events: Event) -> None:
            for event in events:
                app.live_signal.publish(event)

        publish(ConnectionUpdate(ConnectionState.LIVE, FROZEN), BoardUpdate(live.board, "initial"))
        for code in clinic.codes:
            publish(QueueUpdate(code, TODAY, live.queues[code], "initial"))
        publish(Refreshed(FROZEN))
        await pilot.pause()
        await pilot.pause()
        probe = Static("probe", id="bench-probe")
        await app.screen.mount(probe)
        await _painted(pilot)

        async def one_change(i: int) -> None:
            code = codes[i % len(codes)]
            visits = clinic.change(code)
            live.queues[code] = visits
            live.board = clinic.board()
            publish(QueueUpdate(code, TODAY, visits, "change", ("bench",)),
                    BoardUpdate(live.board, "change"), Refreshed(FROZEN))
            await _painted(pilot)

        async def one_widget(i: int) -> None:
            probe.update(f"probe {i}")
            await _painted(pilot)

        for i in range(30):  # warm caches and the first layouts
            await one_change(i)
            await one_widget(i)
        # The UI thread's CPU time (this machine is shared: wall time also counts waiting for
        # a core), wall time beside it. Interleaved: both see the same load.
        per_change, per_widget, wall_change = [], [], []
        for i in range(changes):
            w0, t0 = time.perf_counter(), time.thread_time()
            await one_change(i)
            w1, t1 = time.perf_counter(), time.thread_time()
            await one_widget(i)
            t2 = time.thread_time()
            per_change.append(t1 - t0)
            per_widget.append(t2 - t1)
            wall_change.append(w1 - w0)

        memory: dict[str, Any] = {}
        if memory_changes:
            gc.collect()
            tracemalloc.start()
            for i in range(200):
                await one_change(i)
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            for i in range(memory_changes):
                await one_change(i)
            gc.collect()
            after, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            memory = {"memory_changes": memory_changes, "traced_before_kb": round(before / 1024),
                      "traced_after_kb": round(after / 1024),
                      "growth_kb": round((after - before) / 1024),
                      "growth_bytes_per_change": round((after - before) / memory_changes, 1),
                      "peak_kb": round(peak / 1024)}
        await app.action_quit()
    change, widget = _stats(per_change), _stats(per_widget)
    return {"screen": "display" if role == Role.DISPLAY else "reception",
            "shape": f"{DOCTORS} doctors x {WAITING} waiting" if role == Role.DISPLAY
            else f"a {WAITING}-patient queue (and a {DOCTORS}-doctor board)",
            "size": f"{size[0]}x{size[1]}", "changes": changes,
            "change": change, "one_widget": widget, "change_wall": _stats(wall_change),
            "ratio_p50": round(change["p50_ms"] / widget["p50_ms"], 1),
            "goal_ms": 16.0, "meets_goal": change["p50_ms"] <= 16.0, **memory}


def measure_display(changes: int, memory_changes: int = 0) -> dict[str, Any]:
    """One change applied to the waiting-room display of 30 doctors x 40 waiting."""
    return asyncio.run(_measure(Role.DISPLAY, changes, memory_changes))


def measure_reception(changes: int, memory_changes: int = 0) -> dict[str, Any]:
    """One change applied to reception showing a 40-patient queue."""
    return asyncio.run(_measure(Role.RECEPTION, changes, memory_changes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=300, help="timed changes per screen")
    parser.add_argument("--memory", type=int, default=10_000,
                        help="changes applied under tracemalloc (0: no memory pass)")
    parser.add_argument("--screens", default="display,reception")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for name in args.screens.split(","):
        measure = measure_display if name == "display" else measure_reception
        results.append(measure(args.changes, args.memory))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        c, w = r["change"], r["one_widget"]
        print(f"{r['screen']:>9} ({r['shape']}, {r['size']}): per change p50 {c['p50_ms']:.1f} ms"
              f" p90 {c['p90_ms']:.1f} max {c['max_ms']:.1f}; one widget p50 {w['p50_ms']:.2f} ms"
              f"; ratio {r['ratio_p50']:.0f}x; goal 16 ms: {'met' if r['meets_goal'] else 'NOT met'}")
        if "growth_kb" in r:
            print(f"{'':>9} memory over {r['memory_changes']} changes: {r['traced_before_kb']} KB"
                  f" -> {r['traced_after_kb']} KB ({r['growth_bytes_per_change']} B/change),"
                  f" peak {r['peak_kb']} KB")


if __name__ == "__main__":
    main()
