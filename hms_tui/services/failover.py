"""Durability and failover, as an admin sees them: what the server is, how its commits are
replicated, what a failover would lose, and the numbering hold (``sql/routines/45_failover.sql``).

``Failover.status()`` gathers the facts (``hms-tui db status``, the admin screen);
``warnings(status)`` turns them into the lines a person must read: an asynchronous standby or
``synchronous_commit`` off means a failover can lose acknowledged actions, and lost tokens
would be issued again if the server did not hold numbering. ``confirm`` and ``hold`` are the
admin's two actions on the hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hms_tui.db.connection import Database
from hms_tui.domain import validation
from hms_tui.domain.errors import Forbidden, InvalidInput
from hms_tui.domain.events import ServerInfo

MAX_SKIP = 1000


@dataclass(frozen=True)
class Standby:
    """One standby as the primary sees it (pg_stat_replication)."""

    name: str
    state: str | None  # streaming, catchup, ...; None when not visible to this login
    sync_state: str | None  # sync, quorum, potential, async
    replay_lag: timedelta | None
    visible: bool


@dataclass(frozen=True)
class Hold:
    id: int
    reason: str
    detail: str
    placed_at: datetime
    placed_by: str
    lifted_at: datetime | None
    lifted_by: str | None
    lift_note: str | None
    skipped: int | None
    automatic: bool
    evidence: list[Any] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.lifted_at is None


@dataclass(frozen=True)
class Durability:
    server: ServerInfo
    synchronous_commit: str
    synchronous_standby_names: str
    standbys: tuple[Standby, ...] | None  # None: this login may not see them
    holds: tuple[Hold, ...] | None  # newest first; None: this login may not see them

    @property
    def held(self) -> bool:
        return self.server.hold_message is not None


@dataclass(frozen=True)
class Confirmed:
    lifted: int
    skipped: int
    doctors: int


def warnings(status: Durability) -> list[str]:
    """What a failover or a crash could do to acknowledged actions, one line each."""
    out: list[str] = []
    if status.server.hold_message:
        out.append(status.server.hold_message)
    names = status.synchronous_standby_names.strip()
    commit = status.synchronous_commit
    if commit == "off":
        out.append("synchronous_commit is off: a crash or a failover can lose acknowledged "
                   "actions (hms-tui still makes every token and bill number durable)")
    elif commit == "local" and names:
        out.append("synchronous_commit is local: commits do not wait for the synchronous "
                   "standbys, so a failover can lose acknowledged actions (hms-tui still makes "
                   "every token and bill number wait for them)")
    standbys = status.standbys or ()
    if standbys and not all(s.visible for s in standbys):
        out.append("the standbys' replication state is hidden from this login: grant "
                   "pg_monitor to the schema owner to see it here")
    for s in standbys:
        if s.visible and s.sync_state in ("async", "potential"):
            out.append(f"standby {s.name} is asynchronous ({s.sync_state}): a failover to it "
                       "can lose acknowledged check-ins; numbering would then stop until an "
                       "admin confirms")
    if names:
        streaming = [s for s in standbys if s.visible and s.state == "streaming"
                     and s.sync_state in ("sync", "quorum")]
        if status.standbys is not None and all(s.visible for s in standbys) and not streaming:
            out.append(f"no synchronous standby is streaming (synchronous_standby_names = "
                       f"'{names}'): every check-in waits until one is back")
        elif len(streaming) == 1 and not names.upper().startswith("ANY"):
            out.append(f"one synchronous standby ({streaming[0].name}): if it stalls every desk "
                       "waits; run two with synchronous_standby_names = 'ANY 1 (s1, s2)'")
    return out


class Failover:
    def __init__(self, db: Database) -> None:
        self.db = db

    def status(self) -> Durability:
        row = self.db.call("SELECT * FROM hms.observe_server()", retry=True)[0]
        server = ServerInfo(int(row["system_identifier"]), int(row["timeline"]),
                            bool(row["in_recovery"]), bool(row["synchronous"]),
                            row["hold_message"])
        settings = self.db.call("SELECT * FROM hms.durability_settings()", retry=True)[0]
        standbys: tuple[Standby, ...] | None
        holds: tuple[Hold, ...] | None
        try:
            standbys = tuple(Standby(**r) for r in self.db.call(
                "SELECT * FROM hms.replication_status()", retry=True))
        except Forbidden:
            standbys = None
        try:
            holds = tuple(Hold(**{k: r[k] for k in Hold.__dataclass_fields__})
                          for r in self.db.call("SELECT * FROM hms.numbering_holds(5)",
                                                retry=True))
        except Forbidden:
            holds = None
        return Durability(server, settings["synchronous_commit"],
                          settings["synchronous_standby_names"], standbys, holds)

    def confirm(self, note: str, skip: int = 0) -> Confirmed:
        """Lift the numbering hold after a person checked what was lost; ``skip`` moves every
        doctor's token numbers of today forward so that lost tokens are not issued again."""
        text = validation.clean_text(note, "note", 200)
        if not 0 <= skip <= MAX_SKIP:
            raise InvalidInput(f"skip must be 0-{MAX_SKIP}, not {skip}")
        row = self.db.call("SELECT * FROM hms.confirm_failover(%(note)s, %(skip)s)",
                           {"note": text, "skip": skip})[0]
        return Confirmed(**row)

    def hold(self, note: str) -> int:
        """Stop numbering until an admin confirms (e.g. before terminals reach a standby that
        was promoted while it was not synchronous)."""
        text = validation.clean_text(note, "note", 200)
        return int(self.db.call("SELECT hms.hold_numbering(%(note)s) AS id",
                                {"note": text})[0]["id"])
