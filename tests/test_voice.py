"""Spoken calls: the sentence, the engine command, and the Announcer against the real espeak-ng,
rendering each call to a WAV file that sox then measures. No sound card or server needed."""

from __future__ import annotations

import itertools
import logging
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hms_tui.config import VoiceSettings, load_settings
from hms_tui.domain.errors import ConfigError
from hms_tui.services.voice import (
    Announcement,
    AnnouncementRun,
    Announcer,
    build_command,
    detect_engine,
    speech_text,
    spell_token,
)

TEMPLATE = "Token {token}, please go to {room}"

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (apt-get install espeak-ng)")
needs_sox = pytest.mark.skipif(shutil.which("sox") is None,
                               reason="sox is not installed (apt-get install sox)")


# --- what is said ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "spoken"),
    [("D1-007", "D 1 0 0 7"), ("ENT-012", "E N T 0 1 2"), ("A-1", "A 1"), ("D10-120", "D 1 0 1 2 0")],
)
def test_tokens_are_spelled_digit_by_digit_and_letter_by_letter(token: str, spoken: str) -> None:
    assert spell_token(token) == spoken


def test_speech_text_spells_the_token_and_says_rooms_as_written() -> None:
    call = Announcement(token="D1-007", room="Room 3B", doctor="Dr Rao")
    assert speech_text(TEMPLATE, call) == "Token D 1 0 0 7, please go to Room 3B"
    assert speech_text("{doctor} calls token {token}", call) == "Dr Rao calls token D 1 0 0 7"


def test_speech_text_is_one_clean_line_and_never_an_option() -> None:
    hostile = Announcement(token="D1-007", room="-w /etc/x\x1b[2J\n3")
    text = speech_text("{room} for {token}", hostile)
    assert text.startswith(" -w")  # a leading '-' would be read as an engine option
    assert "\x1b" not in text and "\n" not in text


def test_a_visit_without_a_room_is_sent_to_its_doctor() -> None:
    class Row:
        visit_id = 9
        token = "D2-003"
        room = None
        doctor_name = "Dr Iyer"

    call = Announcement.for_visit(Row(), recall=True)
    assert (call.room, call.doctor, call.key, call.recall) == ("Dr Iyer", "Dr Iyer", 9, True)
    assert speech_text(TEMPLATE, call) == "Token D 2 0 0 3, please go to Dr Iyer"


def test_command_placeholders_are_replaced_inside_single_arguments() -> None:
    settings = VoiceSettings(enabled=True, voice="hi",
                             command=("espeak-ng", "-v", "{voice}", "-w", "/tmp/{n}.wav", "{text}"))
    text = "Token D 1, room $(reboot); 'x'"
    assert build_command(settings, text, 7) == [
        "espeak-ng", "-v", "hi", "-w", "/tmp/7.wav", "Token D 1, room $(reboot); 'x'"]


def test_engine_detection_gives_a_reason_when_there_is_none() -> None:
    off = detect_engine(VoiceSettings())
    assert not off.available and "voice is off" in off.reason
    missing = detect_engine(VoiceSettings(enabled=True, command=("no-such-tts-engine", "{text}")))
    assert not missing.available
    assert "speech engine 'no-such-tts-engine' not found" in missing.reason
    assert "\n" not in missing.reason


@needs_espeak
def test_engine_detection_finds_espeak() -> None:
    found = detect_engine(VoiceSettings(enabled=True))
    assert found.available and found.path == shutil.which("espeak-ng")


# --- the Announcer against espeak-ng ---------------------------------------------------------


def sox_duration(path: Path) -> float:
    out = subprocess.run(["sox", "--i", "-D", str(path)], capture_output=True, text=True,
                         check=True, timeout=20).stdout
    return float(out.strip())


def sox_stats(path: Path) -> dict[str, float]:
    """``sox FILE -n stat`` (it reports on stderr): 'RMS amplitude', 'Maximum amplitude', ..."""
    err = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True,
                         check=True, timeout=20).stderr
    stats = {}
    for line in err.splitlines():
        name, _, value = line.partition(":")
        try:
            stats[" ".join(name.split())] = float(value.strip())
        except ValueError:
            continue
    return stats


class Recorder:
    """Callback log: (event, n, wall-clock time), as a display's highlight would see them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, float]] = []
        self.lock = threading.Lock()

    def start(self, run: AnnouncementRun) -> None:
        with self.lock:
            self.events.append(("start", run.n, time.time()))

    def done(self, run: AnnouncementRun) -> None:
        with self.lock:
            self.events.append(("done", run.n, time.time()))


@needs_espeak
@needs_sox
def test_announcements_are_spoken_one_after_another_in_order_with_recalls(tmp_path: Path
                                                                          ) -> None:
    settings = VoiceSettings(
        enabled=True, voice="en", template=TEMPLATE,
        command=("espeak-ng", "-v", "{voice}", "-w", str(tmp_path / "{n}.wav"), "{text}"),
    )
    calls = [
        Announcement("D1-007", "Room 3", key=1),
        Announcement("D2-001", "Room 4", key=2),
        Announcement("D1-007", "Room 3", recall=True, key=1),  # the recall: said again
        Announcement("ENT-012", "ENT clinic, first floor", key=3),
    ]
    recorder = Recorder()
    announcer = Announcer(settings, on_start=recorder.start, on_done=recorder.done)
    # Queued all at once from several threads, as calls arrive from the listener.
    threads = [threading.Thread(target=announcer.announce, args=(call,)) for call in calls[:2]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    announcer.announce(calls[2])
    announcer.announce(calls[3])
    assert announcer.wait_idle(60), "announcements did not finish"
    announcer.stop()

    runs = announcer.runs
    assert [r.n for r in runs] == [1, 2, 3, 4]  # none dropped, in the order queued
    assert sorted((r.announcement.token, r.announcement.recall) for r in runs[:2]) == \
        [("D1-007", False), ("D2-001", False)]
    assert [r.announcement for r in runs[2:]] == calls[2:]
    for run in runs:
        assert run.error is None and run.returncode == 0, run
        assert run.ended is not None and run.started < run.ended
    spoken = {r.announcement.token: r.text for r in runs}
    assert spoken["D1-007"] == "Token D 1 0 0 7, please go to Room 3"
    assert spoken["ENT-012"] == "Token E N T 0 1 2, please go to ENT clinic, first floor"

    # Each engine run ended before the next began (the Announcer's own clock) ...
    for before, after in itertools.pairwise(runs):
        assert before.ended is not None and before.ended <= after.started
    # ... and the callbacks bracket each run strictly: start n, done n, start n+1, ...
    assert [(e, n) for e, n, _ in recorder.events] == \
        [(e, n) for n in (1, 2, 3, 4) for e in ("start", "done")]

    durations = {}
    for run in runs:
        wav = tmp_path / f"{run.n}.wav"
        assert wav.exists(), f"no WAV for announcement {run.n}"
        # Outside evidence: the engine had finished writing this call's file before the
        # display was told it was done, and before the next call started.
        done_at = next(t for e, n, t in recorder.events if (e, n) == ("done", run.n))
        assert wav.stat().st_mtime <= done_at + 0.01
        following = [t for e, n, t in recorder.events if e == "start" and n == run.n + 1]
        if following:
            assert wav.stat().st_mtime <= following[0] + 0.01
        duration = sox_duration(wav)
        stats = sox_stats(wav)
        assert 1.0 <= duration <= 10.0, (run.n, duration)
        assert stats["RMS amplitude"] > 0.02, (run.n, stats)  # speech, not silence
        assert stats["Maximum amplitude"] > 0.2, (run.n, stats)
        durations[run.n] = duration
    # The recall is the same sentence spoken again; the longer sentence takes longer.
    first = next(r.n for r in runs if r.announcement == calls[0])
    assert durations[3] == pytest.approx(durations[first], abs=0.05)
    assert durations[4] > max(durations[1], durations[2]) + 0.5


@needs_espeak
@needs_sox
def test_the_configured_voice_is_used(tmp_path: Path) -> None:
    def render(voice: str) -> Path:
        settings = VoiceSettings(enabled=True, voice=voice, template="{token}",
                                 command=("espeak-ng", "-v", "{voice}", "-w",
                                          str(tmp_path / f"{voice}-{{n}}.wav"), "{text}"))
        with Announcer(settings) as announcer:
            announcer.announce(Announcement("D1-007", "Room 3"))
            assert announcer.wait_idle(30)
        assert announcer.runs[0].error is None
        return tmp_path / f"{voice}-1.wav"

    english, german = render("en"), render("de")
    assert english.read_bytes() != german.read_bytes()  # "zero" is not "null"
    assert sox_stats(german)["RMS amplitude"] > 0.02


@needs_espeak
def test_an_engine_error_is_reported_and_the_queue_goes_on(caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    settings = VoiceSettings(enabled=True, voice="nosuchvoice",
                             command=("espeak-ng", "-v", "{voice}", "-w", "/dev/null", "{text}"))
    done: list[AnnouncementRun] = []
    with caplog.at_level(logging.WARNING, logger="hms_tui.services.voice"), \
            Announcer(settings, on_done=done.append) as announcer:
        for token in ("D1-001", "D1-002"):
            announcer.announce(Announcement(token, "Room 1"))
        assert announcer.wait_idle(30)
    assert [r.n for r in done] == [1, 2]
    assert all(r.returncode == 1 and r.error and "espeak-ng exited with 1" in r.error
               for r in done), done
    assert "voice does not exist" in done[0].stderr
    assert len([r for r in caplog.records if "announcement" in r.getMessage()]) == 2


def test_a_missing_engine_fails_each_call_without_stopping_the_queue() -> None:
    settings = VoiceSettings(enabled=True, command=("no-such-tts-engine", "{text}"))
    with Announcer(settings) as announcer:
        announcer.announce(Announcement("D1-001", "Room 1"))
        announcer.announce(Announcement("D1-002", "Room 1"))
        assert announcer.wait_idle(10)
    assert [r.n for r in announcer.runs] == [1, 2]
    assert all((r.error or "").startswith("cannot run no-such-tts-engine") for r in announcer.runs)


def test_a_hung_engine_is_stopped_after_the_run_timeout_and_the_next_call_is_spoken() -> None:
    settings = VoiceSettings(enabled=True, command=("sh", "-c", 'case "$1" in *1*) sleep 30;; esac',
                                                    "sh", "{text}"))
    started = time.monotonic()
    with Announcer(settings, run_timeout=0.5) as announcer:
        announcer.announce(Announcement("D1-001", "Room 1"))  # hangs
        announcer.announce(Announcement("D2-002", "Room 2"))  # fine
        assert announcer.wait_idle(10)
    assert time.monotonic() - started < 5
    first, second = announcer.runs
    assert first.error == "sh took longer than 0.5 s and was stopped"
    assert second.error is None and second.returncode == 0


def test_stop_without_draining_cuts_off_the_current_call_and_drops_the_queue() -> None:
    settings = VoiceSettings(enabled=True, command=("sh", "-c", "sleep 30", "sh", "{text}"))
    announcer = Announcer(settings)
    for i in range(3):
        announcer.announce(Announcement(f"D1-00{i}", "Room 1"))
    deadline = time.monotonic() + 5
    while announcer._current is None and time.monotonic() < deadline:  # the first is speaking
        time.sleep(0.01)
    started = time.monotonic()
    announcer.stop(drain=False, timeout=5)
    assert time.monotonic() - started < 3
    assert announcer.pending() == 0
    assert [r.n for r in announcer.runs] == [1]
    assert announcer.runs[0].returncode == -15  # SIGTERM
    with pytest.raises(RuntimeError, match="stopped"):
        announcer.announce(Announcement("D1-009", "Room 1"))


def test_a_failing_callback_is_logged_and_does_not_silence_later_calls(
        caplog: pytest.LogCaptureFixture) -> None:
    settings = VoiceSettings(enabled=True, command=("true", "{text}"))
    seen: list[int] = []

    def on_start(run: AnnouncementRun) -> Any:
        seen.append(run.n)
        raise RuntimeError("display bug")

    with caplog.at_level(logging.ERROR, logger="hms_tui.services.voice"), \
            Announcer(settings, on_start=on_start) as announcer:
        announcer.announce(Announcement("D1-001", "Room 1"))
        announcer.announce(Announcement("D1-002", "Room 1"))
        assert announcer.wait_idle(10)
    assert seen == [1, 2]
    assert all(r.error is None for r in announcer.runs)
    assert sum("voice callback failed" in r.getMessage() for r in caplog.records) == 2


# --- config ----------------------------------------------------------------------------------


def test_voice_config_is_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("""
[voice]
enabled = true
command = ["sh", "-c", "espeak-ng -v \\"$1\\" --stdout \\"$2\\" | aplay -q", "sh", "{voice}", "{text}"]
voice = "en-us"
template = "Token {token}, {doctor}, {room}"
""", encoding="utf-8")
    voice = load_settings(path).voice
    assert voice.enabled and voice.voice == "en-us"
    assert voice.command[2] == 'espeak-ng -v "$1" --stdout "$2" | aplay -q'
    assert voice.template == "Token {token}, {doctor}, {room}"
    defaults = VoiceSettings()
    assert defaults.command == ("espeak-ng", "-v", "{voice}", "{text}")
    assert not defaults.enabled and defaults.voice == "en" and defaults.template == TEMPLATE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('command = ["espeak-ng", "-v", "{voice}"]', "'voice.command' = ['espeak-ng', '-v', "
                                                     "'{voice}'] is invalid; expected a list of "
                                                     'arguments with "{text}" in one'),
        ('command = "espeak-ng {text}"', "'voice.command' = 'espeak-ng {text}' is invalid"),
        ('command = []', "'voice.command' = [] is invalid"),
        ('template = "Please go to {room}"', "'voice.template' = 'Please go to {room}' is "
                                             "invalid; expected text of at most 200 characters "
                                             "with {token}"),
        ('template = "Token {token} for {name}"', "'voice.template' = 'Token {token} for {name}' "
                                                  "is invalid"),
        ('voice = "en us"', "'voice.voice' = 'en us' is invalid; expected a voice name"),
        ('enabled = "yes"', "'voice.enabled' = 'yes' is invalid; expected true or false"),
        ('engine = "espeak"', "unknown key 'voice.engine'"),
    ],
)
def test_bad_voice_values_give_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[voice]\n{text}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert expected in message
    assert re.search(r"'voice\.\w+'", message)
