"""One visit's token slip, built and sent to the configured printer: what ``checkin --print``,
``arrive --print`` and reception's slip preview share.

``deliver`` never raises for a printer problem: the check-in or arrival the slip belongs to has
happened whatever the printer does, so the caller gets a ``SlipOutcome`` (printed or not, and
one line saying what happened) and decides how to report it. It blocks for at most
``printer.timeout`` seconds: call it off the UI loop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from hms_tui.config import Settings
from hms_tui.domain.errors import HmsError
from hms_tui.domain.models import Status, Visit
from hms_tui.services.desk import Desk
from hms_tui.services.printing import PrintFailed, print_slip
from hms_tui.services.slips import Slip, format_slip_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlipOutcome:
    """What became of one slip (``--json`` carries it as ``slip: {printed, message}``)."""

    printed: bool
    message: str

    def as_json(self) -> dict[str, object]:
        return {"printed": self.printed, "message": self.message}


def visit_slip(visit: Visit, settings: Settings, *, clinic_name: str, zone: tzinfo,
               reprint: bool = False, now: datetime | None = None) -> Slip:
    """The slip of ``visit`` as the config asks for it (the name only with slip.show_name)."""
    return Slip.from_visit(visit, clinic_name=clinic_name, zone=zone,
                           show_name=settings.slip.show_name, reprint=reprint, now=now)


def preview_text(slip: Slip, settings: Settings) -> str:
    """The slip as the CUPS printer gets it (a thermal printer gets the same lines in its own
    big type and QR code)."""
    return format_slip_text(slip, ascii_only=settings.slip.ascii)


def deliver(slip: Slip, settings: Settings) -> SlipOutcome:
    """Print ``slip``; never raises for a printer problem (see the module's docstring)."""
    try:
        return SlipOutcome(True, print_slip(slip, settings.printer, settings.slip))
    except PrintFailed as exc:
        return SlipOutcome(False, str(exc))
    except Exception as exc:  # a printer library's surprise must not undo the desk's work
        log.exception("printing the slip of %s failed", slip.token)
        return SlipOutcome(False, f"printing failed unexpectedly ({type(exc).__name__}: {exc}); "
                           "check the printer and reprint")


def print_visit_slip(desk: Desk, visit: Visit, settings: Settings, *,
                     reprint: bool = False) -> SlipOutcome:
    """Build ``visit``'s slip with the clinic's name and time zone (read from the database)
    and print it. A database failure while reading them is reported like a printer's."""
    try:
        rules = desk.rules()
        slip = visit_slip(visit, settings, clinic_name=rules.clinic_name, zone=desk.zone(),
                          reprint=reprint)
    except (HmsError, ValueError) as exc:
        return SlipOutcome(False, f"the slip could not be made: {exc}")
    return deliver(slip, settings)


def todays_visits(desk: Desk, doctors: Iterable[str]) -> list[Visit]:
    """Every visit of today that has a token, for these doctors: the visits a slip can be
    reprinted for, newest check-in first. Cancelled and transferred visits are left out: their
    token no longer stands (a transfer's new visit has its own)."""
    found = [v for code in doctors for v in desk.queue(code, include_all=True)
             if v.token and v.status not in (Status.CANCELLED, Status.TRANSFERRED)]
    return sorted(found, reverse=True, key=lambda v: (
        v.checked_in_at.timestamp() if v.checked_in_at else 0.0, v.visit_id))
