"""The desk: one method per action, each one call of a server-side function.

Each call is one statement in its own transaction and one round trip (``Database.call``): the
counter and queue locks are taken and released inside the server, never held across the
network. Inputs are validated here first (one clear message, nothing sent), and
again by the database (CHECK constraints and the functions), which has the last word.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hms_tui.db.connection import Database, Row
from hms_tui.domain import validation as v
from hms_tui.domain.errors import DuplicatePatient, InvalidInput, NotFound
from hms_tui.domain.models import (
    AuditEntry,
    Bill,
    Booking,
    ClinicRules,
    Doctor,
    DoctorBoard,
    Expected,
    Patient,
    PatientMatch,
    Priority,
    Session,
    Slot,
    TimelineEntry,
    Visit,
)


class Desk:
    """Every front-desk action and read, over one ``Database``. Thread-safe (pooled)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- plumbing ------------------------------------------------------------------------------

    def _rows(self, sql: str, params: Mapping[str, Any] | None = None, *,
              read: bool = True) -> list[Row]:
        """``read``: nothing is written, so a lost connection may be retried."""
        return self.db.call(sql, params, retry=read)

    def _one(self, sql: str, params: Mapping[str, Any] | None = None, *,
             read: bool = False) -> Row:
        rows = self._rows(sql, params, read=read)
        if not rows:
            raise NotFound("nothing found")
        return rows[0]

    def _visit(self, function: str, *, read: bool = False, **params: Any) -> Visit:
        args = ", ".join(f"%({name})s" for name in params)
        return Visit.from_row(self._one(f"SELECT * FROM hms.{function}({args})", params,
                                        read=read))

    # -- doctors and settings ------------------------------------------------------------------

    def add_doctor(
        self, code: str, name: str, room: str | None = None, prefix: str | None = None
    ) -> Doctor:
        row = self._one(
            "SELECT * FROM hms.add_doctor(%(code)s, %(name)s, %(room)s, %(prefix)s)",
            {
                "code": v.doctor_code(code),
                "name": v.person_name(name),
                "room": v.optional_text(room, "room", v.ROOM_MAX),
                "prefix": v.token_prefix(prefix) if prefix else None,
            },
        )
        return Doctor(**row)

    def update_doctor(
        self,
        code: str,
        *,
        name: str | None = None,
        room: str | None = None,
        prefix: str | None = None,
        active: bool | None = None,
    ) -> Doctor:
        """Change what is given; ``room=""`` clears the room."""
        row = self._one(
            "SELECT * FROM hms.update_doctor(%(code)s, %(name)s, %(room)s, %(prefix)s, %(active)s)",
            {
                "code": v.doctor_code(code),
                "name": v.person_name(name) if name is not None else None,
                "room": "" if room == "" else v.optional_text(room, "room", v.ROOM_MAX),
                "prefix": v.token_prefix(prefix) if prefix else None,
                "active": active,
            },
        )
        return Doctor(**row)

    def doctors(self) -> list[Doctor]:
        return [Doctor(**r) for r in self._rows("SELECT * FROM hms.doctor_list()")]

    def doctor(self, code: str) -> Doctor:
        return Doctor(**self._one("SELECT * FROM hms.get_doctor(%(code)s)",
                                  {"code": v.doctor_code(code)}, read=True))

    def board(self) -> list[DoctorBoard]:
        return [DoctorBoard(**r) for r in self._rows("SELECT * FROM hms.doctor_board()")]

    def rules(self) -> ClinicRules:
        return ClinicRules.from_row(self._one("SELECT * FROM hms.get_rules()", read=True))

    def configure(self, **changes: object) -> ClinicRules:
        """Change the clinic settings given (ClinicRules' fields; None: leave as it is)."""
        given = {k: val for k, val in changes.items() if val is not None}
        unknown = set(given) - {f.name for f in dataclasses.fields(ClinicRules)}
        if unknown:
            raise InvalidInput(f"{sorted(unknown)[0]} is not a clinic setting")
        if "clinic_name" in given:
            given["clinic_name"] = v.clean_text(str(given["clinic_name"]), "clinic name", 80)
        if "timezone" in given:
            given["timezone"] = v.clean_text(str(given["timezone"]), "time zone", 64)
        row = self._one("SELECT * FROM hms.configure(CAST(%(changes)s AS jsonb))",
                        {"changes": json.dumps(given)})
        return ClinicRules.from_row(row)

    def zone(self) -> tzinfo:
        """The clinic's time zone, for showing times (UTC if this machine does not know it)."""
        try:
            return ZoneInfo(self.rules().timezone)
        except (ValueError, KeyError):
            return UTC

    def business_date(self) -> date:
        return self._one("SELECT hms.business_date() AS d", read=True)["d"]  # type: ignore[no-any-return]

    # -- patients ------------------------------------------------------------------------------

    def add_patient(
        self, name: str, phone: str | None = None, birth_date: str | date | None = None, *,
        allow_duplicate: bool = False,
    ) -> Patient:
        """Register a patient. Someone whose name and date of birth, or phone, match a patient
        already registered is refused with ``DuplicatePatient`` listing the matches, unless
        ``allow_duplicate`` (the person at the desk has checked: it is someone else)."""
        clean_name, clean_phone, dob = v.person_name(name), v.phone(phone), v.birth_date(birth_date)
        try:
            row = self._one("SELECT * FROM hms.add_patient(%(name)s, %(phone)s, %(dob)s,"
                            " %(allow)s)", {"name": clean_name, "phone": clean_phone, "dob": dob,
                                            "allow": allow_duplicate})
        except DuplicatePatient as exc:
            matches = self.patient_duplicates(clean_name, clean_phone, dob)
            raise DuplicatePatient(str(exc), tuple(matches)) from None
        return Patient(**row)

    def import_patients(self, names: Sequence[str], phones: Sequence[str | None],
                        birth_dates: Sequence[date | None], *,
                        allow_duplicate: bool = False) -> int:
        """Register a batch of patients (checked by the caller: services/registry.py) in one
        transaction; returns how many were added. A batch holding someone who looks
        registered already adds nothing (``DuplicatePatient``) unless ``allow_duplicate``."""
        row = self._one("SELECT hms.import_patients(%(names)s, %(phones)s, %(dobs)s::date[],"
                        " %(allow)s) AS added",
                        {"names": list(names), "phones": list(phones), "dobs": list(birth_dates),
                         "allow": allow_duplicate})
        return int(row["added"])

    def patient_duplicates(self, name: str, phone: str | None, birth_date: date | None,
                           *, exclude: int | None = None) -> list[PatientMatch]:
        rows = self._rows("SELECT * FROM hms.patient_duplicates(%(name)s, %(phone)s, %(dob)s,"
                          " %(exclude)s)",
                          {"name": name, "phone": phone, "dob": birth_date, "exclude": exclude})
        return [PatientMatch(**r) for r in rows]

    def update_patient(self, patient_id: int, *, name: str | None = None,
                       phone: str | None = None, birth_date: str | date | None = None) -> Patient:
        """Correct what is given: ``phone=""`` or ``birth_date=""`` clears it."""
        if name is None and phone is None and birth_date is None:
            raise InvalidInput("nothing to change: give a name, a phone or a date of birth")
        clear_dob = isinstance(birth_date, str) and not birth_date.strip()
        row = self._one(
            "SELECT * FROM hms.update_patient(%(id)s, %(name)s, %(phone)s, %(dob)s, %(clear)s)",
            {"id": patient_id,
             "name": v.person_name(name) if name is not None else None,
             "phone": "" if phone is not None and not phone.strip() else v.phone(phone),
             "dob": None if clear_dob else v.birth_date(birth_date),
             "clear": clear_dob})
        return Patient(**row)

    def patient(self, patient_id: int) -> Patient:
        return Patient(**self._one("SELECT * FROM hms.get_patient(%(id)s)", {"id": patient_id},
                                   read=True))

    def search_patients(self, query: str, limit: int = 50) -> list[PatientMatch]:
        rows = self._rows(
            "SELECT * FROM hms.search_patients(%(q)s, %(limit)s)",
            {"q": v.search_text(query), "limit": limit},
        )
        return [PatientMatch(**r) for r in rows]

    # -- visits --------------------------------------------------------------------------------

    def checkin(
        self,
        doctor: str,
        patient_id: int,
        priority: Priority | str = Priority.NORMAL,
        key: str | None = None,
    ) -> Visit:
        """Check a patient in; with ``key``, a retry returns the first visit (``replayed``)."""
        key = v.idempotency_key(key)
        return self._visit(
            "checkin",
            read=key is not None,  # a keyed check-in replays instead of repeating
            doctor=v.doctor_code(doctor),
            patient=patient_id,
            priority=Priority.parse(str(priority)).value,
            key=key,
        )

    def book(self, doctor: str, patient_id: int, at: str | None = None, *,
             day: str | date | None = None, overbook: str | None = None) -> Visit:
        """Book into the slot at ``at`` (clinic local "YYYY-MM-DD HH:MM"), or the first free
        slot on ``day``; ``overbook`` (a reason) books past a full slot."""
        return self._visit(
            "book", doctor=v.doctor_code(doctor), patient=patient_id,
            at=v.appointment_time(at) if at else None, date=v.a_date(day, "date"),
            overbook=v.optional_text(overbook, "overbook reason", v.REASON_MAX))

    def reschedule(self, visit_id: int, at: str | None = None, *, day: str | date | None = None,
                   overbook: str | None = None) -> Visit:
        return self._visit(
            "reschedule", visit=visit_id, at=v.appointment_time(at) if at else None,
            date=v.a_date(day, "date"),
            overbook=v.optional_text(overbook, "overbook reason", v.REASON_MAX))

    def slots(self, doctor: str, day: str | date | None = None) -> list[Slot]:
        rows = self._rows("SELECT * FROM hms.slots(%(doctor)s, %(date)s)",
                          {"doctor": v.doctor_code(doctor), "date": v.a_date(day, "date")})
        return [Slot(**r) for r in rows]

    def expected(self, day: str | date | None = None, doctor: str | None = None) -> list[Expected]:
        rows = self._rows("SELECT * FROM hms.expected(%(date)s, %(doctor)s)",
                          {"date": v.a_date(day, "date"),
                           "doctor": v.doctor_code(doctor) if doctor else None})
        return [Expected(**r) for r in rows]

    def bookings(self, doctor: str, day: str | date | None = None) -> list[Booking]:
        """A doctor's bookings of a day (default today), in slot order, with how each stands."""
        rows = self._rows("SELECT * FROM hms.day_bookings(%(doctor)s, %(date)s)",
                          {"doctor": v.doctor_code(doctor), "date": v.a_date(day, "date")})
        return [Booking(**r) for r in rows]

    # -- sessions and leave --------------------------------------------------------------------

    def add_session(self, doctor: str, *, days: str | None = None, on: str | date | None = None,
                    start: str, end: str, slot_minutes: int, capacity: int,
                    room: str | None = None) -> Session:
        if (days is None) == (on is None):
            raise InvalidInput("give the weekdays of a weekly session (--days mon,wed) or the "
                               "date of an extra one (--on YYYY-MM-DD)")
        row = self._one(
            "SELECT * FROM hms.session_add(%(doctor)s, %(days)s, %(on)s, %(start)s, %(end)s, "
            "%(slot)s, %(capacity)s, %(room)s)",
            {"doctor": v.doctor_code(doctor), "days": days, "on": v.a_date(on, "session date"),
             "start": v.clock_time(start, "start"), "end": v.clock_time(end, "end"),
             "slot": slot_minutes, "capacity": capacity,
             "room": v.optional_text(room, "room", v.ROOM_MAX)})
        return Session(**row)

    def sessions(self, doctor: str | None = None) -> list[Session]:
        rows = self._rows("SELECT * FROM hms.session_list(%(doctor)s)",
                          {"doctor": v.doctor_code(doctor) if doctor else None})
        return [Session(**r) for r in rows]

    def remove_session(self, session_id: int) -> Session:
        return Session(**self._one("SELECT * FROM hms.session_remove(%(id)s)", {"id": session_id}))

    def add_leave(self, doctor: str, start: str | date, end: str | date | None = None,
                  reason: str | None = None) -> list[Visit]:
        """Leave from ``start`` to ``end``; returns the bookings it affects."""
        rows = self._rows(
            "SELECT * FROM hms.leave_add(%(doctor)s, %(from)s, %(to)s, %(reason)s)",
            {"doctor": v.doctor_code(doctor), "from": v.a_date(start, "leave start"),
             "to": v.a_date(end, "leave end"),
             "reason": v.optional_text(reason, "reason", v.REASON_MAX)}, read=False)
        return [Visit.from_row(r) for r in rows]

    def arrive(self, visit_id: int) -> Visit:
        return self._visit("arrive", visit=visit_id)

    def call_next(self, doctor: str, *, force: bool = False) -> Visit:
        """Call the head of the queue; refused (``DoctorBusy``) while the doctor has another
        patient called or in consultation, unless the clinic allows calling ahead or
        ``force``."""
        return self._visit("call_next", doctor=v.doctor_code(doctor), force=force)

    def call(self, visit_id: int, *, force: bool = False) -> Visit:
        return self._visit("call", visit=visit_id, force=force)

    def recall(self, visit_id: int) -> Visit:
        return self._visit("recall", visit=visit_id)

    def start(self, visit_id: int) -> Visit:
        return self._visit("start", visit=visit_id)

    def complete(self, visit_id: int) -> Visit:
        return self._visit("complete", visit=visit_id)

    def cancel(self, visit_id: int, reason: str | None = None) -> Visit:
        return self._visit(
            "cancel", visit=visit_id, reason=v.optional_text(reason, "reason", v.REASON_MAX)
        )

    def no_show(self, visit_id: int) -> Visit:
        return self._visit("no_show", visit=visit_id)

    def requeue(self, visit_id: int) -> Visit:
        return self._visit("requeue", visit=visit_id)

    def skip(self, visit_id: int, places: int | None = None) -> Visit:
        return self._visit(
            "skip", visit=visit_id, places=v.positive_places(places) if places is not None else None
        )

    def set_priority(self, visit_id: int, priority: Priority | str) -> Visit:
        return self._visit(
            "set_priority", visit=visit_id, priority=Priority.parse(str(priority)).value
        )

    def transfer(self, visit_id: int, to_doctor: str) -> Visit:
        return self._visit("transfer", visit=visit_id, to=v.doctor_code(to_doctor))

    def transfer_all(self, from_doctor: str, to_doctor: str) -> list[Visit]:
        """Move every waiting or called patient of one doctor to another, in queue order (so
        they keep their order at the end of the other queue); one transfer each, each its
        own transaction. Returns the new visits."""
        source, target = v.doctor_code(from_doctor), v.doctor_code(to_doctor)
        if source == target:
            raise InvalidInput(f"{source}: choose another doctor to transfer the patients to")
        moving = [x for x in self.queue(source) if x.status.value in ("WAITING", "CALLED")]
        # The called first, in the order they were called (they were next), then the line.
        moving.sort(key=lambda x: (x.position is not None, x.position or 0,
                                   x.called_at.timestamp() if x.called_at else 0.0))
        return [self.transfer(x.visit_id, target) for x in moving]

    def visit(self, visit_id: int) -> Visit:
        return self._visit("visit_info", visit=visit_id, read=True)

    def queue(self, doctor: str, *, include_all: bool = False) -> list[Visit]:
        """Today's queue: those being served, then the waiting line (positions 1..N)."""
        rows = self._rows(
            "SELECT * FROM hms.queue(%(doctor)s, %(all)s)",
            {"doctor": v.doctor_code(doctor), "all": include_all},
        )
        return [Visit.from_row(r) for r in rows]

    # -- bills ---------------------------------------------------------------------------------

    def create_bill(self, visit_id: int, items: Sequence[tuple[str, Decimal]]) -> Bill:
        if not items:
            raise InvalidInput("a bill needs at least one item (--item \"Consultation=500\")")
        if len(items) > v.BILL_ITEMS_MAX:
            raise InvalidInput(f"a bill can have at most {v.BILL_ITEMS_MAX} items")
        payload = [
            {
                "description": v.clean_text(d, "bill item description", v.ITEM_MAX),
                "amount": str(v.amount(str(a), "bill item amount")),
            }
            for d, a in items
        ]
        row = self._one(
            "SELECT * FROM hms.create_bill(%(visit)s, CAST(%(items)s AS jsonb))",
            {"visit": visit_id, "items": json.dumps(payload)},
        )
        return Bill.from_row(row)

    def void_bill(self, bill: str, reason: str) -> Bill:
        row = self._one(
            "SELECT * FROM hms.void_bill(%(bill)s, %(reason)s)",
            {"bill": v.clean_text(bill, "bill", 40),
             "reason": v.clean_text(reason, "reason", v.REASON_MAX)},
        )
        return Bill.from_row(row)

    def bill(self, bill: str) -> Bill:
        row = self._one(
            "SELECT * FROM hms.bill_info(hms.find_bill(%(bill)s))",
            {"bill": v.clean_text(bill, "bill", 40)}, read=True)
        return Bill.from_row(row)

    def bills_for_visit(self, visit_id: int) -> list[Bill]:
        rows = self._rows("SELECT * FROM hms.visit_bills(%(visit)s)", {"visit": visit_id})
        return [Bill.from_row(r) for r in rows]

    # -- audit ---------------------------------------------------------------------------------

    def timeline(self, visit_id: int) -> list[TimelineEntry]:
        rows = self._rows("SELECT * FROM hms.visit_timeline(%(visit)s)", {"visit": visit_id})
        return [TimelineEntry(**r) for r in rows]

    def audit_tail(
        self,
        limit: int = 20,
        *,
        actor: str | None = None,
        action: str | None = None,
        visit_id: int | None = None,
    ) -> list[AuditEntry]:
        if not 1 <= limit <= 10000:
            raise InvalidInput(f"limit must be from 1 to 10000, not {limit}")
        rows = self._rows(
            "SELECT * FROM hms.audit_tail(%(limit)s, %(actor)s, %(action)s, %(visit)s)",
            {"limit": limit, "actor": actor, "action": action, "visit": visit_id},
        )
        return [AuditEntry(**r) for r in rows]
