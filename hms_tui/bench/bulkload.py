"""Two years of a hospital's history, loaded with COPY (part d's set-up, with progress):
patients, their past visits (completed, some no-shows and cancellations) and the audit rows
those left, as they would lie in the tables after two years of use. The audit rows go
straight into the sealed trail with placeholder hashes: the chain is not what is measured."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from hms_tui.bench.progress import Steps

CHUNK = 50_000
FIRST = ("Anil", "Sunita", "Ravi", "Priya", "Mohammed", "Fatima", "John", "Mary", "Wei", "Li",
         "Carlos", "Ana", "Olga", "Ivan", "Kofi", "Ama", "Hiroshi", "Yuki", "Zoë", "José",
         "Arjun", "Meera", "Samuel", "Grace", "Omar", "Leila", "Pedro", "Lucia", "Tomas", "Eva")
LAST = ("Kumar", "Sharma", "Rao", "Mehta", "Iyer", "Khan", "Smith", "Jones", "Chen", "Wang",
        "Garcia", "Silva", "Ivanova", "Petrov", "Mensah", "Owusu", "Tanaka", "Sato", "Briain",
        "Fernandes", "Nair", "Pillai", "Das", "Bose", "Ali", "Hussain", "Costa", "Rossi",
        "Novak", "Berg", "Kowalski", "Nguyen", "Tran", "Okafor", "Adeyemi", "Haddad", "Cohen",
        "Murphy", "Kelly", "Walsh")
HASH = "\\\\x" + "00" * 32  # bytea in COPY text format


def patient_name(i: int) -> str:
    return f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}"


def patient_mrn(i: int) -> str:
    """Given in the load, above anything the MRN sequence hands out in a bench run."""
    return f"M{9_000_000 + i}"


def patient_phone(i: int) -> str:
    return f"+91 9{(i * 7_919 + 12_345) % 10**9:09d}"


def _copy(conn: psycopg.Connection[Any], sql: str, rows: Iterator[str], total: int,
          advance: Callable[[float], None]) -> None:
    """COPY in chunks of CHUNK rows (one transaction each), advancing the bar per chunk."""
    done = 0
    while done < total:
        block = []
        for _ in range(min(CHUNK, total - done)):
            block.append(next(rows))
        with conn.cursor().copy(sql) as copy:
            copy.write("".join(block))
        done += len(block)
        advance(len(block))


def _next_id(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(f"SELECT nextval(pg_get_serial_sequence('hms.{table}', 'id'))").fetchone()
    assert row is not None
    return int(row[0]) + 1  # the value taken is skipped: COPY's rows follow it


def load(dsn: str, patients: int, visits: int, days: int, steps: Steps) -> dict[str, Any]:
    """Load the history; returns what was loaded (and a few values the reads look for)."""
    began = time.perf_counter()
    today = datetime.now(UTC).date()
    first_day = today - timedelta(days=days)
    with psycopg.connect(dsn, autocommit=True) as conn:
        doctors = conn.execute("SELECT id, token_prefix FROM hms.doctors ORDER BY id").fetchall()
        head = conn.execute("SELECT last_seq FROM hms.audit_head").fetchone()
        assert head is not None
        seq = [int(head[0])]
        for table in ("patients", "visits", "audit_events"):
            conn.execute(f"ALTER TABLE hms.{table} DISABLE TRIGGER USER")
        try:
            first_patient = _next_id(conn, "patients")
            step = steps.step(f"d. COPY {patients:,} patients", patients)
            _copy(conn, "COPY hms.patients (mrn, name, phone, birth_date, created_at) FROM STDIN",
                  _patient_rows(patients, first_day), patients, step.advance)
            first_visit = _next_id(conn, "visits")
            step = steps.step(f"d. COPY {visits:,} past visits over {days} days", visits)
            _copy(conn, "COPY hms.visits (doctor_id, patient_id, business_date, serial, token,"
                  " status, queue_key, checked_in_at, called_at, call_count, started_at,"
                  " ended_at, queue_version) FROM STDIN",
                  _visit_rows(visits, doctors, first_patient, patients, first_day, days),
                  visits, step.advance)
            audits = patients + 2 * visits
            step = steps.step(f"d. COPY {audits:,} audit rows", audits)
            _copy(conn, "COPY hms.audit_events (seq, at, actor, terminal, action, entity,"
                  " entity_id, visit_id, op, txid, before, after, prev_hash, hash) FROM STDIN",
                  _audit_rows(seq, first_patient, patients, first_visit, visits, first_day,
                              days), audits, step.advance)
            conn.execute("UPDATE hms.audit_head SET last_seq = %s", (seq[0],))
        finally:
            for table in ("patients", "visits", "audit_events"):
                conn.execute(f"ALTER TABLE hms.{table} ENABLE TRIGGER USER")
        step = steps.step("d. VACUUM ANALYZE")
        for table in ("patients", "visits", "audit_events"):
            conn.execute(f"VACUUM ANALYZE hms.{table}")
            step.advance()
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))"
                            ).fetchone()
    middle = first_patient + patients // 2
    return {"patients": patients, "past_visits": visits, "audit_rows": audits, "days": days,
            "database_size": size[0] if size else None, "middle_patient": middle,
            "seconds": round(time.perf_counter() - began, 1),
            "middle_index": patients // 2}


def _patient_rows(n: int, first_day: date) -> Iterator[str]:
    born = date(1935, 1, 1)
    for i in range(n):
        created = datetime.combine(first_day, datetime.min.time(), UTC) + timedelta(minutes=i)
        yield (f"{patient_mrn(i)}\t{patient_name(i)}\t{patient_phone(i)}\t"
               f"{born + timedelta(days=(i * 37) % 30_000)}\t{created.isoformat()}\n")


def _visit_rows(n: int, doctors: list[Any], first_patient: int, patients: int,
                first_day: date, days: int) -> Iterator[str]:
    per_day = max(1, -(-n // days))
    for k in range(n):
        day = first_day + timedelta(days=k // per_day)
        j = k % per_day
        doctor_id, prefix = doctors[j % len(doctors)]
        serial = j // len(doctors) + 1
        start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=8)
        arrived = start + timedelta(minutes=serial * 3)
        called = arrived + timedelta(minutes=20)
        patient = first_patient + (k * 104_729) % patients
        if k % 20 == 7:
            status, begun, ended = "NO_SHOW", "\\N", "\\N"
        elif k % 33 == 5:
            status, begun, ended = "CANCELLED", "\\N", "\\N"
        else:
            status = "COMPLETED"
            begun = (called + timedelta(minutes=1)).isoformat()
            ended = (called + timedelta(minutes=11)).isoformat()
        yield (f"{doctor_id}\t{patient}\t{day}\t{serial}\t{prefix}-{serial:03d}\t{status}\t"
               f"{arrived.timestamp()}\t{arrived.isoformat()}\t{called.isoformat()}\t1\t"
               f"{begun}\t{ended}\t{serial}\n")


def _audit_rows(seq: list[int], first_patient: int, patients: int, first_visit: int, visits: int,
                first_day: date, days: int) -> Iterator[str]:
    base = datetime.combine(first_day, datetime.min.time(), UTC)
    span = timedelta(days=days)

    def row(at: datetime, action: str, entity: str, entity_id: int, visit: str, op: str,
            before: str, after: str) -> str:
        seq[0] += 1
        return (f"{seq[0]}\t{at.isoformat()}\tpostgres\tbench\t{action}\t{entity}\t{entity_id}\t"
                f"{visit}\t{op}\t1\t{before}\t{after}\t{HASH}\t{HASH}\n")

    for i in range(patients):
        after = json.dumps({"id": first_patient + i, "name": patient_name(i),
                            "phone": patient_phone(i)}, ensure_ascii=False)
        yield row(base + span * i / patients, "add_patient", "patients", first_patient + i,
                  "\\N", "INSERT", "\\N", after)
    for k in range(visits):
        vid = first_visit + k
        at = base + span * k / visits
        yield row(at, "checkin", "visits", vid, str(vid), "INSERT", "\\N",
                  json.dumps({"id": vid, "status": "WAITING"}))
        yield row(at + timedelta(minutes=30), "complete", "visits", vid, str(vid), "UPDATE",
                  json.dumps({"id": vid, "status": "IN_CONSULTATION"}),
                  json.dumps({"id": vid, "status": "COMPLETED"}))
