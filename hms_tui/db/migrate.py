"""The schema: numbered migrations for tables, and routines re-applied as a whole.

* ``sql/migrations/NNNN_name.sql`` hold tables and other DDL. Each is applied once, in order,
  and recorded in ``hms.schema_migrations`` with its checksum; an applied migration whose
  file has changed since is refused (the database and the code would disagree silently).
  ``0003_baseline.sql`` is release 0.1's migrations 0001-0003 squashed: a fresh database
  applies it, a database made by release 0.1 already has those three (their checksums are
  known below).
* ``sql/routines/*.sql`` hold functions, views and triggers, one file per area: the current
  truth of each area, not a history. When any of them changes (checksums in
  ``hms.schema_routines``), every routine is dropped and all files are applied again, in name
  order. A function changed, renamed or removed is therefore a one-file change.

``upgrade`` runs in one transaction under an advisory lock: two terminals upgrading at once
apply everything once, and a failure leaves the database as it was.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from hms_tui.domain.errors import SchemaMismatch

_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
_LOCK_KEY = 0x686D735F  # "hms_" as an advisory lock key
BASELINE = 3
# Release 0.1 applied its migrations one by one; a database made by it has these.
LEGACY: dict[int, tuple[str, str]] = {
    1: ("core", "9d565ad2fa05d659fc7ba78c192c06125b257e7cac94c7be12ab61b7878ce786"),
    2: ("notify", "dc3c1891efca030accd08d4b3471dccb63d8a8d8cdc312341886705c832eb0a5"),
    3: ("security", "3bda71e65b40f1cb9bc274f60087799eab8b64fb51ee8f20c0efc6297c99bd21"),
}

_BOOTSTRAP = """
    CREATE SCHEMA IF NOT EXISTS hms;
    CREATE TABLE IF NOT EXISTS hms.schema_migrations (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        checksum   text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE IF NOT EXISTS hms.schema_routines (
        file       text PRIMARY KEY,
        checksum   text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now());
"""

# Drop every routine: views, then functions (with their triggers), then composite types that
# are not tables. Functions that tables use (CHECK constraints, defaults, index expressions)
# belong to the migrations and stay.
_RESET = """
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS name FROM pg_class c
              WHERE c.relnamespace = 'hms'::regnamespace AND c.relkind IN ('v', 'm') LOOP
        EXECUTE format('DROP VIEW IF EXISTS %s CASCADE', r.name);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p
              WHERE p.pronamespace = 'hms'::regnamespace
                AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                 WHERE d.refclassid = 'pg_proc'::regclass AND d.refobjid = p.oid
                                   AND d.classid IN ('pg_constraint'::regclass,
                                                     'pg_attrdef'::regclass,
                                                     'pg_class'::regclass)) LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.name);
    END LOOP;
    FOR r IN SELECT t.oid::regtype AS name FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid
              WHERE t.typnamespace = 'hms'::regnamespace AND c.relkind = 'c' LOOP
        EXECUTE format('DROP TYPE IF EXISTS %s CASCADE', r.name);
    END LOOP;
END $$;
"""


# Every upgrade records the server it runs on and its synchronous standbys
# (sql/routines/45_failover.sql): numbering after a failover depends on it.
_OBSERVE = "SELECT * FROM hms.observe_server()"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return checksum(self.sql)

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class Routine:
    file: str
    sql: str

    @property
    def checksum(self) -> str:
        return checksum(self.sql)


def checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()


def _sql_files(folder: str) -> list[tuple[str, str]]:
    root = resources.files("hms_tui.db").joinpath("sql", folder)
    return sorted((entry.name, entry.read_text(encoding="utf-8")) for entry in root.iterdir()
                  if entry.name.endswith(".sql"))


def available() -> list[Migration]:
    found = []
    for name, sql in _sql_files("migrations"):
        match = _FILE.fullmatch(name)
        if match is None:
            raise RuntimeError(f"migration file {name} is not named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], sql))
    versions = [m.version for m in found]
    if versions != list(range(BASELINE, BASELINE + len(found))):
        raise RuntimeError(f"migration files are not numbered {BASELINE}..N: {versions}")
    return found


def routines() -> list[Routine]:
    return [Routine(name, sql) for name, sql in _sql_files("routines")]


def latest_version() -> int:
    return available()[-1].version


def current_version(conn: psycopg.Connection[Any]) -> int:
    """The applied version, 0 for a database without hms-tui's schema."""
    row = conn.execute("SELECT to_regclass('hms.schema_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM hms.schema_migrations").fetchone()
    return int(row[0]) if row else 0


def _expected(version: int, name: str) -> str | None:
    """The checksum an applied migration must have (None: this code does not know it)."""
    shipped = {m.version: m for m in available()}
    if version in shipped and shipped[version].name == name:
        return shipped[version].checksum
    legacy = LEGACY.get(version)
    if legacy is not None and legacy[0] == name:
        return legacy[1]
    return None


def _check_applied(conn: psycopg.Connection[Any]) -> int:
    """Refuse a database that is newer than this code or whose applied migrations were
    changed since; return its version."""
    have, want = current_version(conn), latest_version()
    if have > want:
        raise SchemaMismatch(
            f"the database schema is version {have}, newer than this hms-tui ({want}); "
            "upgrade hms-tui on this machine"
        )
    if have == 0:
        return 0
    for version, name, stored in conn.execute(
            "SELECT version, name, checksum FROM hms.schema_migrations ORDER BY version"):
        expected = _expected(version, name)
        if expected is None:
            raise SchemaMismatch(f"the database has migration {version:04d}_{name}, which this "
                                 "hms-tui does not know; upgrade hms-tui on this machine")
        if stored != expected:
            raise SchemaMismatch(
                f"migration {version:04d}_{name} was changed after it was applied to this "
                "database (its checksum differs); restore the shipped file, never edit an "
                "applied migration: add a new one")
    return have


def _routines_current(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass('hms.schema_routines') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return False
    stored = dict(conn.execute("SELECT file, checksum FROM hms.schema_routines").fetchall())
    return stored == {r.file: r.checksum for r in routines()}


def check_version(conn: psycopg.Connection[Any]) -> int:
    """Refuse to work on a database whose schema does not match this code."""
    have = _check_applied(conn)
    want = latest_version()
    if have < want or not _routines_current(conn):
        raise SchemaMismatch(
            f"the database schema is version {have}, this hms-tui needs {want}"
            + ("" if have < want else " with its current functions")
            + "; run: hms-tui db upgrade"
        )
    return have


def upgrade(conn: psycopg.Connection[Any]) -> list[Migration]:
    """Bring the schema up to date; return the migrations applied now. ``conn`` must be
    autocommit (the upgrade is one transaction of its own)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(_BOOTSTRAP)
        have = _check_applied(conn)
        pending = [m for m in available() if m.version > have]
        if not pending and _routines_current(conn):
            conn.execute(_OBSERVE)
            return []
        # Routines go first: migrations run on tables alone, whatever version they start from.
        conn.execute(_RESET)
        for step in pending:
            conn.execute(step.sql.encode())  # a trusted file shipped in the wheel, run as a script
            conn.execute(
                "INSERT INTO hms.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (step.version, step.name, step.checksum),
            )
        # Bodies are checked when called, not when created: files may refer to each other.
        conn.execute("SET LOCAL check_function_bodies = off")
        for routine in routines():
            conn.execute(routine.sql.encode())
        conn.execute("DELETE FROM hms.schema_routines")
        for routine in routines():
            conn.execute("INSERT INTO hms.schema_routines (file, checksum) VALUES (%s, %s)",
                         (routine.file, routine.checksum))
        conn.execute(_OBSERVE)
    return pending
