"""Clinic statistics: a day's report, one row per day for trends, and who waits too long now.

Every figure is computed in the database (``hms.report_day`` in db/sql/routines/80_reports.sql)
from its own timestamps and the audit trail, never a terminal's clock; this module only names
the figures and lays them out.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from hms_tui.db.connection import Database
from hms_tui.domain import validation as v
from hms_tui.domain.errors import InvalidInput

RANGE_DAYS_MAX = 366


@dataclass(frozen=True)
class Figures:
    """One doctor's or the whole clinic's day. Minutes to a tenth; shares from 0 to 1; None
    where there is nothing to measure (no one called yet, no estimate quoted)."""

    arrivals: int  # checked in at the desk (transfers in are counted apart)
    transfers_in: int
    booked: int  # arrivals who had an appointment
    walk_in: int
    seen: int  # consultations completed
    no_shows: int
    no_show_rate: float | None  # no-shows / (seen + no-shows)
    cancellations: int
    transfers: int  # moved to another doctor
    called: int  # called at least once
    wait_p50: float | None  # arrival to first call, minutes
    wait_p90: float | None
    wait_max: float | None
    consult_p50: float | None  # start to end, minutes
    consult_p90: float | None
    over_target: int  # waited longer than the clinic's target
    over_target_share: float | None  # of those called
    estimates: int  # called patients who were quoted an estimate at check-in
    estimate_abs_error_p50: float | None  # minutes between the quote's middle and the call
    estimate_within_share: float | None  # called within the quoted range

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Figures:
        return cls(**{f.name: doc[f.name] for f in dataclasses.fields(cls)})


FIGURES = tuple(f.name for f in dataclasses.fields(Figures))


@dataclass(frozen=True)
class DoctorFigures:
    doctor: str
    figures: Figures


@dataclass(frozen=True)
class HourFigures:
    hour: int  # 0-23, the clinic's local time
    arrivals: int
    calls: int
    over_target: int  # arrivals of that hour who waited longer than the target


@dataclass(frozen=True)
class StaffFigures:
    login: str
    checkins: int
    calls: int
    consultations: int


@dataclass(frozen=True)
class DayReport:
    date: date
    target_minutes: int
    doctor: str | None  # the report was limited to this doctor
    clinic: Figures
    doctors: tuple[DoctorFigures, ...]
    hours: tuple[HourFigures, ...]
    staff: tuple[StaffFigures, ...]

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> DayReport:
        return cls(
            date=date.fromisoformat(doc["date"]),
            target_minutes=doc["target_minutes"],
            doctor=doc["doctor"],
            clinic=Figures.from_doc(doc["clinic"]),
            doctors=tuple(DoctorFigures(d["doctor"], Figures.from_doc(d)) for d in doc["doctors"]),
            hours=tuple(HourFigures(**h) for h in doc["hours"]),
            staff=tuple(StaffFigures(**s) for s in doc["staff"]),
        )

    def to_doc(self) -> dict[str, Any]:
        """The JSON document of ``report daily --json``: figures flat, as the database wrote them."""
        return {
            "date": self.date.isoformat(), "target_minutes": self.target_minutes,
            "doctor": self.doctor, "clinic": dataclasses.asdict(self.clinic),
            "doctors": [{"doctor": d.doctor, **dataclasses.asdict(d.figures)} for d in self.doctors],
            "hours": [dataclasses.asdict(h) for h in self.hours],
            "staff": [dataclasses.asdict(s) for s in self.staff],
        }


@dataclass(frozen=True)
class DayFigures:
    """One row of ``report range``: a day's clinic figures."""

    date: date
    figures: Figures


@dataclass(frozen=True)
class OverTarget:
    """A patient waiting longer than the clinic's target right now."""

    doctor: str
    token: str
    patient_name: str
    waited_minutes: float
    priority: str


@dataclass(frozen=True)
class Dashboard:
    """What the admin's Statistics tab shows: today, the last 7 days, who waits too long."""

    today: DayReport
    week: tuple[DayFigures, ...]  # the 7 days up to today, oldest first
    waiting: tuple[OverTarget, ...]


class Reports:
    """The clinic's figures, over one ``Database`` (admin only: the functions are granted to
    hms_admin)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def daily(self, day: str | date | None = None, doctor: str | None = None) -> DayReport:
        rows = self.db.call("SELECT hms.report_day(%(day)s, %(doctor)s) AS doc",
                            {"day": v.a_date(day, "date"),
                             "doctor": None if doctor is None else v.doctor_code(doctor)},
                            retry=True)
        return DayReport.from_doc(rows[0]["doc"])

    def range(self, first: str | date, last: str | date,
              doctor: str | None = None) -> list[DayFigures]:
        start, end = v.a_date(first, "--from"), v.a_date(last, "--to")
        assert start is not None and end is not None
        if end < start or (end - start).days > RANGE_DAYS_MAX:
            raise InvalidInput(f"a range runs from its first day to its last, at most "
                               f"{RANGE_DAYS_MAX} days ({start} to {end})")
        rows = self.db.call("SELECT d FROM hms.report_range(%(from)s, %(to)s, %(doctor)s) d",
                            {"from": start, "to": end,
                             "doctor": None if doctor is None else v.doctor_code(doctor)},
                            retry=True)
        return [DayFigures(date.fromisoformat(r["d"]["date"]), Figures.from_doc(r["d"]))
                for r in rows]

    def dashboard(self) -> Dashboard:
        today = self.daily()
        week = self.range(today.date - timedelta(days=6), today.date)
        return Dashboard(today, tuple(week), tuple(self.over_target()))

    def over_target(self) -> list[OverTarget]:
        rows = self.db.call("SELECT * FROM hms.over_target()", retry=True)
        return [OverTarget(**{**r, "waited_minutes": float(r["waited_minutes"])}) for r in rows]


def day_csv(report: DayReport) -> str:
    """``report daily --csv``: one row per doctor, then the clinic (doctor ``ALL``)."""
    rows = [(d.doctor, d.figures) for d in report.doctors] + [("ALL", report.clinic)]
    return _csv(["date", "doctor", *FIGURES],
                ([report.date.isoformat(), code, *_values(f)] for code, f in rows))


def range_csv(days: Iterable[DayFigures]) -> str:
    """``report range --csv``: one row per day."""
    return _csv(["date", *FIGURES], ([d.date.isoformat(), *_values(d.figures)] for d in days))


def _values(figures: Figures) -> list[Any]:
    return ["" if value is None else value for value in dataclasses.astuple(figures)]


def _csv(header: list[str], rows: Iterable[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
