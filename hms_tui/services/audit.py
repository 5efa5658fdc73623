"""Checking the audit trail: every row's hash is recomputed here, in Python, from its columns.

The database writes the trail (``hms.audit_seal`` in db/sql/routines/10_audit.sql, at commit):
each row stores ``hash = sha256(prev_hash || canonical text)`` and the ``prev_hash`` of the row
before.
This module does not trust the functions that wrote it (a superuser could replace them): it
rebuilds the canonical text itself, exactly as ``hms.audit_canon`` defines it --

    seq, epoch microseconds of at, actor, terminal, action, entity, entity_id, visit_id, op,
    txid, before::text, after::text, hex of prev_hash

each field written ``<length in characters or '-' for NULL>:<text>``, joined by ``|`` --
and walks the rows in seq order on a server-side cursor (a million rows fit in memory),
inside one REPEATABLE READ snapshot (rows and head agree even while terminals keep writing).

What it finds: an edited, deleted, reordered or forged row, a head that does not match the
last row. What no chain can find on its own: a superuser who rewrites the trail from some row
to the end and recomputes every hash after it. That is what an anchor is for: ``anchor()``
gives ``SEQ:HASH`` of the head, kept outside the database (printed, mailed, in another
system); ``verify(anchor=...)`` checks that row SEQ still has that hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from hms_tui.db.connection import Database, translated_errors
from hms_tui.domain.errors import Forbidden, HmsError, InvalidInput

ZERO_HASH = bytes(32)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ANCHOR = re.compile(r"(\d{1,19}):([0-9a-fA-F]{64})")

# Timestamps Python can hold; anything else (infinity, year 10000+) is not a trail row.
_ROWS_SQL = """
    SELECT seq,
           CASE WHEN at BETWEEN '0001-01-01 00:00:00+00' AND '9999-12-30 00:00:00+00' THEN at END,
           at IS NOT NULL,
           actor, terminal, action, entity, entity_id, visit_id, op, txid,
           before::text, after::text, prev_hash, hash
      FROM hms.audit_events
     ORDER BY seq
"""


class TamperDetected(HmsError):
    """The audit trail does not verify: a row was changed, removed, reordered or forged."""

    exit_code = 10


@dataclass(frozen=True)
class Anchor:
    """A row's seq and hash, kept outside the database to check the trail against later."""

    seq: int
    hash: str  # lower-case hex

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        match = _ANCHOR.fullmatch(text.strip())
        if not match:
            raise InvalidInput(
                "an anchor is SEQ:HASH as printed by `hms-tui audit anchor` "
                "(a row number, a colon and 64 hex digits)"
            )
        seq, digest = int(match[1]), match[2].lower()
        if seq == 0 and digest != ZERO_HASH.hex():
            raise InvalidInput("the anchor of row 0 (an empty trail) is the zero hash")
        return cls(seq, digest)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows_checked: int
    head_seq: int
    head_hash: str
    first_broken_seq: int | None
    reason: str | None
    problems: int  # rows found wrong (the first is first_broken_seq)
    anchor: str | None  # the anchor checked, if any
    anchor_ok: bool | None
    pending: int = 0  # changes committed but not sealed into the chain yet (none is lost)

    def describe(self) -> str:
        checked = f"{self.rows_checked} row{'s' if self.rows_checked != 1 else ''} checked"
        if self.ok:
            text = f"audit trail OK: {checked}, head {self.head_seq}:{self.head_hash}"
            if self.anchor is not None:
                text += f"; anchor {self.anchor} matches"
            if self.pending:
                text += f"; {self.pending} newer change(s) not sealed yet (another session is "
                text += "sealing)"
            return text
        more = f" ({self.problems} problems in all)" if self.problems > 1 else ""
        return (f"audit trail BROKEN at row {self.first_broken_seq}: {self.reason}{more}; "
                f"{checked}")


def canonical_text(fields: Sequence[str | None]) -> str:
    """``hms.audit_canon``: each field as ``<length or '-'>:<text>``, joined by ``|``."""
    return "|".join("-:" if f is None else f"{len(f)}:{f}" for f in fields)


def epoch_us(at: datetime) -> int:
    """``hms.epoch_us``: whole microseconds since 1970-01-01 UTC (exact, no float)."""
    return (at - _EPOCH) // _MICROSECOND


def row_hash(prev_hash: bytes, canon: str) -> bytes:
    return hashlib.sha256(prev_hash + canon.encode("utf-8")).digest()


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def row_fields(row: Sequence[Any]) -> list[str | None]:
    """The canonical fields of a row fetched by ``_ROWS_SQL`` (at must be present)."""
    (seq, at, _has_at, actor, terminal, action, entity, entity_id, visit_id, op, txid,
     before, after, prev_hash, _hash) = row
    return [str(seq), str(epoch_us(at)), actor, terminal, action, entity, _opt(entity_id),
            _opt(visit_id), op, _opt(txid), before, after, bytes(prev_hash).hex()]


class _Walk:
    """The state of one pass over the rows."""

    def __init__(self, anchor: Anchor | None) -> None:
        self.anchor = anchor
        self.anchor_ok: bool | None = None
        self.expected = 1
        self.prev_stored = ZERO_HASH
        self.prev_flagged = False  # was the previous row reported broken?
        self.rows = 0
        self.first: int | None = None
        self.reason: str | None = None
        self.problems = 0
        self._last_flagged: int | None = None

    def flag(self, seq: int, reason: str) -> None:
        if seq == self._last_flagged:
            return
        self._last_flagged = seq
        self.problems += 1
        if self.first is None or seq < self.first:
            self.first, self.reason = seq, reason

    def check_anchor(self, seq: int, stored: bytes) -> None:
        if self.anchor is None or seq != self.anchor.seq:
            return
        self.anchor_ok = stored.hex() == self.anchor.hash
        if not self.anchor_ok:
            self.flag(seq, f"its hash is not the anchor's ({self.anchor}): the trail up to row "
                           f"{seq} was rewritten since the anchor was taken")

    def row(self, row: Sequence[Any]) -> None:
        seq, at, has_at = row[0], row[1], row[2]
        prev_hash, stored = bytes(row[13]), bytes(row[14])
        self.rows += 1
        # A row right after a gap or after a broken row cannot link to its predecessor:
        # that is already reported, so its link is not checked again.
        explained = self.prev_flagged
        if seq != self.expected:
            missing = (f"row {self.expected} is missing" if seq == self.expected + 1
                       else f"rows {self.expected} to {seq - 1} are missing")
            self.flag(self.expected, f"{missing} (deleted, or its seq was changed)")
            explained = True
        broken = True
        if at is None:
            what = "no timestamp" if not has_at else "a timestamp no audit row can have"
            self.flag(seq, f"it has {what} (forged)")
        elif row_hash(prev_hash, canonical_text(row_fields(row))) != stored:
            self.flag(seq, "its stored hash does not match its contents (the row was edited, "
                           "forged, or moved from another seq)")
        elif prev_hash != self.prev_stored and not explained:
            if seq == 1:
                self.flag(seq, "the first row does not start from the zero hash")
            else:
                # This row is intact but was chained to another hash than the one row seq-1
                # has now: row seq-1 was rewritten with a recomputed hash, or replaced.
                self.flag(seq - 1, f"its hash is not the one row {seq} was chained to (the row "
                                   "was rewritten and its hash recomputed, or replaced)")
                broken = False
        else:
            broken = False
        self.check_anchor(seq, stored)
        self.prev_stored = stored
        self.prev_flagged = broken
        self.expected = seq + 1

    def finish(self, head_seq: int, head_hash: bytes) -> None:
        last = self.expected - 1
        if head_seq > last:
            self.flag(last + 1, f"the head says the trail ends at row {head_seq}, but it ends at "
                                f"row {last}: rows were deleted from the end")
        elif head_seq < last:
            self.flag(head_seq + 1, f"rows {head_seq + 1} to {last} are past the head (row "
                                    f"{head_seq}): written around hms.audit_append (forged)")
        elif last > 0 and head_hash != self.prev_stored:
            self.flag(last, "its hash is not the head's (the head or the row was changed)")
        elif last == 0 and head_hash != ZERO_HASH:
            self.flag(1, "the trail is empty but the head's hash is not the zero hash")
        if self.anchor is not None and self.anchor_ok is None:
            if self.anchor.seq == 0:
                self.anchor_ok = True  # the zero hash (Anchor.parse checks it)
            else:
                self.anchor_ok = False
                if self.anchor.seq > last:
                    self.flag(self.anchor.seq, f"the anchored row {self.anchor.seq} is gone: the "
                                               f"trail ends at row {last} (it was cut back)")


def walk(rows: Iterable[Sequence[Any]], head_seq: int, head_hash: bytes,
         anchor: Anchor | None = None) -> VerifyResult:
    """Check rows (in seq order, as ``_ROWS_SQL`` returns them) against the head and anchor."""
    state = _Walk(anchor)
    for row in rows:
        state.row(row)
    state.finish(head_seq, head_hash)
    return VerifyResult(
        ok=state.first is None,
        rows_checked=state.rows,
        head_seq=head_seq,
        head_hash=head_hash.hex(),
        first_broken_seq=state.first,
        reason=state.reason,
        problems=state.problems,
        anchor=None if anchor is None else str(anchor),
        anchor_ok=state.anchor_ok,
    )


def _forbidden() -> Forbidden:
    return Forbidden("reading the audit trail needs the hms_admin role (or the schema owner)")


def anchor(db: Database) -> Anchor:
    """The head of the trail now: keep it outside the database."""
    with translated_errors(), db.pooled() as conn:
        try:
            row = conn.execute("SELECT last_seq, last_hash FROM hms.audit_head").fetchone()
        except psycopg.errors.InsufficientPrivilege:
            raise _forbidden() from None
    if row is None:
        raise TamperDetected("the audit head row is missing")
    return Anchor(int(row[0]), bytes(row[1]).hex())


def seal(db: Database, *, batch: int = 10000) -> int:
    """Seal every committed change not in the chain yet (a few after busy commits, many after
    a bulk import); returns how many. Stops when another session holds the head."""
    total = 0
    while True:
        try:
            sealed = int(db.call("SELECT hms.audit_seal(%(n)s) AS n", {"n": batch})[0]["n"])
        except Forbidden:
            raise _forbidden() from None
        total += sealed
        if sealed < batch:
            return total


def verify(db: Database, anchor: Anchor | None = None, *, batch: int = 5000) -> VerifyResult:
    """Seal what is pending, then walk the whole trail in one snapshot (module docstring)."""
    seal(db)
    with translated_errors(), db.pooled() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        try:
            with conn.transaction():
                head = conn.execute("SELECT last_seq, last_hash FROM hms.audit_head").fetchone()
                if head is None:
                    raise TamperDetected("the audit head row is missing")
                pending = conn.execute("SELECT count(*) FROM hms.audit_pending").fetchone()
                with conn.cursor(name="hms_audit_verify") as cur:
                    cur.itersize = batch
                    cur.execute(_ROWS_SQL)
                    result = walk(cur, int(head[0]), bytes(head[1]), anchor)
                return dataclasses.replace(result, pending=int(pending[0]) if pending else 0)
        except psycopg.errors.InsufficientPrivilege:
            raise _forbidden() from None
        finally:
            conn.isolation_level = None
            conn.read_only = None
