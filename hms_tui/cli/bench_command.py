"""``hms-tui bench``: the speed figures of issue 14 beside their ceilings and goals (the
harness is ``hms_tui.bench``; this parses, runs it and prints)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

import typer
from rich.text import Text

from hms_tui.cli import app as root
from hms_tui.cli import common, render
from hms_tui.cli.common import JsonFlag
from hms_tui.domain.errors import InvalidInput

MAX_CLIENTS = 500


def parse_clients(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if not counts or any(not 1 <= n <= MAX_CLIENTS for n in counts):
        raise InvalidInput(f"--clients takes client counts from 1 to {MAX_CLIENTS}, comma-"
                           f"separated (e.g. 1,8,32,64), not {text!r}")
    return counts


def parse_parts(text: str | None) -> tuple[str, ...]:
    from hms_tui.bench.sizes import PARTS

    if text is None:
        return PARTS
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise InvalidInput(f"--parts takes some of {','.join(PARTS)}, not {text!r}")
    return parts


@root.command("bench")
def bench(
    ctx: typer.Context,
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes: done in under a "
                                        "minute.")] = False,
    clients: Annotated[str, typer.Option("--clients", metavar="N,N,...",
                                         help="Client counts of the throughput runs.")]
    = "1,8,32,64",
    parts: Annotated[str | None, typer.Option(
        "--parts", metavar="NAME,...", help="Only these parts: checkin, pattern, live, "
        "history, screens, import.")] = None,
    changes: Annotated[int | None, typer.Option(
        "--changes", min=2, max=1_000_000, metavar="N",
        help="Changes applied to each screen (default 10,000, or as many as fit in "
        "120 s; 16 with --quick).")] = None,
    json_: JsonFlag = False,
) -> None:
    """Measure check-in throughput, numbering, live refresh, history, screens and import
    against ceilings measured in the same run, in a scratch database that is dropped
    afterwards (not part of the test suite; see docs/benchmarks.md)."""
    from hms_tui.bench import sizes as size_table
    from hms_tui.bench.progress import stderr_progress
    from hms_tui.bench.run import run
    from hms_tui.bench.scratch import bench_server

    sizes = size_table.pick(quick, parse_clients(clients))
    if changes is not None:
        sizes = replace(sizes, changes=changes)
    chosen = parse_parts(parts)
    settings = common.context(ctx).settings
    with bench_server(settings) as server, stderr_progress() as steps:
        result = run(server.admin, sizes, steps, parts=chosen, server=server.where,
                     quick=quick)
    render.output(result, json_, print_bench)


def print_bench(result: dict[str, Any]) -> None:
    srv = result.get("server", {})
    render.console.print(Text(
        f"PostgreSQL {srv.get('server_version')} ({result.get('database')}), synchronous_commit "
        f"{srv.get('synchronous_commit')}; {result['machine']['cpu_count']} cores, load "
        f"{result['machine']['load_average']} -> {result['machine'].get('load_average_after')}; "
        f"{result.get('seconds')} s"))
    checkin = result.get("checkin")
    if checkin:
        tbl = render.table("a. check-ins per second beside the ceilings (same clients)",
                           ["spread", "clients", "check-in/s", "UPDATE/s", "UPDATE+notify/s",
                            "ratio", "ratio notify"])
        for spread, rows in checkin.items():
            if not isinstance(rows, dict):
                continue
            for n, r in rows.items():
                tbl.add_row(spread, n, str(r["checkin_per_s"]), str(r["counter_update_per_s"]),
                            str(r["update_notify_per_s"]), str(r["ratio_to_counter"]),
                            str(r["ratio_to_update_notify"]))
        render.console.print(tbl)
    goals = render.table("Goals (issue 14)", ["goal", "value", "target", "met"])
    for g in result.get("goals", []):
        met = {True: "yes", False: "NO", None: "-"}[g["met"]]
        goals.add_row(render.t(g["goal"]), render.t(g["value"]), render.t(g["target"]),
                      render.t(met, "green" if g["met"] else "red" if g["met"] is False else ""))
    render.console.print(goals)
    render.console.print("Every figure: hms-tui bench --json")
