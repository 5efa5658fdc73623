"""Registering many patients at once: a registry migration from a CSV file.

The file is read and every row checked first (one clear message naming the line, nothing
sent); then the rows go in batches, each one call of ``hms.import_patients``: one statement
and one transaction, every patient audited and sealed into the chain as the desk's
registrations are, so the cost per patient stays flat however large the file.
A refused batch (someone who looks registered already) adds nothing; the batches before it
stay, and the message says how many to skip when the file is run again.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from hms_tui.domain import validation as v
from hms_tui.domain.errors import Conflict, HmsError, InvalidInput
from hms_tui.services.desk import Desk

COLUMNS = ("name", "phone", "dob")
BATCH = 2000


@dataclass(frozen=True)
class ImportRow:
    line: int
    name: str
    phone: str | None
    birth_date: date | None


def read_rows(path: Path, *, skip: int = 0) -> list[ImportRow]:
    """The file's patients, checked; a header names the columns: name, and optionally phone
    and dob (YYYY-MM-DD). ``skip``: leave out that many patients from the start."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return list(_checked(csv.reader(handle), path, skip))
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not UTF-8 text") from None
    except csv.Error as exc:
        raise InvalidInput(f"{path}: not CSV ({exc})") from None


def _checked(reader: Iterator[list[str]], path: Path, skip: int) -> Iterator[ImportRow]:
    header = next(reader, None)
    if header is None:
        raise InvalidInput(f"{path}: the file is empty; its first line names the columns "
                           f"({', '.join(COLUMNS)})")
    names = [h.strip().lower() for h in header]
    unknown = [h for h in names if h not in COLUMNS]
    if "name" not in names or unknown or len(set(names)) != len(names):
        raise InvalidInput(f"{path}:1: the columns must be name and optionally phone and dob, "
                           f"each once (found: {', '.join(names)[:80]})")
    where = {h: names.index(h) for h in names}
    seen = 0
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue  # a blank line
        if len(cells) != len(names):
            raise InvalidInput(f"{path}:{number}: {len(cells)} fields, the header has "
                               f"{len(names)}")
        seen += 1
        if seen <= skip:
            continue
        try:
            yield ImportRow(
                number, v.person_name(cells[where["name"]]),
                v.phone(cells[where["phone"]]) if "phone" in where else None,
                v.birth_date(cells[where["dob"]]) if "dob" in where else None)
        except InvalidInput as exc:
            raise InvalidInput(f"{path}:{number}: {exc}") from None


def import_rows(desk: Desk, rows: list[ImportRow], *, allow_duplicate: bool = False,
                batch: int = BATCH, skipped: int = 0,
                advance: Callable[[int], None] = lambda n: None) -> int:
    """Add the rows in batches; returns how many were added. ``advance`` is told each
    batch's size as it commits (a progress bar)."""
    done = 0
    for start in range(0, len(rows), batch):
        part = rows[start:start + batch]
        try:
            added = desk.import_patients([r.name for r in part], [r.phone for r in part],
                                         [r.birth_date for r in part],
                                         allow_duplicate=allow_duplicate)
        except HmsError as exc:
            kind = type(exc) if type(exc).__init__ is HmsError.__init__ else Conflict
            raise kind(f"lines {part[0].line}-{part[-1].line} not imported: {exc}; the "
                       f"{skipped + done} patients before them are registered: fix the file "
                       f"and run it again with --skip {skipped + done}",
                       {"imported": done, "skip": skipped + done}) from None
        done += added
        advance(added)
    return done
