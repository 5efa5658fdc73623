"""Failover against real servers started by the tests (tests/infra): a primary with streaming
standbys, killed with ``stop -m immediate`` and a standby promoted. What a desk, an admin and a
script see: warnings before, a bounded wait when no standby confirms, a numbering hold after a
lossy failover and none after a synchronous one. (The failover under load with a live screen
is in test_deploy_repro.py.)"""
# ruff: noqa: F811  (fixtures imported from tests.infra.fixtures are parameters here)

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hms_tui.db.connection import Database
from hms_tui.domain.errors import Unconfirmed
from hms_tui.services.desk import Desk
from hms_tui.services.failover import Failover, warnings
from tests.infra.fixtures import (  # noqa: F401
    hms_database,
    no_leftover_servers,
    replica_set_factory,
)
from tests.infra.pgcluster import ReplicaSet, detach, wait_caught_up, wait_streaming

ROOT = Path(__file__).resolve().parent.parent


def clinic(rs: ReplicaSet, patients: int = 10) -> list[int]:
    hms_database(rs.primary, "hms")
    setup = Desk(Database(rs.primary.dsn("hms"), terminal="setup"))
    try:
        setup.add_doctor("D1", "Dr Rao")
        return [setup.add_patient(f"Patient {i:02d}").id for i in range(patients)]
    finally:
        setup.db.dispose()


def cli(url: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "HMS_"))}
    env.update({"HMS_DATABASE_URL": url, "HMS_TUI_CONFIG": "",
                "XDG_CONFIG_HOME": str(home / "config")})
    return subprocess.run([sys.executable, "-m", "hms_tui", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_commit_no_standby_confirms_is_bounded_and_never_retried(
    replica_set_factory: Callable[..., ReplicaSet]
) -> None:
    """With the only synchronous standby down, a commit waits for ever on the server. The
    desk stops waiting after action_timeout and says the check-in may have happened; it is
    not sent again, and it commits (once) when the standby is back."""
    rs = replica_set_factory(synchronous=True, standbys=1)
    patients = clinic(rs)
    desk = Desk(Database(rs.primary.dsn("hms"), terminal="desk", action_timeout=2))
    try:
        took = []
        for p in patients[:8]:
            started = time.perf_counter()
            desk.checkin("D1", p)
            took.append(time.perf_counter() - started)
        print(f"check-in with a synchronous standby: median {statistics.median(took) * 1000:.1f}"
              f" ms, max {max(took) * 1000:.1f} ms")
        rs.standby.stop("fast")
        started = time.monotonic()
        with pytest.raises(Unconfirmed, match="may have happened: check before retrying"):
            desk.checkin("D1", patients[8], key="k-8")
        waited = time.monotonic() - started
        print(f"no standby: the call gave up after {waited:.2f} s")
        assert 2 <= waited < 4
        # Not acknowledged and not visible: the server still waits for a standby.
        assert rs.primary.psql("SELECT count(*) FROM hms.visits WHERE patient_id = %s",
                               (patients[8],), dbname="hms") == [(0,)]
        rs.standby.start()
        wait_streaming(rs.primary, rs.standby)
        deadline = time.monotonic() + 10
        while rs.primary.psql("SELECT count(*) FROM hms.visits WHERE patient_id = %s",
                              (patients[8],), dbname="hms") != [(1,)]:
            assert time.monotonic() < deadline, "the waiting check-in never committed"
            time.sleep(0.05)
        again = desk.checkin("D1", patients[8], key="k-8")  # checking: the same visit
        assert again.replayed and again.serial == 9
    finally:
        desk.db.dispose()


def test_status_warns_when_a_failover_could_lose_acknowledged_actions(
    replica_set_factory: Callable[..., ReplicaSet], tmp_path: Path
) -> None:
    rs = replica_set_factory(synchronous=False, standbys=1)
    clinic(rs, patients=1)
    db = Database(rs.primary.dsn("hms"), terminal="admin")
    try:
        said = warnings(Failover(db).status())
        assert [w for w in said if w.startswith("standby s1 is asynchronous")], said
        rs.make_synchronous()
        said = warnings(Failover(db).status())
        assert not [w for w in said if "asynchronous" in w]
        assert [w for w in said if w.startswith("one synchronous standby (s1)")], said
        rs.primary.set(synchronous_commit="off")
        said = warnings(Failover(db).status())
        assert said[0].startswith("synchronous_commit is off"), said
    finally:
        db.dispose()
    done = cli(rs.primary.url("hms"), tmp_path, "db", "status")
    assert done.returncode == 0, done.stderr
    assert "warning: synchronous_commit is off" in done.stdout
    assert "Standby s1" in done.stdout and "sync" in done.stdout


def test_a_lossy_failover_stops_numbering_until_an_admin_confirms(
    replica_set_factory: Callable[..., ReplicaSet], tmp_path: Path
) -> None:
    """Asynchronous standby, three check-ins acknowledged after replication stopped, primary
    killed, standby promoted. No terminal was watching: the server itself refuses to issue
    D1-003 again, says so in one line, and an admin lets numbering resume past the gap."""
    rs = replica_set_factory(synchronous=False, standbys=1)
    patients = clinic(rs)
    old, new = rs.primary, rs.standby
    desk = Desk(Database(old.dsn("hms"), terminal="desk"))
    for p in patients[:2]:
        desk.checkin("D1", p)
    wait_caught_up(old, new)
    detach(new)
    lost = [desk.checkin("D1", p).token for p in patients[2:5]]
    desk.db.dispose()
    assert lost == ["D1-003", "D1-004", "D1-005"]
    rs.failover()
    url = rs.url("hms", order=[old, new])  # what the terminals use: the dead one first

    done = cli(url, tmp_path, "checkin", "--doctor", "D1", "--patient", str(patients[5]))
    assert done.returncode == 11, done.stderr
    assert done.stderr.count("\n") == 1
    assert "numbering is on hold" in done.stderr and "timeline 2, was 1" in done.stderr
    status = json.loads(cli(url, tmp_path, "db", "status", "--json").stdout)
    assert status["numbering_held"] and status["server"]["timeline"] == 2
    done = cli(url, tmp_path, "db", "confirm-failover", "--note",
               "D1-003..005 re-checked in by hand", "--skip", "3")
    assert done.returncode == 0, done.stderr
    done = cli(url, tmp_path, "checkin", "--doctor", "D1", "--patient", str(patients[5]),
               "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["token"] == "D1-006"  # never D1-003 again
    tokens = new.psql("SELECT token FROM hms.visits ORDER BY serial", dbname="hms")
    assert [t for (t,) in tokens] == ["D1-001", "D1-002", "D1-006"]


def test_any_1_of_2_one_stalled_standby_stalls_nothing_and_a_failover_needs_no_one(
    replica_set_factory: Callable[..., ReplicaSet]
) -> None:
    rs = replica_set_factory(synchronous=True, standbys=2)
    patients = clinic(rs, patients=20)
    s1, s2 = rs.standbys
    desk = Desk(Database(rs.url("hms", connect_timeout="2"), terminal="desk"))
    try:
        s2.stop("fast")
        took = []
        for p in patients[:10]:
            started = time.perf_counter()
            desk.checkin("D1", p)
            took.append(time.perf_counter() - started)
        print(f"check-in, ANY 1 (s1, s2) with s2 down: median "
              f"{statistics.median(took) * 1000:.1f} ms, max {max(took) * 1000:.1f} ms")
        assert max(took) < 2
        wait_caught_up(rs.primary, s1)
        rs.standbys = [s1]  # s2 is down: promote s1 (which confirmed every commit)
        took_failover = rs.failover(s1)
        print(f"kill + promote: {took_failover:.2f} s")
        visit = desk.checkin("D1", patients[10])  # the pool reconnects to s1, no hold
        assert visit.token == "D1-011"
        assert not Failover(desk.db).status().held  # an observer (db status, any listener)
        holds = s1.psql("SELECT automatic, lifted_at IS NOT NULL FROM hms.numbering_holds",
                        dbname="hms")
        assert holds == [(True, True)]  # the change is on record, accepted without anyone
    finally:
        desk.db.dispose()
