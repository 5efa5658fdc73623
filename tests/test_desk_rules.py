"""Desk rules found missing by a new user, enforced in the database so every terminal agrees:
one patient at a time per doctor, a patient registered twice, a mistyped name corrected,
a transfer to the same doctor."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from hms_tui.domain.errors import (
    Conflict,
    DoctorBusy,
    DuplicatePatient,
    IllegalTransition,
    InvalidInput,
)
from hms_tui.domain.models import Status
from hms_tui.services.desk import Desk
from tests.listener_harness import ListenerHarness, fast_listener

# -- one patient at a time ------------------------------------------------------------------------


def test_call_next_refuses_while_a_patient_is_with_the_doctor(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    p = clinic["patients"]
    for i in range(4):
        desk.checkin("D1", p[i])
    first = desk.call_next("D1")
    # Called, not started yet: a second call-next is refused and names who is called.
    with pytest.raises(DoctorBusy, match=r"Dr Rao \(D1\) is still serving D1-001 Patient 00 "
                                         r"\(M000001, called\)") as refused:
        desk.call_next("D1")
    assert isinstance(refused.value, IllegalTransition) and refused.value.exit_code == 4
    desk.start(first.visit_id)
    with pytest.raises(DoctorBusy, match=r"D1-001 Patient 00 \(M000001, in consultation\)"):
        desk.call_next("D1")
    # Out of turn too.
    waiting = [v for v in desk.queue("D1") if v.status is Status.WAITING]
    with pytest.raises(DoctorBusy):
        desk.call(waiting[-1].visit_id)
    assert [v.status for v in desk.queue("D1")].count(Status.CALLED) == 0
    # Nothing was written by the refusals.
    assert sql.execute("SELECT count(*) FROM hms.audit_events WHERE action LIKE 'call%'"
                       ).fetchone() == (1,)
    # Another doctor is not affected.
    desk.checkin("D2", p[5])
    assert desk.call_next("D2").token == "D2-001"
    # Once done, the next one.
    desk.complete(first.visit_id)
    assert desk.call_next("D1").token == "D1-002"


def test_forcing_and_calling_ahead(desk: Desk, clinic: dict[str, Any],
                                   sql: psycopg.Connection[Any]) -> None:
    p = clinic["patients"]
    for i in range(4):
        desk.checkin("D1", p[i])
    desk.call_next("D1")
    forced = desk.call_next("D1", force=True)  # the doctor insists
    assert forced.token == "D1-002"
    actions = [r[0] for r in sql.execute(
        "SELECT action FROM hms.audit_events WHERE visit_id IS NOT NULL AND action LIKE 'call%'"
        " ORDER BY seq")]
    assert actions == ["call_next", "call_next_forced"]  # the trail says it was forced
    # The clinic allows one call ahead: with two being served, a third is refused.
    assert desk.configure(calls_ahead=1).calls_ahead == 1
    with pytest.raises(DoctorBusy, match=r"D1-001.*D1-002"):
        desk.call_next("D1")
    desk.configure(calls_ahead=0)
    with pytest.raises(InvalidInput):
        desk.configure(calls_ahead=11)
    assert desk.rules().calls_ahead == 0


def test_two_terminals_calling_at_once_call_one_patient(
    dsn: str, desk: Desk, clinic: dict[str, Any]
) -> None:
    p = clinic["patients"]
    for i in range(5):
        desk.checkin("D1", p[i])
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def terminal() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            barrier.wait()
            try:
                conn.execute("SELECT hms.call_next('D1')")
                outcomes.append("called")
            except psycopg.Error as exc:
                outcomes.append(exc.sqlstate or "?")

    threads = [threading.Thread(target=terminal) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(outcomes) == ["HM424"] * 5 + ["called"]
    assert [v.status for v in desk.queue("D1")].count(Status.CALLED) == 1


# -- transfers --------------------------------------------------------------------------------------


def test_transfer_to_the_same_doctor_is_bad_input(desk: Desk, clinic: dict[str, Any]) -> None:
    visit = desk.checkin("D1", clinic["patients"][0])
    with pytest.raises(InvalidInput, match=r"already with Dr Rao \(D1\); transfer it to another"):
        desk.transfer(visit.visit_id, "D1")
    assert desk.visit(visit.visit_id).status is Status.WAITING


def test_transfer_all_keeps_the_order(desk: Desk, clinic: dict[str, Any]) -> None:
    p = clinic["patients"]
    for i in range(4):
        desk.checkin("D1", p[i], "URGENT" if i == 2 else "NORMAL")
    desk.call_next("D1")  # the urgent one, called
    moved = desk.transfer_all("D1", "D2")
    assert [v.patient_id for v in moved] == [p[2], p[0], p[1], p[3]]
    assert desk.queue("D1") == []
    assert [v.patient_id for v in desk.queue("D2")] == [p[2], p[0], p[1], p[3]]


# -- patients ---------------------------------------------------------------------------------------


def test_registering_someone_twice_shows_the_matches(desk: Desk, sql: psycopg.Connection[Any]
                                                     ) -> None:
    kumar = desk.add_patient("Kumar, Anil", "98450 12345", "1972-03-14")
    count = sql.execute("SELECT count(*) FROM hms.patients").fetchone()
    # Same name (any case and spacing) and date of birth.
    with pytest.raises(DuplicatePatient, match=r"M000001 Kumar, Anil, born 1972-03-14") as dup:
        desk.add_patient("kumar,  anil", None, "1972-03-14")
    assert isinstance(dup.value, Conflict) and dup.value.exit_code == 5
    assert [m.mrn for m in dup.value.matches] == [kumar.mrn]  # type: ignore[attr-defined]
    # Same phone digits, written differently.
    with pytest.raises(DuplicatePatient) as dup:
        desk.add_patient("Anil K", "9845012345")
    assert [m.id for m in dup.value.matches] == [kumar.id]  # type: ignore[attr-defined]
    assert sql.execute("SELECT count(*) FROM hms.patients").fetchone() == count
    # The same name born another day, or nothing to compare: someone else.
    desk.add_patient("Kumar, Anil", None, "1980-01-01")
    desk.add_patient("Kumar, Anil")
    # Insisting registers them.
    again = desk.add_patient("Kumar, Anil", "98450 12345", "1972-03-14", allow_duplicate=True)
    assert again.mrn != kumar.mrn


def test_correcting_a_patient_is_audited_and_reaches_live_screens(
    db: Any, desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    patient = desk.add_patient("Kumr, Anil", "98450 12345", "1972-03-14")
    desk.checkin("D1", patient.id)
    with ListenerHarness(fast_listener(db)) as harness:
        harness.wait_for(lambda: "D1" in harness.view, 5, "the queue")
        fixed = desk.update_patient(patient.id, name="Kumar, Anil")
        assert (fixed.name, fixed.phone, fixed.mrn) == ("Kumar, Anil", "98450 12345", patient.mrn)
        harness.wait_for(lambda: [v.patient_name for v in harness.view["D1"]] == ["Kumar, Anil"],
                         5, "the corrected name in the live queue")
    cleared = desk.update_patient(patient.id, phone="", birth_date="")
    assert (cleared.phone, cleared.birth_date) == (None, None)
    with pytest.raises(InvalidInput):
        desk.update_patient(patient.id, name="")
    with pytest.raises(InvalidInput, match="nothing to change"):
        desk.update_patient(patient.id)
    rows = sql.execute("SELECT action, before->>'name', after->>'name' FROM hms.audit_events"
                       " WHERE entity = 'patients' AND op = 'UPDATE' ORDER BY seq").fetchall()
    assert rows[0] == ("patient_update", "Kumr, Anil", "Kumar, Anil")
