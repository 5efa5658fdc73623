"""Input rules shared by every entry point.

The same rules are CHECK constraints in the database (migrations/0001_core.sql,
``hms.is_clean_text``), so a psql session cannot plant what the forms refuse. Text that passes
is stored exactly as typed (after trimming surrounding spaces) and shown literally.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from hms_tui.domain.errors import InvalidInput

# C0 and C1 controls (NUL, ESC, CR, LF, TAB, DEL ...), Arabic letter mark, LRM/RLM, line and
# paragraph separators, bidi embeddings/overrides (U+202A-202E) and isolates (U+2066-2069).
FORBIDDEN_CHARS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)

NAME_MAX = 100
ROOM_MAX = 20
REASON_MAX = 200
ITEM_MAX = 80
SEARCH_MAX = 100
LABEL_MAX = 40
AMOUNT_MAX = Decimal("10000000")
BILL_ITEMS_MAX = 50

DOCTOR_CODE = re.compile(r"[A-Z][A-Z0-9]{0,7}")
TOKEN_PREFIX = re.compile(r"[A-Z0-9]{1,6}")
PHONE = re.compile(r"\+?[0-9][0-9 -]{2,19}")


def describe_char(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def clean_text(value: str, what: str, max_len: int, *, required: bool = True) -> str:
    """Refuse control/bidi characters anywhere (even at the ends, which trimming would hide),
    then trim spaces and refuse empty or over-long text. Returns the stored form."""
    bad = FORBIDDEN_CHARS.search(value)
    text = value.strip()
    if bad:
        raise InvalidInput(
            f"{what} contains a control or direction-changing character "
            f"({describe_char(bad.group())}); type it without one"
        )
    if required and not text:
        raise InvalidInput(f"{what} is empty")
    if len(text) > max_len:
        raise InvalidInput(f"{what} is {len(text)} characters long; the limit is {max_len}")
    return text


def optional_text(value: str | None, what: str, max_len: int) -> str | None:
    if value is None:
        return None
    text = clean_text(value, what, max_len, required=False)
    return text or None


def person_name(value: str) -> str:
    return clean_text(value, "name", NAME_MAX)


def doctor_code(value: str) -> str:
    code = clean_text(value, "doctor code", 8).upper()
    if not DOCTOR_CODE.fullmatch(code):
        raise InvalidInput(
            f"doctor code {code!r} is invalid; use a letter then up to 7 letters or digits, e.g. D1"
        )
    return code


def token_prefix(value: str) -> str:
    prefix = clean_text(value, "token prefix", 6).upper()
    if not TOKEN_PREFIX.fullmatch(prefix):
        raise InvalidInput(f"token prefix {prefix!r} is invalid; use 1-6 letters or digits")
    return prefix


def phone(value: str | None) -> str | None:
    text = optional_text(value, "phone", 21)
    if text is None:
        return None
    if not PHONE.fullmatch(text):
        raise InvalidInput(
            f"phone {text!r} is invalid; use digits, spaces or '-', optionally starting with '+'"
        )
    return text


def birth_date(value: str | date | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    text = value.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"date of birth {text!r} is not a date; use YYYY-MM-DD") from None


def appointment_time(value: str) -> datetime:
    """Parse 'YYYY-MM-DD HH:MM' as a wall-clock time; the database applies the clinic's zone."""
    text = value.strip()
    try:
        parsed = datetime.strptime(text, "%Y-%m-%d %H:%M")
    except ValueError:
        raise InvalidInput(
            f"appointment time {text!r} is invalid; use \"YYYY-MM-DD HH:MM\""
        ) from None
    return parsed


def amount(value: str, what: str = "amount") -> Decimal:
    text = value.strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(f"{what} {text!r} is not a number; use e.g. 500 or 120.50") from None
    if not number.is_finite() or number < 0 or number > AMOUNT_MAX:
        raise InvalidInput(f"{what} {text!r} must be between 0 and {AMOUNT_MAX}")
    if number != number.quantize(Decimal("0.01")):
        raise InvalidInput(f"{what} {text!r} has more than two decimal places")
    return number.quantize(Decimal("0.01"))


def bill_item(spec: str) -> tuple[str, Decimal]:
    """Parse 'Description=Amount' (the last '=' splits, so descriptions may contain '=')."""
    if "=" not in spec:
        raise InvalidInput(f"bill item {spec!r} is invalid; use \"Description=Amount\"")
    description, _, value = spec.rpartition("=")
    return clean_text(description, "bill item description", ITEM_MAX), amount(value, "bill item amount")


def search_text(value: str) -> str:
    return clean_text(value, "search text", SEARCH_MAX, required=False)


def positive_places(value: int) -> int:
    if not 1 <= value <= 100:
        raise InvalidInput(f"places must be from 1 to 100, not {value}")
    return value
