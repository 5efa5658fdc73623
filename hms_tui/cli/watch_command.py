"""``hms-tui watch``: stream queue changes to stdout as they happen, until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Annotated, Any

import typer

from hms_tui.cli import app as root
from hms_tui.cli import render
from hms_tui.cli.common import JsonFlag
from hms_tui.cli.context import AppContext
from hms_tui.domain.errors import ConfigError
from hms_tui.domain.events import ConnectionState, ConnectionUpdate, Event, QueueUpdate
from hms_tui.domain.textsafe import printable
from hms_tui.services.live import Listener


def event_document(event: Event) -> dict[str, Any] | None:
    """The --json line for an event (None: not shown by watch)."""
    if isinstance(event, ConnectionUpdate):
        return {"state": event.state.value, "last_refresh": event.last_refresh,
                "detail": event.detail}
    if isinstance(event, QueueUpdate):
        kind = event.actions[-1] if event.reason == "change" and event.actions else event.reason
        return {"doctor": event.doctor, "kind": kind, "reason": event.reason,
                "changes": len(event.actions), "business_date": event.business_date,
                "queue": list(event.visits)}
    return None


def event_line(event: Event) -> str | None:
    stamp = datetime.now().strftime("%H:%M:%S")
    if isinstance(event, ConnectionUpdate):
        detail = f" ({event.detail})" if event.detail else ""
        return f"{stamp}  connection {event.state.value}{detail}"
    if isinstance(event, QueueUpdate):
        waiting = [v for v in event.visits if v.position is not None]
        serving = [v.token for v in event.visits if v.position is None]
        kind = ", ".join(dict.fromkeys(event.actions)) or event.reason
        nxt = ", ".join(str(v.token) for v in waiting[:4]) or "-"
        return (f"{stamp}  {event.doctor}  {kind}: {len(waiting)} waiting · serving "
                f"{', '.join(str(t) for t in serving) or '-'} · next {nxt}")
    return None


async def stream(listener: Listener, json_mode: bool) -> None:
    """Print events until interrupted; a listener that cannot be live here (a transaction
    pooler) ends the stream with its one-line reason as the error."""
    runner = asyncio.create_task(listener.run())
    try:
        async for event in listener.events():
            if json_mode:
                doc = event_document(event)
                if doc is not None:
                    render.emit_json(doc)
            elif isinstance(event, ConnectionUpdate) \
                    and event.state == ConnectionState.UNSUPPORTED:
                pass  # said once, as the error below
            else:
                line = event_line(event)
                if line is not None:
                    render.console.print(render.t(printable(line)))
            if isinstance(event, ConnectionUpdate) and event.state == ConnectionState.UNSUPPORTED:
                raise ConfigError(event.detail)
    finally:
        await listener.stop()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


@root.command()
def watch(
    ctx: typer.Context,
    doctor: Annotated[list[str] | None, typer.Option("--doctor", help="Only this doctor "
                                                     "(repeatable). Default: every doctor.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Stream queue changes and connection state as they happen, until interrupted."""
    obj: AppContext = ctx.obj
    desk = obj.desk()
    codes = [desk.doctor(code).code for code in doctor] if doctor else None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(stream(Listener(desk.db, codes), json_))
