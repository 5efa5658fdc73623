"""Real PostgreSQL for every test.

HMS_TEST_DSN (e.g. postgresql://postgres@127.0.0.1:5432/postgres) points at a server where we
may create databases; without it an embedded PostgreSQL 18 starts in a temporary directory
for the session. The schema is migrated once into a template database; each test gets its own
clone (CREATE DATABASE ... TEMPLATE), so tests are isolated and fast.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import conninfo as pg_conninfo

from hms_tui.db import migrate
from hms_tui.db.connection import Database
from hms_tui.services.desk import Desk

TEMPLATE = f"hms_tmpl_{os.getpid()}"
pytest_plugins = ["tests.cups_server"]  # the private cupsd fixtures (cups, cups_env)


def with_dbname(conninfo: str, dbname: str) -> str:
    params: dict[str, Any] = pg_conninfo.conninfo_to_dict(conninfo)
    params["dbname"] = dbname
    return pg_conninfo.make_conninfo(**params)


def reachable_dir(prefix: str) -> Path:
    """A fresh directory outside pytest's basetemp (a concurrent run may prune old basetemps)
    that the embedded server's user can enter when the tests run as root (mode 0711)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o711)
    return base


@pytest.fixture
def server_home() -> Iterator[Path]:
    """A directory for an embedded server of the test's own; removed afterwards."""
    base = reachable_dir("hms-test-home-")
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    """An admin conninfo of the server the session uses."""
    dsn = os.environ.get("HMS_TEST_DSN")
    if dsn:
        yield dsn
        return
    from hms_tui.db.embedded import EmbeddedServer

    base = reachable_dir("hms-test-pg-")
    server = EmbeddedServer(base / "data")
    conninfo = server.start()
    yield with_dbname(conninfo, "postgres")
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(server_dsn: str) -> Iterator[str]:
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
        admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
    with psycopg.connect(with_dbname(server_dsn, TEMPLATE), autocommit=True) as conn:
        migrate.upgrade(conn)
    yield TEMPLATE
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')


@pytest.fixture
def dsn(server_dsn: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for this test."""
    name = f"hms_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield with_dbname(server_dsn, name)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(dsn: str) -> Iterator[Database]:
    database = Database(dsn, terminal="pytest")
    yield database
    database.dispose()


@pytest.fixture
def desk(db: Database) -> Desk:
    return Desk(db)


@pytest.fixture
def sql(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain autocommit connection to the test database, for checking what is stored."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def clinic(desk: Desk) -> dict[str, Any]:
    """Two doctors and ten patients."""
    desk.add_doctor("D1", "Dr Rao", "Room 3")
    desk.add_doctor("D2", "Dr Mehta", "Room 5")
    patients = [desk.add_patient(f"Patient {i:02d}").id for i in range(10)]
    return {"doctors": ["D1", "D2"], "patients": patients}


def open_every_day(desk: Desk, *doctors: str) -> None:
    """Sessions all day, every day, in 5-minute slots of 50, so tests may book near any time."""
    for code in doctors:
        desk.add_session(code, days="mon,tue,wed,thu,fri,sat,sun", start="00:00", end="23:55",
                         slot_minutes=5, capacity=50)


def slot_at(at: Any) -> Any:
    """``at`` (a datetime) moved on to the next 5-minute slot boundary."""
    from datetime import timedelta

    base = at.replace(second=0, microsecond=0)
    return base + timedelta(minutes=(5 - base.minute % 5) % 5)


@pytest.fixture
def cli_env(dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for running the hms-tui command against the test database."""
    env = dict(os.environ)
    env["HMS_DATABASE_URL"] = dsn
    env["HMS_TUI_CONFIG"] = ""
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return env


# -- staff logins (tests of roles and privileges) ----------------------------------------------


class StaffLogins:
    """Creates PostgreSQL login roles for one test through ``hms.staff_add`` (as the superuser).
    Roles are cluster-global and the suite runs many databases on one server: names are unique
    (``t_<role>_<random>``) and every role is dropped when the test ends."""

    def __init__(self, server_dsn: str, dsn: str) -> None:
        self.server_dsn = server_dsn
        self.dsn = dsn
        self.logins: list[str] = []
        self.databases: list[Database] = []

    PASSWORD = "test-password-1"  # the embedded server asks staff for passwords

    def add(self, role: str, doctors: tuple[str, ...] = (), login: str | None = None) -> str:
        name = login or f"t_{role[:3]}_{uuid.uuid4().hex[:10]}"
        self.logins.append(name)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            verifier = conn.pgconn.encrypt_password(self.PASSWORD.encode(), name.encode())
            conn.execute("SELECT hms.staff_add(%s, %s, %s, %s)",
                         (name, role, list(doctors), verifier.decode()))
        return name

    def dsn_of(self, login: str, password: str | None = None) -> str:
        params: dict[str, Any] = pg_conninfo.conninfo_to_dict(self.dsn)
        params["user"] = login
        params["password"] = password or self.PASSWORD
        return pg_conninfo.make_conninfo(**params)

    def database(self, login: str, terminal: str = "pytest") -> Database:
        database = Database(self.dsn_of(login), terminal=terminal)
        self.databases.append(database)
        return database

    def desk(self, login: str) -> Desk:
        return Desk(self.database(login))

    def connect(self, login: str) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn_of(login), autocommit=True)

    def cleanup(self) -> None:
        for database in self.databases:
            database.dispose()
        if not self.logins:
            return
        with psycopg.connect(self.server_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE usename = ANY(%s)", (self.logins,))
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for login in self.logins:
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone():
                    conn.execute(f'DROP OWNED BY "{login}"')
                    conn.execute(f'DROP ROLE "{login}"')


@pytest.fixture
def staff_logins(server_dsn: str, dsn: str) -> Iterator[StaffLogins]:
    logins = StaffLogins(server_dsn, dsn)
    yield logins
    logins.cleanup()
