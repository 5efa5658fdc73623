"""The database (``hms-tui db upgrade|status``) and the demo clinic."""

from __future__ import annotations

from typing import Annotated

import typer

from hms_tui.cli import app as root
from hms_tui.cli import common, render
from hms_tui.cli.common import JsonFlag

db_app = typer.Typer(help="The database: schema upgrades and status.", no_args_is_help=True)
root.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Apply pending schema migrations (idempotent) and the [clinic] and [booking] settings of
    the config."""
    from hms_tui.db import migrate
    from hms_tui.services.desk import Desk

    obj = common.context(ctx)
    db = obj.database(upgrade=True)
    with db.connect() as conn:
        version = migrate.current_version(conn)
    rules = Desk(db).configure(**obj.settings.clinic.changes())
    render.output({"version": version, "database": db.describe(), "rules": rules}, json_,
                  render.print_upgrade)


@db_app.command("status")
def db_status(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Where the data is, the schema version, the business date, replication and what a
    failover could lose (warnings), and whether numbering is on hold."""
    from hms_tui.db import migrate
    from hms_tui.services.failover import Failover, warnings

    desk = common.desk(ctx)
    with desk.db.connect() as conn:
        version = migrate.current_version(conn)
    durability = Failover(desk.db).status()
    info = {"database": desk.db.describe(), "version": version,
            "business_date": desk.business_date(), "rules": desk.rules(),
            "server": durability.server, "synchronous_commit": durability.synchronous_commit,
            "synchronous_standby_names": durability.synchronous_standby_names,
            "standbys": durability.standbys, "numbering_held": durability.held,
            "holds": durability.holds, "warnings": warnings(durability)}
    render.output(info, json_, render.print_status)


NoteOpt = Annotated[str, typer.Option("--note", help="What was checked, or why (1-200 "
                                      "characters); recorded in the audit trail.",
                                      metavar="TEXT")]


@db_app.command("confirm-failover")
def db_confirm_failover(
    ctx: typer.Context,
    note: NoteOpt,
    skip: Annotated[int, typer.Option("--skip", min=0, max=1000, metavar="N",
                                      help="Move every doctor's token numbers of today "
                                      "forward by N, so that up to N lost tokens per doctor "
                                      "are never issued again.")] = 0,
    json_: JsonFlag = False,
) -> None:
    """Let numbering resume after a failover or restore, once a person has checked what
    may have been lost (admin)."""
    from hms_tui.services.failover import Failover

    result = Failover(common.context(ctx).database()).confirm(note, skip)
    render.output(result, json_, render.print_confirmed)


@db_app.command("hold")
def db_hold(ctx: typer.Context, note: NoteOpt, json_: JsonFlag = False) -> None:
    """Stop issuing tokens and bill numbers until an admin confirms (admin), e.g. before
    letting terminals onto a standby that was promoted while not synchronous."""
    from hms_tui.services.failover import Failover

    hold_id = Failover(common.context(ctx).database()).hold(note)
    render.output({"hold": hold_id}, json_, lambda d: render.console.print(render.t(
        f"Numbering is on hold (hold {d['hold']}) until: hms-tui db confirm-failover")))


@root.command()
def demo(
    ctx: typer.Context,
    seed_only: Annotated[bool, typer.Option("--seed-only", help="Seed and exit.")] = False,
    json_: JsonFlag = False,
) -> None:
    """Seed a demo clinic when the database is empty, then open the front desk."""
    from hms_tui.services.demo import seed_demo

    obj = common.context(ctx)
    summary = seed_demo(obj.desk())
    if json_:
        render.emit_json(summary)
        return
    render.console.print(render.t(summary.describe()))
    if seed_only:
        return
    from hms_tui.cli.launch import open_front_desk

    open_front_desk(obj, summary)
