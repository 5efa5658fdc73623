"""What live refresh tells the screens: the types every subscriber receives.

They live in the domain layer because they are the contract between the listener (db and
services) and everything that shows live data (the screens, ``hms-tui watch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from hms_tui.domain.models import DoctorBoard, Visit


class ConnectionState(StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"
    # The listener reached the server through a pooler that cannot deliver notifications
    # (transaction mode): not live, and retrying will not help until the address changes.
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class ServerInfo:
    """The server the change feed is connected to (``hms.observe_server``): a change of
    system or timeline means another server (a failover, a restore)."""

    system_identifier: int
    timeline: int
    in_recovery: bool = False
    synchronous: bool = False  # its commits wait for synchronous standbys
    hold_message: str | None = None  # numbering is on hold, and why

    @property
    def identity(self) -> tuple[int, int]:
        return (self.system_identifier, self.timeline)


@dataclass(frozen=True)
class ConnectionUpdate:
    """The connection's state; ``last_refresh`` is when the data shown was last read."""

    state: ConnectionState
    last_refresh: datetime | None
    detail: str = ""


@dataclass(frozen=True)
class QueueUpdate:
    """The fresh queue of one doctor (same rows as ``hms-tui queue --json``)."""

    doctor: str
    business_date: date
    visits: tuple[Visit, ...]
    reason: str  # "initial", "change", "reconnect", "poll" or "server_changed" (failover)
    actions: tuple[str, ...] = ()  # the desk actions that caused it (for reason "change")


@dataclass(frozen=True)
class BoardUpdate:
    """Every doctor's day at a glance (the doctor list, with who is being served)."""

    board: tuple[DoctorBoard, ...]
    reason: str


@dataclass(frozen=True)
class BillUpdate:
    """Bills of a doctor's visits changed (screens that show bills refetch them)."""

    doctor: str


@dataclass(frozen=True)
class Refreshed:
    """A read round finished: everything shown is as fresh as ``at`` (the badge's time)."""

    at: datetime


Event = ConnectionUpdate | QueueUpdate | BoardUpdate | BillUpdate | Refreshed
