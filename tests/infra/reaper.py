"""No orphan servers, whatever happens to the test process.

Servers are started as children of the test process in their own session (so a Ctrl-C
aimed at pytest does not hit them half-way) and each is registered here. Normal cleanup
(context managers, fixtures, ``atexit``) stops them; if the test process dies without that
(SIGKILL, a crash), a small watchdog process notices its pipe closing, sends each
registered process its shutdown signal, SIGKILLs the process group of any still alive after
``GRACE`` seconds, and removes the registered directories.

The watchdog identifies a process by pid *and* a marker string that must occur in its
``/proc/PID/cmdline`` (a data directory or config path), so a recycled pid is never hit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO

TAG = "hmstest"  # in every directory name, cluster_name and config path we create
RUN_TAG = f"{TAG}.{os.getpid()}"  # ... of this test process only
GRACE = 10.0

_WATCHDOG = r"""
import os, shutil, signal, sys, time
procs, dirs = {}, []
for line in sys.stdin:
    cmd, _, rest = line.rstrip("\n").partition(" ")
    if cmd == "+p":
        pid, sig, marker = rest.split(" ", 2)
        procs[int(pid)] = (int(sig), marker)
    elif cmd == "-p":
        procs.pop(int(rest), None)
    elif cmd == "+d":
        dirs.append(rest)
    elif cmd == "-d" and rest in dirs:
        dirs.remove(rest)
def alive(pid, marker):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return marker.encode() in f.read()
    except OSError:
        return False
for pid, (sig, marker) in procs.items():
    if alive(pid, marker):
        try:
            os.kill(pid, sig)
        except OSError:
            pass
deadline = time.monotonic() + GRACE
while time.monotonic() < deadline and any(alive(p, m) for p, (s, m) in procs.items()):
    time.sleep(0.1)
for pid, (sig, marker) in procs.items():
    if alive(pid, marker):
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
time.sleep(0.5)
for d in dirs:
    shutil.rmtree(d, ignore_errors=True)
""".replace("GRACE", repr(GRACE))

_lock = threading.Lock()
_watchdog: subprocess.Popen[str] | None = None
_exit_hooks: list[Callable[[], None]] = []


def _send(line: str) -> None:
    global _watchdog
    with _lock:
        for _attempt in range(2):
            if _watchdog is None or _watchdog.poll() is not None:
                _watchdog = subprocess.Popen(
                    [sys.executable, "-c", _WATCHDOG], stdin=subprocess.PIPE, text=True,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True, close_fds=True,
                )
            stdin: IO[str] | None = _watchdog.stdin
            assert stdin is not None
            try:
                stdin.write(line + "\n")
                stdin.flush()
                return
            except (BrokenPipeError, OSError):
                _watchdog = None


def watch_process(pid: int, sig: int, marker: str) -> None:
    """Have the watchdog stop ``pid`` (with ``sig``, then SIGKILL of its process group) if the
    test process dies first. ``marker`` must occur in the process's command line."""
    if " " in str(pid) or "\n" in marker:
        raise ValueError("bad marker")
    _send(f"+p {pid} {int(sig)} {marker}")


def forget_process(pid: int) -> None:
    _send(f"-p {pid}")


def watch_dir(path: str) -> None:
    """Have the watchdog remove ``path`` if the test process dies first."""
    if "\n" in path:
        raise ValueError("bad path")
    _send(f"+d {path}")


def forget_dir(path: str) -> None:
    _send(f"-d {path}")


def at_exit(hook: Callable[[], None]) -> None:
    """Run ``hook`` at interpreter exit (before the watchdog sees its pipe close)."""
    _exit_hooks.append(hook)


@atexit.register
def _run_exit_hooks() -> None:
    for hook in reversed(_exit_hooks):
        with contextlib.suppress(Exception):
            hook()


def group_alive(pgid: int) -> bool:
    """True while any process of the process group ``pgid`` exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pgid: int, timeout: float = 5.0) -> None:
    """SIGKILL a whole process group and wait until it is gone."""
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)


def leftover_processes(tag: str = TAG) -> list[str]:
    """Processes whose command line mentions ``tag`` (``pgrep -af``), excluding pgrep itself
    and the watchdog. Empty when every server we started is gone."""
    try:
        out = subprocess.run(["pgrep", "-af", tag], capture_output=True, text=True,
                             check=False).stdout
    except FileNotFoundError:  # no procps: read /proc directly
        out = ""
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if tag in cmdline:
                    out += f"{entry} {cmdline}\n"
    me = os.getpid()
    lines = []
    for line in out.splitlines():
        pid, _, cmd = line.partition(" ")
        if int(pid) == me or cmd.startswith("pgrep ") or "import os, shutil, signal" in cmd:
            continue
        lines.append(line)
    return lines
