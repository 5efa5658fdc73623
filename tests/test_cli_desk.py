"""The CLI as a new user met it: --version, help that fits 80 columns, db status, one patient
at a time (exit 4, --force), duplicates (exit 5, --allow-duplicate), patient update, a
transfer to the same doctor (bad input, exit 2) and a refused login (exit 6, not 8)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo

from hms_tui.services.desk import Desk
from tests.test_cli import js, ok, run


def help_pages() -> list[list[str]]:
    """Every command path of the CLI (the root, each group, each command)."""
    from typer.main import get_command

    from hms_tui.cli import app
    from hms_tui.cli._click import readable_help

    readable_help()
    root = get_command(app)
    paths: list[list[str]] = [[]]

    def walk(command: Any, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append([*path, name])
            walk(sub, [*path, name])

    walk(root, [])
    return paths


def test_version_and_help_at_80_columns() -> None:
    env = {**os.environ, "COLUMNS": "80", "HMS_TUI_CONFIG": ""}
    done = subprocess.run([sys.executable, "-m", "hms_tui", "--version"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and re.fullmatch(r"hms-tui \d+\.\d+\.\d+\n", done.stdout)
    script = ("import sys; from hms_tui.cli import main\n"
              "for path in __import__('json').loads(sys.argv[1]):\n"
              "    print('=== ' + ' '.join(path))\n"
              "    try:\n"
              "        main([*path, '--help'])\n"
              "    except SystemExit:\n"
              "        pass\n")
    import json

    pages = help_pages()
    assert len(pages) > 40
    out = subprocess.run([sys.executable, "-c", script, json.dumps(pages)], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    bad = [line for line in out.splitlines()
           if len(line) > 80 or re.search(r"<[a-z ]+>|\{[A-Z]+\}", line)
           or (line.endswith("...") and not line.startswith("Usage:"))]
    assert bad == []
    assert "VISIT  Visit id." in out and "--doctors CODES" in out


def test_db_status_is_a_table_and_json(cli_env: dict[str, str], desk: Desk) -> None:
    out = ok({**cli_env, "COLUMNS": "80"}, "db", "status")
    assert "ClinicRules(" not in out and "Calls ahead" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    status = js(cli_env, "db", "status")
    assert status["rules"]["calls_ahead"] == 0 and status["version"] >= 4
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", status["business_date"])


def test_one_patient_at_a_time_and_transfers(cli_env: dict[str, str], desk: Desk,
                                             clinic: dict[str, Any]) -> None:
    p = clinic["patients"]
    for i in range(3):
        desk.checkin("D1", p[i])
    first = js(cli_env, "call-next", "--doctor", "D1")
    refused = run(cli_env, "call-next", "--doctor", "D1")
    assert refused.returncode == 4
    assert "D1-001 Patient 00 (M000001, called)" in refused.stderr and refused.stdout == ""
    second = run(cli_env, "call", str(first["visit_id"] + 1))
    assert second.returncode == 4
    forced = js(cli_env, "call-next", "--doctor", "D1", "--force")
    assert forced["token"] == "D1-002"
    same = run(cli_env, "transfer", str(first["visit_id"]), "--to", "D1")
    assert same.returncode == 2 and "already with Dr Rao (D1)" in same.stderr


def test_duplicates_and_patient_update(cli_env: dict[str, str], desk: Desk) -> None:
    kumar = js(cli_env, "patient", "add", "--name", "Kumar, Anil", "--phone", "98450 12345",
               "--dob", "1972-03-14")
    dup = run(cli_env, "patient", "add", "--name", "KUMAR, ANIL", "--dob", "1972-03-14")
    assert dup.returncode == 5
    assert f"{kumar['mrn']} Kumar, Anil, born 1972-03-14, phone 98450 12345" in dup.stderr
    assert "--allow-duplicate" in dup.stderr
    again = js(cli_env, "patient", "add", "--name", "KUMAR, ANIL", "--dob", "1972-03-14",
               "--allow-duplicate")
    assert again["mrn"] != kumar["mrn"]
    fixed = js(cli_env, "patient", "update", str(kumar["id"]), "--name", "Kumar, Anil R",
               "--phone", "")
    assert (fixed["name"], fixed["phone"], fixed["mrn"]) == ("Kumar, Anil R", None, kumar["mrn"])
    assert run(cli_env, "patient", "update", str(kumar["id"])).returncode == 2
    assert run(cli_env, "patient", "update", "99999", "--name", "X").returncode == 3


def test_a_refused_login_is_not_an_outage(cli_env: dict[str, str], dsn: str,
                                          sql: psycopg.Connection[Any]) -> None:
    params: dict[str, Any] = pg_conninfo.conninfo_to_dict(dsn)
    params["user"] = "nobody_here"
    env = {**cli_env, "HMS_DATABASE_URL": pg_conninfo.make_conninfo(**params)}
    done = run(env, "doctor", "list")
    assert done.returncode == 6, done.stderr
    assert "refused the login 'nobody_here'" in done.stderr
    assert "unavailable" not in done.stderr and done.stderr.count("\n") == 1
