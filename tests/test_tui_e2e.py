"""End to end, in real terminals: reception and the waiting-room display run as the CLI runs
them (``python -m hms_tui ...``) in two tmux panes on the test database. A patient is checked
in by keystrokes at reception, and the new token appears on the display's captured screen;
then a call from a doctor's desk puts it on the display in big characters."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hms_tui.services.desk import Desk
from hms_tui.widgets.bigtext import render_big

ROOT = Path(__file__).resolve().parent.parent


class Tmux:
    """A private tmux server (its own socket): never touches anyone else's sessions."""

    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"hms-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.env = env

    def run(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], env=self.env, text=True,
                              capture_output=True, timeout=10, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def start(self, name: str, command: str, width: int, height: int) -> None:
        # Textual draws on stderr: nothing of the app's output is redirected.
        self.run("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height),
                 "-c", str(ROOT), "-e", f"HMS_DATABASE_URL={self.env['HMS_DATABASE_URL']}",
                 command)

    def screen(self, name: str) -> str:
        return self.run("capture-pane", "-p", "-t", name)

    def keys(self, name: str, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", name, *(["-l"] if literal else []), *keys)

    def wait(self, name: str, predicate: Callable[[str], bool], timeout: float,
             what: str) -> str:
        deadline = time.monotonic() + timeout
        shown = ""
        while time.monotonic() < deadline:
            try:
                shown = self.screen(name)
            except RuntimeError:  # the session is gone: the app died
                break
            if predicate(shown):
                return shown
            time.sleep(0.1)
        raise AssertionError(f"{name}: never showed {what} within {timeout}s; screen:\n{shown}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], env=self.env,
                       capture_output=True, timeout=10, check=False)


def test_check_in_at_reception_appears_on_the_display(
    cli_env: dict[str, str], desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    env = {**cli_env, "TERM": "xterm-256color"}
    env.pop("TMUX", None)  # never attach to an outer tmux
    tmux = Tmux(env)
    python = sys.executable
    try:
        tmux.start("display", f"{python} -m hms_tui display", 80, 24)
        tmux.start("reception", f"{python} -m hms_tui reception", 120, 36)
        tmux.wait("display", lambda s: "Dr Rao, Room 3" in s and "Dr Mehta, Room 5" in s
                  and "live" in s and "Next: -" in s, 30, "both doctors, live")
        tmux.wait("reception", lambda s: "live" in s and "Patient 09" in s and "Dr Mehta" in s,
                  30, "the patient list, live")

        # The receptionist types the name, Enter (check-in dialog), Enter (confirm).
        tmux.keys("reception", "Patient 03", literal=True)
        tmux.wait("reception", lambda s: "Patient 03" in s and "Patient 09" not in s, 10,
                  "only Patient 03 found")
        tmux.keys("reception", "Enter")
        tmux.wait("reception", lambda s: "Check in Patient 03" in s, 10, "the check-in dialog")
        tmux.keys("reception", "Enter")
        # The slip's preview (no printer here: Esc skips it), then the token at the desk.
        tmux.wait("reception", lambda s: "Slip for D1-001" in s and "Enter/p print" in s, 10,
                  "the slip preview")
        tmux.keys("reception", "Escape")
        tmux.wait("reception", lambda s: "D1-001  Patient 03 (M000004)" in s
                  and "Slip for" not in s, 10, "the new token at reception")

        # The display shows it in the "Next:" line of Dr Rao's panel, by itself.
        shown = tmux.wait("display", lambda s: "Next: D1-001" in s, 10, "the token queued")
        assert "Patient 03" not in shown  # names hidden
        row = sql.execute("SELECT v.token, v.status::text, p.name FROM hms.visits v"
                          " JOIN hms.patients p ON p.id = v.patient_id").fetchall()
        assert row == [("D1-001", "WAITING", "Patient 03")]

        # A doctor calls it: now serving, in the big font, with the announcement.
        desk.call_next("D1")
        big = [r.rstrip() for r in render_big("D1-001")]
        shown = tmux.wait("display", lambda s: all(r in s for r in big), 10,
                          "D1-001 in big characters")
        assert "Now calling D1-001 - Dr Rao, Room 3" in shown
        assert sql.execute("SELECT status::text FROM hms.visits").fetchone() == ("CALLED",)
    finally:
        tmux.kill()


def test_display_lives_through_doctor_changes_and_a_scanner_is_exact(
    cli_env: dict[str, str], desk: Desk, clinic: dict[str, Any], sql: psycopg.Connection[Any]
) -> None:
    """The two defects seen in real terminals: the display died with a DuplicateIds
    traceback when admin added or deactivated a doctor; a scanner's MRN and Enter opened the
    check-in of the previous top row."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    env = {**cli_env, "TERM": "xterm-256color"}
    env.pop("TMUX", None)
    tmux = Tmux(env)
    python = sys.executable
    target = desk.search_patients("Patient 03")[0]
    try:
        tmux.start("display", f"{python} -m hms_tui display", 80, 24)
        tmux.start("reception", f"{python} -m hms_tui reception", 80, 24)
        tmux.wait("display", lambda s: "Dr Rao, Room 3" in s and "live" in s, 30,
                  "the display, live")
        for step in range(3):  # added, deactivated, activated: the display follows
            if step == 0:
                desk.add_doctor("D3", "Dr Sen", "Room 7")
            else:
                desk.update_doctor("D3", active=step == 2)
            tmux.wait("display", lambda s, on=step != 1: ("Dr Sen, Room 7" in s) == on
                      and "live" in s, 15, f"the display after change {step}")
        shown = tmux.screen("display")
        assert "Traceback" not in shown and "Error" not in shown

        tmux.wait("reception", lambda s: "live" in s and "Patient 09" in s, 30,
                  "reception, live")
        # The scanner: the MRN and Enter in one write, before any search could answer.
        tmux.keys("reception", target.mrn, literal=True)
        tmux.keys("reception", "Enter")
        tmux.wait("reception", lambda s: f"Check in Patient 03 ({target.mrn})" in s, 10,
                  "the check-in of the scanned patient")
        assert sql.execute("SELECT count(*) FROM hms.visits").fetchone() == (0,)
        assert "Traceback" not in tmux.screen("display")
    finally:
        tmux.kill()
