"""Showing stored text literally and safely, in any UI.

Entry points refuse control and bidi characters and the database's CHECK constraints do too,
so stored text should never contain them; this is the last line of defence for whatever else
reaches a terminal (server messages, labels from other versions): such characters are replaced
with U+FFFD so no escape sequence can ever reach the terminal.
"""

from __future__ import annotations

from hms_tui.domain.validation import FORBIDDEN_CHARS

REPLACEMENT = "\ufffd"


def printable(value: object) -> str:
    """``value`` as text with control, escape and bidi-override characters neutralised."""
    if value is None:
        return ""
    return FORBIDDEN_CHARS.sub(REPLACEMENT, str(value))


def ascii_only(value: object) -> str:
    """``printable(value)`` with only ASCII left, for a bare Linux console: accents dropped
    ('Zoë' -> 'Zoe'), each run of other characters (CJK, emoji) replaced by one '?'."""
    import unicodedata

    text = unicodedata.normalize("NFKD", printable(value))
    out: list[str] = []
    for ch in text:
        if ord(ch) < 128:
            out.append(ch)
        elif unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Cf"):
            continue  # accents, zero-width joiners, variation selectors
        elif not out or out[-1] != "?":
            out.append("?")
    return "".join(out)
