"""A bill as a plain-text receipt: printable on any printer, readable in any file viewer."""

from __future__ import annotations

import shutil
import subprocess
from datetime import tzinfo
from pathlib import Path

from hms_tui.domain.models import Bill
from hms_tui.domain.textsafe import printable

WIDTH = 42


def _pair(left: str, right: str, width: int = WIDTH) -> str:
    room = max(1, width - len(right) - 1)
    if len(left) > room:
        left = left[: room - 1] + "…"
    return f"{left:<{room}} {right}"


def format_receipt(bill: Bill, clinic_name: str, zone: tzinfo) -> str:
    line = "-" * WIDTH
    issued = bill.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    out = [
        printable(clinic_name).center(WIDTH).rstrip(),
        "RECEIPT".center(WIDTH).rstrip(),
        line,
        _pair("Bill", printable(bill.bill_number)),
        _pair("Date", issued),
        _pair("Patient", printable(bill.patient_name)),
        _pair("MRN", printable(bill.mrn)),
        _pair("Visit", f"{printable(bill.token or '')} · {printable(bill.doctor_name)}"),
        line,
    ]
    for item in bill.items:
        out.append(_pair(f"{item.line}. {printable(item.description)}", f"{item.amount:.2f}"))
    out += [line, _pair("TOTAL", f"{bill.total:.2f}")]
    if bill.status == "VOID":
        out += [line, "*** VOID ***".center(WIDTH).rstrip(),
                _pair("Reason", printable(bill.void_reason or ""))]
    return "\n".join(out) + "\n"


def receipts_dir() -> Path:
    import os

    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hms-tui" / "receipts"


def save_receipt(bill: Bill, text: str, directory: Path | None = None) -> Path:
    folder = directory or receipts_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{bill.bill_number}.txt"
    path.write_text(text, encoding="utf-8")
    return path


def print_receipt(text: str) -> str:
    """Send to the system printer with lp; returns lp's answer. Raises OSError without lp."""
    lp = shutil.which("lp")
    if lp is None:
        raise OSError("no 'lp' command on this machine; save the receipt to a file instead")
    result = subprocess.run([lp], input=text, text=True, capture_output=True, timeout=30,
                            check=False)
    if result.returncode != 0:
        raise OSError(f"lp failed: {result.stderr.strip() or result.returncode}")
    return result.stdout.strip()
