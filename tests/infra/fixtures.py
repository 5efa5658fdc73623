"""pytest fixtures over ``pgcluster`` and ``pgbouncer``. Import the ones a module uses:

    from tests.infra.fixtures import pg_cluster, bouncer_factory  # noqa: F401

(or list this module in the root conftest's ``pytest_plugins``). Every fixture skips with the
reason when the binaries are missing, cleans up even when the test fails, and
``no_leftover_servers`` (autouse once imported) fails the module if any server it started
is still running afterwards.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.infra import reaper
from tests.infra.pgbouncer import Bouncer, find_pgbouncer
from tests.infra.pgcluster import (
    Cluster,
    ReplicaSet,
    Unavailable,
    find_bindir,
    primary_with_standby,
)


def require_postgres() -> None:
    try:
        find_bindir()
    except Unavailable as exc:
        pytest.skip(str(exc))


def require_pgbouncer() -> None:
    try:
        find_pgbouncer()
    except Unavailable as exc:
        pytest.skip(str(exc))


def hms_database(cluster: Cluster, name: str | None = None) -> str:
    """A new database on ``cluster`` with hms-tui's schema (``migrate.upgrade``); its dsn."""
    from hms_tui.db import migrate

    name = name or f"hms_{uuid.uuid4().hex[:8]}"
    cluster.create_database(name)
    with psycopg.connect(cluster.dsn(name), autocommit=True) as conn:
        migrate.upgrade(conn)
    return cluster.dsn(name)


@pytest.fixture(scope="module", autouse=True)
def no_leftover_servers() -> Iterator[None]:
    """After the module: no postgres/pgbouncer process of this test run is left."""
    yield
    left = reaper.leftover_processes(reaper.RUN_TAG)
    if left:
        pytest.fail("servers left running:\n" + "\n".join(left), pytrace=False)


@pytest.fixture
def pg_cluster() -> Iterator[Cluster]:
    """A fresh PostgreSQL server (trust auth) for this test."""
    require_postgres()
    with Cluster.create("pg") as cluster:
        yield cluster


@pytest.fixture
def cluster_factory() -> Iterator[Callable[..., Cluster]]:
    """``make(name, **Cluster kwargs)`` -> a started server, removed after the test."""
    require_postgres()
    made: list[Cluster] = []

    def make(name: str = "pg", **kwargs: Any) -> Cluster:
        cluster = Cluster.create(name, **kwargs)
        made.append(cluster)
        return cluster

    yield make
    for cluster in reversed(made):
        cluster.cleanup()


@pytest.fixture
def replica_set_factory() -> Iterator[Callable[..., ReplicaSet]]:
    """``make(synchronous=..., standbys=1|2, auth=..., settings=...)`` -> a ReplicaSet,
    every node removed after the test."""
    require_postgres()
    with contextlib.ExitStack() as stack:

        def make(**kwargs: Any) -> ReplicaSet:
            return stack.enter_context(primary_with_standby(**kwargs))

        yield make


@pytest.fixture
def pg_pair(replica_set_factory: Callable[..., ReplicaSet]) -> ReplicaSet:
    """A primary with one synchronous standby."""
    return replica_set_factory(synchronous=True, standbys=1)


@pytest.fixture
def bouncer_factory() -> Iterator[Callable[..., Bouncer]]:
    """``make(server, pool_mode, **Bouncer kwargs)`` -> a running PgBouncer, stopped after."""
    require_pgbouncer()
    made: list[Bouncer] = []

    def make(server: Any, pool_mode: str = "session", **kwargs: Any) -> Bouncer:
        bouncer = Bouncer.create(server, pool_mode, **kwargs)  # type: ignore[arg-type]
        made.append(bouncer)
        return bouncer

    yield make
    for bouncer in reversed(made):
        bouncer.cleanup()
