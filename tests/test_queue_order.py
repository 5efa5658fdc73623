"""The waiting line: order, dense positions, and the moves that change it."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from hms_tui.domain.errors import Conflict
from hms_tui.domain.models import Priority, Status
from hms_tui.services.desk import Desk


def line(desk: Desk, doctor: str = "D1") -> list[int]:
    """The waiting line of ``doctor`` as visit ids, after checking positions are 1..N."""
    waiting = [v for v in desk.queue(doctor) if v.status is Status.WAITING]
    assert [v.position for v in waiting] == list(range(1, len(waiting) + 1))
    # Each visit's own view agrees with the queue.
    for v in waiting:
        assert desk.visit(v.visit_id).position == v.position
    return [v.visit_id for v in waiting]


def checkin_all(desk: Desk, patients: list[int], doctor: str = "D1",
                priorities: list[str] | None = None) -> list[int]:
    prios = priorities or ["NORMAL"] * len(patients)
    return [desk.checkin(doctor, p, prio).visit_id for p, prio in zip(patients, prios, strict=True)]


def counts(sql: psycopg.Connection[Any]) -> tuple[int, int, int]:
    row = sql.execute(
        "SELECT (SELECT count(*) FROM hms.visits), (SELECT count(*) FROM hms.audit_events),"
        " (SELECT coalesce(sum(value), 0) FROM hms.counters)"
    ).fetchone()
    assert row is not None
    return (row[0], row[1], row[2])


# -- check-ins ------------------------------------------------------------------------------------


def test_mixed_priority_checkins(desk: Desk, clinic: dict[str, Any]) -> None:
    p = clinic["patients"]
    prios = ["NORMAL", "URGENT", "NORMAL", "EMERGENCY", "URGENT", "NORMAL", "EMERGENCY"]
    # The position each one gets at check-in, given those before it.
    expected_at_checkin = [1, 1, 3, 1, 3, 6, 2]
    ids = []
    for n, prio in enumerate(prios):
        visit = desk.checkin("D1", p[n], prio)
        assert (visit.token, visit.serial, visit.priority) == (f"D1-{n + 1:03d}", n + 1,
                                                               Priority(prio))
        assert visit.position == expected_at_checkin[n], n
        ids.append(visit.visit_id)
    assert line(desk) == [ids[3], ids[6], ids[1], ids[4], ids[0], ids[2], ids[5]]
    # D2's line is separate and empty.
    assert line(desk, "D2") == []


def test_cancellations_in_the_middle(desk: Desk, clinic: dict[str, Any]) -> None:
    ids = checkin_all(desk, clinic["patients"][:6])
    desk.cancel(ids[2], "went home")
    assert line(desk) == [ids[0], ids[1], ids[3], ids[4], ids[5]]
    desk.cancel(ids[4])
    assert line(desk) == [ids[0], ids[1], ids[3], ids[5]]
    cancelled = desk.visit(ids[2])
    assert (cancelled.status, cancelled.position, cancelled.cancel_reason) == (
        Status.CANCELLED, None, "went home")
    # The next check-in takes the next serial: numbers are never reused.
    assert desk.checkin("D1", clinic["patients"][6]).token == "D1-007"


# -- skip -------------------------------------------------------------------------------------------


def test_skip_moves_back_by_the_given_places(desk: Desk, clinic: dict[str, Any]) -> None:
    ids = checkin_all(desk, clinic["patients"][:6])
    moved = desk.skip(ids[1], places=2)  # position 2 -> 4
    assert moved.position == 4
    assert line(desk) == [ids[0], ids[2], ids[3], ids[1], ids[4], ids[5]]
    moved = desk.skip(ids[0])  # the clinic default, skip_places = 1: position 1 -> 2
    assert moved.position == 2
    assert line(desk) == [ids[2], ids[0], ids[3], ids[1], ids[4], ids[5]]
    moved = desk.skip(ids[3], places=1)  # 3 -> 4, between two that moved before
    assert moved.position == 4
    assert line(desk) == [ids[2], ids[0], ids[1], ids[3], ids[4], ids[5]]


def test_skip_past_the_end_lands_last(desk: Desk, clinic: dict[str, Any]) -> None:
    ids = checkin_all(desk, clinic["patients"][:4])
    moved = desk.skip(ids[1], places=10)  # only 2 behind it
    assert moved.position == 4
    assert line(desk) == [ids[0], ids[2], ids[3], ids[1]]
    moved = desk.skip(ids[1], places=3)  # already last
    assert moved.position == 4
    assert line(desk) == [ids[0], ids[2], ids[3], ids[1]]


def test_skip_never_goes_behind_a_lower_priority(desk: Desk, clinic: dict[str, Any]) -> None:
    p = clinic["patients"]
    ids = checkin_all(desk, p[:6], priorities=["URGENT", "URGENT", "URGENT",
                                                "NORMAL", "NORMAL", "EMERGENCY"])
    e, u0, u1, u2, n0, n1 = ids[5], ids[0], ids[1], ids[2], ids[3], ids[4]
    assert line(desk) == [e, u0, u1, u2, n0, n1]
    moved = desk.skip(u0, places=4)  # would be 6th; the end of the urgent group is 4th
    assert moved.position == 4
    assert line(desk) == [e, u1, u2, u0, n0, n1]
    moved = desk.skip(e, places=3)  # the only emergency stays first
    assert moved.position == 1
    assert line(desk) == [e, u1, u2, u0, n0, n1]
    moved = desk.skip(u1, places=1)  # 2 -> 3, within its group
    assert moved.position == 3
    assert line(desk) == [e, u2, u1, u0, n0, n1]
    moved = desk.skip(n0, places=1)  # 5 -> 6
    assert moved.position == 6
    assert line(desk) == [e, u2, u1, u0, n1, n0]


# -- requeue -----------------------------------------------------------------------------------------


def make_no_show(desk: Desk, vid: int) -> None:
    assert desk.call(vid).status is Status.CALLED
    for _ in range(desk.rules().recall_limit):
        desk.recall(vid)
    assert desk.no_show(vid).status is Status.NO_SHOW


def test_requeue_lands_after_requeue_after_patients(desk: Desk, clinic: dict[str, Any]) -> None:
    assert desk.rules().requeue_after == 3
    ids = checkin_all(desk, clinic["patients"][:6])
    make_no_show(desk, ids[0])
    assert line(desk) == ids[1:]
    back = desk.requeue(ids[0])
    assert (back.status, back.position, back.call_count, back.token) == (
        Status.WAITING, 4, 0, "D1-001")
    assert line(desk) == [ids[1], ids[2], ids[3], ids[0], ids[4], ids[5]]


def test_requeue_with_a_short_line_goes_last(desk: Desk, clinic: dict[str, Any]) -> None:
    ids = checkin_all(desk, clinic["patients"][:3])
    make_no_show(desk, ids[1])
    back = desk.requeue(ids[1])
    assert back.position == 3
    assert line(desk) == [ids[0], ids[2], ids[1]]


def test_requeue_counts_higher_priorities_ahead(desk: Desk, clinic: dict[str, Any]) -> None:
    ids = checkin_all(desk, clinic["patients"][:6],
                      priorities=["NORMAL", "NORMAL", "NORMAL", "NORMAL", "NORMAL", "URGENT"])
    make_no_show(desk, ids[0])
    # Waiting: the urgent one, then four normals; the requeued visit goes after three of them.
    back = desk.requeue(ids[0])
    assert back.position == 4
    assert line(desk) == [ids[5], ids[1], ids[2], ids[0], ids[3], ids[4]]


# -- priority ---------------------------------------------------------------------------------------


def test_set_priority_moves_ahead_of_lower_priorities(desk: Desk, clinic: dict[str, Any]) -> None:
    ids = checkin_all(desk, clinic["patients"][:5])
    up = desk.set_priority(ids[3], "urgent")
    assert (up.priority, up.position) == (Priority.URGENT, 1)
    assert line(desk) == [ids[3], ids[0], ids[1], ids[2], ids[4]]
    up = desk.set_priority(ids[4], Priority.URGENT)  # behind the earlier urgent one
    assert up.position == 2
    up = desk.set_priority(ids[2], Priority.EMERGENCY)
    assert up.position == 1
    assert line(desk) == [ids[2], ids[3], ids[4], ids[0], ids[1]]
    # Back to normal: among the normals by arrival again.
    down = desk.set_priority(ids[3], "normal")
    assert (down.priority, down.position) == (Priority.NORMAL, 5)
    assert line(desk) == [ids[2], ids[4], ids[0], ids[1], ids[3]]


# -- transfer ---------------------------------------------------------------------------------------


def test_transfer_takes_a_token_from_the_target_series(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    p = clinic["patients"]
    d1 = checkin_all(desk, p[:4])
    d2 = checkin_all(desk, p[4:6], doctor="D2")
    moved = desk.transfer(d1[1], "D2")
    assert (moved.doctor, moved.token, moved.serial, moved.status, moved.position) == (
        "D2", "D2-003", 3, Status.WAITING, 3)
    assert (moved.transferred_from, moved.patient_id) == (d1[1], p[1])
    assert line(desk, "D1") == [d1[0], d1[2], d1[3]]
    assert line(desk, "D2") == [*d2, moved.visit_id]
    old = desk.visit(d1[1])
    assert (old.status, old.token, old.position, old.transferred_to) == (
        Status.TRANSFERRED, "D1-002", None, moved.visit_id)
    # D1's old visit is not in D1's queue at all (only with --all).
    assert d1[1] not in [v.visit_id for v in desk.queue("D1")]
    assert d1[1] in [v.visit_id for v in desk.queue("D1", include_all=True)]
    # D1's series goes on without reusing the number.
    assert desk.checkin("D1", p[6]).token == "D1-005"
    row = sql.execute(
        "SELECT d.code, v.token, v.transferred_from FROM hms.visits v"
        " JOIN hms.doctors d ON d.id = v.doctor_id WHERE v.id = %s", (moved.visit_id,)
    ).fetchone()
    assert row == ("D2", "D2-003", d1[1])


def test_transfer_keeps_priority(desk: Desk, clinic: dict[str, Any]) -> None:
    p = clinic["patients"]
    checkin_all(desk, p[:2], doctor="D2")
    vid = desk.checkin("D1", p[2], "urgent").visit_id
    moved = desk.transfer(vid, "D2")
    assert (moved.priority, moved.position, moved.token) == (Priority.URGENT, 1, "D2-003")


# -- idempotent and duplicate check-ins -------------------------------------------------------------


def test_checkin_with_the_same_key_is_replayed(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    patient = clinic["patients"][0]
    first = desk.checkin("D1", patient, key="kiosk-7:0001")
    assert (first.replayed, first.token) == (False, "D1-001")
    before = counts(sql)
    again = desk.checkin("D1", patient, key="kiosk-7:0001")
    assert (again.visit_id, again.token, again.replayed) == (first.visit_id, "D1-001", True)
    assert counts(sql) == before  # a replay writes nothing, not even a serial
    assert sql.execute(
        "SELECT count(*) FROM hms.visits WHERE idempotency_key = 'kiosk-7:0001'"
    ).fetchone() == (1,)
    assert sql.execute("SELECT count(*) FROM hms.visits").fetchone() == (1,)
    assert desk.checkin("D1", clinic["patients"][1]).token == "D1-002"


def test_same_key_for_another_patient_is_refused(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    first = desk.checkin("D1", clinic["patients"][0], key="k-42")
    before = counts(sql)
    with pytest.raises(Conflict) as info:
        desk.checkin("D1", clinic["patients"][1], key="k-42")
    assert "k-42" in str(info.value)
    assert f"visit {first.visit_id}" in str(info.value)
    assert counts(sql) == before
    with pytest.raises(Conflict):
        desk.checkin("D2", clinic["patients"][0], key="k-42")
    assert counts(sql) == before


def test_second_active_visit_with_the_same_doctor_is_refused(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    patient = clinic["patients"][3]
    desk.checkin("D1", clinic["patients"][0])
    first = desk.checkin("D1", patient)
    assert first.token == "D1-002"
    desk.call(first.visit_id)  # still active while called
    before = counts(sql)
    with pytest.raises(Conflict) as info:
        desk.checkin("D1", patient)
    message = str(info.value)
    assert "Patient 03" in message
    assert "D1-002" in message
    assert counts(sql) == before
    # Another doctor is fine, and after the visit ends the patient can come back.
    assert desk.checkin("D2", patient).token == "D2-001"
    desk.start(first.visit_id)
    desk.complete(first.visit_id)
    assert desk.checkin("D1", patient).token == "D1-003"
