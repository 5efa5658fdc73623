"""The embedded default, as a user meets it: real hms-tui processes on a per-user data dir.

One server is shared by every process of the user and stops when the last one exits, also
after SIGTERM or SIGHUP; pids left by a killed process do not keep it running forever.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.test_listener import read_json_line


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HMS_DATABASE_URL", "HMS_TUI_CONFIG", "HMS_TEST_DSN")}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return env


def data_dir(env: dict[str, str]) -> Path:
    return Path(env["XDG_DATA_HOME"]) / "hms-tui" / "pg18"


def server_pid(env: dict[str, str]) -> int | None:
    pid_file = data_dir(env) / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if psutil.pid_exists(pid) else None


def wait_stopped(env: dict[str, str], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server_pid(env) is None:
            return
        time.sleep(0.1)
    raise AssertionError("the embedded server was left running")


def hms(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hms_tui", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def start_watch(env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "hms_tui", "watch", "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    while read_json_line(proc.stdout, 30).get("state") != "live":
        pass
    return proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_shared_server_stops_with_the_last_process(user_env: dict[str, str],
                                                   sig: signal.Signals) -> None:
    first = hms(user_env, "demo", "--seed-only", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["seeded"] is True
    wait_stopped(user_env)  # nobody holds it any more

    watcher = start_watch(user_env)
    try:
        pid = server_pid(user_env)
        assert pid is not None
        status = hms(user_env, "db", "status", "--json")  # attaches to the same server
        assert status.returncode == 0, status.stderr
        assert server_pid(user_env) == pid, "the second process must share, not restart"
        watcher.send_signal(sig)
        watcher.wait(20)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    wait_stopped(user_env)
    assert json.loads((data_dir(user_env) / ".handle_pids.json").read_text()) == []


def test_pids_of_killed_processes_are_pruned(user_env: dict[str, str]) -> None:
    watcher = start_watch(user_env)
    watcher.kill()  # SIGKILL: no cleanup, its pid stays in the handle list
    watcher.wait(10)
    pids = json.loads((data_dir(user_env) / ".handle_pids.json").read_text())
    assert watcher.pid in pids
    assert server_pid(user_env) is not None  # still running: nobody stopped it

    result = hms(user_env, "doctor", "list", "--json")  # prunes the dead pid, then is last
    assert result.returncode == 0, result.stderr
    wait_stopped(user_env)
