"""The consultation pace falls back on the doctor's last seven days (before today) when today
has fewer than three real consultations, and on the clinic's default beyond that."""
from __future__ import annotations

from typing import Any

import psycopg
import pytest

from hms_tui.services.desk import Desk


def _completed(sql: psycopg.Connection[Any], doctor: str, patient: int, days_ago: int,
               minutes: int, n: int) -> None:
    """n completed consultations of `minutes` each, `days_ago` business days back (written
    as the owner: the desk cannot date a visit in the past)."""
    for i in range(n):
        sql.execute(
            """INSERT INTO hms.visits (doctor_id, patient_id, business_date, serial, token,
                                       status, checked_in_at, called_at, call_count,
                                       started_at, ended_at)
               SELECT d.id, %(p)s, hms.business_date() - %(back)s, %(serial)s, 'X-' || %(serial)s,
                      'COMPLETED', t - interval '1 hour', t, 1, t, t + make_interval(mins => %(m)s)
                 FROM hms.doctors d, (SELECT now() - make_interval(days => %(back)s) AS t) s
                WHERE d.code = %(doctor)s""",
            {"p": patient, "back": days_ago, "serial": 100 + i, "m": minutes, "doctor": doctor})


def _pace(sql: psycopg.Connection[Any], doctor: str) -> float:
    row = sql.execute("SELECT hms.consult_minutes(d.id, hms.business_date()) FROM hms.doctors d"
                      " WHERE d.code = %s", (doctor,)).fetchone()
    assert row is not None
    return float(row[0])


@pytest.mark.parametrize(("days_ago", "expected"), [(1, 12.0), (7, 12.0), (8, 10.0)])
def test_the_pace_reads_the_last_seven_days_and_no_further(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any], days_ago: int,
    expected: float,
) -> None:
    desk.configure(consult_minutes=10)
    _completed(sql, "D1", clinic["patients"][0], days_ago, minutes=12, n=3)
    assert _pace(sql, "D1") == pytest.approx(expected)
    assert _pace(sql, "D2") == pytest.approx(10.0)  # another doctor's history is not hers
