"""Keeping a copy of a doctor's queue up to date from version deltas (``hms.queue_changes``).

The copy holds the active visits with their ordering keys; after each delta it rebuilds
exactly what ``hms.queue(doctor)`` would return — positions, wait estimates and order — so a
screen fetches one changed row instead of the whole queue. The tests compare the two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hms_tui.core.models import Priority, Status, Visit

ACTIVE = {Status.WAITING.value, Status.CALLED.value, Status.IN_CONSULTATION.value}
_PRIORITY_RANK = {p.value: rank for rank, p in enumerate(Priority)}
_SERVING_RANK = {Status.IN_CONSULTATION.value: 0, Status.CALLED.value: 1}
_ROW_FIELDS = ("visit_id", "token", "serial", "status", "priority", "patient_id",
               "patient_name", "mrn", "doctor", "doctor_name", "room", "business_date",
               "appointment_at", "checked_in_at", "called_at", "call_count", "started_at",
               "ended_at", "cancel_reason", "transferred_from")


def wait_estimate(per_patient: Decimal, serving: int, position: int) -> int:
    """As hms.wait_estimate: round(per_patient * (position - 1 + serving)), halves away."""
    minutes = per_patient * (position - 1 + serving)
    return int(minutes.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class QueueCopy:
    """One doctor's queue as last synchronised."""

    version: int = 0
    per_patient: Decimal = Decimal(0)
    rows: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    visits: tuple[Visit, ...] = ()
    _built: dict[tuple[int, int, int | None, int | None], Visit] = field(default_factory=dict)

    def apply(self, records: Iterable[Mapping[str, Any]], *, full: bool) -> bool:
        """Fold in a result of hms.queue_changes; True when the queue's contents changed."""
        if full:
            self.rows = {}
            self._built = {}  # names or rooms may have changed without a new version
        for record in records:
            self.version = max(self.version, int(record["head_version"]))
            self.per_patient = Decimal(record["per_patient"])
            visit_id = record["visit_id"]
            if visit_id is None:
                continue  # header only: nothing new
            if record["status"] in ACTIVE:
                self.rows[visit_id] = record
            else:
                self.rows.pop(visit_id, None)
        visits = self._rebuild()
        changed = visits != self.visits
        self.visits = visits
        return changed

    def _rebuild(self) -> tuple[Visit, ...]:
        waiting = sorted((r for r in self.rows.values() if r["status"] == Status.WAITING.value),
                         key=lambda r: (-_PRIORITY_RANK[r["priority"]], r["queue_key"],
                                        r["visit_id"]))
        serving = sorted((r for r in self.rows.values() if r["status"] in _SERVING_RANK),
                         key=_serving_order)
        built: dict[tuple[int, int, int | None, int | None], Visit] = {}
        out: list[Visit] = []
        for record in serving:
            out.append(self._visit(record, None, None, built))
        for position, record in enumerate(waiting, 1):
            wait = wait_estimate(self.per_patient, len(serving), position)
            out.append(self._visit(record, position, wait, built))
        self._built = built
        return tuple(out)

    def _visit(self, record: Mapping[str, Any], position: int | None, wait: int | None,
               built: dict[tuple[int, int, int | None, int | None], Visit]) -> Visit:
        # A row's version changes whenever the row does (full reads reset the cache).
        key = (record["visit_id"], record["queue_version"], position, wait)
        visit = self._built.get(key)
        if visit is None:
            data = {f: record[f] for f in _ROW_FIELDS}
            visit = Visit.from_row(data | {"position": position, "wait_minutes": wait,
                                           "transferred_to": None, "replayed": False})
        built[key] = visit
        return visit


def _serving_order(record: Mapping[str, Any]) -> tuple[int, int, float, int]:
    # As hms.queue: in consultation first, then called; latest call first (NULLs first, as
    # PostgreSQL sorts them in DESC order); then serial.
    called: datetime | None = record["called_at"]
    return (_SERVING_RANK[record["status"]], 0 if called is None else 1,
            -(called.timestamp() if called else 0.0), record["serial"] or 0)
