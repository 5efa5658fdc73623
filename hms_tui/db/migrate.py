"""Versioned schema migrations: numbered .sql files applied in order, each in one transaction.

``upgrade`` is idempotent (applied versions are recorded in ``hms.schema_migrations``),
serialised by an advisory lock (two terminals upgrading at once apply each file once), and
refuses a database that is newer than this code.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from hms_tui.core.errors import SchemaMismatch

_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
_LOCK_KEY = 0x686D735F  # "hms_" as an advisory lock key


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    found = []
    for entry in resources.files("hms_tui.db").joinpath("migrations").iterdir():
        match = _FILE.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration files are not numbered 1..N: {versions}")
    return found


def latest_version() -> int:
    return len(available())


def current_version(conn: psycopg.Connection[Any]) -> int:
    """The applied version, 0 for a database without hms-tui's schema."""
    row = conn.execute("SELECT to_regclass('hms.schema_migrations') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM hms.schema_migrations").fetchone()
    return int(row[0]) if row else 0


def check_version(conn: psycopg.Connection[Any]) -> int:
    """Refuse to work on a database whose schema does not match this code."""
    have, want = current_version(conn), latest_version()
    if have > want:
        raise SchemaMismatch(
            f"the database schema is version {have}, newer than this hms-tui ({want}); "
            "upgrade hms-tui on this machine"
        )
    if have < want:
        raise SchemaMismatch(
            f"the database schema is version {have}, this hms-tui needs {want}; "
            "run: hms-tui db upgrade"
        )
    return have


def upgrade(conn: psycopg.Connection[Any]) -> list[Migration]:
    """Apply what is missing; return the migrations applied now. ``conn`` must be autocommit."""
    applied: list[Migration] = []
    migrations = available()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute("CREATE SCHEMA IF NOT EXISTS hms")
        conn.execute(
            """CREATE TABLE IF NOT EXISTS hms.schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            have = current_version(conn)
            if have > len(migrations):
                raise SchemaMismatch(
                    f"the database schema is version {have}, newer than this hms-tui "
                    f"({len(migrations)}); refusing to touch it"
                )
            if have == len(migrations):
                return applied
            step = migrations[have]
            conn.execute(step.sql.encode())  # a trusted file shipped in the wheel, run as a script
            conn.execute(
                "INSERT INTO hms.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (step.version, step.name, step.checksum),
            )
            applied.append(step)
