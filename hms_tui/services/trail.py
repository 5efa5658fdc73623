"""The past from the audit trail: queues replayed at any moment, the trail checked against the
tables, a visit restored from it, and the day close.

The trail holds every row before and after each change (db/sql/routines/10_audit.sql); the
functions here (db/sql/routines/81_trail.sql) rebuild from it alone. The replay ranks with
``hms.ranked``, the one definition of the live queue's order, so a replayed queue is the one
the desk showed then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from hms_tui.db.connection import Database
from hms_tui.domain import validation as v
from hms_tui.domain.errors import HmsError
from hms_tui.domain.models import Visit


class TrailMismatch(HmsError):
    """``audit check`` found the tables and the trail disagree."""

    exit_code = 10


@dataclass(frozen=True)
class Difference:
    """A row where the tables and the trail disagree: ``column`` is None when the whole row is
    missing on one side."""

    entity: str  # the table
    key: dict[str, Any]  # its primary key
    column: str | None
    trail_value: Any
    table_value: Any
    problem: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Difference:
        return cls(row["entity"], row["key"], row["column"], row["trail_value"],
                   row["table_value"], row["problem"])


@dataclass(frozen=True)
class ColumnChange:
    """One column of a visit: what the trail says, what the table holds."""

    column: str
    trail_value: Any
    table_value: Any


@dataclass(frozen=True)
class DayClose:
    business_date: date
    closed_at: datetime
    closed_by: str
    closed_now: int  # visits this run closed (0 when the day was closed already)
    closed_visits: int  # every run's, together
    summary: dict[str, Any]  # the day's report as it stood (hms.report_day)


class Trail:
    """Replay, check, restore and close, over one ``Database`` (hms_admin)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def replay(self, at: str | datetime, doctor: str | None = None) -> list[Visit]:
        """Every queue (or one doctor's) as it stood at ``at``: a wall-clock time in the
        clinic's zone ('YYYY-MM-DD HH:MM[:SS]'), or an aware datetime. Rows in queue order,
        doctor by doctor, with the fields and positions ``hms.queue`` gave then."""
        params: dict[str, Any] = {"doctor": None if doctor is None else v.doctor_code(doctor)}
        if isinstance(at, datetime) and at.tzinfo is not None:
            instant = "%(at)s::timestamptz"
            params["at"] = at
        else:
            instant = "hms.clinic_instant(%(at)s::timestamp)"
            params["at"] = at if isinstance(at, datetime) else v.moment(at, "--at")
        rows = self.db.call(f"SELECT (r.info).* FROM hms.replay({instant}, %(doctor)s) r "
                            "ORDER BY r.doctor, r.ord", params, retry=True)
        return [Visit.from_row(r) for r in rows]

    def check(self, day: str | date | None = None) -> list[Difference]:
        """Every difference between the tables and the trail (visits of ``day`` only, if
        given); empty when they agree."""
        rows = self.db.call("SELECT * FROM hms.audit_check(%(day)s) "
                            "ORDER BY entity, key::text, \"column\" NULLS FIRST",
                            {"day": v.a_date(day, "--date")}, retry=True)
        return [Difference.from_row(r) for r in rows]

    def restore(self, visit_id: int, *, apply: bool = False) -> list[ColumnChange]:
        """The columns of a visit that differ from its latest image in the trail; with
        ``apply``, the row is put back to that image (audited, action 'restore')."""
        rows = self.db.call("SELECT * FROM hms.audit_restore(%(visit)s, %(apply)s)",
                            {"visit": visit_id, "apply": apply}, retry=not apply)
        return [ColumnChange(r["column"], r["trail_value"], r["table_value"]) for r in rows]

    def close_day(self, day: str | date | None = None) -> DayClose:
        rows = self.db.call("SELECT * FROM hms.day_close(%(day)s)",
                            {"day": v.a_date(day, "--date")})
        return DayClose(**rows[0])
