"""Input rules shared by every entry point.

The same rules hold in the database -- ``hms.is_clean_text`` in the CHECK constraints
(db/sql/migrations/0004_hardening.sql), ``hms.trim_text``, ``hms.parse_code`` and
``hms.parse_amount`` in the desk functions (db/sql/routines/00_base.sql) -- so psql cannot store
what the forms refuse, and a property test (tests/test_input_parity.py) checks that both sides
accept and refuse the same values. Text that passes is stored exactly as typed (after trimming
surrounding spaces) and shown literally.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal

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

# Trimmed from both ends: the space and Unicode's other space separators (not NBSP-like format
# characters, which are refused if alone; controls are refused anywhere, never trimmed).
SPACES = " \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
         "\u202f\u205f\u3000"
# Text must have at least one character outside this set (spaces, soft hyphen, zero-width and
# other format characters, variation selectors, Hangul fillers).
INVISIBLE = re.compile("[ \u00a0\u00ad\u034f\u115f\u1160\u1680\u180e\u2000-\u200f\u202f"
                       "\u205f-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0]")

# Codes are ASCII: a letter, then up to 7 letters or digits (any case; stored upper-case).
DOCTOR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,7}")
TOKEN_PREFIX = re.compile(r"[A-Za-z0-9]{1,6}")
PHONE = re.compile(r"\+?[0-9][0-9 -]{2,19}")
# Money: whole units (up to 10,000,000) and at most two decimals; no signs, no exponents.
AMOUNT = re.compile(r"[0-9]{1,8}(\.[0-9]{1,2})?")


def describe_char(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def clean_text(value: str, what: str, max_len: int, *, required: bool = True) -> str:
    """Refuse control/bidi characters anywhere (even at the ends, which trimming would hide),
    then trim spaces and refuse empty or over-long text. Returns the stored form."""
    bad = FORBIDDEN_CHARS.search(value)
    text = value.strip(SPACES)
    if bad:
        raise InvalidInput(
            f"{what} contains a control or direction-changing character "
            f"({describe_char(bad.group())}); type it without one"
        )
    if text and not INVISIBLE.sub("", text):
        raise InvalidInput(f"{what} has no visible character")
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
    code = value.strip(SPACES)
    if not DOCTOR_CODE.fullmatch(code):
        raise InvalidInput(
            f"doctor code {code[:20]!r} is invalid; use a letter then up to 7 letters or digits "
            "(A-Z, 0-9), e.g. D1"
        )
    return code.upper()


def token_prefix(value: str) -> str:
    prefix = value.strip(SPACES)
    if not TOKEN_PREFIX.fullmatch(prefix):
        raise InvalidInput(f"token prefix {prefix[:20]!r} is invalid; use 1-6 letters or digits "
                           "(A-Z, 0-9)")
    return prefix.upper()


def idempotency_key(value: str | None) -> str | None:
    """A check-in key: absent, or text (a blank one is a mistake, not 'no key')."""
    return None if value is None else clean_text(value, "check-in key", 100)


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


def a_date(value: str | date | None, what: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    text = value.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what} {text[:20]!r} is not a date; use YYYY-MM-DD") from None


def clock_time(value: str, what: str) -> time:
    text = value.strip()
    try:
        return datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise InvalidInput(f"{what} {text[:20]!r} is not a time; use HH:MM") from None


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
    text = value.strip(SPACES)
    if not AMOUNT.fullmatch(text):
        if re.fullmatch(r"[0-9]+\.[0-9]{3,}", text):
            raise InvalidInput(f"{what} {text[:20]!r} has more than two decimal places")
        raise InvalidInput(f"{what} {text[:20]!r} is not an amount; use e.g. 500 or 120.50 "
                           f"(0 to {AMOUNT_MAX})")
    number = Decimal(text)
    if number > AMOUNT_MAX:
        raise InvalidInput(f"{what} {text!r} must be between 0 and {AMOUNT_MAX}")
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


def moment(value: str, what: str = "time") -> datetime:
    """Parse 'YYYY-MM-DD HH:MM[:SS]' as a wall-clock time; the database applies the clinic's
    zone (hms.clinic_instant)."""
    text = value.strip()
    for layout in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, layout)
        except ValueError:
            continue
    raise InvalidInput(f"{what} {text[:30]!r} is invalid; use \"YYYY-MM-DD HH:MM\" or "
                       "\"YYYY-MM-DD HH:MM:SS\" (the clinic's local time)")
