"""A queue kept from version deltas must equal the queue read whole, after any mix of actions."""

from __future__ import annotations

import random
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from hms_tui.core.desk import Desk
from hms_tui.core.errors import HmsError
from hms_tui.core.models import Status
from hms_tui.db.queue_sync import QueueCopy, wait_estimate


def sync(conn: psycopg.Connection[Any], copy: QueueCopy, doctor: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM hms.queue_changes(%s, %s)",
                        (doctor, copy.version)).fetchall()
    copy.apply(rows, full=copy.version == 0)
    return rows


def test_wait_estimate_rounds_halves_up_like_postgres(sql: psycopg.Connection[Any]) -> None:
    from decimal import Decimal

    for per_patient in ("7.5", "2.25", "0.5", "10"):
        for serving in (0, 1, 2):
            for position in (1, 2, 3, 4):
                row = sql.execute("SELECT hms.wait_estimate(%s::numeric, %s, %s)",
                                  (per_patient, serving, position)).fetchone()
                assert row is not None
                assert wait_estimate(Decimal(per_patient), serving, position) == row[0]


def test_delta_copy_equals_the_whole_queue_after_every_action(
    dsn: str, desk: Desk, sql: psycopg.Connection[Any]
) -> None:
    desk.add_doctor("D1", "Dr Rao", "Room 3")
    desk.add_doctor("D2", "Dr Mehta", "Room 5")
    patients = [desk.add_patient(f"P{i:03d}").id for i in range(80)]
    rng = random.Random(20261129)
    copies = {"D1": QueueCopy(), "D2": QueueCopy()}
    fetched_rows = 0
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        for step in range(160):
            doctor = rng.choice(["D1", "D2"])
            queue = desk.queue(doctor)
            waiting = [v for v in queue if v.status == Status.WAITING]
            serving = [v for v in queue if v.status != Status.WAITING]
            action = rng.choice(["checkin"] * 4 + ["call_next", "start", "complete", "cancel",
                                                   "skip", "priority", "transfer", "noshow"])
            try:
                if action == "checkin":
                    desk.checkin(doctor, rng.choice(patients),
                                 rng.choice(["normal", "normal", "urgent", "emergency"]))
                elif action == "call_next":
                    desk.call_next(doctor)
                elif action == "start" and serving:
                    desk.start(serving[-1].visit_id)
                elif action == "complete" and serving:
                    done = desk.complete(serving[0].visit_id)
                    # Give it a 7.5-minute consultation so estimates have halves to round.
                    with sql.transaction():
                        sql.execute("SET LOCAL session_replication_role = replica")
                        sql.execute("UPDATE hms.visits SET started_at = ended_at - interval "
                                    "'450 seconds' WHERE id = %s", (done.visit_id,))
                elif action == "cancel" and waiting:
                    desk.cancel(rng.choice(waiting).visit_id)
                elif action == "skip" and waiting:
                    desk.skip(rng.choice(waiting).visit_id, rng.randint(1, 3))
                elif action == "priority" and waiting:
                    desk.set_priority(rng.choice(waiting).visit_id,
                                      rng.choice(["normal", "urgent", "emergency"]))
                elif action == "transfer" and waiting:
                    desk.transfer(rng.choice(waiting).visit_id, "D2" if doctor == "D1" else "D1")
                elif action == "noshow" and serving:
                    visit = serving[0]
                    for _ in range(2):
                        desk.recall(visit.visit_id)
                    desk.no_show(visit.visit_id)
                    desk.requeue(visit.visit_id)
            except HmsError:
                pass  # refused (e.g. already active, nothing to call): nothing changed
            for code, copy in copies.items():
                fetched_rows += len(sync(conn, copy, code))
                assert copy.visits == tuple(desk.queue(code)), f"{code} differs after step {step}"
    assert any(v.wait_minutes for c in copies.values() for v in c.visits), "estimates untested"
    # Deltas are small: far fewer rows fetched than whole-queue reads would have cost.
    assert fetched_rows < 160 * 2 * 10


@pytest.mark.parametrize("full", [True, False])
def test_nothing_new_is_one_header_row(desk: Desk, sql: psycopg.Connection[Any],
                                       full: bool) -> None:
    desk.add_doctor("D1", "Dr Rao")
    desk.checkin("D1", desk.add_patient("A").id)
    head = sql.execute("SELECT max(queue_version) FROM hms.visits").fetchone()
    assert head is not None
    rows = sql.execute("SELECT head_version, visit_id FROM hms.queue_changes('D1', %s)",
                       (0 if full else head[0],)).fetchall()
    assert rows == ([(head[0], 1)] if full else [(head[0], None)])
