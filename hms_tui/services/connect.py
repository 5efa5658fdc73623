"""From settings to a ready ``Database``: external URL or the embedded server, schema checked."""

from __future__ import annotations

import socket

from hms_tui.config import Settings
from hms_tui.db import migrate
from hms_tui.db.connection import Database
from hms_tui.db.embedded import EmbeddedServer
from hms_tui.domain.validation import FORBIDDEN_CHARS, LABEL_MAX


def terminal_label(settings: Settings) -> str:
    """The label the audit trail records beside the login: configured, else the host name."""
    label = settings.terminal.label or socket.gethostname()
    return FORBIDDEN_CHARS.sub("", label).strip()[:LABEL_MAX]


def open_database(settings: Settings, *, upgrade: bool = False) -> Database:
    """Connect as configured. The embedded server is always brought up to date; an external
    database is upgraded only when asked (``hms-tui db upgrade``), else checked."""
    label = terminal_label(settings)
    url = settings.database_url
    if url:
        cfg = settings.database
        db = Database(url, terminal=label, connect_timeout=cfg.connect_timeout, ssl=cfg.ssl,
                      pool_size=cfg.pool_size, listen_conninfo=cfg.listen_url,
                      action_timeout=cfg.action_timeout)
    else:
        server = EmbeddedServer(settings.database.embedded_dir)
        db = Database(server.start(), terminal=label, embedded=server)
        upgrade = True
    with db.connect() as conn:
        if upgrade:
            migrate.upgrade(conn)
        else:
            migrate.check_version(conn)
    return db
