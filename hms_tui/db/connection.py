"""Connections. One ``Database`` per process: a libpq conninfo, one pool for every synchronous
call (desk, staff, audit), and asyncpg connections for the listener (``libpq_target``).

* Every call is one simple-protocol message of two statements -- the terminal label and the
  clinic's timeouts as transaction-local settings, then the call -- so it is one transaction
  and one round trip, carries no session state, and uses no server-side prepared statement:
  safe through any pooler (PgBouncer in transaction mode included).
* The pool checks a connection before handing it out (SQLAlchemy's pre-ping): after an
  outage the first call on a terminal gets a fresh connection instead of a dead one.
* A connection to a read-only standby is refused at once with one line (StandbyOnly): a
  desk there could only fail later, and its reads would be silently stale.
* Every call is bounded by ``action_timeout`` on the client: a commit that waits for a
  synchronous standby that is down waits for ever on the server (statement_timeout does not
  bound it, cancelling it makes it visible unreplicated), so the client stops waiting, drops
  the connection and says the action may have happened (Unconfirmed) -- never a blind retry.
* libpq conventions hold: an empty URL means PG* variables; passwords come from ~/.pgpass,
  PGPASSWORD or a prompt, never from the config file.
"""

from __future__ import annotations

import getpass
import heapq
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import ClientCursor
from psycopg import conninfo as pg_conninfo
from psycopg.rows import dict_row

from hms_tui.domain.errors import (
    DatabaseUnavailable,
    HmsError,
    InvalidInput,
    StandbyOnly,
    Unconfirmed,
    from_sqlstate,
)

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
DEFAULT_POOL_SIZE = 1
MAX_POOL_SIZE = 10
DEFAULT_ACTION_TIMEOUT = 15.0  # seconds; a desk action normally takes milliseconds
Row = dict[str, Any]
# Sent before every call, in the same message and transaction: the terminal's label for the
# audit trail, and the timeouts the clinic allows (hms.begin_action refuses a desk action
# in a session without them), whatever the session or role was set to.
CALL_PREFIX = ("SELECT set_config('hms.terminal', %(_terminal)s, true), "
               "set_config('statement_timeout', l.statement_timeout, true), "
               "set_config('idle_in_transaction_session_timeout', l.idle_timeout, true) "
               "FROM hms.session_limits() l; ")
# What libpq says of a server that target_session_attrs=read-write (or primary) skipped.
_STANDBY_REFUSALS = ("session is read-only", "server is in hot standby mode")


@dataclass
class Database:
    """Where the data lives. Nothing connects until a connection is asked for."""

    conninfo: str
    terminal: str = ""
    connect_timeout: int = 5
    ssl: Mapping[str, str] = field(default_factory=dict)
    embedded: EmbeddedServer | None = None
    pool_size: int = DEFAULT_POOL_SIZE
    listen_conninfo: str | None = None  # the listener's own address (past a pooler), if any
    action_timeout: float = DEFAULT_ACTION_TIMEOUT  # client-side bound on every call
    _engine: Engine | None = field(default=None, init=False, repr=False)
    # Typed once at a prompt when neither .pgpass nor PGPASSWORD had one; memory only.
    _password: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.pool_size <= MAX_POOL_SIZE:
            raise ValueError(f"pool_size must be 1-{MAX_POOL_SIZE}, not {self.pool_size}")

    def params(self, conninfo: str | None = None) -> dict[str, str]:
        """The conninfo with SSL settings, timeouts and keepalives applied (TCP only)."""
        params: dict[str, Any] = pg_conninfo.conninfo_to_dict(conninfo or self.conninfo)
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

    # -- connections ---------------------------------------------------------------------------

    def connect(self) -> psycopg.Connection[Any]:
        """A new autocommit psycopg connection to a primary that never prepares statements."""
        try:
            conn = self._open()
        except psycopg.OperationalError as exc:
            if standby_refusal(str(exc)):
                raise self.standby_only() from None
            raise DatabaseUnavailable(
                f"cannot connect to {self.describe()}: {first_line(exc)}"
            ) from None
        if is_standby(conn):
            conn.close()
            raise self.standby_only()
        return conn

    def standby_only(self) -> StandbyOnly:
        return StandbyOnly(f"this server is a read-only standby ({self.describe()}); point "
                           "hms-tui at the primary (or list every server with "
                           "target_session_attrs=read-write)")

    def _open(self) -> psycopg.Connection[Any]:
        """Connect; if the server wants a password libpq did not find (.pgpass, PGPASSWORD)
        and a person is at the terminal, ask once and keep it in memory for this process."""
        try:
            return self._psycopg_connect()
        except psycopg.OperationalError as exc:
            if "no password supplied" not in str(exc) or not (sys.stdin and sys.stdin.isatty()):
                raise
            with _PROMPT_LOCK:
                if self._password is None:
                    p = self.params()
                    user = p.get("user") or os.environ.get("PGUSER") or getpass.getuser()
                    self._password = getpass.getpass(f"Password for {user} ({self.describe()}): ")
            return self._psycopg_connect()

    def _psycopg_connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(pg_conninfo.make_conninfo(**self.params()), autocommit=True,
                               prepare_threshold=None)

    @property
    def engine(self) -> Engine:
        """The pool (SQLAlchemy's, with pre-ping) behind every synchronous call."""
        if self._engine is None:
            from sqlalchemy import create_engine

            self._engine = create_engine(
                "postgresql+psycopg://",
                creator=self.connect,
                isolation_level="AUTOCOMMIT",
                pool_size=self.pool_size,
                max_overflow=0,
                pool_pre_ping=True,
                pool_timeout=30,
            )
        return self._engine

    @contextmanager
    def pooled(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection from the pool, checked alive; a connection that broke is discarded
        rather than handed out again."""
        with translated_errors():
            proxied = self.engine.raw_connection()
        conn = proxied.driver_connection
        assert isinstance(conn, psycopg.Connection)
        try:
            yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError):
            if conn.closed or conn.broken:  # not an error the server sent (e.g. HM409)
                proxied.invalidate()
            raise
        finally:
            proxied.close()

    def call(self, sql: str, params: Mapping[str, Any] | None = None, *,
             retry: bool = False) -> list[Row]:
        """Run one statement as its own transaction, with this terminal's label for the audit
        trail; return its rows as dicts. Driver errors a user can cause become HmsError.

        ``retry``: the statement may safely run twice (a read, a keyed check-in), so a lost
        connection is retried once on a fresh one. Anything else that loses its connection is
        reported, never repeated blindly: it may have committed."""
        attempts = 2 if retry else 1
        for attempt in range(attempts):
            try:
                with translated_errors(), self.pooled() as conn:
                    cur = ClientCursor(conn, row_factory=dict_row)
                    query = CALL_PREFIX + sql
                    with Deadline(conn, self.action_timeout) as deadline:
                        try:
                            cur.execute(query, {"_terminal": self.terminal, **(params or {})})
                        except (psycopg.OperationalError, psycopg.InterfaceError):
                            if deadline.expired:
                                raise self.unconfirmed() from None
                            raise
                    cur.nextset()
                    return cur.fetchall() if cur.description else []
            except Unconfirmed:
                raise  # it may have happened: never repeated blindly, not even a read
            except DatabaseUnavailable:
                if attempt + 1 == attempts:
                    raise
        raise AssertionError("unreachable")

    def unconfirmed(self) -> Unconfirmed:
        return Unconfirmed(f"the database did not confirm within {self.action_timeout:g} s "
                           "(is a synchronous standby down?); the action may have happened: "
                           "check before retrying")

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


class Deadline:
    """Stop waiting for the server after ``seconds``: shut the connection's socket down, so the
    blocked call fails at once. Unlike a cancel request this never turns a commit that is
    waiting for a synchronous standby into an acknowledged, unreplicated one: the server
    keeps waiting (or commits later), and the caller is told it may have happened. One
    watchdog thread serves every deadline of the process."""

    def __init__(self, conn: psycopg.Connection[Any], seconds: float) -> None:
        self.conn = conn
        self.seconds = seconds
        self.expired = False
        self.done = False

    def __enter__(self) -> Deadline:
        if self.seconds > 0:
            _WATCHDOG.watch(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        with _WATCHDOG.lock:
            self.done = True

    def expire(self) -> None:
        """Called by the watchdog, with its lock held, unless the call has finished."""
        self.expired = True
        try:
            sock = socket.socket(fileno=os.dup(self.conn.pgconn.socket))
        except (OSError, psycopg.Error):
            return  # already closed
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            sock.close()


class _Watchdog:
    """A daemon thread that expires deadlines in time order (started on first use)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._wake = threading.Condition(self.lock)
        self._heap: list[tuple[float, int, Deadline]] = []
        self._count = 0
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline) -> None:
        with self.lock:
            self._count += 1
            heapq.heappush(self._heap, (time.monotonic() + deadline.seconds, self._count,
                                        deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hms-deadlines",
                                                daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        with self.lock:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)  # finished in time: forget it
                if not self._heap:
                    self._wake.wait()
                    continue
                due, _n, deadline = self._heap[0]
                delay = due - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
                deadline.expire()


_WATCHDOG = _Watchdog()


def is_standby(conn: psycopg.Connection[Any]) -> bool:
    """Is this a connection to a server in recovery? (PostgreSQL 14+ reports it at connect,
    so this costs no round trip there.)"""
    reported = conn.info.parameter_status("in_hot_standby")
    if reported is not None:
        return reported == "on"
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def standby_refusal(message: str) -> bool:
    """Did libpq refuse every host because each was a standby (target_session_attrs)?"""
    attempts = [line for line in message.splitlines() if line.startswith("- host:")]
    attempts = attempts or [message]
    return all(any(r in line for r in _STANDBY_REFUSALS) for line in attempts)


def first_line(exc: BaseException) -> str:
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
    mapped = from_sqlstate(sqlstate, message, _details_of(orig))
    if mapped is not None:
        return mapped
    if isinstance(orig, psycopg.DataError) and "NUL" in str(orig):
        return InvalidInput("text contains a NUL character")
    if isinstance(orig, (psycopg.OperationalError, psycopg.InterfaceError, OSError)):
        return DatabaseUnavailable(f"lost the database connection: {first_line(orig)}")
    return None


def _details_of(err: BaseException) -> dict[str, object] | None:
    """Fields a desk function put in its error's DETAIL as a JSON object (e.g. next_free)."""
    diag = getattr(err, "diag", None)
    detail = getattr(diag, "message_detail", None) if diag is not None else None
    if not detail or not str(detail).startswith("{"):
        return None
    try:
        value = json.loads(str(detail))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _message_of(err: BaseException) -> str:
    diag = getattr(err, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if primary:
        return str(primary)
    return first_line(err)


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
