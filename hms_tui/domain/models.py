"""Domain types returned by the core. Field names match the columns the SQL functions return,
and they are the field names of ``--json`` output (a contract: scripts read them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    BOOKED = "BOOKED"
    WAITING = "WAITING"
    CALLED = "CALLED"
    IN_CONSULTATION = "IN_CONSULTATION"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    NO_SHOW = "NO_SHOW"
    TRANSFERRED = "TRANSFERRED"


ACTIVE_STATUSES = frozenset({Status.BOOKED, Status.WAITING, Status.CALLED, Status.IN_CONSULTATION})
SERVING_STATUSES = frozenset({Status.CALLED, Status.IN_CONSULTATION})


class Priority(StrEnum):
    NORMAL = "NORMAL"
    URGENT = "URGENT"
    EMERGENCY = "EMERGENCY"

    @classmethod
    def parse(cls, text: str) -> Priority:
        from hms_tui.domain.errors import InvalidInput

        try:
            return cls(text.strip().upper())
        except ValueError:
            raise InvalidInput(
                f"priority {text!r} is invalid; use normal, urgent or emergency"
            ) from None


@dataclass(frozen=True)
class Doctor:
    id: int
    code: str
    name: str
    room: str | None
    token_prefix: str
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class DoctorBoard:
    """A doctor's day at a glance."""

    code: str
    name: str
    room: str | None
    token_prefix: str
    active: bool
    serving: str | None
    waiting: int
    seen: int
    no_shows: int
    issued: int


@dataclass(frozen=True)
class Patient:
    id: int
    mrn: str
    name: str
    phone: str | None
    birth_date: date | None
    created_at: datetime


@dataclass(frozen=True)
class PatientMatch:
    id: int
    mrn: str
    name: str
    phone: str | None
    birth_date: date | None
    age: int | None
    active_visits: str | None


@dataclass(frozen=True)
class Visit:
    """A visit as the desk sees it; ``position`` is set only while WAITING (1 = next)."""

    visit_id: int
    token: str | None
    serial: int | None
    position: int | None
    status: Status
    priority: Priority
    patient_id: int
    patient_name: str
    mrn: str
    doctor: str
    doctor_name: str
    room: str | None
    business_date: date
    appointment_at: datetime | None
    checked_in_at: datetime | None
    called_at: datetime | None
    call_count: int
    started_at: datetime | None
    ended_at: datetime | None
    cancel_reason: str | None
    transferred_from: int | None
    transferred_to: int | None
    wait_minutes: int | None
    replayed: bool
    # While waiting: when the patient may expect to be called (as of the queue's last change).
    eta_from: datetime | None = None
    eta_to: datetime | None = None

    @classmethod
    def from_row(cls, row: Any) -> Visit:
        data = dict(row)
        data["status"] = Status(data["status"])
        data["priority"] = Priority(data["priority"])
        return cls(**data)


def now_serving(visits: tuple[Visit, ...]) -> Visit | None:
    """The visit a queue's first row is serving, if any: the database orders those being
    served first, latest call first (the display's 'now serving', the console's patient)."""
    first = visits[0] if visits else None
    return first if first is not None and first.status in SERVING_STATUSES else None


@dataclass(frozen=True)
class Slot:
    """One slot of a doctor's session: its start, how many it takes, how many are booked."""

    doctor: str
    starts: datetime
    capacity: int
    booked: int
    free: int
    room: str | None


@dataclass(frozen=True)
class Session:
    """A doctor's session: weekly (``days``, e.g. 'mon,wed') or an extra one ``on_date``."""

    id: int
    doctor: str
    days: str | None
    on_date: date | None
    starts: time
    ends: time
    slot_minutes: int
    capacity: int
    room: str | None


@dataclass(frozen=True)
class Expected:
    """A booking that has not arrived: 'due', 'late' (its slot began) or 'not arrived' (its
    window closed)."""

    visit_id: int
    doctor: str
    patient_id: int
    patient_name: str
    mrn: str
    appointment_at: datetime
    state: str


@dataclass(frozen=True)
class Booking:
    """Who holds a place in a doctor's day (``hms.day_bookings``): ``state`` is 'due', 'late'
    or 'not arrived' while the booking has not arrived, else the visit's status."""

    visit_id: int
    doctor: str
    appointment_at: datetime
    patient_id: int
    patient_name: str
    mrn: str
    token: str | None
    status: str
    state: str
    overbooked: str | None


@dataclass(frozen=True)
class BillItem:
    line: int
    description: str
    amount: Decimal


@dataclass(frozen=True)
class Bill:
    id: int
    bill_number: str
    visit_id: int
    token: str | None
    patient_id: int
    patient_name: str
    mrn: str
    doctor: str
    doctor_name: str
    total: Decimal
    status: str
    created_at: datetime
    voided_at: datetime | None
    void_reason: str | None
    items: tuple[BillItem, ...]

    @classmethod
    def from_row(cls, row: Any) -> Bill:
        data = dict(row)
        data["items"] = tuple(
            BillItem(line=i["line"], description=i["description"], amount=Decimal(str(i["amount"])))
            for i in data["items"]
        )
        return cls(**data)


@dataclass(frozen=True)
class ClinicRules:
    """Clinic-wide settings, stored in the database so every terminal agrees."""

    clinic_name: str
    timezone: str
    recall_limit: int
    requeue_after: int
    skip_places: int
    consult_minutes: int
    statement_limit_s: int = 30  # the longest statement a desk session may run
    idle_limit_s: int = 60  # ... and stay idle inside a transaction
    booking_early_minutes: int = 30  # a booked patient arriving this early keeps their slot
    booking_late_minutes: int = 15  # ... and this late
    queue_rule: str = "fair"  # 'fair': booked patients by slot time; 'arrival': all by arrival
    wait_target_minutes: int = 30  # reports count the patients who waited longer
    close_as: str = "NO_SHOW"  # what the day close makes of visits still open (or CANCELLED)
    calls_ahead: int = 0  # more patients a doctor may call while one is with them

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ClinicRules:
        return cls(**{f.name: row[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class TimelineEntry:
    seq: int | None  # None until sealed into the hash chain (a moment after commit)
    at: datetime
    actor: str
    terminal: str | None
    action: str
    entity: str
    status_before: str | None
    status_after: str | None
    since_previous: timedelta | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class AuditEntry:
    seq: int | None  # None until sealed into the hash chain (a moment after commit)
    ticket: int | None  # the order of changes not sealed yet
    at: datetime
    actor: str
    terminal: str | None
    action: str
    entity: str
    entity_id: int | None
    visit_id: int | None
    status_before: str | None
    status_after: str | None


def to_jsonable(value: Any) -> Any:
    """Plain JSON types: dataclasses become objects, times ISO 8601, money exact decimals."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return f"{value:.2f}"  # money: an exact decimal string with two places, never a float
    if isinstance(value, StrEnum):
        return value.value
    return value
