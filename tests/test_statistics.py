"""Statistics and the past replayed, on a real morning.

Five terminals (two reception logins, three doctors' logins) act at once on real connections:
500 actions in 20 rounds. After each round the test takes a snapshot of every queue, in one
transaction with its moment. Afterwards: the replay at each moment equals that snapshot, the
replay now equals the tables, the day's report equals figures the test computes itself from
the results its own actions returned, and ``audit check`` is silent -- then catches an edit
made with triggers off, and a trail cut short.
"""

from __future__ import annotations

import random
import statistics
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
import pytest

from hms_tui.domain.errors import HmsError
from hms_tui.domain.models import Visit
from hms_tui.services.desk import Desk
from hms_tui.services.reports import FIGURES, Reports
from hms_tui.services.trail import Trail
from tests.conftest import StaffLogins, open_every_day

DOCTORS = ("D1", "D2", "D3")
ROUNDS = 20
PER_TERMINAL = 5  # 5 terminals x 5 actions = 25 a round, 500 in all
WAIT_TARGET = 30
_US = timedelta(microseconds=1)


# -- what the test knows from its own actions -------------------------------------------------


@dataclass
class Track:
    """One visit as the results of the test's actions showed it."""

    doctor: str
    status: str
    checked_in_at: datetime | None = None
    appointment: bool = False
    transfer_in: bool = False
    quote: tuple[datetime, datetime] | None = None
    first_call: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    call_count: int = 0


@dataclass
class Morning:
    lock: threading.Lock = field(default_factory=threading.Lock)
    visits: dict[int, Track] = field(default_factory=dict)
    staff: Counter[tuple[str, str]] = field(default_factory=Counter)
    actions: int = 0
    refused: int = 0

    def saw(self, visit: Visit, action: str, login: str) -> None:
        """Record what an action's result says about its visit (called under the lock).

        Results of different terminals reach here in any order, so a status is only moved
        the way the day moves it: a finished visit stays finished, an arrival never undoes a
        call made on it since, and a priority change says nothing about the status."""
        track = self.visits.get(visit.visit_id)
        if track is None:
            track = self.visits[visit.visit_id] = Track(visit.doctor, visit.status.value)
        elif action != "priority":
            self.move(track, visit.status.value, arrival=action in ("checkin", "arrive"))
        if action in ("checkin", "arrive", "transfer"):
            track.checked_in_at = visit.checked_in_at
            track.appointment = visit.appointment_at is not None
            track.transfer_in = action == "transfer"
            assert visit.eta_from is not None and visit.eta_to is not None
            track.quote = (visit.eta_from, visit.eta_to)
            if action != "transfer":
                self.staff[(login, "checkins")] += 1
        if action in ("call_next", "call", "recall", "start", "no_show", "requeue"):
            track.call_count = visit.call_count  # the doctor's own terminal, in order
        if action in ("call_next", "call"):
            assert visit.called_at is not None
            track.first_call = min(filter(None, (track.first_call, visit.called_at)))
            self.staff[(login, "calls")] += 1
        if action == "start":
            track.started_at = visit.started_at
        if action == "complete":
            track.ended_at = visit.ended_at
            self.staff[(login, "consultations")] += 1

    @staticmethod
    def move(track: Track, status: str, *, arrival: bool = False) -> None:
        if track.status in FINISHED:
            return
        if arrival and track.status not in ("BOOKED", "WAITING"):
            return  # a doctor's terminal already reported the call that followed
        track.status = status


FINISHED = ("COMPLETED", "CANCELLED", "TRANSFERRED")


class Terminal:
    """One terminal: a login, its own connection, its own random choices."""

    def __init__(self, morning: Morning, desk: Desk, login: str, seed: int,
                 doctor: str | None = None) -> None:
        self.morning, self.desk, self.login, self.doctor = morning, desk, login, doctor
        self.rng = random.Random(seed)

    def act(self, action: str, run: Callable[[], Visit], visit_id: int | None = None) -> None:
        try:
            result = run()
        except HmsError:
            with self.morning.lock:
                self.morning.refused += 1
            if visit_id is not None:  # learn whether another terminal finished it
                seen = self.desk.visit(visit_id).status.value
                if seen in FINISHED:
                    with self.morning.lock:
                        Morning.move(self.morning.visits[visit_id], seen)
            return
        with self.morning.lock:
            self.morning.actions += 1
            if action == "transfer" and visit_id is not None:
                Morning.move(self.morning.visits[visit_id], "TRANSFERRED")
            self.morning.saw(result, action, self.login)

    def pick(self, status: str, doctor: str | None = None) -> int | None:
        with self.morning.lock:
            ids = [vid for vid, t in self.morning.visits.items()
                   if t.status == status and (doctor is None or t.doctor == doctor)]
        return self.rng.choice(ids) if ids else None

    def turn(self, patients: list[int]) -> None:
        if self.doctor is None:
            self.reception_turn(patients)
        else:
            self.doctor_turn(self.doctor)

    def reception_turn(self, patients: list[int]) -> None:
        d, rng = self.desk, self.rng
        roll = rng.random()
        doctor = rng.choice(DOCTORS)
        patient = rng.choice(patients)
        if roll < 0.45:
            priority = rng.choices(["NORMAL", "URGENT", "EMERGENCY"], [80, 15, 5])[0]
            self.act("checkin", lambda: d.checkin(doctor, patient, priority))
        elif roll < 0.60:
            self.act("book", lambda: d.book(doctor, patient, day=d.business_date()))
        elif (roll < 0.75) and (vid := self.pick("BOOKED")) is not None:
            self.act("arrive", lambda: d.arrive(vid), vid)
        elif (roll < 0.85) and (vid := self.pick("WAITING")) is not None:
            self.act("cancel", lambda: d.cancel(vid, "left"), vid)
        elif (roll < 0.93) and (vid := self.pick("WAITING")) is not None:
            to = rng.choice(DOCTORS)
            self.act("transfer", lambda: d.transfer(vid, to), vid)
        elif (vid := self.pick("WAITING")) is not None:
            priority = rng.choice(["NORMAL", "URGENT"])
            self.act("priority", lambda: d.set_priority(vid, priority), vid)

    def doctor_turn(self, doctor: str) -> None:
        d, rng = self.desk, self.rng
        if (vid := self.pick("IN_CONSULTATION", doctor)) is not None:
            self.act("complete", lambda: d.complete(vid), vid)
        elif (vid := self.pick("CALLED", doctor)) is not None:
            calls = self.morning.visits[vid].call_count
            roll = rng.random()
            if roll < 0.75:
                self.act("start", lambda: d.start(vid), vid)
            elif calls <= 2:
                self.act("recall", lambda: d.recall(vid), vid)
            else:
                self.act("no_show", lambda: d.no_show(vid), vid)
        elif rng.random() < 0.1 and (vid := self.pick("NO_SHOW", doctor)) is not None:
            self.act("requeue", lambda: d.requeue(vid), vid)
        elif rng.random() < 0.15 and (vid := self.pick("WAITING", doctor)) is not None:
            self.act("call", lambda: d.call(vid), vid)
        else:
            self.act("call_next", lambda: d.call_next(doctor))


def mismatches(replayed: list[Visit], taken: list[Visit]) -> list[Any]:
    """Where two lists of visits differ: (index, field, replayed, taken), or their lengths."""
    if len(replayed) != len(taken):
        return [("length", len(replayed), len(taken))]
    return [(i, name, getattr(a, name), getattr(b, name))
            for i, (a, b) in enumerate(zip(replayed, taken, strict=True))
            for name in vars(a) if getattr(a, name) != getattr(b, name)]


def snapshot(sql: psycopg.Connection[Any]) -> tuple[datetime, list[Visit]]:
    """Every queue and the moment, from one transaction (now() is its start)."""
    with sql.transaction():
        sql.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur = sql.cursor(row_factory=psycopg.rows.dict_row)
        moment = cur.execute("SELECT now() AS at").fetchone()["at"]  # type: ignore[index]
        rows = [Visit.from_row(r) for code in DOCTORS
                for r in cur.execute("SELECT * FROM hms.queue(%s, false)", (code,)).fetchall()]
    return moment, rows


# -- the figures, computed the way the report defines them -------------------------------------


def minutes(delta: timedelta) -> Decimal:
    """hms.minutes: exact microseconds to minutes, one decimal, halves away from zero."""
    return (Decimal(delta // _US) / Decimal(60_000_000)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def percentile(values: list[Decimal], p: float) -> float | None:
    """percentile_cont over float8, then round(::numeric, 1) as the report does."""
    if not values:
        return None
    ordered = sorted(float(x) for x in values)
    pos = p * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    value = ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
    return float(Decimal(f"{value:.15g}").quantize(Decimal("0.1"), ROUND_HALF_UP))


def share(part: int, whole: int) -> float | None:
    return None if whole == 0 else float((Decimal(part) / whole).quantize(Decimal("0.001"),
                                                                          ROUND_HALF_UP))


def expected_figures(tracks: list[Track]) -> dict[str, Any]:
    arrived = [t for t in tracks if t.checked_in_at and not t.transfer_in]
    called = [t for t in tracks if t.first_call]
    waits = [minutes(t.first_call - t.checked_in_at) for t in called  # type: ignore[operator]
             if t.checked_in_at]
    done = [t for t in tracks if t.status == "COMPLETED"]
    consults = [minutes(t.ended_at - t.started_at) for t in done]  # type: ignore[operator]
    quoted = [t for t in called if t.quote]
    errors = [abs(Decimal((t.first_call - t.quote[0]) // _US + (t.first_call - t.quote[1]) // _US)  # type: ignore[operator,index]
                  / Decimal(120_000_000)).quantize(Decimal("0.1"), ROUND_HALF_UP) for t in quoted]
    within = sum(1 for t in quoted if t.quote[0] <= t.first_call <= t.quote[1])  # type: ignore
    status = Counter(t.status for t in tracks)
    over = sum(1 for w in waits if w > WAIT_TARGET)
    seen, no_shows = status["COMPLETED"], status["NO_SHOW"]
    return {
        "arrivals": len(arrived), "transfers_in": sum(1 for t in tracks if t.transfer_in),
        "booked": sum(1 for t in arrived if t.appointment),
        "walk_in": sum(1 for t in arrived if not t.appointment),
        "seen": seen, "no_shows": no_shows, "no_show_rate": share(no_shows, seen + no_shows),
        "cancellations": status["CANCELLED"], "transfers": status["TRANSFERRED"],
        "called": len(called),
        "wait_p50": percentile(waits, 0.5), "wait_p90": percentile(waits, 0.9),
        "wait_max": float(max(waits)) if waits else None,
        "consult_p50": percentile(consults, 0.5), "consult_p90": percentile(consults, 0.9),
        "over_target": over, "over_target_share": share(over, len(called)),
        "estimates": len(quoted), "estimate_abs_error_p50": percentile(errors, 0.5),
        "estimate_within_share": share(within, len(quoted)),
    }


def as_floats(figures: Any) -> dict[str, Any]:
    return {name: (float(value) if isinstance(value, (float, Decimal)) else value)
            for name, value in vars(figures).items()}


# -- the test --------------------------------------------------------------------------------


@pytest.fixture
def morning_clinic(desk: Desk, staff_logins: StaffLogins) -> dict[str, Any]:
    for code, name in zip(DOCTORS, ("Dr Rao", "Dr Mehta", "Dr Iyer"), strict=True):
        desk.add_doctor(code, name, f"Room {code[1]}")
    open_every_day(desk, *DOCTORS)
    patients = [desk.add_patient(f"Patient {i:03d}").id for i in range(70)]
    logins = {"R1": staff_logins.add("reception"), "R2": staff_logins.add("reception")}
    for code in DOCTORS:
        logins[code] = staff_logins.add("doctor", (code,))
    return {"patients": patients, "logins": logins}


def test_a_concurrent_morning_replays_reports_and_checks(
    desk: Desk, sql: psycopg.Connection[Any], staff_logins: StaffLogins,
    morning_clinic: dict[str, Any],
) -> None:
    morning = Morning()
    logins = morning_clinic["logins"]
    terminals = [Terminal(morning, staff_logins.desk(logins[name]), logins[name], seed,
                          None if name.startswith("R") else name)
                 for seed, name in enumerate(("R1", "R2", *DOCTORS))]
    patients = morning_clinic["patients"]
    snapshots: list[tuple[datetime, list[Visit]]] = []

    def run(terminal: Terminal) -> None:
        for _ in range(PER_TERMINAL):
            terminal.turn(patients)

    with ThreadPoolExecutor(len(terminals)) as pool:
        for _ in range(ROUNDS):
            for done in [pool.submit(run, t) for t in terminals]:
                done.result()  # an unexpected error fails the test here
            snapshots.append(snapshot(sql))
    assert morning.actions + morning.refused <= ROUNDS * PER_TERMINAL * len(terminals)
    assert morning.actions > 300, (morning.actions, morning.refused)
    # The morning had every kind of visit: seen, cancelled, transferred, booked and arrived.
    kinds = Counter(t.status for t in morning.visits.values())
    assert kinds["COMPLETED"] and kinds["CANCELLED"] and kinds["TRANSFERRED"], kinds
    assert any(t.appointment and t.checked_in_at for t in morning.visits.values())

    trail = Trail(desk.db)
    # The replay at each moment is the snapshot taken then; at the end, the tables.
    for moment, rows in snapshots:
        assert mismatches(trail.replay(moment), rows) == [], moment
    final_moment, final_rows = snapshot(sql)
    assert mismatches(trail.replay(final_moment), final_rows) == []
    assert any(v.status.value == "WAITING" for _, rows in snapshots for v in rows)

    # The report, against the test's own reckoning.
    report = Reports(desk.db).daily()
    tracks = list(morning.visits.values())
    assert as_floats(report.clinic) == expected_figures(tracks)
    for doctor in report.doctors:
        mine = [t for t in tracks if t.doctor == doctor.doctor]
        assert as_floats(doctor.figures) == expected_figures(mine), doctor.doctor
    staff = {(s.login, kind): getattr(s, kind) for s in report.staff
             for kind in ("checkins", "calls", "consultations") if getattr(s, kind)}
    assert staff == {k: n for k, n in morning.staff.items() if n}
    zone = desk.zone()
    hours = Counter(t.checked_in_at.astimezone(zone).hour for t in tracks
                    if t.checked_in_at and not t.transfer_in)
    calls = Counter(t.first_call.astimezone(zone).hour for t in tracks if t.first_call)
    assert {h.hour: h.arrivals for h in report.hours if h.arrivals} == dict(hours)
    assert {h.hour: h.calls for h in report.hours if h.calls} == dict(calls)
    assert set(vars(report.clinic)) == set(FIGURES)

    # The trail against the tables: silent on an honest morning ...
    assert trail.check() == []
    assert trail.check(report.date) == []
    # ... an edit made behind the trail's back is named, table, key, column and both values ...
    victim = next(v for v in final_rows if v.status.value == "WAITING")
    with sql.transaction():
        sql.execute("SET LOCAL session_replication_role = replica")
        sql.execute("UPDATE hms.visits SET priority = 'EMERGENCY', serial = serial + 1000"
                    " WHERE id = %s", (victim.visit_id,))
    found = {(d.entity, d.key["id"], d.column, d.trail_value, d.table_value)
             for d in trail.check()}
    assert found == {("visits", victim.visit_id, "priority", victim.priority.value, "EMERGENCY"),
                     ("visits", victim.visit_id, "serial", victim.serial,
                      victim.serial + 1000)}  # type: ignore[operator]
    # ... a dry run says what the restore would do; the restore puts it back, audited.
    changes = trail.restore(victim.visit_id)
    assert {c.column for c in changes} == {"priority", "serial"}
    assert trail.check() != []
    trail.restore(victim.visit_id, apply=True)
    assert trail.check() == []
    assert desk.visit(victim.visit_id).priority == victim.priority
    assert desk.audit_tail(1, action="restore")[0].visit_id == victim.visit_id
    # ... and a trail cut short: the rows its last changes made are no longer explained.
    with sql.transaction():
        sql.execute("SET LOCAL session_replication_role = replica")
        cut = sql.execute("DELETE FROM hms.audit_events WHERE seq > (SELECT max(seq) - 5 FROM"
                          " hms.audit_events) RETURNING entity, (coalesce(after, before) ->> 'id')"
                          "::bigint").fetchall()
    differences = trail.check()
    assert differences
    assert {(d.entity, d.key.get("id")) for d in differences} <= {(e, i) for e, i in cut}


def test_the_report_of_a_written_day_is_exact(desk: Desk, sql: psycopg.Connection[Any]) -> None:
    """Waits long enough to cross the target cannot be waited out in a test: this day's rows
    and trail are written directly, with known times, to check the arithmetic."""
    desk.add_doctor("D1", "Dr Rao")
    desk.add_doctor("D2", "Dr Mehta")
    patients = [desk.add_patient(f"P{i}").id for i in range(8)]
    day = "2026-03-02"
    # (doctor, patient, arrived, first call (None: never), consult minutes, status, quote)
    rows = [
        ("D1", 0, "09:00", "09:05", 10, "COMPLETED", ("09:00", "09:10")),
        ("D1", 1, "09:10", "09:40", 6, "COMPLETED", ("09:20", "09:30")),
        ("D1", 2, "09:20", "10:05", None, "NO_SHOW", None),
        ("D1", 3, "10:30", None, None, "CANCELLED", ("10:40", "10:50")),
        ("D2", 4, "09:00", "09:31", 20, "COMPLETED", ("09:30", "09:40")),
        ("D2", 5, "11:15", "11:16", None, "CALLED", ("11:15", "11:20")),
    ]
    with sql.transaction():
        sql.execute("SET LOCAL session_replication_role = replica")
        sql.execute("SET LOCAL TIME ZONE 'UTC'")
        for n, (doc, p, arrived, called, consult, status, quote) in enumerate(rows, start=1):
            at = lambda hhmm: f"{day} {hhmm}+00" if hhmm else None  # noqa: E731
            started = f"{day} {called}+00" if consult else None
            ended = (f"({started!r}::timestamptz + interval '{consult} minutes')" if consult
                     else "NULL")
            visit = sql.execute(
                f"""INSERT INTO hms.visits (doctor_id, patient_id, business_date, serial, token,
                        status, priority, queue_key, checked_in_at, called_at, call_count,
                        started_at, ended_at, quoted_from, quoted_to)
                    SELECT d.id, %s, %s, %s, d.token_prefix || '-' || %s, %s, 'NORMAL', 0, %s,
                           %s, %s, %s, {ended}, %s, %s
                      FROM hms.doctors d WHERE d.code = %s RETURNING id""",
                (patients[p], day, n, n, status, at(arrived), at(called), 1 if called else 0,
                 started, at(quote[0]) if quote else None, at(quote[1]) if quote else None,
                 doc)).fetchone()[0]  # type: ignore[index]
            if called:
                sql.execute(
                    """INSERT INTO hms.audit_pending (ticket, at, actor, action, entity,
                           visit_id, op, txid, before, after)
                       SELECT nextval('hms.audit_ticket'), %s, 'rec1', 'call_next', 'visits',
                              v.id, 'UPDATE', 1,
                              jsonb_build_object('status', 'WAITING'), to_jsonb(v)
                                  || '{"status": "CALLED"}'
                         FROM hms.visits v WHERE v.id = %s""", (at(called), visit))
    report = Reports(desk.db).daily(day)
    clinic = report.clinic
    # Waits 5, 30, 45, 31, 1 minutes; consultations 10, 6, 20.
    assert (clinic.wait_p50, clinic.wait_p90, clinic.wait_max) == (30.0, 39.4, 45.0)
    assert (clinic.consult_p50, clinic.consult_p90) == (10.0, 18.0)
    assert (clinic.over_target, clinic.over_target_share) == (2, 0.4)
    assert (clinic.seen, clinic.no_shows, clinic.no_show_rate) == (3, 1, 0.25)
    assert (clinic.arrivals, clinic.called, clinic.cancellations) == (6, 5, 1)
    # Quotes: called at 09:05 in 09:00-09:10 (error 0), 09:40 vs 09:20-09:30 (15),
    # 09:31 in 09:30-09:40 (4), 11:16 in 11:15-11:20 (1.5).
    assert clinic.estimates == 4
    assert clinic.estimate_abs_error_p50 == 2.8  # the median of 0, 1.5, 4, 15
    assert clinic.estimate_within_share == 0.75
    by_hour = {h.hour: (h.arrivals, h.calls, h.over_target) for h in report.hours
               if h.arrivals or h.calls}
    assert by_hour == {9: (4, 3, 2), 10: (1, 1, 0), 11: (1, 1, 0)}
    d1 = next(d.figures for d in report.doctors if d.doctor == "D1")
    assert (d1.arrivals, d1.seen, d1.wait_p50, d1.over_target) == (4, 2, 30.0, 1)
    assert statistics.median([5, 30, 45]) == d1.wait_p50
    assert report.staff[0].login == "rec1" and report.staff[0].calls == 5
    only = Reports(desk.db).daily(day, "d2")
    assert only.doctor == "D2" and only.clinic.arrivals == 2 and len(only.doctors) == 1
