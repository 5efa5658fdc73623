"""The test infrastructure itself (tests/infra): clusters, replication, failover, PgBouncer
and the no-orphans guarantee, against the real binaries. These also pin down the PostgreSQL
and PgBouncer behaviour docs/deploying.md relies on."""
# ruff: noqa: F811  (fixtures imported from tests.infra.fixtures are parameters here)

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.infra import reaper
from tests.infra.fixtures import (  # noqa: F401
    bouncer_factory,
    cluster_factory,
    no_leftover_servers,
    pg_cluster,
    replica_set_factory,
    require_pgbouncer,
    require_postgres,
)
from tests.infra.pgbouncer import Bouncer
from tests.infra.pgcluster import (
    Cluster,
    ReplicaSet,
    detach,
    fence,
    rejoin_as_standby,
    server_version,
    wait_caught_up,
    wait_streaming,
)

ROOT = Path(__file__).resolve().parent.parent


def test_cluster_lifecycle(pg_cluster: Cluster) -> None:
    assert server_version(pg_cluster.bindir) >= 13
    assert pg_cluster.value("SELECT current_setting('port')::int") == pg_cluster.port
    assert pg_cluster.value("SELECT current_user") == "postgres"
    sysid = pg_cluster.system_identifier()
    assert pg_cluster.timeline() == pg_cluster.checkpoint_timeline() == 1
    pg_cluster.psql("CREATE TABLE t (x int)")
    pg_cluster.psql("INSERT INTO t VALUES (1)")
    pid = pg_cluster.pid
    assert pid is not None and reaper.group_alive(pid)
    pg_cluster.kill()  # crash: nothing of the group survives
    assert not pg_cluster.running and not reaper.group_alive(pid)
    pg_cluster.start()  # crash recovery
    assert pg_cluster.psql("SELECT x FROM t") == [(1,)]
    pg_cluster.restart("fast")
    assert pg_cluster.system_identifier() == sysid
    assert pg_cluster.psql("SELECT x FROM t") == [(1,)]
    if os.geteuid() == 0:  # the server never runs as root
        assert (pg_cluster.data_dir / "postmaster.pid").stat().st_uid != 0


def test_scram_cluster_wants_the_password(cluster_factory: Callable[..., Cluster]) -> None:
    pg = cluster_factory("sc", auth="scram")
    assert pg.password
    assert pg.value("SELECT 1") == 1  # dsn() carries the password
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(f"host={pg.host} port={pg.port} user=postgres dbname=postgres "
                        "connect_timeout=3", autocommit=True)
    assert pg.value("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid "
                    "WHERE rolname = 'postgres'")


def test_failover_keeps_identity_moves_timeline_and_the_old_primary_is_split_brain(
    replica_set_factory: Callable[..., ReplicaSet],
) -> None:
    rs = replica_set_factory(synchronous=True, standbys=1)
    old, new = rs.primary, rs.standby
    assert new.is_in_recovery() and not old.is_in_recovery()
    sysid = old.system_identifier()
    assert new.system_identifier() == sysid
    old.psql("CREATE TABLE t (x int)")
    for i in range(20):
        old.psql("INSERT INTO t VALUES (%s)", (i,))  # each acknowledged by the sync standby
    took = rs.failover()
    assert took < 10
    assert rs.primary is new and not new.is_in_recovery()
    assert new.psql("SELECT count(*) FROM t") == [(20,)]  # synchronous: nothing lost
    assert new.timeline() == 2
    assert new.system_identifier() == sysid  # same system, new timeline
    # The danger docs/deploying.md warns about: started again as it was, the old primary
    # comes back read-write on timeline 1 and takes writes nobody will ever see elsewhere.
    # (Its synchronous_standby_names still names s1, so a plain commit there would wait for
    # ever, committed locally but unacknowledged; with synchronous_commit=local it returns.)
    old.start()
    assert not old.is_in_recovery()
    assert old.timeline() == 1
    with psycopg.connect(old.dsn(options="-c synchronous_commit=local"),
                         autocommit=True) as conn:
        conn.execute("INSERT INTO t VALUES (99)")
    assert old.psql("SELECT count(*) FROM t") == [(21,)]
    assert new.psql("SELECT count(*) FROM t WHERE x = 99") == [(0,)]


def test_any_1_of_2_survives_one_stalled_standby_and_a_commit_wait_ignores_statement_timeout(
    replica_set_factory: Callable[..., ReplicaSet],
) -> None:
    rs = replica_set_factory(synchronous=True, standbys=2)
    assert rs.primary.value("SHOW synchronous_standby_names") == "ANY 1 (s1, s2)"
    rs.primary.psql("CREATE TABLE t (x int)")
    rs.standbys[1].kill()  # one standby gone: commits still return at once
    started = time.monotonic()
    rs.primary.psql("INSERT INTO t VALUES (1)")
    assert time.monotonic() - started < 2
    detach(rs.standbys[0])  # now none: a commit waits for ever, whatever statement_timeout says
    done: list[Any] = []

    def insert() -> None:
        with psycopg.connect(rs.primary.dsn(options="-c statement_timeout=500"),
                             autocommit=True) as conn:
            try:
                conn.execute("INSERT INTO t VALUES (2)")
                done.append("returned")
            except psycopg.Error as exc:
                done.append(exc)

    writer = threading.Thread(target=insert, daemon=True)
    writer.start()
    writer.join(3)
    assert writer.is_alive() and not done  # 3 s > statement_timeout: still waiting
    assert rs.primary.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"
                           ) == [(1,)]
    rs.primary.psql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                    "WHERE wait_event = 'SyncRep'")
    writer.join(10)
    # Cancelled, the client sees success (with a WARNING): the row had committed locally.
    assert done == ["returned"]
    assert rs.primary.psql("SELECT count(*) FROM t WHERE x = 2") == [(1,)]


def test_pgbouncer_session_and_transaction_modes(
    pg_cluster: Cluster, bouncer_factory: Callable[..., Bouncer]
) -> None:
    session = bouncer_factory(pg_cluster, "session", default_pool_size=1)
    with psycopg.connect(session.dsn(), autocommit=True) as a:
        a.execute("SELECT set_config('hms.probe', 'A', false)")
        assert a.execute("SELECT current_setting('hms.probe', true)").fetchone() == ("A",)
        # A pooler answers with its own cancel key: the pid libpq reports is not the backend's.
        assert a.info.backend_pid != a.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
    assert session.show("pools")

    txn = bouncer_factory(pg_cluster, "transaction", default_pool_size=1)
    with psycopg.connect(txn.dsn(), autocommit=True) as a, \
            psycopg.connect(txn.dsn(), autocommit=True) as b:
        a.execute("SELECT set_config('hms.probe', 'A', false)")
        # One server connection, two clients: A's session state is B's.
        assert b.execute("SELECT current_setting('hms.probe', true)").fetchone() == ("A",)
    assert [p["pool_mode"] for p in txn.show("pools") if p["database"] == "postgres"] == \
        ["transaction"]


def test_pgbouncer_refuses_untracked_startup_parameters_unless_ignored(
    pg_cluster: Cluster, bouncer_factory: Callable[..., Bouncer]
) -> None:
    import asyncio

    import asyncpg

    strict = bouncer_factory(pg_cluster, "session")

    async def asyncpg_terminal(port: int) -> Any:
        conn = await asyncpg.connect(host=strict.host, port=port, user="postgres",
                                     database="postgres", server_settings={"hms.terminal": "x"})
        try:
            return await conn.fetchval("SELECT current_setting('hms.terminal', true)")
        finally:
            await conn.close()

    # asyncpg's server_settings (what Database.connect_async sends today) ...
    with pytest.raises(asyncpg.ProtocolViolationError,
                       match=r"unsupported startup parameter: hms\.terminal"):
        asyncio.run(asyncpg_terminal(strict.port))
    assert "unsupported startup parameter: hms.terminal" in strict.log_text()
    # ... and libpq's options= are refused; application_name is tracked and passes.
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter: options"):
        psycopg.connect(strict.dsn(options="-c hms.terminal=x"), autocommit=True)
    with psycopg.connect(strict.dsn(application_name="desk-1"), autocommit=True) as ok:
        assert ok.execute("SHOW application_name").fetchone() == ("desk-1",)

    lenient = bouncer_factory(pg_cluster, "session",
                              ignore_startup_parameters=["options", "hms.terminal"])
    # Accepted, but dropped: the server never sees either.
    assert asyncio.run(asyncpg_terminal(lenient.port)) in (None, "")
    with psycopg.connect(lenient.dsn(options="-c hms.terminal=x"), autocommit=True) as conn:
        assert conn.execute("SELECT current_setting('hms.terminal', true)").fetchone() in \
            ((None,), ("",))


def test_a_killed_test_process_leaves_no_server_behind(tmp_path: Path) -> None:
    require_postgres()
    require_pgbouncer()
    child = subprocess.run(
        [sys.executable, "-c", (
            "import os, signal\n"
            "from tests.infra import reaper\n"
            "from tests.infra.pgcluster import Cluster, primary_with_standby\n"
            "from tests.infra.pgbouncer import Bouncer\n"
            "pg = Cluster.create('orphan')\n"
            "rs = primary_with_standby(synchronous=True).__enter__()\n"
            "b = Bouncer.create(pg, 'session')\n"
            "print(reaper.RUN_TAG, pg.base, b.base, flush=True)\n"
            "assert len(reaper.leftover_processes(reaper.RUN_TAG)) > 6\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=120, check=False)
    assert child.returncode == -9, child.stderr
    tag, pg_base, bouncer_base = child.stdout.split()
    deadline = time.monotonic() + reaper.GRACE + 10
    while reaper.leftover_processes(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert reaper.leftover_processes(tag) == []
    while (Path(pg_base).exists() or Path(bouncer_base).exists()) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(pg_base).exists() and not Path(bouncer_base).exists()


def test_old_primary_fenced_or_rewound_never_takes_writes(
    replica_set_factory: Callable[..., ReplicaSet],
) -> None:
    for how in ("fence", "rewind"):
        rs = replica_set_factory(synchronous=False, standbys=1)
        old, new = rs.primary, rs.standby
        old.psql("CREATE TABLE t (x int)")
        old.psql("INSERT INTO t VALUES (1)")
        wait_caught_up(old, new)
        detach(new)
        old.psql("INSERT INTO t VALUES (2)")  # acknowledged, never replicated
        rs.failover()
        new.psql("INSERT INTO t VALUES (3)")
        if how == "fence":
            fence(old, new)
            old.start()
        else:
            assert rejoin_as_standby(old, new) < 30
            assert wait_streaming(new, old) == "async"
            wait_caught_up(new, old)
            assert old.psql("SELECT x FROM t ORDER BY x") == [(1,), (3,)]  # 2 was discarded
        assert old.is_in_recovery(), how
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            old.psql("INSERT INTO t VALUES (4)")


def test_failover_with_two_standbys_repoints_the_other_and_keeps_it_synchronous(
    replica_set_factory: Callable[..., ReplicaSet],
) -> None:
    rs = replica_set_factory(synchronous=True, standbys=2)
    s1, s2 = rs.standbys
    rs.primary.psql("CREATE TABLE t (x int)")
    rs.primary.psql("INSERT INTO t VALUES (1)")
    rs.failover(promote=s1)
    assert rs.primary is s1 and rs.standbys == [s2]
    assert s1.value("SHOW synchronous_standby_names") == "s2"
    assert wait_streaming(s1, s2) == "sync"
    s1.psql("INSERT INTO t VALUES (2)")  # returns only once s2 has it
    wait_caught_up(s1, s2)
    assert s2.psql("SELECT x FROM t ORDER BY x") == [(1,), (2,)]
    assert s2.timeline() == s1.timeline() == 2
