"""The audit trail: append-only for everyone, and tamper-evident when a superuser goes around
the triggers. Each tamper test edits the trail as the superuser (triggers off) the way an
attacker would, then checks that ``audit verify`` names the first broken row -- and that an
untouched trail written by many concurrent terminals never raises a false alarm.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from typing import Any

import psycopg
import pytest

from hms_tui.db.connection import Database
from hms_tui.domain.errors import InvalidInput
from hms_tui.services import audit
from hms_tui.services.desk import Desk


def trail(desk: Desk, clinic: dict[str, Any]) -> int:
    """A small real trail (check-ins, calls, a bill, a cancel); returns its length."""
    p = clinic["patients"]
    for i in range(6):
        desk.checkin("D1" if i % 2 else "D2", p[i])
    v = desk.call_next("D1")
    desk.start(v.visit_id)
    desk.complete(v.visit_id)
    desk.create_bill(v.visit_id, [("Consultation", 500), ("Dressing", 120)])  # type: ignore[list-item]
    desk.cancel(desk.queue("D2")[0].visit_id, "left")
    result = audit.verify(desk.db)
    assert result.ok and result.rows_checked == result.head_seq >= 25
    return result.head_seq


class Superuser:
    """Edits made around the append-only triggers, as only a superuser can."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def run(self, *statements: str, params: tuple[Any, ...] = ()) -> None:
        with self.conn.transaction():
            self.conn.execute("SET LOCAL session_replication_role = replica")
            for stmt in statements:
                self.conn.execute(stmt, params if "%s" in stmt else None)

    def rehash(self, seq: int) -> None:
        """Recompute row seq's hash from its (changed) contents, as a careful forger would."""
        self.run("UPDATE hms.audit_events e SET hash = sha256(e.prev_hash || "
                 "convert_to(hms.audit_canon(e), 'UTF8')) WHERE seq = %s", params=(seq,))

    def rechain_from(self, seq: int) -> None:
        """Recompute prev_hash and hash of every row from seq to the end, and the head."""
        last = self.conn.execute("SELECT max(seq) FROM hms.audit_events").fetchone()
        assert last is not None
        for s in range(seq, last[0] + 1):
            self.run("UPDATE hms.audit_events e SET prev_hash = coalesce((SELECT p.hash FROM"
                     " hms.audit_events p WHERE p.seq = e.seq - 1), decode(repeat('00', 32), 'hex'))"
                     " WHERE seq = %s", params=(s,))
            self.rehash(s)
        self.run("UPDATE hms.audit_head SET last_seq = e.seq, last_hash = e.hash FROM"
                 " (SELECT seq, hash FROM hms.audit_events ORDER BY seq DESC LIMIT 1) e")


@pytest.fixture
def forger(sql: psycopg.Connection[Any]) -> Superuser:
    return Superuser(sql)


def broken_at(db: Database, anchor: audit.Anchor | None = None) -> tuple[int | None, str]:
    result = audit.verify(db, anchor)
    assert result.ok is (result.first_broken_seq is None)
    return result.first_broken_seq, result.reason or ""


# -- append-only ----------------------------------------------------------------------------------


def test_the_trail_is_append_only_even_for_the_owner(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    trail(desk, clinic)
    for stmt in ["UPDATE hms.audit_events SET actor = 'x' WHERE seq = 3",
                 "DELETE FROM hms.audit_events WHERE seq = 3",
                 "TRUNCATE hms.audit_events"]:
        with pytest.raises(psycopg.Error, match="append-only"):
            sql.execute(stmt)
    assert audit.verify(desk.db).ok


# -- tampering, found ------------------------------------------------------------------------------


def test_an_edited_row_is_found(desk: Desk, clinic: dict[str, Any], forger: Superuser) -> None:
    trail(desk, clinic)
    forger.run("UPDATE hms.audit_events SET actor = 'mallory' WHERE seq = 10")
    assert broken_at(desk.db) == (10, "its stored hash does not match its contents (the row was "
                                      "edited, forged, or moved from another seq)")


def test_an_edit_inside_the_json_image_is_found(desk: Desk, clinic: dict[str, Any],
                                               forger: Superuser) -> None:
    trail(desk, clinic)
    forger.run("UPDATE hms.audit_events SET after = jsonb_set(after, '{total}', '5')"
               " WHERE entity = 'bills'")
    seq = forger.conn.execute("SELECT seq FROM hms.audit_events WHERE entity = 'bills'").fetchone()
    assert seq is not None and broken_at(desk.db)[0] == seq[0]


def test_an_edited_row_with_a_recomputed_hash_is_found(
    desk: Desk, clinic: dict[str, Any], forger: Superuser
) -> None:
    trail(desk, clinic)
    forger.run("UPDATE hms.audit_events SET actor = 'mallory' WHERE seq = 7")
    forger.rehash(7)
    seq, reason = broken_at(desk.db)
    assert (seq, reason.startswith("its hash is not the one row 8 was chained to")) == (7, True)


def test_a_deleted_row_is_found(desk: Desk, clinic: dict[str, Any], forger: Superuser) -> None:
    trail(desk, clinic)
    forger.run("DELETE FROM hms.audit_events WHERE seq = 12")
    assert broken_at(desk.db) == (12, "row 12 is missing (deleted, or its seq was changed)")
    forger.run("DELETE FROM hms.audit_events WHERE seq IN (4, 5)")
    assert broken_at(desk.db)[0] == 4


def test_a_deleted_last_row_is_found(desk: Desk, clinic: dict[str, Any], forger: Superuser) -> None:
    n = trail(desk, clinic)
    forger.run(f"DELETE FROM hms.audit_events WHERE seq = {n}")
    seq, reason = broken_at(desk.db)
    assert seq == n and "deleted from the end" in reason


def test_reordered_rows_are_found(desk: Desk, clinic: dict[str, Any], forger: Superuser) -> None:
    trail(desk, clinic)
    forger.run("UPDATE hms.audit_events SET seq = -1 WHERE seq = 9",
               "UPDATE hms.audit_events SET seq = 9 WHERE seq = 14",
               "UPDATE hms.audit_events SET seq = 14 WHERE seq = -1")
    result = audit.verify(desk.db)
    assert (result.ok, result.first_broken_seq, result.problems) == (False, 9, 2)


def test_forged_rows_are_found(desk: Desk, clinic: dict[str, Any], forger: Superuser) -> None:
    n = trail(desk, clinic)
    # A row appended with a made-up hash (and the head left alone, or moved on too).
    forger.run("INSERT INTO hms.audit_events SELECT seq + 1, at, 'mallory', terminal, action,"
               " entity, entity_id, visit_id, op, txid, before, after, hash, sha256('x')"
               f" FROM hms.audit_events WHERE seq = {n}")
    assert broken_at(desk.db)[0] == n + 1
    forger.run("UPDATE hms.audit_head SET last_seq = last_seq + 1, last_hash = sha256('x')")
    assert broken_at(desk.db) == (n + 1, "its stored hash does not match its contents (the row "
                                         "was edited, forged, or moved from another seq)")
    # A forged row in place of a deleted one, chained correctly to its predecessor.
    forger.run("DELETE FROM hms.audit_events WHERE seq = 5",
               "INSERT INTO hms.audit_events SELECT 5, at, 'mallory', terminal, action, entity,"
               " entity_id, visit_id, op, txid, before, after, hash, hash"
               " FROM hms.audit_events WHERE seq = 4")
    forger.rehash(5)
    assert broken_at(desk.db)[0] == 5
    # Timestamps no legitimate row has cannot crash the verifier either.
    forger.run("UPDATE hms.audit_events SET at = 'infinity' WHERE seq = 3")
    assert broken_at(desk.db) == (3, "it has a timestamp no audit row can have (forged)")


def test_a_consistent_rewrite_is_caught_by_the_anchor(
    desk: Desk, clinic: dict[str, Any], forger: Superuser
) -> None:
    """A forger who recomputes every hash to the end leaves a self-consistent chain; the anchor
    kept outside the database is what catches it."""
    n = trail(desk, clinic)
    anchor = audit.anchor(desk.db)
    assert (anchor.seq, len(anchor.hash)) == (n, 64)
    desk.checkin("D2", clinic["patients"][8])  # legitimate writes after the anchor are fine
    assert audit.verify(desk.db, anchor).ok and audit.verify(desk.db, anchor).anchor_ok

    # Replace the anchored (then last) row by a forged one appended with a correct hash.
    forger.run(f"DELETE FROM hms.audit_events WHERE seq >= {n}",
               "INSERT INTO hms.audit_events SELECT seq + 1, at, 'mallory', terminal, 'checkin',"
               " entity, entity_id, visit_id, op, txid, before, after, hash, hash"
               f" FROM hms.audit_events WHERE seq = {n - 1}")
    forger.rechain_from(n)
    assert audit.verify(desk.db).ok  # the chain alone cannot tell
    result = audit.verify(desk.db, anchor)
    assert (result.ok, result.first_broken_seq, result.anchor_ok) == (False, n, False)
    assert "rewritten since the anchor was taken" in (result.reason or "")

    # Cut back below the anchor (rows and head): the anchored row is gone.
    forger.run(f"DELETE FROM hms.audit_events WHERE seq >= {n - 2}")
    forger.rechain_from(1)
    assert audit.verify(desk.db).ok
    assert broken_at(desk.db, anchor) == (n, f"the anchored row {n} is gone: the trail ends at "
                                             f"row {n - 3} (it was cut back)")


def test_anchors_are_parsed_strictly() -> None:
    assert str(audit.Anchor.parse(" 12:" + "AB" * 32 + "\n")) == "12:" + "ab" * 32
    for bad in ["12", "12:abc", "x:" + "0" * 64, "0:" + "1" * 64, "-1:" + "0" * 64]:
        with pytest.raises(InvalidInput):
            audit.Anchor.parse(bad)


# -- the canonical text, rebuilt independently -----------------------------------------------------


def test_python_canonical_text_is_the_databases(
    desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    desk.add_patient("👩🏽‍⚕️ Zoë e\u0301 张伟 [/b] 'x'; -- \\ \u200b\ufeff %_")
    desk.configure(clinic_name="Ünïcode Clinic ☤")
    trail(desk, clinic)
    rows = sql.execute(audit._ROWS_SQL).fetchall()
    theirs = dict(sql.execute("SELECT seq, hms.audit_canon(e) FROM hms.audit_events e").fetchall())
    for row in rows:
        mine = audit.canonical_text(audit.row_fields(row))
        assert mine == theirs[row[0]]
        assert hashlib.sha256(bytes(row[13]) + mine.encode()).digest() == bytes(row[14])
    assert len(rows) > 20


# -- no false alarms ------------------------------------------------------------------------------


def test_no_false_alarm_on_thousands_of_rows_from_concurrent_terminals(
    dsn: str, sql: psycopg.Connection[Any], db: Database
) -> None:
    """8 terminals write 2,000+ rows at once while a verifier keeps checking the live trail."""
    doctors = [f"D{i}" for i in range(1, 9)]
    for code in doctors:
        sql.execute("SELECT hms.add_doctor(%s, %s, NULL, NULL)", (code, f"Dr {code}"))
    per_terminal = 260
    patients = [r[0] for r in sql.execute(
        "SELECT (hms.add_patient('Patient ' || g, NULL, NULL)).id FROM generate_series(1, %s) g",
        (per_terminal,))]
    errors: list[BaseException] = []
    checks: list[audit.VerifyResult] = []
    done = threading.Event()

    def terminal(i: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT set_config('hms.terminal', %s, false)", (f"desk-{i}",))
                for n, patient in enumerate(patients):
                    conn.execute("SELECT hms.checkin(%s, %s)", (doctors[i], patient))
                    if n % 10 == 9:
                        conn.execute("SELECT hms.call_next(%s, true)", (doctors[i],))  # forced
        except BaseException as exc:
            errors.append(exc)

    def verifier() -> None:
        try:
            while not done.is_set():
                checks.append(audit.verify(db, batch=500))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=terminal, args=(i,)) for i in range(8)]
    checking = threading.Thread(target=verifier)
    checking.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    done.set()
    checking.join(timeout=60)
    assert errors == []
    final = audit.verify(db)
    assert final.ok, final
    assert final.rows_checked == final.head_seq >= 2000 + 8 * per_terminal // 10
    assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok][:1]
    terminals = sql.execute("SELECT count(DISTINCT terminal) FROM hms.audit_events"
                            " WHERE terminal LIKE 'desk-%'").fetchone()
    assert terminals == (8,)


# -- the commands ----------------------------------------------------------------------------------


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hms_tui", *args], env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=120, check=False)


def test_audit_commands(cli_env: dict[str, str], desk: Desk, clinic: dict[str, Any],
                        forger: Superuser) -> None:
    n = trail(desk, clinic)
    done = run_cli(cli_env, "audit", "anchor")
    assert done.returncode == 0, done.stderr
    anchor = done.stdout.strip()
    assert anchor == str(audit.anchor(desk.db)) and anchor.startswith(f"{n}:")
    head = json.loads(run_cli(cli_env, "audit", "anchor", "--json").stdout)
    assert head == {"seq": n, "hash": anchor.split(":")[1]}
    done = run_cli(cli_env, "audit", "verify", "--anchor", anchor)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"audit trail OK: {n} rows checked") and "matches" in done.stdout

    forger.run("UPDATE hms.audit_events SET terminal = 'elsewhere' WHERE seq = 6")
    done = run_cli(cli_env, "audit", "verify")
    assert done.returncode == 10
    assert done.stdout.startswith("audit trail BROKEN at row 6: its stored hash does not match")
    assert done.stderr == ("hms-tui: error: the audit trail was tampered with: first broken row 6\n")
    done = run_cli(cli_env, "audit", "verify", "--json")
    result = json.loads(done.stdout)
    assert done.returncode == 10 and json.loads(done.stderr)["kind"] == "TamperDetected"
    assert (result["ok"], result["first_broken_seq"], result["rows_checked"]) == (False, 6, n)
    done = run_cli(cli_env, "audit", "verify", "--anchor", "not-an-anchor")
    assert done.returncode == 2 and "SEQ:HASH" in done.stderr
