"""Hostile text wherever text enters: the core, the database itself (as psql would send it), and
the command line. Each sample is either refused at entry with a clear message (control
characters, escape sequences, bidi overrides, NUL, over-long) -- and refused again by the
database's CHECK constraints -- or stored exactly and shown literally.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from hms_tui.domain.errors import InvalidInput
from hms_tui.services.desk import Desk

CLI = [sys.executable, "-m", "hms_tui"]
VIA_MAIN = [sys.executable, "-c",
            "import json, sys; from hms_tui.cli import main; main(json.loads(sys.stdin.read()))"]

# Stored exactly as typed, shown literally.
KEPT = {
    "rich markup": "[bold red]Anil[/] [/b] [@click=app.quit]x[/]",
    "textual markup": "[$accent]Kumar[/] $variable [link=https://evil.example]here[/link]",
    "html and sql": "<script>alert(1)</script> Robert'); DROP TABLE hms.patients;--",
    "quotes and backslashes": "O'Brien \"the\" \\ \\\\ `x` ${HOME} %s %(name)s",
    "zero-width": "Ani\u200bl Ku\u200c\u200dmar\u2060\ufeff",
    "combining": "Zoe\u0301 Ame\u0301lie Z\u0351\u0357a\u0327\u0336lgo\u0489",
    "emoji sequences": "👩🏽‍⚕️ Priya 🇮🇳 👨‍👩‍👧‍👦 ✌🏿",
    "wide cjk": "张伟 山田太郎 김민준 ｆｕｌｌｗｉｄｔｈ",
    "rtl letters": "مريم حسن עברית",
    "percent and underscore": "100% _under_ score%",
    "at the limit": "A" * 100,
}
# Refused at entry (clean_text) and by the CHECK constraints.
REFUSED = {
    "ansi colour": ("Anil\x1b[31m Kumar", "U+001B"),
    "osc title": ("Anil\x1b]0;pwned\x07 Kumar", "U+001B"),
    "osc 8 hyperlink": ("\x1b]8;;https://evil.example\x1b\\Anil\x1b]8;;\x1b\\ K", "U+001B"),
    "c1 csi": ("Anil\x9b31m Kumar", "U+009B"),
    "c1 nel": ("Anil\x85Kumar", "U+0085"),
    "tab": ("Anil\tKumar", "U+0009"),
    "newline": ("Anil\nKumar", "U+000A"),
    "carriage return": ("Anil\rKumar", "U+000D"),
    "backspace": ("Anil\x08\x08\x08\x08Evil", "U+0008"),
    "delete": ("Anil\x7f", "U+007F"),
    "bidi override": ("Anil \u202eramuK", "U+202E"),
    "bidi isolate": ("\u2066Anil\u2069 Kumar", "U+2066"),
    "rtl mark": ("Anil\u200f Kumar", "U+200F"),
    "arabic letter mark": ("Anil\u061c Kumar", "U+061C"),
    "line separator": ("Anil\u2028Kumar", "U+2028"),
    "nul": ("Anil\x00Kumar", "U+0000"),
    "10,000 characters": ("x" * 10_000, "10000 characters long; the limit is 100"),
}


@pytest.mark.parametrize("label", list(KEPT))
def test_kept_text_round_trips_exactly(label: str, desk: Desk, clinic: dict[str, Any],
                                       sql: psycopg.Connection[Any]) -> None:
    text = KEPT[label]
    patient = desk.add_patient(text)
    assert patient.name == text
    assert desk.patient(patient.id).name == text
    visit = desk.checkin("D1", patient.id)
    reason = text[: len(text) // 2].strip() or "x"
    assert desk.queue("D1")[0].patient_name == text
    assert desk.cancel(visit.visit_id, reason).cancel_reason == reason
    doctor = desk.add_doctor("H1", text, room=text[:20].strip())
    assert (doctor.name, doctor.room) == (text, text[:20].strip())
    bill = desk.create_bill(visit.visit_id, [(text[:80].strip(), 1)])  # type: ignore[list-item]
    assert bill.items[0].description == text[:80].strip()
    # Search takes it as a literal substring, never as a pattern.
    needle = text[3:13].strip()
    assert patient.id in [m.id for m in desk.search_patients(needle)]
    stored = sql.execute("SELECT name FROM hms.patients WHERE id = %s", (patient.id,)).fetchone()
    assert stored == (text,)
    # The trail keeps it verbatim too.
    logged = sql.execute("SELECT after ->> 'name' FROM hms.audit_events WHERE entity = 'patients'"
                         " AND entity_id = %s", (patient.id,)).fetchone()
    assert logged == (text,)


@pytest.mark.parametrize("label", list(REFUSED))
def test_refused_text_is_refused_everywhere(label: str, desk: Desk, clinic: dict[str, Any],
                                            sql: psycopg.Connection[Any]) -> None:
    text, why = REFUSED[label]
    visit = desk.checkin("D1", clinic["patients"][0])
    before = sql.execute("SELECT max(seq) FROM hms.audit_events").fetchone()
    attempts = [
        lambda: desk.add_patient(text),
        lambda: desk.add_doctor("H1", text),
        lambda: desk.update_doctor("D1", room=text),
        lambda: desk.cancel(visit.visit_id, text),
        lambda: desk.create_bill(visit.visit_id, [(text, 1)]),  # type: ignore[list-item]
        lambda: desk.search_patients(text),
        lambda: desk.checkin("D2", clinic["patients"][1], key=text),
        lambda: desk.configure(clinic_name=text),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidInput) as caught:
            attempt()
        message = str(caught.value)
        assert why.split(" characters")[0] in message or why in message, message
        assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", message)
    assert sql.execute("SELECT max(seq) FROM hms.audit_events").fetchone() == before

    # The database refuses it too, whoever asks: the functions called directly (as from psql)
    # and plain INSERT/UPDATE by the owner. NUL cannot even be sent as text.
    expected = psycopg.DataError if "\x00" in text else psycopg.errors.CheckViolation
    for stmt, params in [
        ("SELECT hms.add_patient(%s, NULL, NULL)", (text,)),
        ("INSERT INTO hms.patients (name) VALUES (%s)", (text,)),
        ("UPDATE hms.doctors SET room = %s WHERE code = 'D1'", (text,)),
        ("SELECT hms.cancel(%s, %s)", (visit.visit_id, text)),
        ("UPDATE hms.settings SET clinic_name = %s", (text,)),
    ]:
        with pytest.raises(expected):
            sql.execute(stmt, params)
    assert sql.execute("SELECT max(seq) FROM hms.audit_events").fetchone() == before


def test_search_matches_percent_underscore_and_backslash_literally(
    desk: Desk, clinic: dict[str, Any]
) -> None:
    ids = {name: desk.add_patient(name).id for name in
           ["100% Cotton", "Plain Name", "a_b Rao", "axb Rao", "back\\slash", "back slash"]}

    def found(query: str) -> set[str]:
        return {m.name for m in desk.search_patients(query) if m.id in ids.values()}

    assert found("%") == {"100% Cotton"}
    assert found("0%") == {"100% Cotton"}
    assert found("_") == {"a_b Rao"}
    assert found("a_b") == {"a_b Rao"}
    assert found("\\") == {"back\\slash"}
    assert found("k\\s") == {"back\\slash"}
    assert found("' OR '1'='1") == set()
    assert found("") >= set(ids)  # empty: the newest patients


# -- the command line -------------------------------------------------------------------------------


def run(env: dict[str, str], args: list[str], via_main: bool = False) -> subprocess.CompletedProcess[str]:
    if via_main:
        return subprocess.run(VIA_MAIN, env=env, input=json.dumps(args), capture_output=True,
                              text=True, encoding="utf-8", timeout=120, check=False)
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=120, check=False)


CLI_KEPT = ["rich markup", "zero-width", "combining", "emoji sequences", "wide cjk",
            "html and sql", "percent and underscore"]
CLI_REFUSED = ["ansi colour", "osc title", "c1 csi", "bidi override", "nul", "10,000 characters"]


def test_the_command_line(cli_env: dict[str, str], desk: Desk, clinic: dict[str, Any],
                          sql: psycopg.Connection[Any]) -> None:
    jobs: list[tuple[str, list[str], bool]] = []
    for label in CLI_KEPT:
        jobs.append((label, ["patient", "add", "--name", KEPT[label], "--json"], False))
    for label in CLI_REFUSED:
        text = REFUSED[label][0]
        jobs.append((label, ["patient", "add", "--name", text], "\x00" in text))
        jobs.append((label, ["patient", "search", text, "--json"], "\x00" in text))
    with ThreadPoolExecutor(max_workers=8) as pool:
        done = list(pool.map(lambda job: run(cli_env, job[1], job[2]), jobs))
    ids = {}
    for (label, args, _), result in zip(jobs, done, strict=True):
        if label in KEPT:
            assert result.returncode == 0, (label, result.stderr)
            ids[label] = json.loads(result.stdout)["id"]
            assert json.loads(result.stdout)["name"] == KEPT[label]
        else:
            text, why = REFUSED[label]
            assert result.returncode == 2, (label, args[:2], result.stdout, result.stderr)
            assert result.stdout == ""
            assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n")
            if "--json" in args:
                assert json.loads(result.stderr)["kind"] == "InvalidInput"
            else:
                assert result.stderr.startswith("hms-tui: error: ")
            assert why.split(" characters")[0] in result.stderr
            assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]",
                                 result.stderr), (label, result.stderr)
    assert sql.execute("SELECT count(*) FROM hms.patients WHERE id = ANY(%s)",
                       (list(ids.values()),)).fetchone() == (len(CLI_KEPT),)

    # Shown literally in tables: markup stays text, nothing is swallowed or reinterpreted.
    for label in CLI_KEPT:
        desk.checkin("D1", ids[label])
    table_runs = [["queue", "--doctor", "D1"], ["patient", "search", "Ani"],
                  ["patient", "search", "%"], ["patient", "search", "_"],
                  ["queue", "--doctor", "D1", "--json"]]
    with ThreadPoolExecutor(max_workers=5) as pool:
        queue_out, search_out, pct_out, us_out, queue_json = list(pool.map(
            lambda a: run(cli_env, a), table_runs))
    for result in (queue_out, search_out, pct_out, us_out, queue_json):
        assert result.returncode == 0 and result.stderr == "", result.stderr
    for label in CLI_KEPT:
        assert KEPT[label] in queue_out.stdout, label
    assert "\x1b" not in queue_out.stdout
    assert {v["patient_name"] for v in json.loads(queue_json.stdout)} == {KEPT[k] for k in CLI_KEPT}
    assert KEPT["zero-width"] in search_out.stdout
    assert KEPT["percent and underscore"] in pct_out.stdout
    assert "Patient 0" not in pct_out.stdout and "Patient 0" not in us_out.stdout
