"""``checkin --print`` and ``arrive --print`` as the CLI runs them, against the private cupsd
(``tests/cups_server.py``): the slip lands in the queue's output file; a printer that is not
there is one line on stderr and exit 12, and the check-in is in the database all the same."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from hms_tui.services.desk import Desk
from tests.conftest import open_every_day, slot_at
from tests.cups_server import Cups
from tests.test_cli import js, noon_zone, one_document, run

SLIP_NOT_PRINTED = 12


def printing_env(cli_env: dict[str, str], cups: Cups, tmp_path: Path, queue: str,
                 extra: str = "") -> dict[str, str]:
    """The CLI's environment with a config that prints to ``queue`` on the private cupsd."""
    config = tmp_path / "printing.toml"
    config.write_text(f'[printer]\nkind = "cups"\nqueue = "{queue}"\ntimeout = 5\n{extra}')
    return {**cli_env, "HMS_TUI_CONFIG": str(config), "CUPS_SERVER": cups.server}


def test_checkin_print_lands_a_slip_with_the_token(
        cli_env: dict[str, str], cups: Cups, tmp_path: Path, desk: Desk,
        clinic: dict[str, Any]) -> None:
    out = cups.file_queue("cli_slips")
    env = printing_env(cli_env, cups, tmp_path, "cli_slips", "[slip]\nshow_name = true\n")
    patient = str(clinic["patients"][2])
    visit = js(env, "checkin", "--doctor", "D1", "--patient", patient, "--print")
    assert visit["token"] == "D1-001" and visit["status"] == "WAITING"
    assert visit["slip"]["printed"] is True
    assert visit["slip"]["message"].startswith("slip printed on 'cli_slips' (job cli_slips-")
    # The command returns once CUPS has handed the slip on: the file is complete.
    text = cups.take(out)
    assert "D1-001" in text and "Dr Rao" in text and "Room 3" in text, cups.log()
    assert "Patient 02" in text and "Position in queue" in text and "Checked in" in text

    # Without --json: the visit's line, then where the slip went; nothing on stderr.
    done = run(env, "checkin", "--doctor", "D2", "--patient", patient, "--print")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "D2-001" in done.stdout and "slip printed on 'cli_slips'" in done.stdout
    text = cups.take(out)
    assert "D2-001" in text and "Dr Mehta" in text

    # Without --print nothing is printed and the document has no slip.
    plain = js(env, "checkin", "--doctor", "D1", "--patient", str(clinic["patients"][3]))
    assert "slip" not in plain and cups.take(out) == ""


def test_a_missing_printer_is_one_line_exit_12_and_the_checkin_stands(
        cli_env: dict[str, str], cups: Cups, tmp_path: Path, desk: Desk,
        clinic: dict[str, Any], sql: psycopg.Connection[Any]) -> None:
    env = printing_env(cli_env, cups, tmp_path, "no_such_printer")
    patient = clinic["patients"][4]
    done = run(env, "checkin", "--doctor", "D1", "--patient", str(patient), "--print", "--json")
    assert done.returncode == SLIP_NOT_PRINTED, done.stderr
    doc = one_document(done.stdout)
    assert doc["token"] == "D1-001" and doc["slip"]["printed"] is False
    assert "printer queue 'no_such_printer' does not exist" in doc["slip"]["message"]
    error = json.loads(done.stderr)
    assert error["kind"] == "SlipNotPrinted" and done.stderr.count("\n") == 1
    assert error["error"].startswith("D1-001 was issued but its slip was not printed: printer "
                                     "queue 'no_such_printer' does not exist")
    row = sql.execute("SELECT token, status::text FROM hms.visits WHERE patient_id = %s",
                      (patient,)).fetchall()
    assert row == [("D1-001", "WAITING")]

    # The same as text: one line on stderr, the visit's line on stdout.
    text = run(env, "checkin", "--doctor", "D2", "--patient", str(patient), "--print")
    assert text.returncode == SLIP_NOT_PRINTED
    assert text.stderr.count("\n") == 1 and "Traceback" not in text.stderr
    assert text.stderr.startswith("hms-tui: error: D2-001 was issued but its slip was not "
                                  "printed: printer queue 'no_such_printer' does not exist")
    assert "D2-001" in text.stdout

    # Printing switched off is said just as plainly.
    off = tmp_path / "off.toml"
    off.write_text('[printer]\nkind = "none"\n')
    done = run({**env, "HMS_TUI_CONFIG": str(off)}, "checkin", "--doctor", "D1", "--patient",
               str(clinic["patients"][5]), "--print")
    assert done.returncode == SLIP_NOT_PRINTED
    assert 'slip printing is off (printer.kind = "none"' in done.stderr
    assert sql.execute("SELECT count(*) FROM hms.visits").fetchone() == (3,)


def test_arrive_print_and_a_replayed_checkin_prints_again(
        cli_env: dict[str, str], cups: Cups, tmp_path: Path, desk: Desk,
        clinic: dict[str, Any]) -> None:
    out = cups.file_queue("cli_arrivals")
    env = printing_env(cli_env, cups, tmp_path, "cli_arrivals")
    zone = noon_zone(datetime.now(UTC))
    desk.configure(timezone=zone)
    open_every_day(desk, "D2")
    at = slot_at(datetime.now(ZoneInfo(zone)) + timedelta(hours=1))
    booking = desk.book("D2", clinic["patients"][6], at.strftime("%Y-%m-%d %H:%M"))
    arrived = js(env, "arrive", str(booking.visit_id), "--print")
    assert arrived["token"] == "D2-001" and arrived["slip"]["printed"] is True
    text = cups.take(out)
    assert "D2-001" in text and "Dr Mehta" in text and "Reprinted" not in text

    # A retried keyed check-in (after a lost reply, whose slip never printed) returns the
    # first visit and prints its slip.
    first = js(env, "checkin", "--doctor", "D1", "--patient", str(clinic["patients"][7]),
               "--key", "k-1", "--print")
    assert first["slip"]["printed"] is True and "Reprinted" not in cups.take(out)
    again = js(env, "checkin", "--doctor", "D1", "--patient", str(clinic["patients"][7]),
               "--key", "k-1", "--print")
    assert again["replayed"] is True and again["visit_id"] == first["visit_id"]
    assert again["slip"]["printed"] is True
    text = cups.take(out)
    assert "D1-001" in text and "Checked in" in text and "Reprinted" not in text
