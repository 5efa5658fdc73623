"""Entry rules (mirrored by CHECK constraints): refuse with one clear message, else keep as typed."""

from __future__ import annotations

import pytest

from hms_tui.domain import validation as v
from hms_tui.domain.errors import InvalidInput


@pytest.mark.parametrize("name", ["Bob\x1f", "\x1cBob", "Bob\u2028", "Bob\x85", "Bob\n", "\tBob"])
def test_control_characters_at_the_ends_are_refused_not_trimmed_away(name: str) -> None:
    with pytest.raises(InvalidInput, match="control or direction-changing character"):
        v.person_name(name)


def test_spaces_are_trimmed_and_other_text_kept_as_typed() -> None:
    assert v.person_name("  Zoë Ó Briain  ") == "Zoë Ó Briain"
    assert v.person_name("[/b] 王小明 👩\u200d⚕️") == "[/b] 王小明 👩\u200d⚕️"


@pytest.mark.parametrize(("spec", "parsed"), [
    ("Consultation=500", ("Consultation", "500.00")),
    ("A=B=1.5", ("A=B", "1.50")),
    (" ECG = 250.50 ", ("ECG", "250.50")),
])
def test_bill_items(spec: str, parsed: tuple[str, str]) -> None:
    description, amount = v.bill_item(spec)
    assert (description, str(amount)) == parsed


@pytest.mark.parametrize("spec", ["Consultation", "X=abc", "X=-1", "X=1.234", "X=NaN",
                                  "X=10000000.01", "=5"])
def test_bad_bill_items(spec: str) -> None:
    with pytest.raises(InvalidInput):
        v.bill_item(spec)
