"""Token slips: what reception hands the patient after a check-in or an arrival.

One ``Slip`` (built from a visit) renders two ways: plain text for any CUPS printer
(``format_slip_text``: 42 columns, the token in big ASCII letters, a QR code of the token drawn
with half-block characters) and ESC/POS bytes for a thermal printer (``escpos_bytes``: the
printer's own big text, native QR code and cutter). Every piece of stored text goes through
``textsafe.printable`` first, so nothing a user typed can become a printer control sequence.
The patient's name is on the slip only when the clinic asks for it (``slip.show_name``): a slip
is easily left on a chair.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Protocol

from rich.cells import cell_len, set_cell_size

from hms_tui.domain.textsafe import printable
from hms_tui.services.bigfont import render_big

WIDTH = 42
FOOTER = "Please wait until your token is called"


class VisitLike(Protocol):
    """What a slip needs from a visit (``core.models.Visit`` has all of it)."""

    @property
    def token(self) -> str | None: ...
    @property
    def patient_name(self) -> str: ...
    @property
    def doctor_name(self) -> str: ...
    @property
    def room(self) -> str | None: ...
    @property
    def position(self) -> int | None: ...
    @property
    def wait_minutes(self) -> int | None: ...
    @property
    def checked_in_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class Slip:
    """Everything printed on one slip, already in the clinic's time zone."""

    clinic_name: str
    token: str
    doctor_name: str
    room: str | None
    position: int | None
    issued_at: datetime
    patient_name: str | None = None
    eta_from: datetime | None = None
    eta_to: datetime | None = None
    reprinted_at: datetime | None = None

    @classmethod
    def from_visit(
        cls,
        visit: VisitLike,
        *,
        clinic_name: str,
        zone: tzinfo,
        show_name: bool = False,
        eta_from: datetime | None = None,
        eta_to: datetime | None = None,
        reprint: bool = False,
        now: datetime | None = None,
    ) -> Slip:
        """The slip for ``visit``. Without an explicit ETA range, one on the visit
        (``eta_from``/``eta_to``, once visits carry it) is used, else one derived from
        ``wait_minutes`` (see ``estimate_range``). ``now`` defaults to this machine's clock."""
        if visit.token is None:
            raise ValueError("a visit without a token (a booking not yet arrived) has no slip")
        current = (now or datetime.now(zone)).astimezone(zone)
        if eta_from is None and eta_to is None:
            eta_from = _optional_datetime(visit, "eta_from")
            eta_to = _optional_datetime(visit, "eta_to")
        if eta_from is None and eta_to is None and visit.wait_minutes is not None:
            eta_from, eta_to = estimate_range(visit.wait_minutes, current)
        issued = visit.checked_in_at or current
        return cls(
            clinic_name=visit_text(clinic_name),
            token=visit_text(visit.token),
            doctor_name=visit_text(visit.doctor_name),
            room=visit_text(visit.room) if visit.room else None,
            position=visit.position,
            issued_at=issued.astimezone(zone),
            patient_name=visit_text(visit.patient_name) if show_name else None,
            eta_from=eta_from.astimezone(zone) if eta_from else None,
            eta_to=eta_to.astimezone(zone) if eta_to else None,
            reprinted_at=current if reprint else None,
        )


def visit_text(value: object) -> str:
    """Stored text made safe for paper: control and bidi characters neutralised."""
    return printable(value).strip()


def _optional_datetime(visit: object, name: str) -> datetime | None:
    value: Any = getattr(visit, name, None)
    return value if isinstance(value, datetime) else None


def estimate_range(wait_minutes: int, now: datetime) -> tuple[datetime, datetime]:
    """A range around a point estimate, on five-minute marks: from ``now + wait`` (to the
    minute, rounded down) to a quarter of the wait later, at least five minutes (rounded up). A range promises
    less than a minute-exact time, which patients read as an appointment."""
    start = now.replace(second=0, microsecond=0) + timedelta(minutes=max(0, wait_minutes))
    end = start + timedelta(minutes=max(5, wait_minutes // 4))
    start -= timedelta(minutes=start.minute % 5)
    end += timedelta(minutes=-end.minute % 5)
    return start, end


# --- plain text ------------------------------------------------------------------------------


def _ascii(text: str) -> str:
    """Accents dropped (é -> e), anything else outside ASCII replaced with '?'."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.encode("ascii", "replace").decode("ascii")


def _center(text: str, width: int) -> str:
    pad = max(0, (width - cell_len(text)) // 2)
    return (" " * pad + text).rstrip()


def _pair(label: str, value: str, width: int, ellipsis: str) -> str:
    """``label`` left, ``value`` right-aligned; a long value is cut with an ellipsis."""
    room = max(1, width - len(label) - 1)
    if cell_len(value) > room:
        value = set_cell_size(value, room - len(ellipsis)) + ellipsis
    return f"{label} {' ' * (room - cell_len(value))}{value}"


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def eta_text(slip: Slip) -> str | None:
    """'10:20 - 10:40', 'from 10:20', 'by 10:40', or None without an estimate."""
    if slip.eta_from and slip.eta_to:
        return f"{slip.eta_from:%H:%M} - {slip.eta_to:%H:%M}"
    if slip.eta_from:
        return f"from {slip.eta_from:%H:%M}"
    if slip.eta_to:
        return f"by {slip.eta_to:%H:%M}"
    return None


def detail_lines(slip: Slip) -> list[tuple[str, str]]:
    """The labelled lines of a slip, in print order (shared by text and ESC/POS)."""
    lines = [("Doctor", slip.doctor_name)]
    if slip.room:
        lines.append(("Room", slip.room))
    if slip.position is not None:
        lines.append(("Position in queue", str(slip.position)))
    eta = eta_text(slip)
    if eta:
        lines.append(("Expected", eta))
    if slip.patient_name:
        lines.append(("Patient", slip.patient_name))
    lines.append(("Checked in", _when(slip.issued_at)))
    if slip.reprinted_at:
        lines.append(("Reprinted", _when(slip.reprinted_at)))
    return lines


_HALF_BLOCKS = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}


def qr_matrix(data: str) -> list[list[bool]]:
    """The QR code of ``data`` (error correction M, a two-module quiet zone); True is dark."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(border=2, error_correction=ERROR_CORRECT_M)
    code.add_data(data)
    code.make(fit=True)
    return [[bool(cell) for cell in row] for row in code.get_matrix()]


def qr_text(data: str) -> list[str]:
    """The QR code as rows of half-block characters: two modules per character cell, which
    keeps the modules about square in a monospaced font."""
    matrix = qr_matrix(data)
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    return [
        "".join(_HALF_BLOCKS[(top, bottom)] for top, bottom in zip(upper, lower, strict=True))
        for upper, lower in zip(matrix[::2], matrix[1::2], strict=True)
    ]


def format_slip_text(slip: Slip, *, width: int = WIDTH, ascii_only: bool = False) -> str:
    """The slip as plain text, ``width`` columns (also the in-app preview). ``ascii_only`` is
    for printers that take nothing else (a text-only queue, a thermal printer on a raw CUPS
    queue): accents are dropped, other characters become '?', and the QR code, which needs
    block characters, is left out."""
    conv = _ascii if ascii_only else (lambda s: s)
    ellipsis = "..." if ascii_only else "…"
    rule = "-" * width
    out = [_center(conv(slip.clinic_name), width), _center("TOKEN", width), ""]
    big = render_big(slip.token, "#")
    if all(cell_len(row) <= width for row in big) and all(ch.isascii() for ch in slip.token):
        pad = (width - len(big[0])) // 2
        out += [(" " * pad + row).rstrip() for row in big]
    else:  # too long (or not drawable) for the big font: plain, spaced out
        out.append(_center(conv(" ".join(slip.token)), width))
    out += ["", rule]
    out += [_pair(label, conv(value), width, ellipsis) for label, value in detail_lines(slip)]
    out.append(rule)
    if not ascii_only:
        out += [_center(row, width) for row in qr_text(slip.token)]
    out += [_center(conv(slip.token), width), _center(FOOTER, width)]
    return "\n".join(out) + "\n"


# --- ESC/POS ---------------------------------------------------------------------------------


def escpos_bytes(slip: Slip, *, profile: str | None = None) -> bytes:
    """The slip as ESC/POS commands, built with python-escpos's ``Dummy`` printer: initialise,
    centre, the token in big text, the details, a native QR code of the token, feed and cut.
    ``profile`` names a python-escpos printer profile (default: its generic one)."""
    from escpos.constants import QR_ECLEVEL_M
    from escpos.printer import Dummy

    printer = Dummy(profile=profile)
    printer.hw("INIT")
    printer.set(align="center", bold=True)
    printer.textln(slip.clinic_name)
    printer.set(bold=False)
    printer.textln("TOKEN")
    scale = max(1, min(4, WIDTH // max(1, len(slip.token))))
    printer.set(align="center", custom_size=True, width=scale, height=4)
    printer.textln(slip.token)
    printer.set(align="left", normal_textsize=True)
    printer.ln()
    label_width = max(len(label) for label, _ in detail_lines(slip))
    for label, value in detail_lines(slip):
        printer.textln(f"{label:<{label_width}}  {value}")
    printer.ln()
    printer.set(align="center")
    printer.qr(slip.token, ec=QR_ECLEVEL_M, size=8, native=True)
    printer.textln(slip.token)
    printer.textln(FOOTER)
    printer.cut()
    output: bytes = printer.output
    return output
