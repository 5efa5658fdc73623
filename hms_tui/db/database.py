"""Connections. One ``Database`` per process: a libpq conninfo, a lazily built SQLAlchemy engine
(psycopg 3 underneath) for the synchronous core, and plain asyncpg connections for the listener.

libpq conventions hold everywhere: an empty URL means "use PG* variables", passwords come from
~/.pgpass, PGPASSWORD or a prompt, never from the config file.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import conninfo as pg_conninfo

from hms_tui.core.errors import DatabaseUnavailable, HmsError, from_sqlstate

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hms_tui.db.embedded import EmbeddedServer

_PROMPT_LOCK = threading.Lock()

# Keepalives make a dead peer visible to libpq within ~15 s instead of the kernel's hours.
KEEPALIVE_OPTIONS: Mapping[str, str] = {
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "15000",
}


@dataclass
class Database:
    """Where the data lives. Nothing connects until a connection is asked for."""

    conninfo: str
    terminal: str = ""
    connect_timeout: int = 5
    ssl: Mapping[str, str] = field(default_factory=dict)
    embedded: EmbeddedServer | None = None
    _engine: Engine | None = field(default=None, init=False, repr=False)
    # Typed once at a prompt when neither .pgpass nor PGPASSWORD had one; memory only.
    _password: str | None = field(default=None, init=False, repr=False)

    def params(self) -> dict[str, str]:
        """The conninfo with SSL settings, timeouts and keepalives applied (TCP only)."""
        params: dict[str, Any] = pg_conninfo.conninfo_to_dict(self.conninfo)
        params.update(self.ssl)
        params.setdefault("connect_timeout", str(self.connect_timeout))
        params.setdefault("application_name", "hms-tui")
        if self._password is not None and not params.get("password"):
            params["password"] = self._password
        host = str(params.get("host") or os.environ.get("PGHOST") or "")
        if host and not host.startswith("/"):
            for key, value in KEEPALIVE_OPTIONS.items():
                params.setdefault(key, value)
        return {k: str(v) for k, v in params.items() if v is not None}

    def describe(self) -> str:
        """Where we connect, without secrets (for messages)."""
        if self.embedded is not None:
            return f"embedded PostgreSQL in {self.embedded.data_dir}"
        p = self.params()
        host = p.get("host") or os.environ.get("PGHOST") or "localhost"
        port = p.get("port") or os.environ.get("PGPORT") or "5432"
        db = p.get("dbname") or os.environ.get("PGDATABASE") or p.get("user") or getpass.getuser()
        return f"{db} on {host}:{port}"

    # -- synchronous ---------------------------------------------------------------------------

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]:
        """A new psycopg connection with this terminal's label set for the audit trail."""
        try:
            conn = self._open()
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(
                f"cannot connect to {self.describe()}: {_first_line(exc)}"
            ) from None
        conn.execute("SELECT set_config('hms.terminal', %s, false)", (self.terminal,))
        # Show times in the clinic's zone (business dates never depend on this setting). Before
        # `db upgrade` the function does not exist yet: keep the server's zone then.
        with contextlib.suppress(psycopg.Error):
            conn.execute("SELECT set_config('TimeZone', hms.clinic_timezone(), false)")
        conn.autocommit = autocommit
        return conn

    def _open(self) -> psycopg.Connection[Any]:
        """Connect; if the server wants a password libpq did not find (.pgpass, PGPASSWORD)
        and a person is at the terminal, ask once and keep it in memory for this process."""
        try:
            return psycopg.connect(pg_conninfo.make_conninfo(**self.params()), autocommit=True)
        except psycopg.OperationalError as exc:
            if "no password supplied" not in str(exc) or not (sys.stdin and sys.stdin.isatty()):
                raise
            with _PROMPT_LOCK:
                if self._password is None:
                    p = self.params()
                    user = p.get("user") or os.environ.get("PGUSER") or getpass.getuser()
                    self._password = getpass.getpass(f"Password for {user} ({self.describe()}): ")
            return psycopg.connect(pg_conninfo.make_conninfo(**self.params()), autocommit=True)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from sqlalchemy import create_engine

            self._engine = create_engine(
                "postgresql+psycopg://",
                creator=self.connect,
                # One statement = one transaction = one round trip (see core/desk.py).
                isolation_level="AUTOCOMMIT",
                pool_size=5,
                max_overflow=10,
            )
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- asynchronous (listener) ---------------------------------------------------------------

    async def connect_async(self, *, application_name: str | None = None) -> Any:
        """A new asyncpg connection (the listener and its refetches use these)."""
        import asyncpg

        p = self.params()
        if application_name:
            p["application_name"] = application_name
        kwargs: dict[str, Any] = {
            "host": p.get("host"),
            "port": int(p["port"]) if p.get("port") else None,
            "user": p.get("user"),
            "database": p.get("dbname"),
            "password": p.get("password"),
            "timeout": self.connect_timeout,
            "server_settings": {"application_name": p.get("application_name", "hms-tui")},
        }
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if self.terminal:
            kwargs["server_settings"]["hms.terminal"] = self.terminal
        try:
            if "sslmode" in p:
                kwargs["ssl"] = _asyncpg_ssl(p)  # may fail: a missing root certificate
            conn = await asyncpg.connect(**kwargs)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise DatabaseUnavailable(
                f"cannot connect to {self.describe()}: {_first_line(exc)}"
            ) from None
        _tcp_keepalive(conn)
        return conn


def _tcp_keepalive(conn: Any) -> None:
    """asyncpg has no keepalive options: set them on its TCP socket (the same values libpq
    gets), so a vanished peer fails the socket within ~15 s. Unix sockets need none."""
    import socket

    transport = getattr(conn, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 2), ("TCP_KEEPCNT", 3),
                        ("TCP_USER_TIMEOUT", 15000)):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    for level, option, value in options:
        with contextlib.suppress(OSError):
            sock.setsockopt(level, option, value)


def _asyncpg_ssl(p: Mapping[str, str]) -> Any:
    """Translate libpq SSL parameters into what asyncpg takes, with libpq's meanings:
    verify-ca and verify-full always check the certificate (against sslrootcert, else
    ~/.postgresql/root.crt, as libpq does); only verify-full checks the host name."""
    import ssl

    mode = p["sslmode"]
    if mode in ("disable", "allow", "prefer"):
        return {"disable": False, "allow": "allow", "prefer": "prefer"}[mode]
    if mode == "require":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # libpq's require: encrypted, not verified
    else:
        cafile = p.get("sslrootcert") or str(Path.home() / ".postgresql" / "root.crt")
        ctx = ssl.create_default_context(cafile=cafile)  # CERT_REQUIRED
        ctx.check_hostname = mode == "verify-full"
    if "sslcert" in p:
        ctx.load_cert_chain(p["sslcert"], p.get("sslkey"))
    return ctx


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def translate(exc: BaseException) -> HmsError | None:
    """Map a driver error (psycopg, asyncpg or SQLAlchemy-wrapped) onto an HmsError."""
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, HmsError):
        return orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is None and hasattr(orig, "diag"):
        sqlstate = orig.diag.sqlstate
    message = _message_of(orig)
    mapped = from_sqlstate(sqlstate, message)
    if mapped is not None:
        return mapped
    if isinstance(orig, psycopg.DataError) and "NUL" in str(orig):
        from hms_tui.core.errors import InvalidInput

        return InvalidInput("text contains a NUL character")
    if isinstance(orig, (psycopg.OperationalError, psycopg.InterfaceError, OSError)):
        return DatabaseUnavailable(f"lost the database connection: {_first_line(orig)}")
    return None


def _message_of(err: BaseException) -> str:
    diag = getattr(err, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if primary:
        return str(primary)
    return _first_line(err)


@contextmanager
def translated_errors() -> Iterator[None]:
    """Re-raise driver errors a user can cause as HmsError; let real bugs through."""
    try:
        yield
    except HmsError:
        raise
    except Exception as exc:
        mapped = translate(exc)
        if mapped is None:
            raise
        raise mapped from exc
