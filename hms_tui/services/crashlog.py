"""A failure nobody expected, written down where an administrator can find it.

A waiting-room screen must never show a traceback: the app writes it here instead
(``$XDG_STATE_HOME/hms-tui/<role>-crash.log``), shows a calm banner and recovers.
"""

from __future__ import annotations

import logging
import os
import traceback
from datetime import UTC, datetime
from pathlib import Path

from hms_tui.config import state_dir

log = logging.getLogger(__name__)
MAX_LOG_BYTES = 1_000_000  # a display failing in a loop must not fill the disk


def crash_log_path(role: str) -> Path:
    return state_dir() / f"{role}-crash.log"


def write_crash_log(role: str, error: BaseException) -> Path | None:
    """Append ``error``'s traceback, with the time and process, to the role's crash log;
    the path, or None when it cannot be written (the failure is then only logged)."""
    path = crash_log_path(role)
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.exists() and path.stat().st_size > MAX_LOG_BYTES:
            path.replace(path.with_suffix(".log.1"))
        with path.open("a", encoding="utf-8") as out:
            out.write(f"--- {stamp} pid {os.getpid()}\n{text}\n")
    except OSError as exc:
        log.error("cannot write the crash log %s: %s", path, exc)
        return None
    return path
