"""The whole run: each part in a scratch database of its own (no part inherits another's
doctors or history), the server's facts and the machine's load around it, then the goals."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import psutil

from hms_tui.bench import checkin, goals, history, importing, live, screens
from hms_tui.bench.progress import Steps
from hms_tui.bench.scratch import check_room, dbname, scratch_database, server_facts
from hms_tui.bench.sizes import PARTS, Sizes

Part = Callable[[str, Sizes, Steps], dict[str, Any]]
RUNNERS: dict[str, Part] = {"checkin": checkin.throughput, "pattern": checkin.numbering,
                            "live": live.latency, "history": history.growth,
                            "screens": screens.screens, "import": importing.batches}


def machine() -> dict[str, Any]:
    return {"cpu_count": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def connections_needed(sizes: Sizes, parts: Sequence[str]) -> int:
    needed = 4
    if "checkin" in parts or "pattern" in parts:
        needed = max(needed, max(sizes.clients) + 3)
    if "live" in parts:
        needed = max(needed, max(sizes.listeners) + 4)
    return needed


def run(admin: str, sizes: Sizes, steps: Steps, *, parts: Sequence[str] = PARTS,
        server: str = "", quick: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {"quick": quick, "parts": list(parts), "sizes": sizes.as_dict(),
                              "machine": machine(), "database": server}
    began = time.perf_counter()
    with scratch_database(admin) as template:  # migrated once; each part gets a clone
        result["server"] = server_facts(template)
        check_room(result["server"], connections_needed(sizes, parts))
        for part in PARTS:
            if part not in parts:
                continue
            with scratch_database(admin, dbname(template)) as dsn:
                t0 = time.perf_counter()
                result[part] = RUNNERS[part](dsn, sizes, steps)
                result[part]["seconds"] = round(time.perf_counter() - t0, 1)
    result["seconds"] = round(time.perf_counter() - began, 1)
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["goals"] = goals.judge(result)
    return result
