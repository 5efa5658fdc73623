"""The embedded default, as a user meets it: real hms-tui processes on a per-user data dir.

One server is shared by every process of the user and stops when the last one exits, also
after SIGTERM or SIGHUP, whoever started it; handles of killed processes, stale and corrupt
files are recovered from; only the owner can reach it, staff give passwords; nothing that is
not this data directory's postmaster is ever signalled.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import psycopg
import pytest

from hms_tui.db.embedded import EmbeddedServer
from tests.test_listener import read_json_line


@pytest.fixture
def user_env(server_home: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HMS_DATABASE_URL", "HMS_TUI_CONFIG", "HMS_TEST_DSN")}
    env["XDG_DATA_HOME"] = str(server_home / "data")
    env["XDG_CONFIG_HOME"] = str(server_home / "config")
    yield env
    # Whatever a failed test left: stop only this data directory's postmaster.
    server = EmbeddedServer(data_dir(env))
    pid = server.postmaster_pid()
    if pid is not None:
        os.kill(pid, signal.SIGQUIT)


def data_dir(env: dict[str, str]) -> Path:
    return Path(env["XDG_DATA_HOME"]) / "hms-tui" / "pg18"


def server_pid(env: dict[str, str]) -> int | None:
    return EmbeddedServer(data_dir(env)).postmaster_pid()


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


def handles(env: dict[str, str]) -> list[str]:
    folder = data_dir(env).parent / ".pg18.handles"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_shared_server_stops_with_the_last_process(user_env: dict[str, str],
                                                   sig: signal.Signals) -> None:
    first = hms(user_env, "demo", "--seed-only", "--json")
    assert first.returncode == 0, first.stderr
    wait_stopped(user_env)  # nobody holds it any more

    watcher = start_watch(user_env)
    try:
        pid = server_pid(user_env)
        assert pid is not None
        status = hms(user_env, "db", "status", "--json")  # attaches to the same server
        assert status.returncode == 0, status.stderr
        assert server_pid(user_env) == pid, "the second process must share, not restart"
        assert handles(user_env) == [str(watcher.pid)]
        watcher.send_signal(sig)
        assert watcher.wait(20) == 128 + sig
    finally:
        if watcher.poll() is None:
            watcher.kill()
    wait_stopped(user_env)
    assert handles(user_env) == []


def test_handles_of_killed_processes_are_dropped(user_env: dict[str, str]) -> None:
    watcher = start_watch(user_env)
    watcher.kill()  # SIGKILL: no cleanup, its handle stays
    watcher.wait(10)
    assert handles(user_env) == [str(watcher.pid)]
    assert server_pid(user_env) is not None  # still running: nobody stopped it
    result = hms(user_env, "doctor", "list", "--json")  # drops the dead handle, then is last
    assert result.returncode == 0, result.stderr
    wait_stopped(user_env)
    assert handles(user_env) == []


def test_a_server_restarted_by_a_later_command_is_still_stopped_by_the_last(
    user_env: dict[str, str]
) -> None:
    watcher = start_watch(user_env)
    try:
        first = server_pid(user_env)
        assert first is not None
        os.kill(first, signal.SIGKILL)  # the postmaster dies under a running terminal
        time.sleep(0.5)
        result = hms(user_env, "doctor", "list", "--json")  # starts a new one
        assert result.returncode == 0, result.stderr
        second = server_pid(user_env)
        assert second is not None and second != first
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(20)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    wait_stopped(user_env)


def test_a_stale_pid_file_naming_another_process_is_neither_trusted_nor_signalled(
    user_env: dict[str, str]
) -> None:
    """After a crash the pid in postmaster.pid may belong to anything (here: a sleep)."""
    assert hms(user_env, "doctor", "list").returncode == 0
    wait_stopped(user_env)
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        pid_file = data_dir(user_env) / "postmaster.pid"
        pid_file.write_text(f"{bystander.pid}\n{data_dir(user_env)}\n0\n5432\n")
        result = hms(user_env, "doctor", "list", "--json")
        assert result.returncode == 0, result.stderr
        wait_stopped(user_env)
        assert bystander.poll() is None, "an unrelated process was signalled"
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.parametrize("content", ["", "garbage", "12345678901234567890", "1\n"],
                         ids=["empty", "garbage", "huge", "init"])
def test_corrupt_handle_files_are_recovered_from(user_env: dict[str, str], content: str) -> None:
    assert hms(user_env, "doctor", "list").returncode == 0
    folder = data_dir(user_env).parent / ".pg18.handles"
    (folder / "1").write_text(content)  # pid 1 (init) is alive but never ours
    (folder / "not-a-pid").write_text(content)
    result = hms(user_env, "doctor", "list", "--json")
    assert result.returncode == 0, result.stderr
    wait_stopped(user_env)
    assert handles(user_env) == []


def test_many_processes_starting_at_once_on_a_fresh_home_all_succeed(
    user_env: dict[str, str]
) -> None:
    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda _: hms(user_env, "doctor", "list", "--json"), range(5)))
    assert [r.returncode for r in results] == [0] * 5, [r.stderr for r in results]
    wait_stopped(user_env)


def test_only_the_owner_can_reach_it_and_staff_give_passwords(user_env: dict[str, str]) -> None:
    server = EmbeddedServer(data_dir(user_env))
    conninfo = server.start()
    try:
        socket_dir = server.socket_dir
        assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
        with psycopg.connect(conninfo, autocommit=True) as owner:
            assert owner.execute("SHOW listen_addresses").fetchone() == ("",)
            owner.execute("CREATE ROLE t_nurse LOGIN PASSWORD 'correct horse'")
        nurse = conninfo.replace("postgres@", "t_nurse@")
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(nurse, connect_timeout=5)
        with psycopg.connect(nurse + "&password=correct%20horse") as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("t_nurse",)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as owner:
            owner.execute("DROP ROLE IF EXISTS t_nurse")
        server.stop()


def test_an_unwritable_home_is_one_line(user_env: dict[str, str]) -> None:
    env = {**user_env, "XDG_DATA_HOME": "/proc/hms-tui-cannot-write-here"}
    result = hms(env, "doctor", "list")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "set database.embedded_dir" in result.stderr


def test_no_test_leaves_a_server_of_this_session_running(server_home: Path) -> None:
    """Every postmaster whose data directory is one of the tests' own homes is stopped."""
    leftovers = [p.info for p in psutil.process_iter(["name", "cwd"])
                 if p.info["name"] == "postgres" and str(p.info.get("cwd") or "").startswith(
                     str(server_home.parent / "hms-test-home-"))]
    assert leftovers == []
