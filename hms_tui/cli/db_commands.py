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
    """Apply pending schema migrations (idempotent) and the [clinic] settings of the config."""
    from hms_tui.db import migrate
    from hms_tui.services.desk import Desk

    obj = common.context(ctx)
    db = obj.database(upgrade=True)
    with db.connect() as conn:
        version = migrate.current_version(conn)
    clinic = obj.settings.clinic
    rules = Desk(db).configure(
        clinic_name=clinic.name, timezone=clinic.timezone, recall_limit=clinic.recall_limit,
        requeue_after=clinic.requeue_after, skip_places=clinic.skip_places,
        consult_minutes=clinic.consult_minutes, calls_ahead=clinic.calls_ahead,
    )
    render.output({"version": version, "database": db.describe(), "rules": rules}, json_,
                  render.print_upgrade)


@db_app.command("status")
def db_status(ctx: typer.Context, json_: JsonFlag = False) -> None:
    """Where the data is, the schema version and the business date."""
    from hms_tui.db import migrate

    desk = common.desk(ctx)
    with desk.db.connect() as conn:
        version = migrate.current_version(conn)
    info = {"database": desk.db.describe(), "version": version,
            "business_date": desk.business_date(), "rules": desk.rules()}
    render.output(info, json_, render.print_status)


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
