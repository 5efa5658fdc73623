"""``hms-tui patient import FILE.csv``: a registry migration through the audited path.

Every patient is registered and sealed into the trail like a desk registration (the chain
verifies afterwards, nothing left pending); a bad row is named by its line and nothing is
added; a duplicate stops the import at its batch, keeps the batches before and says which
--skip resumes; a batch is one statement whose trail is sealed whole at its commit."""

from __future__ import annotations

import datetime
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from hms_tui.services import audit
from hms_tui.services.desk import Desk
from tests.test_cli import js, run


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_import_registers_every_row_audited(cli_env: dict[str, str], tmp_path: Path,
                                           desk: Desk, sql: psycopg.Connection[Any]) -> None:
    rows = ["name,phone,dob"] + [f"Imported Person {i},+44 7700 {i:06d},19{50 + i % 40}-01-0{1 + i % 9}"
                                 for i in range(25)]
    rows.insert(3, "")  # a blank line is no patient
    rows.append('"Kumar, Anil",,')  # a quoted comma; no phone, no date of birth
    got = js(cli_env, "patient", "import", str(write(tmp_path / "p.csv", "\n".join(rows))),
             "--batch", "7")
    assert got["imported"] == 26 and got["skipped"] == 0
    stored = sql.execute("SELECT name, phone, birth_date FROM hms.patients ORDER BY id").fetchall()
    assert stored[0] == ("Imported Person 0", "+44 7700 000000", datetime.date(1950, 1, 1))
    assert stored[-1] == ("Kumar, Anil", None, None) and len(stored) == 26
    trail = sql.execute("SELECT count(*), min(action), max(action) FROM hms.audit_events"
                        " WHERE entity = 'patients'").fetchone()
    assert trail == (26, "patient_import", "patient_import")
    assert sql.execute("SELECT count(*) FROM hms.audit_pending").fetchone() == (0,)
    assert audit.verify(desk.db).ok
    assert [m.name for m in desk.search_patients("kumar, a")] == ["Kumar, Anil"]


def test_a_bad_row_is_named_and_nothing_is_added(cli_env: dict[str, str], tmp_path: Path,
                                                sql: psycopg.Connection[Any]) -> None:
    tomorrow = datetime.date.today() + datetime.timedelta(days=2)
    cases = [("name,dob\nA One,1990-01-01\nB Two,1990-13-01\n", ":3: date of birth"),
             ("name,phone\nA One,12ab\n", ":2: phone"),
             ("name,phone\nA One\n", ":2: 1 fields"),
             ("nom,phone\nA One,\n", ":1: the columns"),
             ("", "empty"),
             ("name\n\x1b[31mEvil\n", ":2: name"),
             (f"name,dob\nA One,{tomorrow}\n", "in the future"),
             (None, "cannot read it")]
    paths = [str(write(tmp_path / f"bad{i}.csv", text)) if text is not None
             else str(tmp_path / "missing.csv") for i, (text, _) in enumerate(cases)]
    with ThreadPoolExecutor(max_workers=4) as pool:  # start-up dominates: run them at once
        done = list(pool.map(lambda path: run(cli_env, "patient", "import", path), paths))
    for (text, says), result in zip(cases, done, strict=True):
        assert result.returncode == 2, (text, result.stderr)
        assert says in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr and "\x1b" not in result.stderr
    assert sql.execute("SELECT count(*) FROM hms.patients").fetchone() == (0,)


def test_a_duplicate_stops_at_its_batch_and_skip_resumes(
        cli_env: dict[str, str], tmp_path: Path, desk: Desk,
        sql: psycopg.Connection[Any]) -> None:
    desk.add_patient("Kumar, Anil", "98450 12345", "1972-03-14")
    lines = ["name,phone,dob"] + [f"Person {i},,1980-01-01" for i in range(6)]
    lines[5] = "kumar  anil,,1972-03-14"  # the same person, spelt otherwise: line 6
    path = write(tmp_path / "d.csv", "\n".join(lines))
    done = run(cli_env, "patient", "import", str(path), "--batch", "2")
    assert done.returncode == 5, done.stderr
    assert "lines 6-7 not imported" in done.stderr and "--skip 4" in done.stderr, done.stderr
    assert "row 1: kumar  anil may be registered already" in done.stderr, done.stderr
    assert sql.execute("SELECT count(*) FROM hms.patients").fetchone() == (5,)  # 1 + 4
    again = js(cli_env, "patient", "import", str(path), "--skip", "4", "--allow-duplicate")
    assert again["imported"] == 2 and again["skipped"] == 4
    # Twice within one file is a duplicate too.
    twice = write(tmp_path / "t.csv", "name,phone\nA B,+1 555 0100\nC D,+1-555-0100\n")
    done = run(cli_env, "patient", "import", str(twice))
    assert done.returncode == 5 and "row 2: C D may be registered already (row 1, A B)" in done.stderr
    assert audit.verify(desk.db).ok


def test_one_big_batch_is_sealed_whole_at_its_commit(desk: Desk,
                                                    sql: psycopg.Connection[Any]) -> None:
    """More rows than one seal takes (10,000): the commit seals them all, in order."""
    n = 10_500
    names = [f"Bulk {i}" for i in range(n)]
    assert desk.import_patients(names, [None] * n, [None] * n) == n
    assert sql.execute("SELECT count(*) FROM hms.audit_pending").fetchone() == (0,)
    head = sql.execute("SELECT last_seq FROM hms.audit_head").fetchone()
    events = sql.execute("SELECT count(*), max(seq) FROM hms.audit_events").fetchone()
    assert head is not None and events == (head[0], head[0])
    assert audit.verify(desk.db).ok
