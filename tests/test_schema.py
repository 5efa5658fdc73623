"""Migrations, the business date, the UI-free core and the audit trail's basic promises."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import psycopg
import pytest

from hms_tui.db import migrate
from hms_tui.domain.errors import SchemaMismatch
from hms_tui.services.desk import Desk


def test_upgrade_is_idempotent_and_records_versions(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert migrate.upgrade(conn) == []  # the template is already current
        rows = conn.execute("SELECT version, name, checksum FROM hms.schema_migrations "
                            "ORDER BY version").fetchall()
    shipped = migrate.available()
    assert [(m.version, m.name, m.checksum) for m in shipped] == rows


def test_concurrent_upgrades_apply_each_migration_once(server_dsn: str) -> None:
    from tests.conftest import with_dbname

    name = "hms_mig_race"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    applied: list[int] = []
    errors: list[BaseException] = []

    def upgrade() -> None:
        try:
            with psycopg.connect(with_dbname(server_dsn, name), autocommit=True) as conn:
                applied.extend(m.version for m in migrate.upgrade(conn))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        assert sorted(applied) == [m.version for m in migrate.available()]
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_newer_database_is_refused(sql: psycopg.Connection[Any], dsn: str) -> None:
    newer = migrate.latest_version() + 1
    sql.execute("INSERT INTO hms.schema_migrations (version, name, checksum) "
                "VALUES (%s, 'from_the_future', 'x')", (newer,))
    with psycopg.connect(dsn, autocommit=True) as conn:
        with pytest.raises(SchemaMismatch, match=f"version {newer}, newer than this hms-tui"):
            migrate.upgrade(conn)
        with pytest.raises(SchemaMismatch, match="newer"):
            migrate.check_version(conn)


def test_business_date_ignores_the_session_time_zone(dsn: str, desk: Desk) -> None:
    desk.configure(timezone="Pacific/Kiritimati")  # UTC+14
    expected = desk.business_date()
    for zone in ("Etc/GMT+12", "UTC", "Asia/Kolkata"):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"SET TimeZone = '{zone}'")
            row = conn.execute("SELECT hms.business_date(), "
                               "(now() AT TIME ZONE 'Pacific/Kiritimati')::date").fetchone()
            assert row == (expected, expected)


def test_core_imports_without_textual() -> None:
    code = ("import sys, hms_tui.services.desk, hms_tui.services.demo, hms_tui.services.live, "
            "hms_tui.db.listener, "
            "hms_tui.cli; bad = [m for m in sys.modules if m.split('.')[0] == 'textual']; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_audit_rows_record_who_what_when_before_after(desk: Desk, sql: psycopg.Connection[Any],
                                                      clinic: dict[str, Any]) -> None:
    visit = desk.checkin("D1", clinic["patients"][0])
    desk.call_next("D1")
    rows = sql.execute(
        "SELECT actor, terminal, action, before->>'status', after->>'status', at <= now() "
        "FROM hms.audit_events WHERE visit_id = %s ORDER BY seq", (visit.visit_id,)).fetchall()
    user = sql.execute("SELECT session_user").fetchone()
    assert user is not None
    assert rows == [(user[0], "pytest", "checkin", None, "WAITING", True),
                    (user[0], "pytest", "call_next", "WAITING", "CALLED", True)]
    for statement in ("UPDATE hms.audit_events SET actor = 'x'", "DELETE FROM hms.audit_events",
                      "TRUNCATE hms.audit_events"):
        with pytest.raises(psycopg.Error, match="append-only") as err:
            sql.execute(statement)
        assert err.value.sqlstate == "HM423"


def test_replaying_the_trail_rebuilds_the_queue(desk: Desk, sql: psycopg.Connection[Any],
                                                clinic: dict[str, Any]) -> None:
    """The trail holds full before/after images: the latest image of each of today's visits
    gives the same waiting line as the live tables (the base for 'the queue at 10:15')."""
    p = clinic["patients"]
    visits = [desk.checkin("D1", p[i]).visit_id for i in range(6)]
    desk.set_priority(visits[4], "urgent")
    desk.cancel(visits[1])
    desk.skip(visits[2], 2)
    desk.call_next("D1")
    # The latest image of each visit, ranked by the one definition of the queue order.
    replayed = sql.execute(
        """SELECT array_agg((r.visit).id ORDER BY r.ord) FILTER (WHERE r.position IS NOT NULL)
             FROM hms.ranked(ARRAY(
                      SELECT DISTINCT ON (entity_id) jsonb_populate_record(NULL::hms.visits, after)
                        FROM hms.audit_log WHERE entity = 'visits'
                       ORDER BY entity_id, seq DESC NULLS FIRST, ticket DESC), 0) r""").fetchone()
    assert replayed is not None
    live = [v.visit_id for v in desk.queue("D1") if v.position is not None]
    assert replayed[0] == live


def test_wait_estimates_use_the_doctors_pace_after_three_real_consultations(
    desk: Desk, sql: psycopg.Connection[Any], clinic: dict[str, Any]
) -> None:
    """Until three consultations of at least a minute are done today, estimates use the
    clinic's setting; then the doctor's own average. A 20-second 'consultation' is a slip."""
    p = clinic["patients"]

    def consult(patient: int, seconds: int) -> None:
        visit = desk.checkin("D1", patient)
        desk.call(visit.visit_id)
        desk.start(visit.visit_id)
        done = desk.complete(visit.visit_id)
        with sql.transaction():
            sql.execute("SET LOCAL session_replication_role = replica")  # rewrite the clock
            sql.execute("UPDATE hms.visits SET started_at = ended_at - make_interval(secs => %s)"
                        " WHERE id = %s", (seconds, done.visit_id))

    def per_patient() -> Any:
        row = sql.execute("SELECT hms.consult_minutes(1, hms.business_date())").fetchone()
        return row[0] if row else None

    desk.configure(consult_minutes=10)
    consult(p[0], 300)
    consult(p[1], 300)
    consult(p[2], 20)  # ignored
    assert per_patient() == 10
    consult(p[3], 480)
    assert round(per_patient(), 6) == round((5 + 5 + 8) / 3, 6)
    waiting = desk.checkin("D1", p[4])
    assert waiting.wait_minutes == 0  # first in line, nobody with the doctor
    second = desk.checkin("D1", p[5])
    assert second.wait_minutes == 6  # one ahead at 6 minutes each
