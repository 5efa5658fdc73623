"""The schema as code: a fresh database and one upgraded from release 0.1 end up with the same
catalog; an applied migration that was edited is refused; a changed routine file is applied
again on the next upgrade."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hms_tui.db import migrate
from hms_tui.domain.errors import SchemaMismatch
from tests.conftest import with_dbname

RELEASE_0_1 = Path(__file__).parent / "fixtures" / "release_0_1"

# Everything of the schema a terminal depends on, one sorted list per kind of object.
CATALOG = {
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_function_result(p.oid), p.prosecdef,
               p.provolatile, p.proconfig::text, md5(p.prosrc), p.proacl::text
          FROM pg_proc p WHERE p.pronamespace = 'hms'::regnamespace""",
    "columns": """
        SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE c.relnamespace = 'hms'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped""",
    "relations": """
        SELECT c.relname, c.relkind, c.relacl::text, c.reloptions::text
          FROM pg_class c WHERE c.relnamespace = 'hms'::regnamespace AND c.relkind <> 'i'""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace = 'hms'::regnamespace""",
    "indexes": """
        SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'hms'""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
          FROM pg_trigger WHERE NOT tgisinternal
           AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'hms'::regnamespace)""",
    "views": """
        SELECT viewname, definition FROM pg_views WHERE schemaname = 'hms'""",
    "types": """
        SELECT t.typname, t.typtype, coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                                                 FROM pg_enum e WHERE e.enumtypid = t.oid), '')
          FROM pg_type t WHERE t.typnamespace = 'hms'::regnamespace AND t.typtype IN ('c', 'e')""",
    "schema": """
        SELECT nspname, nspacl::text FROM pg_namespace WHERE nspname = 'hms'""",
    "default privileges": """
        SELECT defaclobjtype, defaclacl::text FROM pg_default_acl""",
}


def catalog(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    return {kind: sorted(conn.execute(sql).fetchall(), key=repr) for kind, sql in CATALOG.items()}


@pytest.fixture
def empty_db(server_dsn: str) -> Iterator[str]:
    name = f"hms_m_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield with_dbname(server_dsn, name)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def install_release_0_1(conn: psycopg.Connection[Any]) -> None:
    """What release 0.1's runner did: each file in its own transaction, recorded by checksum."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS hms")
    conn.execute("""CREATE TABLE IF NOT EXISTS hms.schema_migrations (
                        version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now())""")
    for path in sorted(RELEASE_0_1.glob("*.sql")):
        sql = path.read_text(encoding="utf-8")
        version, name = int(path.name[:4]), path.stem[5:]
        with conn.transaction():
            conn.execute(sql.encode())
            conn.execute("INSERT INTO hms.schema_migrations VALUES (%s, %s, %s)",
                         (version, name, hashlib.sha256(sql.encode()).hexdigest()))


def test_a_fresh_database_and_one_upgraded_from_release_0_1_are_the_same(
    dsn: str, empty_db: str
) -> None:
    with psycopg.connect(empty_db, autocommit=True) as old:
        install_release_0_1(old)
        # A morning made by release 0.1's own functions, which the upgrade replaces.
        old.execute("SELECT hms.add_doctor('D1', 'Dr Rao', 'Room 3', NULL)")
        patient = old.execute("SELECT (hms.add_patient('Kumar, Anil', NULL, NULL)).id").fetchone()
        assert patient is not None
        old.execute("SELECT hms.checkin('D1', %s)", patient)
        assert [m.label for m in migrate.upgrade(old)] == [
            m.label for m in migrate.available() if m.version > migrate.BASELINE]
        upgraded = catalog(old)
        queue = old.execute("SELECT token, position FROM hms.queue('D1')").fetchall()
        assert queue == [("D1-001", 1)]  # the old day's data reads through the new functions
    with psycopg.connect(dsn, autocommit=True) as fresh:
        assert migrate.check_version(fresh) == migrate.latest_version()
        for kind, rows in catalog(fresh).items():
            assert upgraded[kind] == rows, kind


def test_an_edited_applied_migration_is_refused(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE hms.schema_migrations SET checksum = 'edited' WHERE version = 3")
        for check in (migrate.upgrade, migrate.check_version):
            with pytest.raises(SchemaMismatch, match=r"migration 0003_baseline was changed after "
                                                     r"it was applied"):
                check(conn)


def test_an_edited_release_0_1_migration_is_refused(empty_db: str) -> None:
    with psycopg.connect(empty_db, autocommit=True) as conn:
        install_release_0_1(conn)
        conn.execute("UPDATE hms.schema_migrations SET checksum = 'edited' WHERE version = 2")
        with pytest.raises(SchemaMismatch, match="migration 0002_notify was changed"):
            migrate.upgrade(conn)
        assert conn.execute("SELECT to_regclass('hms.schema_routines')").fetchone() == (None,)


def test_a_changed_routine_file_is_applied_again(dsn: str) -> None:
    """The terminals refuse a database whose functions are not this code's; `db upgrade`
    (or the embedded server's start) re-applies every routine file."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE hms.schema_routines SET checksum = 'old' WHERE file = '41_visits.sql'")
        # What an older 41_visits.sql left behind: a function the current files do not have.
        conn.execute("CREATE FUNCTION hms.retired_helper() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        with pytest.raises(SchemaMismatch, match="with its current functions; run: hms-tui db "
                                                 "upgrade"):
            migrate.check_version(conn)
        assert migrate.upgrade(conn) == []  # no migration, but the routines again
        assert migrate.check_version(conn) == migrate.latest_version()
        assert conn.execute("SELECT to_regproc('hms.retired_helper')").fetchone() == (None,)
        stored = dict(conn.execute("SELECT file, checksum FROM hms.schema_routines").fetchall())
        assert stored == {r.file: r.checksum for r in migrate.routines()}
