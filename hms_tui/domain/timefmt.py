"""Times as the desk reads them, shared by the CLI and the screens."""

from __future__ import annotations

from datetime import date, datetime, timedelta


def minutes_since(then: datetime | None, now: datetime) -> str:
    """'7m': whole minutes waited (never negative; '' when unknown)."""
    if then is None:
        return ""
    return f"{max(0, int((now - then).total_seconds() // 60))}m"


def duration(value: timedelta | None) -> str:
    """'3m05s', or '1h02m' past an hour ('' when unknown)."""
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def age_on(birth: date | None, today: date) -> int | None:
    """Whole years from ``birth`` to ``today`` (None when the date of birth is unknown)."""
    if birth is None:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
