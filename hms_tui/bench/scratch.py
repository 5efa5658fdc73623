"""Where the bench runs: the configured server or the embedded one, in a scratch database
that is created for the run and dropped afterwards, also after an error or Ctrl-C."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo

from hms_tui.config import Settings
from hms_tui.db import migrate
from hms_tui.db.connection import Database, first_line
from hms_tui.domain.errors import DatabaseUnavailable, Forbidden

PREFIX = "hms_bench_"


@dataclass(frozen=True)
class Server:
    admin: str  # conninfo of a database on the server, for CREATE/DROP DATABASE
    kind: str  # "embedded" or "configured"
    where: str  # for the report, without secrets


def with_dbname(conninfo: str, dbname: str) -> str:
    params: dict[str, Any] = pg_conninfo.conninfo_to_dict(conninfo)
    params["dbname"] = dbname
    return pg_conninfo.make_conninfo(**params)


@contextmanager
def bench_server(settings: Settings) -> Iterator[Server]:
    """The configured database's server (the login needs CREATEDB), else the embedded one
    (started if need be, and released afterwards)."""
    url = settings.database_url
    if url:
        from hms_tui.services.connect import check_conninfo

        check_conninfo(url)
        db = Database(url, ssl=settings.database.ssl,
                      connect_timeout=settings.database.connect_timeout)
        yield Server(pg_conninfo.make_conninfo(**db.params()), "configured", db.describe())
        return
    from hms_tui.db.embedded import EmbeddedServer

    server = EmbeddedServer(settings.database.embedded_dir)
    conninfo = server.start()
    try:
        yield Server(with_dbname(conninfo, "postgres"), "embedded",
                     f"embedded PostgreSQL in {server.data_dir}")
    finally:
        server.stop()


def admin_connect(admin: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(admin, autocommit=True)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to the server: {first_line(exc)}") from None


@contextmanager
def scratch_database(admin: str, template: str | None = None) -> Iterator[str]:
    """A new database with the current schema (migrated, or cloned from ``template``, a
    database made by this function); its conninfo. Dropped on the way out."""
    name = f"{PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin_connect(admin) as conn:
        try:
            if template:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            else:
                conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.errors.InsufficientPrivilege:
            raise Forbidden("the bench creates a scratch database: the login needs CREATEDB "
                            "(or run it against the embedded server: no database.url)") from None
    dsn = with_dbname(admin, name)
    try:
        if not template:
            with psycopg.connect(dsn, autocommit=True) as conn:
                migrate.upgrade(conn)
        yield dsn
    finally:
        drop_database(admin, name)


def dbname(dsn: str) -> str:
    return str(pg_conninfo.conninfo_to_dict(dsn)["dbname"])


def drop_database(admin: str, name: str) -> None:
    for _attempt in range(3):  # a second Ctrl-C during the drop must not leave it behind
        try:
            with admin_connect(admin) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except KeyboardInterrupt:
            continue


def server_facts(dsn: str) -> dict[str, Any]:
    """What the figures depend on: version, durability, connection limit, cores."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        def show(name: str) -> str:
            row = conn.execute(f"SHOW {name}").fetchone()
            return str(row[0]) if row else "?"

        used = conn.execute("SELECT count(*) FROM pg_stat_activity").fetchone()
        return {"server_version": show("server_version"),
                "synchronous_commit": show("synchronous_commit"),
                "fsync": show("fsync"), "max_connections": int(show("max_connections")),
                "connections_in_use": int(used[0]) if used else 0,
                "shared_buffers": show("shared_buffers"), "cpu_count": os.cpu_count()}


def check_room(facts: dict[str, Any], needed: int) -> None:
    """Refuse up front, with one line, a run that would exceed the server's connections."""
    free = facts["max_connections"] - facts["connections_in_use"] - 3  # superuser reserve
    if needed > free:
        from hms_tui.domain.errors import InvalidInput

        raise InvalidInput(f"the run needs {needed} connections at once and the server has "
                           f"{free} free (max_connections {facts['max_connections']}); "
                           "use fewer --clients")
