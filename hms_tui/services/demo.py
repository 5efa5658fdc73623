"""A demo clinic: a few doctors, a few dozen patients and a morning's visits in every state.

Seeding goes through the same desk actions as real use, so the audit trail and the numbers
are exactly what a real morning would leave.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hms_tui.domain.errors import HmsError
from hms_tui.domain.models import Priority, Visit
from hms_tui.services.desk import Desk

DOCTORS = [
    ("D1", "Dr Asha Rao", "Room 3"),
    ("D2", "Dr Vikram Mehta", "Room 5"),
    ("D3", "Dr Leela Sen", "Room 7"),
    ("D4", "Dr Omar Farouk", "Room 2"),
]

# Names from many places, written as their owners write them.
PATIENTS = [
    ("Kumar, Anil", "98450 12345", "1972-03-14"),
    ("Devi Kumari", "99001 22113", "1994-07-02"),
    ("Suresh Pillai", "98860 44120", "1961-11-30"),
    ("Meena Raghavan", None, "1988-01-19"),
    ("Fatima Sheikh", "97311 90876", "1979-05-25"),
    ("John D'Souza", "98200 11773", "1955-09-09"),
    ("Lakshmi Narayanan", "94440 67321", "2001-12-12"),
    ("Arjun Menon", "98470 33221", "2016-04-18"),
    ("Priya Iyer", "99862 10102", "1990-02-28"),
    ("Mohammed Rafiq", "98951 55660", "1968-08-08"),
    ("Ananya Ghosh", None, "2010-10-10"),
    ("Ravi Shankar", "97403 21009", "1949-06-21"),
    ("Sofía Hernández", "+34 612 345 678", "1985-03-03"),
    ("Nguyễn Thị Lan", "+84 91 234 5678", "1992-09-17"),
    ("王小明", "+86 138 0013 8000", "1983-12-01"),
    ("Zoë Ó Briain", "+353 87 123 4567", "1999-07-07"),
    ("Kavya Reddy", "98481 00022", "2005-05-05"),
    ("Harpreet Singh", "98140 77889", "1976-01-26"),
    ("Deepa Nair", "94470 12121", "1983-08-15"),
    ("Imran Qureshi", "98330 45454", "1964-02-02"),
    ("Sunita Joshi", None, "1958-04-14"),
    ("Rahul Verma", "99100 88776", "1997-11-11"),
    ("Neha Kapoor", "98110 23232", "1993-06-06"),
    ("Thomas Mathew", "94460 98989", "1971-10-02"),
    ("Gita Bhattacharya", "98300 65656", "1945-12-25"),
    ("Vijay Kumar", "98450 99887", "1980-03-31"),
    ("Asha Pillai", "98860 10203", "2012-08-20"),
    ("Karthik Subramanian", "94441 30303", "1987-07-27"),
    ("Pooja Sharma", "98290 45678", "2000-01-01"),
    ("Abdul Kareem", "98460 12312", "1959-09-29"),
    ("Rekha Das", "94330 78787", "1969-05-16"),
    ("Sanjay Gupta", "98100 56565", "1974-04-04"),
    ("Maria Fernandes", "98230 34343", "1991-02-14"),
    ("Bhavna Patel", "98250 67676", "1986-10-30"),
    ("Ramesh Babu", None, "1952-03-08"),
    ("Chitra Balan", "94450 21212", "2019-06-01"),
]


@dataclass
class DemoSummary:
    seeded: bool
    doctors: list[str] = field(default_factory=list)
    patients: int = 0
    visits: int = 0
    bills: int = 0
    bookings: int = 0

    def describe(self) -> str:
        if not self.seeded:
            return "The database already has a clinic; nothing was seeded."
        return (f"Seeded a demo clinic: doctors {', '.join(self.doctors)}, {self.patients} "
                f"patients, {self.visits} visits, {self.bookings} bookings, {self.bills} bills.")


def local_timezone() -> str | None:
    """This machine's IANA zone name, if it can be told (for the demo clinic's clock)."""
    if os.environ.get("TZ", "").count("/") >= 1:
        return os.environ["TZ"].lstrip(":")
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return None
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else None


def seed_demo(desk: Desk) -> DemoSummary:
    """Seed when there are no doctors yet; otherwise change nothing."""
    if desk.doctors():
        return DemoSummary(seeded=False)
    zone = local_timezone()
    if zone and desk.rules().timezone == "UTC" and Path("/usr/share/zoneinfo", zone).exists():
        desk.configure(timezone=zone)
    desk.configure(clinic_name="City Clinic · Outpatients")
    summary = DemoSummary(seeded=True)
    for code, name, room in DOCTORS:
        summary.doctors.append(desk.add_doctor(code, name, room).code)
    ids = [desk.add_patient(n, p, d).id for n, p, d in PATIENTS]
    summary.patients = len(ids)

    def checkin(doctor: str, patient: int, priority: Priority = Priority.NORMAL) -> int:
        summary.visits += 1
        return desk.checkin(doctor, ids[patient], priority).visit_id

    # D1: one done and billed, one in consultation, a line with an urgent case.
    done = checkin("D1", 0)
    desk.call_next("D1")
    desk.start(done)
    desk.complete(done)
    desk.create_bill(done, [("Consultation", Decimal("500")), ("ECG", Decimal("250"))])
    summary.bills += 1
    current = checkin("D1", 1)
    desk.call_next("D1")
    desk.start(current)
    for p in (2, 3, 4):
        checkin("D1", p)
    checkin("D1", 5, Priority.URGENT)
    # D2: someone called, a short line, a cancellation.
    called = checkin("D2", 6)
    desk.call_next("D2")
    desk.recall(called)
    for p in (7, 8, 9):
        checkin("D2", p)
    desk.cancel(checkin("D2", 10), "left before being called")
    # D3: a no-show, two waiting.
    absent = checkin("D3", 11)
    desk.call_next("D3")
    for _ in range(desk.rules().recall_limit):
        desk.recall(absent)
    desk.no_show(absent)
    checkin("D3", 12)
    checkin("D3", 13, Priority.EMERGENCY)
    # D4: a quiet morning, one patient transferred in from D3.
    moved = checkin("D3", 14)
    desk.transfer(moved, "D4")
    summary.visits += 1
    summary.bookings = seed_bookings(desk, ids)
    return summary


def seed_bookings(desk: Desk, ids: list[int]) -> int:
    """Sessions for D1 and D2, and bookings in every state: due today and tomorrow, one that
    arrived (placed by its slot time), one cancelled, one moved to tomorrow, one overbooked.
    Late and 'not arrived' ones appear as the morning passes."""
    for code, capacity in (("D1", 2), ("D2", 3)):
        desk.add_session(code, days="mon,tue,wed,thu,fri,sat", start="07:00", end="21:00",
                         slot_minutes=15, capacity=capacity)
    tomorrow = desk.business_date() + timedelta(days=1)
    made = 0

    def book(doctor: str, patient: int, **where: Any) -> Visit | None:
        nonlocal made
        try:
            visit = desk.book(doctor, ids[patient], **where)
        except HmsError:  # no free slot left today (a demo seeded late in the evening)
            return None
        made += 1
        return visit

    for patient in (20, 21):
        book("D1", patient, day=desk.business_date())
    arriving = book("D2", 22, day=desk.business_date())
    if arriving is not None:
        desk.arrive(arriving.visit_id)  # early, within the window: placed by its slot time
    cancelled = book("D2", 23, day=desk.business_date())
    if cancelled is not None:
        desk.cancel(cancelled.visit_id, "rang to cancel")
    moving = book("D1", 24, day=desk.business_date())
    if moving is not None:
        desk.reschedule(moving.visit_id, day=tomorrow)
    for patient in (25, 26):
        book("D1", patient, day=tomorrow)
    full = next((s for s in desk.slots("D1", tomorrow) if s.free == 0), None)
    if full is not None:
        when = full.starts.astimezone(desk.zone()).strftime("%Y-%m-%d %H:%M")
        book("D1", 27, at=when, overbook="follow-up the doctor asked for")
    return made
