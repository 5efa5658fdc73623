"""From settings to a ready ``Database``: external URL or the embedded server, schema checked."""

from __future__ import annotations

import getpass
import os
import re
import socket
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo

from hms_tui.config import DATABASE_URL_ENV, Settings
from hms_tui.db import migrate
from hms_tui.db.connection import Database, first_line
from hms_tui.db.embedded import EmbeddedServer
from hms_tui.domain.errors import ConfigError, DatabaseUnavailable, LoginFailed
from hms_tui.domain.validation import FORBIDDEN_CHARS, LABEL_MAX

# What the server says when it refuses the login itself (the server is up: not an outage).
LOGIN_REFUSED = re.compile(
    r'role "[^"]*" does not exist|password authentication failed|no password supplied'
    r"|authentication failed|pg_hba\.conf|is not permitted to log in"
    r"|permission denied for database|certificate authentication failed")


def terminal_label(settings: Settings) -> str:
    """The label the audit trail records beside the login: configured, else the host name."""
    label = settings.terminal.label or socket.gethostname()
    return FORBIDDEN_CHARS.sub("", label).strip()[:LABEL_MAX]


def check_conninfo(url: str) -> None:
    """A URL or conninfo libpq cannot parse is a configuration error: one line, exit 2."""
    try:
        pg_conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        source = f"${DATABASE_URL_ENV}" if os.environ.get(DATABASE_URL_ENV) else "database.url"
        raise ConfigError(f"{source} is not a valid PostgreSQL URL or conninfo "
                          f"({first_line(exc)}); e.g. postgresql://user@host:5432/hms") from None


def open_database(settings: Settings, *, upgrade: bool = False) -> Database:
    """Connect as configured. The embedded server is always brought up to date; an external
    database is upgraded only when asked (``hms-tui db upgrade``), else checked."""
    label = terminal_label(settings)
    url = settings.database_url
    if url:
        check_conninfo(url)
        cfg = settings.database
        db = Database(url, terminal=label, connect_timeout=cfg.connect_timeout, ssl=cfg.ssl,
                      pool_size=cfg.pool_size, listen_conninfo=cfg.listen_url,
                      action_timeout=cfg.action_timeout)
    else:
        server = EmbeddedServer(settings.database.embedded_dir)
        db = Database(server.start(), terminal=label, embedded=server)
        upgrade = True
    with first_connection(db) as conn:
        if upgrade:
            migrate.upgrade(conn)
        else:
            migrate.check_version(conn)
    return db


def first_connection(db: Database) -> psycopg.Connection[Any]:
    """The first connection, with a refused login told apart from an unreachable server:
    'login refused' (exit 6) is fixed by the login, 'database unavailable' (8) by waiting."""
    try:
        return db.connect()
    except DatabaseUnavailable as exc:
        found = LOGIN_REFUSED.search(str(exc))
        if found is None:
            raise
        who = db.params().get("user") or os.environ.get("PGUSER") or getpass.getuser()
        raise LoginFailed(f"the database refused the login {who!r} ({found.group()}); check "
                          "the login (PGUSER or the URL) and its password (~/.pgpass or "
                          "PGPASSWORD)") from None
