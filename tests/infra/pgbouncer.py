"""A private PgBouncer for tests, in front of one PostgreSQL server.

    with Bouncer.create(cluster, pool_mode="transaction") as pgb:
        psycopg.connect(pgb.dsn("hms"))
        pgb.show("pools")                     # the admin console: SHOW POOLS

It listens on 127.0.0.1 on a free port, forwards every database name to the server
(``* = host=... port=...``), runs in the foreground as a child of the test process (as the
``postgres`` OS user when we are root) and is registered with the watchdog in ``reaper``.
Defaults are those of a stock install except a small ``default_pool_size`` (2), so that two
clients really do share server connections, and no ``ignore_startup_parameters`` at all, so
a client sending one PgBouncer does not track (a custom GUC such as ``hms.terminal``) is
refused at connect exactly as in production. PgBouncer 1.18 has no
``max_prepared_statements`` (protocol-level prepared statements arrived in 1.21).
Set ``HMS_PGBOUNCER`` to use another binary than ``/usr/sbin/pgbouncer`` (or the one on PATH).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import conninfo as pg_conninfo

from tests.infra import reaper
from tests.infra.pgcluster import (
    SUPERUSER,
    Cluster,
    Unavailable,
    _chown,
    _clean_env,
    _owner_kwargs,
    free_port,
    make_base_dir,
)

PoolMode = Literal["session", "transaction", "statement"]
AuthType = Literal["trust", "any", "plain", "md5", "scram-sha-256"]
BINARY_ENV = "HMS_PGBOUNCER"


def find_pgbouncer() -> Path:
    """The pgbouncer binary, or ``Unavailable`` with the reason."""
    wanted = os.environ.get(BINARY_ENV) or (
        "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK)
        else shutil.which("pgbouncer") or "/usr/sbin/pgbouncer")
    if not os.access(wanted, os.X_OK):
        raise Unavailable(f"no pgbouncer at {wanted} (apt-get install pgbouncer, or set "
                          f"{BINARY_ENV})")
    return Path(wanted)


def pgbouncer_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                         check=False).stdout
    first = out.splitlines()[0] if out else ""
    return first.split()[-1] if first else "unknown"


@dataclass
class Bouncer:
    """One PgBouncer process. Create with ``Bouncer.create`` (or ``.start()``)."""

    server_host: str
    server_port: int
    pool_mode: PoolMode = "session"
    auth_type: AuthType = "trust"
    # auth_file entries: user -> password (plain text, or an md5/SCRAM secret). Under trust
    # the user must still be listed.
    users: Mapping[str, str] = field(default_factory=lambda: {SUPERUSER: ""})
    ignore_startup_parameters: Sequence[str] = ()
    default_pool_size: int = 2
    max_client_conn: int = 200
    settings: Mapping[str, str] = field(default_factory=dict)  # more [pgbouncer] lines
    binary: Path = field(default_factory=find_pgbouncer)
    host: str = "127.0.0.1"
    port: int = 0
    base: Path = field(init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.base = make_base_dir("bouncer")
        self.port = self.port or free_port(self.host)
        reaper.at_exit(self.cleanup)

    @classmethod
    def create(cls, server: Cluster | tuple[str, int], pool_mode: PoolMode = "session",
               **kwargs: Any) -> Bouncer:
        """Start a PgBouncer in front of ``server`` (a Cluster, or (host, port)). A Cluster
        with scram auth gets auth_type scram-sha-256 and its superuser password by default."""
        host, port = (server.host, server.port) if isinstance(server, Cluster) else server
        if isinstance(server, Cluster) and server.password:
            kwargs.setdefault("auth_type", "scram-sha-256")
            kwargs.setdefault("users", {SUPERUSER: server.password})
        bouncer = cls(host, port, pool_mode, **kwargs)
        try:
            bouncer.start()
        except BaseException:
            bouncer.cleanup()
            raise
        return bouncer

    def __enter__(self) -> Bouncer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cleanup()

    @property
    def ini_path(self) -> Path:
        return self.base / "pgbouncer.ini"

    @property
    def log_path(self) -> Path:
        return self.base / "pgbouncer.log"

    def write_config(self) -> None:
        auth_file = self.base / "userlist.txt"
        auth_file.write_text("".join(f'"{_q(u)}" "{_q(p)}"\n' for u, p in self.users.items()))
        auth_file.chmod(0o600)
        _chown(auth_file)
        main = {
            "listen_addr": self.host,
            "listen_port": str(self.port),
            "unix_socket_dir": str(self.base),
            "auth_type": self.auth_type,
            "auth_file": str(auth_file),
            "pool_mode": self.pool_mode,
            "default_pool_size": str(self.default_pool_size),
            "max_client_conn": str(self.max_client_conn),
            "ignore_startup_parameters": ",".join(self.ignore_startup_parameters),
            "admin_users": ",".join(self.users),
            "stats_users": ",".join(self.users),
            "logfile": str(self.log_path),
            "log_connections": "1",
            "log_disconnections": "1",
            "server_login_retry": "1",
        }
        main.update(self.settings)
        lines = ["[databases]",
                 f"* = host={self.server_host} port={self.server_port}",
                 "", "[pgbouncer]"]
        lines += [f"{k} = {v}" for k, v in main.items()]
        self.ini_path.write_text("\n".join(lines) + "\n")
        _chown(self.ini_path)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        if self.running:
            return
        for attempt in range(3):
            self.write_config()
            out = (self.base / "stdout.log").open("ab")
            try:
                self._proc = subprocess.Popen(
                    [str(self.binary), str(self.ini_path)], stdin=subprocess.DEVNULL,
                    stdout=out, stderr=subprocess.STDOUT, cwd=self.base,
                    env=_clean_env(self.base), start_new_session=True, **_owner_kwargs())
            finally:
                out.close()
            reaper.watch_process(self._proc.pid, signal.SIGTERM, str(self.ini_path))
            try:
                self._wait_ready(timeout)
                return
            except RuntimeError:
                lost_port = "Address already in use" in self.log_tail()
                self._reap(kill=True)
                if lost_port and attempt < 2:
                    self.port = free_port(self.host)
                    continue
                raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {self._proc.returncode}"
                                   f"\n{self.log_tail()}")
            with contextlib.suppress(OSError), \
                    socket.create_connection((self.host, self.port), timeout=1):
                return
            time.sleep(0.05)
        raise RuntimeError(f"pgbouncer not listening after {timeout}s\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        """Immediate shutdown (SIGTERM): clients are disconnected."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._reap(kill=True)
                raise RuntimeError(f"pgbouncer did not stop within {timeout}s") from None
        self._reap()

    def _reap(self, kill: bool = False) -> None:
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        if kill and proc.poll() is None:
            reaper.kill_group(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if reaper.group_alive(proc.pid):
            reaper.kill_group(proc.pid)
        reaper.forget_process(proc.pid)

    def reload(self) -> None:
        """Rewrite the config (after changing fields) and SIGHUP."""
        self.write_config()
        if self._proc is not None and self.running:
            os.kill(self._proc.pid, signal.SIGHUP)
            time.sleep(0.2)

    def cleanup(self) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass
        finally:
            if self.base.exists():
                shutil.rmtree(self.base, ignore_errors=True)
                reaper.forget_dir(str(self.base))

    def dsn(self, dbname: str = "postgres", user: str = SUPERUSER, **extra: Any) -> str:
        """A key=value conninfo through the pooler."""
        params: dict[str, Any] = {"host": self.host, "port": self.port, "dbname": dbname,
                                  "user": user, "connect_timeout": 5}
        password = self.users.get(user)
        if password and self.auth_type not in ("trust", "any"):
            params["password"] = password
        params.update(extra)
        return pg_conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})

    def url(self, dbname: str = "postgres", user: str = SUPERUSER) -> str:
        password = self.users.get(user)
        auth = f"{user}:{password}" if password and self.auth_type not in ("trust", "any") \
            else user
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname}"

    def show(self, what: str) -> list[dict[str, Any]]:
        """``SHOW <what>`` on the admin console (pools, clients, servers, config, ...)."""
        user = next(iter(self.users))
        with psycopg.connect(self.dsn("pgbouncer", user), autocommit=True) as conn:
            cur = conn.execute(f"SHOW {what.upper()}".encode())
            names = [d.name for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_text() + _read(self.base / "stdout.log")
        return "\n".join(text.splitlines()[-lines:])


def _q(value: str) -> str:
    return value.replace('"', '""')


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
