"""Setting the stage quickly (never what is timed): doctors through hms.add_doctor, patients
in bulk with the audit and notify triggers off, check-ins in one statement."""

from __future__ import annotations

from typing import Any

import psycopg


def add_doctors(conn: psycopg.Connection[Any], codes: list[str]) -> None:
    conn.execute("SELECT hms.add_doctor(c, 'Dr ' || c, 'Room ' || c, NULL)"
                 " FROM unnest(%s::text[]) c", (codes,))


def bulk_patients(conn: psycopg.Connection[Any], n: int, name: str = "Bench") -> list[int]:
    """n new patients, their ids in order (no audit rows: set-up, not the subject)."""
    with conn.transaction():
        conn.execute("ALTER TABLE hms.patients DISABLE TRIGGER USER")
        rows = conn.execute("INSERT INTO hms.patients (name) SELECT %s || ' ' || g"
                            " FROM generate_series(1, %s) g RETURNING id", (name, n)).fetchall()
        conn.execute("ALTER TABLE hms.patients ENABLE TRIGGER USER")
    return sorted(r[0] for r in rows)


def checkins(conn: psycopg.Connection[Any], pairs: list[tuple[str, int]]) -> None:
    """Check each (doctor, patient) in, in order, through hms.checkin (one statement)."""
    conn.execute("SELECT hms.checkin(d, p) FROM unnest(%s::text[], %s::bigint[])"
                 " AS x(d, p)",
                 ([d for d, _ in pairs], [p for _, p in pairs]))


def checkins_by_doctor(dsn: str, pairs: list[tuple[str, int]], threads: int = 4) -> None:
    """The same, each doctor's check-ins in order, several doctors at once (set-up time)."""
    from concurrent.futures import ThreadPoolExecutor

    by_doctor: dict[str, list[tuple[str, int]]] = {}
    for doctor, patient in pairs:
        by_doctor.setdefault(doctor, []).append((doctor, patient))

    def one(group: list[tuple[str, int]]) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            checkins(conn, group)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, by_doctor.values()))
