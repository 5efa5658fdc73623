"""Two years of a hospital's history, loaded with COPY (part d's set-up, with progress):
patients, their past visits (completed, some no-shows and cancellations) and the audit rows
those left, as they would lie in the tables after two years of use. The audit rows go
straight into the sealed trail with placeholder hashes: the chain is not what is measured."""

from __future__ import annotations

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
        indexes = _drop_indexes(conn)
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
        finally:  # (after a failure the scratch database is dropped: no index rebuilt)
            for table in ("patients", "visits", "audit_events"):
                conn.execute(f"ALTER TABLE hms.{table} ENABLE TRIGGER USER")
        step = steps.step("d. rebuild the indexes", len(indexes))
        conn.execute("SET maintenance_work_mem = '512MB'")
        for definition in indexes:
            conn.execute(definition)
            step.advance()
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


def _drop_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop the loaded tables' indexes that back no constraint, returning their definitions:
    building an index once after the COPY is many times faster than keeping it up to date
    row by row, and the loaded database ends up with exactly the schema's indexes."""
    rows = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid IN ('hms.patients'::regclass, 'hms.visits'::regclass,"
        " 'hms.audit_events'::regclass)"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
        " ORDER BY 1").fetchall()
    for name, _definition in rows:
        conn.execute(f"DROP INDEX {name}")
    return [definition for _name, definition in rows]


def _patient_rows(n: int, first_day: date) -> Iterator[str]:
    born = date(1935, 1, 1)
    births = [str(born + timedelta(days=d)) for d in range(30_000)]
    for i in range(n):
        created = first_day + timedelta(days=i * 730 // max(n, 1))
        yield (f"{patient_mrn(i)}\t{patient_name(i)}\t{patient_phone(i)}\t"
               f"{births[(i * 37) % 30_000]}\t{created} 08:00:00+00\n")


def _clock(day: str, minutes: int) -> str:
    return f"{day} {minutes // 60:02d}:{minutes % 60:02d}:00+00"


def _visit_rows(n: int, doctors: list[Any], first_patient: int, patients: int,
                first_day: date, days: int) -> Iterator[str]:
    """Plain string work (no datetime per row): two million rows are made in seconds."""
    per_day = max(1, -(-n // days))
    epoch0 = int(datetime.combine(first_day, datetime.min.time(), UTC).timestamp())
    for k in range(n):
        d, j = divmod(k, per_day)
        day = str(first_day + timedelta(days=d))
        doctor_id, prefix = doctors[j % len(doctors)]
        serial = j // len(doctors) + 1
        arrived = 8 * 60 + (serial * 2) % 840  # 08:00 to 21:58
        called = arrived + 20
        patient = first_patient + (k * 104_729) % patients
        if k % 20 == 7:
            status, begun, ended = "NO_SHOW", "\\N", "\\N"
        elif k % 33 == 5:
            status, begun, ended = "CANCELLED", "\\N", "\\N"
        else:
            status, begun, ended = "COMPLETED", _clock(day, called + 1), _clock(day, called + 11)
        yield (f"{doctor_id}\t{patient}\t{day}\t{serial}\t{prefix}-{serial:03d}\t{status}\t"
               f"{epoch0 + d * 86_400 + arrived * 60}\t{_clock(day, arrived)}\t"
               f"{_clock(day, called)}\t1\t{begun}\t{ended}\t{serial}\n")


def _audit_rows(seq: list[int], first_patient: int, patients: int, first_visit: int, visits: int,
                first_day: date, days: int) -> Iterator[str]:
    def row(day: int, action: str, entity: str, entity_id: int, visit: str, op: str,
            before: str, after: str) -> str:
        seq[0] += 1
        return (f"{seq[0]}\t{first_day + timedelta(days=day)} 09:00:00+00\tpostgres\tbench\t"
                f"{action}\t{entity}\t{entity_id}\t{visit}\t{op}\t1\t{before}\t{after}\t"
                f"{HASH}\t{HASH}\n")

    for i in range(patients):
        pid = first_patient + i
        after = (f'{{"id": {pid}, "mrn": "{patient_mrn(i)}", "name": "{patient_name(i)}", '
                 f'"phone": "{patient_phone(i)}"}}')
        yield row(i * days // max(patients, 1), "add_patient", "patients", pid, "\\N",
                  "INSERT", "\\N", after)
    for k in range(visits):
        vid = first_visit + k
        day = k * days // max(visits, 1)
        yield row(day, "checkin", "visits", vid, str(vid), "INSERT", "\\N",
                  f'{{"id": {vid}, "status": "WAITING"}}')
        yield row(day, "complete", "visits", vid, str(vid), "UPDATE",
                  f'{{"id": {vid}, "status": "IN_CONSULTATION"}}',
                  f'{{"id": {vid}, "status": "COMPLETED"}}')
