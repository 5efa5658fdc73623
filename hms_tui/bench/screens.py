"""(e) The screens under change: a headless waiting-room display of 30 doctors x 40 waiting
and reception showing a 40-patient queue, each fed by its real listener while a desk checks
a patient in and cancels them again, alternately. For each change: the UI thread's CPU time
and the wall time from the listener delivering the change to the screen having painted it,
beside Textual's own frame for one widget measured in the same run; memory over the run."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psutil
import psycopg
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Static

from hms_tui.app import Role, create_app
from hms_tui.bench import seed
from hms_tui.bench.progress import Step, Steps
from hms_tui.bench.sizes import Sizes
from hms_tui.bench.stats import ratio, summary
from hms_tui.config import DisplaySettings, Settings
from hms_tui.db.connection import Database
from hms_tui.domain.events import ConnectionState, Event, QueueUpdate, Refreshed
from hms_tui.services.desk import Desk
from hms_tui.services.live import Listener

DISPLAY_SIZE = (200, 60)  # a waiting-room screen
RECEPTION_SIZE = (120, 50)  # tall enough to lay out the whole queue
ROUND_TIMEOUT = 30.0
IDLE_SAMPLES = 20
SETTLE_SPINS = 500


@dataclass
class _Round:
    """Watches the listener's events for the change the desk just made: the doctor's queue
    at the expected length, then the end of that read round."""

    doctor: str = ""
    length: int = -1
    wall: float = 0.0
    cpu: float = 0.0
    seen: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def arm(self, doctor: str, length: int) -> None:
        self.doctor, self.length, self.seen = doctor, length, False
        self.done.clear()

    def on_event(self, event: Event) -> None:
        if isinstance(event, QueueUpdate) and event.doctor == self.doctor \
                and len(event.visits) == self.length and not self.seen:
            self.seen = True  # subscribed before the app: timed from before the screen's work
            self.wall, self.cpu = time.perf_counter(), time.thread_time()
        elif isinstance(event, Refreshed) and self.seen:
            self.done.set()


async def _painted(pilot: Pilot[Any]) -> None:
    """Until every message the change caused is handled and the screen has painted. Like
    Pilot's wait, without its idle-detection sleeps and without posting a callback to every
    widget (on a screen of hundreds of widgets that alone would cost more than a change): the
    loop is yielded to until no widget has anything queued, then the screen paints."""
    app = pilot.app
    for _round in range(2):  # painting may queue messages (e.g. resizes): settle once more
        for _spin in range(SETTLE_SPINS):
            await asyncio.sleep(0)
            if all(node.message_queue_size == 0 and not node._next_callbacks
                   for node in (app, *app.screen.walk_children(with_self=True))):
                break
        app.screen._on_timer_update()


def _rss_mb() -> float:
    gc.collect()
    rss: int = psutil.Process().memory_info().rss
    return round(rss / 2**20, 1)


class _OneWidget(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("0", id="probe")


async def one_widget_frame(size: tuple[int, int], samples: int) -> dict[str, Any]:
    """Textual's own cost of changing one widget's text and painting it, the same way."""
    app = _OneWidget()
    walls: list[float] = []
    cpus: list[float] = []
    async with app.run_test(size=size) as pilot:
        probe = app.query_one("#probe", Static)
        await _painted(pilot)
        idle = await _idle_cost(pilot, IDLE_SAMPLES)
        for i in range(samples):
            wall, cpu = time.perf_counter(), time.thread_time()
            probe.update(str(i + 1))
            await _painted(pilot)
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.thread_time() - cpu) * 1000)
    idle_cpu, idle_wall = statistics.median(idle["cpu"]), statistics.median(idle["wall"])
    return {"wall": summary([max(0.0, w - idle_wall) for w in walls]),
            "cpu": summary([max(0.0, c - idle_cpu) for c in cpus]),
            "raw_cpu": summary(cpus), "harness_idle_cpu_ms": round(idle_cpu, 3)}


async def _changes(dsn: str, role: Role, size: tuple[int, int], doctors: list[str],
                   waiting: int, patients: list[int], step: Step, cap: float) -> dict[str, Any]:
    desk = Desk(Database(dsn, terminal=f"bench-{role.value}"))
    listener = Listener(desk.db, masked=role == Role.DISPLAY, coalesce=0.0)
    watch = _Round()
    listener.subscribe(watch.on_event)  # before the app's own subscription
    app = create_app(role, desk, Settings(display=DisplaySettings(bell=False)),
                     listener=listener, recover=False)
    walls: list[float] = []
    cpus: list[float] = []
    memory: dict[str, float] = {}
    try:
        async with app.run_test(size=size) as pilot:
            await _until(pilot, lambda: listener.state == ConnectionState.LIVE
                         and all(len(listener.queues.get(d, ())) == waiting for d in doctors))
            await _painted(pilot)
            idle = await _idle_cost(pilot, IDLE_SAMPLES)
            memory["start_mb"] = _rss_mb()
            visit = 0
            stop = time.perf_counter() + cap
            total = 2 * len(patients)
            for i in range(total):
                if i % 2 == 0 and time.perf_counter() > stop:
                    break  # out of time: what was done is reported (``changes``)
                doctor = doctors[(i // 2) % len(doctors)]
                if i % 2 == 0:
                    watch.arm(doctor, waiting + 1)
                    added = await asyncio.to_thread(desk.checkin, doctor, patients[i // 2])
                    visit = added.visit_id
                else:
                    watch.arm(doctor, waiting)
                    await asyncio.to_thread(desk.cancel, visit, "bench")
                await _wait(watch.done.wait(), f"the {role.value} never received change {i}")
                await _painted(pilot)
                walls.append((time.perf_counter() - watch.wall) * 1000)
                cpus.append((time.thread_time() - watch.cpu) * 1000)
                if i + 1 == len(patients) or (i % 2 and "half_mb" not in memory
                                              and time.perf_counter() > stop - cap / 2):
                    memory["half_mb"] = _rss_mb()
                step.advance()
            memory["end_mb"] = _rss_mb()
    finally:
        desk.db.dispose()
    memory["growth_mb"] = round(memory["end_mb"] - memory["start_mb"], 1)
    memory["second_half_growth_mb"] = round(memory["end_mb"] - memory.get("half_mb",
                                                                       memory["start_mb"]), 1)
    idle_cpu = statistics.median(idle["cpu"]) if idle["cpu"] else 0.0
    idle_wall = statistics.median(idle["wall"]) if idle["wall"] else 0.0
    return {"changes": len(walls), "planned": 2 * len(patients),
            "cpu": summary([max(0.0, c - idle_cpu) for c in cpus]),
            "wall": summary([max(0.0, w - idle_wall) for w in walls]),
            "raw_cpu": summary(cpus), "raw_wall": summary(walls),
            "harness_idle": {"cpu": summary(idle["cpu"]), "wall": summary(idle["wall"])},
            "memory": memory}


async def _idle_cost(pilot: Pilot[Any], samples: int) -> dict[str, list[float]]:
    """What waiting for the screen costs by itself on this screen (nothing changed): taken
    off each change's figures, so a screen with many widgets is not charged for the walk."""
    out: dict[str, list[float]] = {"cpu": [], "wall": []}
    for _ in range(samples):
        wall, cpu = time.perf_counter(), time.thread_time()
        await _painted(pilot)
        out["wall"].append((time.perf_counter() - wall) * 1000)
        out["cpu"].append((time.thread_time() - cpu) * 1000)
    return out


async def _until(pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("the screen's listener never loaded the queues")
        await pilot.pause(0.05)


async def _wait(awaitable: Awaitable[Any], message: str) -> None:
    try:
        await asyncio.wait_for(awaitable, ROUND_TIMEOUT)
    except TimeoutError:
        raise RuntimeError(message) from None


def screens(dsn: str, sizes: Sizes, steps: Steps) -> dict[str, Any]:
    doctors = [f"S{j:02d}" for j in range(1, sizes.display_doctors + 1)]
    pairs = max(1, sizes.changes // 2)
    with psycopg.connect(dsn, autocommit=True) as conn:
        seed.add_doctors(conn, doctors)
        waiting = seed.bulk_patients(conn, len(doctors) * sizes.waiting, "Waiting")
        display_patients = seed.bulk_patients(conn, pairs, "Display")
        reception_patients = seed.bulk_patients(conn, pairs, "Reception")
    seed.checkins_by_doctor(dsn, [(doctors[i // sizes.waiting], p) for i, p in enumerate(waiting)])
    out: dict[str, Any] = {"display_size": list(DISPLAY_SIZE),
                           "reception_size": list(RECEPTION_SIZE),
                           "doctors": len(doctors), "waiting": sizes.waiting}
    step = steps.step("e. one-widget frame (Textual)", 2)
    out["one_widget_frame"] = {
        "display_size": asyncio.run(one_widget_frame(DISPLAY_SIZE, sizes.frame_samples))}
    step.advance()
    out["one_widget_frame"]["reception_size"] = asyncio.run(
        one_widget_frame(RECEPTION_SIZE, sizes.frame_samples))
    step.advance()
    step = steps.step(f"e. display, {len(doctors)} doctors x {sizes.waiting} waiting", 2 * pairs)
    out["display"] = asyncio.run(_changes(dsn, Role.DISPLAY, DISPLAY_SIZE, doctors,
                                          sizes.waiting, display_patients, step,
                                          sizes.screen_seconds))
    step = steps.step(f"e. reception, {sizes.waiting}-patient queue", 2 * pairs)
    out["reception"] = asyncio.run(_changes(dsn, Role.RECEPTION, RECEPTION_SIZE, doctors[:1],
                                            sizes.waiting, reception_patients, step,
                                            sizes.screen_seconds))
    for name, frame in (("display", "display_size"), ("reception", "reception_size")):
        base = out["one_widget_frame"][frame]
        out[name]["cpu_p50_to_frame"] = ratio(out[name]["cpu"]["p50_ms"], base["cpu"]["p50_ms"])
        out[name]["wall_p50_to_frame"] = ratio(out[name]["wall"]["p50_ms"], base["wall"]["p50_ms"])
    return out
