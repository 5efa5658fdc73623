"""Throwaway PostgreSQL servers for tests: single clusters, and a primary with streaming
standbys built the way an operator would (``pg_basebackup -R``, replication slots,
``synchronous_standby_names``).

    with Cluster.create("p1") as pg:               # initdb + start, removed at the end
        pg.psql("CREATE DATABASE hms")
        dsn = pg.dsn("hms")

    with primary_with_standby(synchronous=True, standbys=2) as rs:
        rs.wait_caught_up()
        took = rs.failover()                          # kill -m immediate, promote s1, repoint s2
        url = rs.url("hms")                          # every node, target_session_attrs=read-write

Servers run as the ``postgres`` OS user when the tests run as root (PostgreSQL refuses root),
listen on 127.0.0.1 on a free port and on a Unix socket in their own directory, and are
children of the test process (``postgres -D``, no daemonizing) registered with the watchdog in
``reaper``: nothing survives the test process. Stopping sends the signals ``pg_ctl stop``
sends (smart SIGTERM, fast SIGINT, immediate SIGQUIT); promotion runs ``pg_ctl promote``.

Raises ``Unavailable`` (with the reason, for ``pytest.skip``) when no PostgreSQL binaries
are found or the tests run as root without a ``postgres`` user to run the server as.
Set ``HMS_PG_BINDIR`` to use other binaries than ``/usr/lib/postgresql/15/bin``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import conninfo as pg_conninfo

from tests.infra import reaper

Auth = Literal["trust", "scram"]
StopMode = Literal["smart", "fast", "immediate"]

DEFAULT_BINDIR = "/usr/lib/postgresql/15/bin"
BINDIR_ENV = "HMS_PG_BINDIR"
SERVER_USER = "postgres"  # the OS user servers run as when we are root
SUPERUSER = "postgres"  # the database superuser initdb creates
_STOP_SIGNALS: dict[str, int] = {"smart": signal.SIGTERM, "fast": signal.SIGINT,
                                 "immediate": signal.SIGQUIT}


class Unavailable(RuntimeError):
    """PostgreSQL servers cannot be started here; ``str()`` says why (a skip reason)."""


class ClusterError(RuntimeError):
    """A server did not do what was asked; the message ends with the tail of its log."""


# -- environment ---------------------------------------------------------------------------------


def find_bindir() -> Path:
    """The PostgreSQL binaries to use, or ``Unavailable``."""
    wanted = os.environ.get(BINDIR_ENV) or DEFAULT_BINDIR
    bindir = Path(wanted)
    missing = [b for b in ("initdb", "postgres", "pg_ctl", "pg_basebackup")
               if not os.access(bindir / b, os.X_OK)]
    if missing:
        raise Unavailable(f"no PostgreSQL binaries in {bindir} (missing {', '.join(missing)}; "
                          f"install postgresql-15 or set {BINDIR_ENV})")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise Unavailable(f"running as root and there is no {SERVER_USER!r} OS user to run "
                              "PostgreSQL as (it refuses to run as root)") from None
    return bindir


def server_version(bindir: Path) -> int:
    """The major version of the binaries (e.g. 15)."""
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True,
                         text=True, check=True).stdout  # "postgres (PostgreSQL) 15.20 (Debian..."
    return int(out.split(")", 1)[1].split()[0].split(".")[0])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the server may still lose a race for it;
    ``Cluster.start`` retries with another port when that happens)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _owner_kwargs() -> dict[str, Any]:
    """subprocess arguments that run a child as the server user when we are root."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(SERVER_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVER_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    """A child's environment without the caller's PG* variables (a test's PGHOST must not
    redirect pg_basebackup)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"HOME": str(home), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "TZ": "UTC"})
    env.update(extra)
    return env


def make_base_dir(kind: str) -> Path:
    """A fresh private directory (tagged, watched by the reaper, owned by the server user)."""
    base = Path(tempfile.mkdtemp(prefix=f"{reaper.RUN_TAG}-{kind}-"))
    base.chmod(0o700)
    _chown(base)
    reaper.watch_dir(str(base))
    return base


# -- one server ----------------------------------------------------------------------------------


@dataclass
class Cluster:
    """One PostgreSQL server in a temporary directory. Create with ``Cluster.create`` (initdb
    and start) or ``make_standby``; ``cleanup()`` (or leaving the ``with``) stops it
    immediately and deletes everything."""

    name: str
    auth: Auth = "trust"
    password: str | None = None  # of the superuser, with auth="scram"
    settings: Mapping[str, str] = field(default_factory=dict)  # extra postgresql.conf lines
    fsync: bool = False  # a process crash (stop -m immediate) loses nothing either way
    bindir: Path = field(default_factory=find_bindir)
    host: str = "127.0.0.1"
    port: int = 0
    base: Path = field(init=False)
    primary: Cluster | None = field(default=None, repr=False)  # set on standbys
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.auth not in ("trust", "scram"):
            raise ValueError(f"auth must be 'trust' or 'scram', not {self.auth!r}")
        if self.auth == "scram" and not self.password:
            self.password = "hms-test-" + os.urandom(6).hex()
        self.base = make_base_dir(self.name)
        self.port = self.port or free_port(self.host)
        reaper.at_exit(self.cleanup)

    # -- construction

    @classmethod
    def create(cls, name: str = "pg", **kwargs: Any) -> Cluster:
        """initdb and start a new server (use as a context manager to clean up)."""
        cluster = cls(name, **kwargs)
        try:
            cluster.init()
            cluster.start()
        except BaseException:
            cluster.cleanup()
            raise
        return cluster

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cleanup()

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def log_path(self) -> Path:
        return self.base / "server.log"

    @property
    def socket_dir(self) -> Path:
        return self.base

    @property
    def cluster_name(self) -> str:
        return f"{reaper.RUN_TAG}.{self.name}"

    def init(self) -> None:
        """initdb (UTF8, C.UTF-8, data checksums so pg_rewind works)."""
        method = "scram-sha-256" if self.auth == "scram" else "trust"
        cmd = [str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
               "--auth", method, "-E", "UTF8", "--locale", "C.UTF-8", "--data-checksums",
               "--no-sync", "--no-instructions"]
        if self.password:
            pwfile = self.base / "pwfile"
            pwfile.write_text(self.password + "\n")
            pwfile.chmod(0o600)
            _chown(pwfile)
            cmd += ["--pwfile", str(pwfile)]
        self._run(cmd)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'hmstest_local.conf'\n")
        self.write_local_conf()

    def write_local_conf(self) -> None:
        """This server's own settings (port, sockets, name), kept in an included file so a
        base backup's copy can be rewritten for the standby."""
        lines = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "cluster_name": self.cluster_name,
            "fsync": "on" if self.fsync else "off",
            "max_connections": "100",
            "shared_buffers": "32MB",
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "hot_standby": "on",
            "wal_log_hints": "on",
            "logging_collector": "off",
            "log_line_prefix": "%m [%p] %q%u@%d ",
            "log_min_messages": "warning",
        }
        lines.update(self.settings)
        path = self.data_dir / "hmstest_local.conf"
        path.write_text("".join(f"{k} = {_quote_conf(v)}\n" for k, v in lines.items()))
        _chown(path)

    # -- running

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it accepts connections (a standby: read-only)."""
        if self.running:
            return
        for attempt in range(3):
            log = self.log_path.open("ab")
            try:
                self._proc = subprocess.Popen(
                    [str(self.bindir / "postgres"), "-D", str(self.data_dir)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    cwd=self.base, env=_clean_env(self.base), start_new_session=True,
                    **_owner_kwargs(),
                )
            finally:
                log.close()
            reaper.watch_process(self._proc.pid, signal.SIGQUIT, str(self.data_dir))
            try:
                self._wait_ready(timeout)
                return
            except ClusterError:
                if self._proc.poll() is not None and "already in use" in self.log_tail() \
                        and attempt < 2:
                    self._reap()
                    self.port = free_port(self.host)  # lost a race for the port
                    self.write_local_conf()
                    continue
                self._reap(kill=True)
                raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pidfile = self.data_dir / "postmaster.pid"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise ClusterError(f"{self.name}: postgres exited with {self._proc.returncode}"
                                   f"{self._log_suffix()}")
            with contextlib.suppress(OSError, IndexError):
                lines = pidfile.read_text().splitlines()
                if lines[0].strip() == str(self._proc.pid) and \
                        lines[7].strip() in ("ready", "standby"):
                    return
            time.sleep(0.05)
        raise ClusterError(f"{self.name}: not ready after {timeout}s{self._log_suffix()}")

    def stop(self, mode: StopMode = "fast", timeout: float = 60.0) -> float:
        """Stop as ``pg_ctl stop -m MODE`` does (same signal); wait until every process of the
        server is gone. Returns the seconds it took. No-op when not running."""
        if self._proc is None:
            return 0.0
        started = time.monotonic()
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, _STOP_SIGNALS[mode])
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._reap(kill=True)
                raise ClusterError(f"{self.name}: did not stop ({mode}) within {timeout}s"
                                   f"{self._log_suffix()}") from None
        self._reap()
        return time.monotonic() - started

    def kill(self) -> float:
        """``pg_ctl stop -m immediate``: a crash as far as the data is concerned."""
        return self.stop("immediate")

    def restart(self, mode: StopMode = "fast", timeout: float = 60.0) -> None:
        self.stop(mode, timeout)
        self.start(timeout)

    def _reap(self, kill: bool = False) -> None:
        """Forget the server process; make sure no process of its group is left."""
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        if kill and proc.poll() is None:
            reaper.kill_group(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        # Backends exit right after the postmaster; never leave one behind.
        deadline = time.monotonic() + 5
        while reaper.group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if reaper.group_alive(proc.pid):
            reaper.kill_group(proc.pid)
        reaper.forget_process(proc.pid)

    def promote(self, timeout: float = 60.0) -> float:
        """``pg_ctl promote -w`` and wait until the server accepts writes. Returns seconds."""
        started = time.monotonic()
        self._run([str(self.bindir / "pg_ctl"), "promote", "-D", str(self.data_dir), "-w",
                   "-t", str(int(timeout))])
        self.wait_accepts_writes(max(1.0, timeout - (time.monotonic() - started)))
        self.primary = None
        return time.monotonic() - started

    def wait_accepts_writes(self, timeout: float = 30.0) -> float:
        """Until a transaction can get an xid (a standby cannot). Returns seconds waited."""
        started = time.monotonic()
        last: Exception | None = None
        while time.monotonic() - started < timeout:
            try:
                self.psql("SELECT pg_current_xact_id()")
                return time.monotonic() - started
            except psycopg.Error as exc:
                last = exc
                time.sleep(0.05)
        raise ClusterError(f"{self.name}: does not accept writes after {timeout}s ({last})"
                           f"{self._log_suffix()}")

    def cleanup(self) -> None:
        """Stop (immediately) and delete the directory. Safe to call twice."""
        try:
            self.stop("immediate", timeout=30)
        except ClusterError:
            pass
        finally:
            if self.base.exists():
                shutil.rmtree(self.base, ignore_errors=True)
                reaper.forget_dir(str(self.base))

    # -- connecting

    def dsn(self, dbname: str = "postgres", user: str = SUPERUSER, **extra: Any) -> str:
        """A key=value conninfo over TCP (with the password under scram). It pins what a
        test's PG* variables could otherwise change (PGTARGETSESSIONATTRS, ...)."""
        params: dict[str, Any] = {"host": self.host, "port": self.port, "dbname": dbname,
                                  "user": user, "connect_timeout": 5,
                                  "target_session_attrs": "any", "sslmode": "prefer",
                                  "options": ""}
        if self.password and user == SUPERUSER:
            params["password"] = self.password
        params.update(extra)
        return pg_conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})

    def url(self, dbname: str = "postgres", user: str = SUPERUSER) -> str:
        """The same as a postgresql:// URL."""
        auth = user if not (self.password and user == SUPERUSER) else \
            f"{user}:{self.password}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn(dbname), autocommit=True, **kwargs)

    def psql(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None, *,
             dbname: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement on a new autocommit connection; the rows (``[]`` if none)."""
        with self.connect(dbname) as conn:
            cur = conn.execute(sql.encode(), params)
            return list(cur.fetchall()) if cur.description else []

    def value(self, sql: str, params: Sequence[Any] | None = None, *,
              dbname: str = "postgres") -> Any:
        """The first column of the first row."""
        return self.psql(sql, params, dbname=dbname)[0][0]

    def create_database(self, name: str) -> str:
        """CREATE DATABASE; returns its conninfo."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def set(self, **settings: str) -> None:
        """ALTER SYSTEM SET each, then reload (only for settings a reload applies)."""
        with self.connect() as conn:
            for key, value in settings.items():
                conn.execute(f"ALTER SYSTEM SET {key} = {_quote_sql(value)}".encode())
            conn.execute("SELECT pg_reload_conf()")

    # -- identity

    def is_in_recovery(self) -> bool:
        return bool(self.value("SELECT pg_is_in_recovery()"))

    def system_identifier(self) -> int:
        """pg_control_system().system_identifier: the same on a primary and its standbys."""
        return int(self.value("SELECT system_identifier FROM pg_control_system()"))

    def checkpoint_timeline(self) -> int:
        """pg_control_checkpoint().timeline_id: the timeline of the last checkpoint (or
        restartpoint). After a promotion it moves to the new timeline only once the
        end-of-recovery checkpoint has finished; see ``timeline()``."""
        return int(self.value("SELECT timeline_id FROM pg_control_checkpoint()"))

    def timeline(self) -> int:
        """The timeline the server is on now: on a primary the one WAL is written on, on a
        standby the one it last received (falling back to its last restartpoint's)."""
        if self.is_in_recovery():
            row = self.psql("SELECT received_tli FROM pg_stat_wal_receiver")
            if row and row[0][0]:
                return int(row[0][0])
            return self.checkpoint_timeline()
        walfile = str(self.value("SELECT pg_walfile_name(pg_current_wal_insert_lsn())"))
        return int(walfile[:8], 16)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _log_suffix(self) -> str:
        tail = self.log_tail()
        return f"\n--- {self.log_path} ---\n{tail}" if tail else ""

    def _run(self, cmd: list[str], **env: str) -> str:
        """Run a PostgreSQL tool as the server user; its output, or ClusterError."""
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.base,
                              env=_clean_env(self.base, **env), check=False, timeout=300,
                              **_owner_kwargs())
        if proc.returncode != 0:
            raise ClusterError(f"{self.name}: {' '.join(cmd)} failed ({proc.returncode}):\n"
                               f"{proc.stdout}{proc.stderr}")
        return proc.stdout


def _quote_conf(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _quote_sql(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@contextlib.contextmanager
def cluster(name: str = "pg", **kwargs: Any) -> Iterator[Cluster]:
    """``Cluster.create`` as a context manager."""
    with Cluster.create(name, **kwargs) as pg:
        yield pg


# -- replication ---------------------------------------------------------------------------------


def make_standby(primary: Cluster, name: str, *, slot: bool = True,
                 start: bool = True, settings: Mapping[str, str] | None = None) -> Cluster:
    """A streaming standby of ``primary``: ``pg_basebackup -R -X stream`` (with a physical
    replication slot named after the standby unless ``slot=False``); it connects with
    ``application_name=<name>``, the name ``synchronous_standby_names`` uses."""
    standby = Cluster(name, auth=primary.auth, password=primary.password,
                      settings={**primary.settings, **(settings or {})}, fsync=primary.fsync,
                      bindir=primary.bindir, host=primary.host)
    try:
        cmd = [str(primary.bindir / "pg_basebackup"), "-D", str(standby.data_dir),
               "-d", primary.dsn(), "-X", "stream", "-R", "-c", "fast", "--no-sync"]
        if slot:
            cmd += ["-C", "-S", name]
        standby._run(cmd)
        standby.write_local_conf()
        with (standby.data_dir / "postgresql.auto.conf").open("a") as auto:
            auto.write(f"primary_conninfo = {_quote_conf(replication_conninfo(primary, name))}\n")
            auto.write(f"primary_slot_name = {_quote_conf(name if slot else '')}\n")
        standby.primary = primary
        if start:
            standby.start()
    except BaseException:
        standby.cleanup()
        raise
    return standby


def replication_conninfo(primary: Cluster, application_name: str) -> str:
    params = {"host": primary.host, "port": str(primary.port), "user": SUPERUSER,
              "application_name": application_name, "connect_timeout": "2"}
    if primary.password:
        params["password"] = primary.password
    return pg_conninfo.make_conninfo(**params)


def wait_streaming(primary: Cluster, standby: Cluster, timeout: float = 30.0) -> str:
    """Until ``primary`` streams to ``standby``; returns its sync_state (async, sync,
    quorum, potential)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.Error):
            rows = primary.psql("SELECT sync_state FROM pg_stat_replication WHERE "
                                "application_name = %s AND state = 'streaming'",
                                (standby.name,))
            if rows:
                return str(rows[0][0])
        time.sleep(0.05)
    raise ClusterError(f"{standby.name} is not streaming from {primary.name} after {timeout}s"
                       f"{standby._log_suffix()}")


def wait_caught_up(primary: Cluster, standby: Cluster, timeout: float = 30.0) -> float:
    """Until ``standby`` has replayed everything ``primary`` has written so far."""
    started = time.monotonic()
    target = primary.value("SELECT pg_current_wal_lsn()")
    while time.monotonic() - started < timeout:
        with contextlib.suppress(psycopg.Error):
            if standby.value("SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), %s) >= 0",
                             (target,)):
                return time.monotonic() - started
        time.sleep(0.05)
    raise ClusterError(f"{standby.name} has not replayed up to {target} after {timeout}s")


def detach(standby: Cluster) -> None:
    """Stop the standby receiving WAL (``primary_conninfo = ''``): whatever the primary
    commits from now on is not on the standby. A way to create replication lag."""
    standby.set(primary_conninfo="")
    deadline = time.monotonic() + 10
    while standby.psql("SELECT 1 FROM pg_stat_wal_receiver") and time.monotonic() < deadline:
        time.sleep(0.05)


def repoint(standby: Cluster, new_primary: Cluster, *, slot: bool = True) -> None:
    """Make ``standby`` follow ``new_primary`` (after a failover): a slot there, then
    primary_conninfo and primary_slot_name (both reloadable since PostgreSQL 13). The standby
    follows the new timeline (recovery_target_timeline = 'latest', the default) as long as it
    had not received more WAL than the new primary had when promoted."""
    if slot:
        new_primary.psql("SELECT pg_create_physical_replication_slot(%s, true) WHERE NOT EXISTS "
                         "(SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)",
                         (standby.name, standby.name))
    standby.set(primary_conninfo=replication_conninfo(new_primary, standby.name),
                primary_slot_name=standby.name if slot else "")
    standby.primary = new_primary


def fence(old_primary: Cluster, new_primary: Cluster) -> None:
    """Make a stopped old primary start read-only: ``standby.signal`` and a primary_conninfo
    naming the new primary. It will not take writes; having diverged it cannot follow (and
    after such a start pg_rewind no longer helps: rebuild it). Call while it is stopped."""
    if old_primary.running:
        raise ClusterError(f"{old_primary.name} is running: fence it before it starts")
    signal_file = old_primary.data_dir / "standby.signal"
    signal_file.write_text("")
    _chown(signal_file)
    with (old_primary.data_dir / "postgresql.auto.conf").open("a") as auto:
        auto.write("primary_conninfo = "
                   f"{_quote_conf(replication_conninfo(new_primary, old_primary.name))}\n")
    old_primary.primary = new_primary


def rejoin_as_standby(old_primary: Cluster, new_primary: Cluster, *,
                      start: bool = True) -> float:
    """``pg_rewind`` a stopped (e.g. killed, never restarted) old primary onto the new one and
    start it as its standby. Returns the seconds pg_rewind took. Rewinding discards what only
    the old primary had: copy ``data_dir`` first if that is needed."""
    if old_primary.running:
        raise ClusterError(f"{old_primary.name} is running: stop it first")
    started = time.monotonic()
    # pg_rewind reads the source's timeline from its control file, which a recent promotion
    # has not updated until a checkpoint: without this it says "no rewind required".
    new_primary.psql("CHECKPOINT")
    old_primary._run([str(old_primary.bindir / "pg_rewind"), "-D", str(old_primary.data_dir),
                      "--source-server", new_primary.dsn(), "-R"])
    took = time.monotonic() - started
    old_primary.write_local_conf()  # pg_rewind copied the source's files over ours
    with (old_primary.data_dir / "postgresql.auto.conf").open("a") as auto:
        auto.write("primary_conninfo = "
                   f"{_quote_conf(replication_conninfo(new_primary, old_primary.name))}\n")
        auto.write("primary_slot_name = ''\n")
    old_primary.primary = new_primary
    if start:
        old_primary.start()
    return took


def synchronous_names(standbys: Sequence[Cluster]) -> str:
    """'s1' for one standby, 'ANY 1 (s1, s2)' for more (one stalled standby stalls nothing)."""
    if not standbys:
        return ""
    if len(standbys) == 1:
        return standbys[0].name
    return f"ANY 1 ({', '.join(s.name for s in standbys)})"


@dataclass
class ReplicaSet:
    """A primary and its standbys (``primary_with_standby``)."""

    primary: Cluster
    standbys: list[Cluster]
    synchronous: bool
    nodes: list[Cluster] = field(default_factory=list)  # every server, in creation order
    old_primaries: list[Cluster] = field(default_factory=list)

    @property
    def standby(self) -> Cluster:
        return self.standbys[0]

    def hosts(self, order: Sequence[Cluster] | None = None) -> str:
        return ",".join(f"{n.host}:{n.port}" for n in (order or self.nodes))

    def url(self, dbname: str = "postgres", *, order: Sequence[Cluster] | None = None,
            target_session_attrs: str | None = "read-write", user: str = SUPERUSER,
            **params: str) -> str:
        """A libpq multi-host URL over ``order`` (default: every node, in creation order)."""
        nodes = list(order or self.nodes)
        auth = user
        if nodes[0].password and user == SUPERUSER:
            auth = f"{user}:{nodes[0].password}"
        query = dict(params)
        if target_session_attrs:
            query["target_session_attrs"] = target_session_attrs
        query.setdefault("connect_timeout", "3")
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        return f"postgresql://{auth}@{self.hosts(nodes)}/{dbname}" + (f"?{qs}" if qs else "")

    def wait_streaming(self, timeout: float = 30.0) -> None:
        for standby in self.standbys:
            wait_streaming(self.primary, standby, timeout)

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        for standby in self.standbys:
            wait_caught_up(self.primary, standby, timeout)

    def make_synchronous(self, timeout: float = 30.0) -> None:
        """Set synchronous_standby_names on the primary and wait until the standbys are
        sync (one) or quorum (two or more) standbys."""
        names = synchronous_names(self.standbys)
        self.primary.set(synchronous_standby_names=names)
        want = "sync" if len(self.standbys) == 1 else "quorum"
        deadline = time.monotonic() + timeout
        for standby in self.standbys:
            while wait_streaming(self.primary, standby, timeout) != want:
                if time.monotonic() > deadline:
                    raise ClusterError(f"{standby.name} did not become {want}")
                time.sleep(0.05)

    def failover(self, promote: Cluster | None = None, *, timeout: float = 60.0) -> float:
        """Kill the primary (stop -m immediate), promote ``promote`` (default: the first
        standby), repoint the other standbys at it and, when synchronous, make them its
        synchronous standbys. Returns the seconds from the kill until the new primary
        accepted writes."""
        new = promote or self.standbys[0]
        started = time.monotonic()
        self.primary.kill()
        new.promote(timeout)
        took = time.monotonic() - started
        self.old_primaries.append(self.primary)
        rest = [s for s in self.standbys if s is not new]
        for standby in rest:
            repoint(standby, new)
        self.primary, self.standbys = new, rest
        if self.synchronous and rest:
            self.wait_streaming(timeout)
            self.make_synchronous(timeout)
        return took

    def close(self) -> None:
        for node in reversed(self.nodes):
            node.cleanup()


@contextlib.contextmanager
def primary_with_standby(*, synchronous: bool, standbys: int = 1, auth: Auth = "trust",
                         settings: Mapping[str, str] | None = None,
                         fsync: bool = False) -> Iterator[ReplicaSet]:
    """A primary ``p`` and ``standbys`` streaming standbys ``s1``, ``s2`` with slots; when
    ``synchronous``, ``synchronous_standby_names`` is ``s1`` or ``ANY 1 (s1, s2)`` (set on the
    primary after the base backups, so a promoted standby does not wait for itself)."""
    if standbys not in (1, 2):
        raise ValueError("standbys must be 1 or 2")
    primary = Cluster.create("p", auth=auth, settings=dict(settings or {}), fsync=fsync)
    rs = ReplicaSet(primary, [], synchronous, nodes=[primary])
    try:
        for i in range(1, standbys + 1):
            standby = make_standby(primary, f"s{i}")
            rs.standbys.append(standby)
            rs.nodes.append(standby)
        rs.wait_streaming()
        if synchronous:
            rs.make_synchronous()
        yield rs
    finally:
        rs.close()
