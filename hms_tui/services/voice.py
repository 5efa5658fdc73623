"""Spoken calls for the waiting-room display: "Token D 1 0 0 7, please go to Room 3".

The speech engine is an external command (``[voice] command``, espeak-ng by default), run once
per announcement with the text as one argument — never through a shell, so a room name cannot
become a command. espeak-ng plays to the ALSA default device by itself: no sound server.

``Announcer`` speaks strictly one announcement after another on a background thread: each run of
the engine ends before the next starts, nothing queued is dropped (a recall is simply another
announcement and is spoken again), and ``on_start``/``on_done`` bracket each run so a display can
keep a token highlighted exactly as long as it is being said. The callbacks run on the
announcer's thread; a Textual app passes them through ``App.call_from_thread``.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any

from hms_tui.config import VoiceSettings
from hms_tui.domain.textsafe import printable

__all__ = [
    "Announcement",
    "AnnouncementRun",
    "Announcer",
    "EngineCheck",
    "VoiceSettings",
    "build_command",
    "detect_engine",
    "speech_text",
    "spell_token",
]

log = logging.getLogger(__name__)

RUN_TIMEOUT = 30.0  # seconds one announcement may take before the engine is stopped


def spell_token(token: str) -> str:
    """'D1-007' -> 'D 1 0 0 7': every letter and digit on its own, separators dropped, so the
    engine says "dee one zero zero seven" rather than "D-one" and "seven"."""
    return " ".join(ch for ch in token if ch.isalnum())


@dataclass(frozen=True)
class Announcement:
    """One call to announce. ``key`` is the caller's (e.g. the visit id), handed back in the
    callbacks; ``room`` is said as written (a visit without a room passes the doctor's name)."""

    token: str
    room: str
    doctor: str = ""
    recall: bool = False
    key: Hashable | None = None

    @classmethod
    def for_visit(cls, visit: Any, *, recall: bool = False) -> Announcement:
        """The call of a visit (``core.models.Visit`` or the display's row): its room, or the
        doctor's name when the doctor has no room; ``key`` is the visit id."""
        return cls(token=visit.token or "", room=visit.room or visit.doctor_name,
                   doctor=visit.doctor_name, recall=recall, key=getattr(visit, "visit_id", None))


def speech_text(template: str, announcement: Announcement) -> str:
    """The sentence to say: ``{token}`` spelled out, ``{room}`` and ``{doctor}`` as written."""
    fields = {
        "token": spell_token(printable(announcement.token)),
        "room": printable(announcement.room).strip(),
        "doctor": printable(announcement.doctor).strip(),
    }
    text = re.sub(r"\{(token|room|doctor)\}", lambda m: fields[m.group(1)], template)
    text = " ".join(printable(text).split())
    # A leading '-' would be read as an option by the engine.
    return f" {text}" if text.startswith("-") else text


def build_command(settings: VoiceSettings, text: str, n: int) -> list[str]:
    """The engine's argument list for one announcement: ``{text}``, ``{voice}`` and ``{n}``
    (the announcement's number, for commands that write a file per call) replaced."""
    return [arg.replace("{voice}", settings.voice).replace("{n}", str(n)).replace("{text}", text)
            for arg in settings.command]


@dataclass(frozen=True)
class EngineCheck:
    """Whether calls can be spoken here, and if not, the one line to log why."""

    available: bool
    reason: str
    path: str | None = None


def detect_engine(settings: VoiceSettings) -> EngineCheck:
    """Voice is usable when it is enabled and the command's program is on PATH (or is an
    executable path)."""
    if not settings.enabled:
        return EngineCheck(False, "voice is off ([voice] enabled = false); ringing the bell")
    program = settings.command[0]
    path = shutil.which(program)
    if path is None:
        hint = " (apt-get install espeak-ng)" if program == "espeak-ng" else ""
        return EngineCheck(False, f"speech engine '{program}' not found{hint}; "
                                  "ringing the bell instead")
    return EngineCheck(True, f"speaking with {path}", path)


@dataclass(frozen=True)
class AnnouncementRun:
    """One announcement as it is spoken. Times are ``time.monotonic()`` seconds: ``started``
    just before the engine starts, ``ended`` once it has exited (None while it runs)."""

    n: int
    announcement: Announcement
    text: str
    argv: tuple[str, ...]
    started: float
    ended: float | None = None
    returncode: int | None = None
    error: str | None = None
    stderr: str = ""


Callback = Callable[[AnnouncementRun], object]


class Announcer:
    """Speaks announcements one at a time, in order, on its own thread."""

    def __init__(self, settings: VoiceSettings, *, on_start: Callback | None = None,
                 on_done: Callback | None = None, run_timeout: float = RUN_TIMEOUT) -> None:
        self.settings = settings
        self.on_start = on_start
        self.on_done = on_done
        self.run_timeout = run_timeout
        self._queue: queue.Queue[tuple[int, Announcement] | None] = queue.Queue()  # None: stop
        self._lock = threading.Condition()
        self._next_n = 1
        self._outstanding = 0
        self._runs: list[AnnouncementRun] = []
        self._current: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._cut_off = False

    # -- public ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the speaking thread (``announce`` does this too)."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("this announcer has been stopped")
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="hms-voice", daemon=True)
                self._thread.start()

    def announce(self, announcement: Announcement) -> int:
        """Queue ``announcement``; returns its number (1, 2, ...). Never blocks, never drops."""
        self.start()
        with self._lock:
            n = self._next_n
            self._next_n += 1
            self._outstanding += 1
            self._queue.put((n, announcement))
        return n

    @property
    def runs(self) -> tuple[AnnouncementRun, ...]:
        """Finished announcements, in the order they were spoken."""
        with self._lock:
            return tuple(self._runs)

    def pending(self) -> int:
        """Announcements queued or being spoken."""
        with self._lock:
            return self._outstanding

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until everything queued has been spoken; False if ``timeout`` ran out first."""
        with self._lock:
            return self._lock.wait_for(lambda: self._outstanding == 0, timeout)

    def stop(self, *, drain: bool = True, timeout: float | None = None) -> None:
        """Stop the thread. ``drain`` speaks what is queued first; otherwise the queue is
        discarded and the announcement being spoken is cut off (the display is closing)."""
        with self._lock:
            self._stopping = True
            thread = self._thread
            if not drain:
                self._cut_off = True
                while True:
                    try:
                        self._queue.get_nowait()
                    except queue.Empty:
                        break
                    self._outstanding -= 1
                if self._current is not None:
                    _signal_group(self._current, signal.SIGTERM)
                self._lock.notify_all()
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def __enter__(self) -> Announcer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the speaking thread ---------------------------------------------------------------

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            n, announcement = item
            done = self._speak(n, announcement)
            with self._lock:
                self._runs.append(done)
            self._notify(self.on_done, done)
            with self._lock:
                self._outstanding -= 1
                self._lock.notify_all()

    def _speak(self, n: int, announcement: Announcement) -> AnnouncementRun:
        text = speech_text(self.settings.template, announcement)
        argv = tuple(build_command(self.settings, text, n))
        run = AnnouncementRun(n=n, announcement=announcement, text=text, argv=argv,
                              started=time.monotonic())
        self._notify(self.on_start, run)
        run = replace(run, started=time.monotonic())
        error: str | None
        try:
            with self._lock:
                if self._cut_off:
                    return replace(run, ended=time.monotonic(), error="not spoken: stopped")
                # Its own process group: a pipeline (espeak-ng | aplay) is stopped as a whole.
                process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                           start_new_session=True)
                self._current = process
            try:
                _, err = process.communicate(timeout=self.run_timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                _, err = process.communicate()
                stderr = _tail(err)
                error = f"{argv[0]} took longer than {self.run_timeout:g} s and was stopped"
            else:
                stderr = _tail(err)
                error = (None if process.returncode == 0 else
                         f"{argv[0]} exited with {process.returncode}: {stderr or 'no message'}")
            result = replace(run, ended=time.monotonic(), returncode=process.returncode,
                             error=error, stderr=stderr)
        except OSError as exc:
            result = replace(run, ended=time.monotonic(),
                             error=f"cannot run {argv[0]}: {exc.strerror or exc}")
        finally:
            with self._lock:
                self._current = None
        if result.error:
            log.warning("announcement %d (%s): %s", n, announcement.token, result.error)
        return result

    def _notify(self, callback: Callback | None, run: AnnouncementRun) -> None:
        if callback is None:
            return
        try:
            callback(run)
        except Exception:  # a display's bug must not silence the following calls
            log.exception("voice callback failed for announcement %d", run.n)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the engine and everything it started (it leads its own process group)."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:  # already gone
        pass
    except PermissionError:  # a group member changed user: at least the engine itself
        process.send_signal(sig)


def _tail(data: bytes | None) -> str:
    """The last non-empty line an engine wrote to stderr (one line for a log)."""
    lines = [line.strip() for line in (data or b"").decode("utf-8", "replace").splitlines()]
    return next((line for line in reversed(lines) if line), "")
