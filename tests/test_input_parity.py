"""The same input rules everywhere: random text and numbers through the CLI and straight into
the SQL functions are accepted and refused alike (and stored alike when accepted).

The CLI runs in-process (its whole path: typer, validation, the desk, the database). Direct SQL
is what a psql session or another program would send, with no Python in front of it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hms_tui.cli import main as cli_main
from hms_tui.services.desk import Desk

# Characters that decide the rules: spaces of every kind, controls, format and zero-width
# characters, bidi controls, digits, ASCII and non-ASCII letters, symbols, emoji.
TRICKY = "  \t\n\x00\x01\x1b\x7f\x85\u00a0\u00ad\u034f\u1680\u2000\u2007\u200a\u200b\u200c" \
         "\u200d\u200e\u202e\u2060\u2066\u3000\ufeff\ufe0f-_.,'[]=%\\ßŁéÉ王😀0123456789aZ"
texts = st.text(alphabet=st.sampled_from(TRICKY) | st.characters(codec="utf-8"), max_size=24)
long_texts = st.builds(lambda a, n, b: a + "x" * n + b, texts, st.integers(90, 105), texts)
amounts = st.one_of(
    st.decimals(min_value=-5, max_value=10_000_001, places=3).map(str),
    st.decimals(min_value=0, max_value=10_000_000, places=2).map(str),
    st.text(alphabet="0123456789.,-+eE ", max_size=12),
)
PARITY = settings(max_examples=60, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], dsn: str,
        *args: str) -> tuple[int, dict[str, Any] | None]:
    """Run hms-tui in-process; its exit code and --json answer."""
    monkeypatch.setenv("HMS_DATABASE_URL", dsn)
    monkeypatch.setenv("HMS_TUI_CONFIG", "")
    code = 0
    try:
        cli_main([*args, "--json"])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr().out.strip()
    return code, json.loads(out) if code == 0 and out else None


def sql_outcome(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...]
                ) -> tuple[str, Any]:
    """'ok' with the first column, 'conflict' (valid input, taken), or 'refused'."""
    try:
        row = conn.execute(query, params).fetchone()
    except (psycopg.DataError, psycopg.errors.IntegrityError, psycopg.errors.RaiseException,
            psycopg.errors.InvalidTextRepresentation, psycopg.ProgrammingError,
            psycopg.OperationalError) as exc:
        if getattr(exc, "sqlstate", None) in ("HM409", "23505"):
            return "conflict", None
        return "refused", getattr(exc, "sqlstate", None)
    return "ok", row[0] if row else None


def cli_outcome(code: int) -> str:
    return {0: "ok", 5: "conflict", 2: "refused"}.get(code, f"exit {code}")


@pytest.fixture
def raw(dsn: str) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


@PARITY
@given(name=st.one_of(texts, long_texts))
@example(name="\u200b")
@example(name="\ufeff")
@example(name="\u00a0Ann\u3000")
@example(name=" Ann\t")
@example(name="A" * 100)
@example(name="A" * 101)
def test_patient_names(name: str, dsn: str, raw: Any, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    code, answer = cli(monkeypatch, capsys, dsn, "patient", "add", "--name", name)
    direct, stored = sql_outcome(raw, "SELECT (hms.add_patient(%s, NULL, NULL)).name", (name,))
    assert (cli_outcome(code), direct) in (("ok", "ok"), ("refused", "refused")), (name, code)
    if direct == "ok":
        assert answer is not None and answer["name"] == stored


@PARITY
@given(code=st.one_of(texts, st.text(alphabet="Dd1ßıİſK\u212a9z ", min_size=1, max_size=9)))
@example(code="ß")
@example(code="d1")
@example(code=" D7 ")
@example(code="Dſ")
@example(code="D" + "1" * 7)
@example(code="D" + "1" * 8)
@example(code="1D")
def test_doctor_codes(code: str, dsn: str, raw: Any, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    exit_code, answer = cli(monkeypatch, capsys, dsn, "doctor", "add", "--code", code,
                            "--name", "Dr Test", "--prefix", f"P{uuid.uuid4().hex[:5]}")
    direct, _ = sql_outcome(raw, "SELECT (hms.add_doctor(%s, 'Dr Test', NULL, %s)).code",
                                 (code, f"Q{uuid.uuid4().hex[:5]}"))
    pair = (cli_outcome(exit_code), direct)
    # The CLI made it first: the same valid code is then taken for the direct call.
    assert pair in (("ok", "conflict"), ("conflict", "conflict"), ("refused", "refused")), \
        (code, pair)
    if answer is not None:
        assert answer["code"] == code.strip(" ").upper()


@PARITY
@given(value=amounts)
@example(value="10.005")
@example(value="-0.004")
@example(value="1e2")
@example(value="NaN")
@example(value="10000000")
@example(value="10000000.01")
@example(value=" 7.5 ")
def test_bill_amounts(value: str, dsn: str, desk: Desk, raw: Any, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    visit = _a_visit(desk)
    code, answer = cli(monkeypatch, capsys, dsn, "bill", "create", str(visit), "--item",
                       f"Consultation={value}")
    items = json.dumps([{"description": "Consultation", "amount": value}])
    direct, total = sql_outcome(raw, "SELECT (hms.create_bill(%s, %s::jsonb)).total::text",
                                (visit, items))
    assert (cli_outcome(code), direct) in (("ok", "ok"), ("refused", "refused")), (value, code)
    if answer is not None:
        assert answer["total"] == total  # the same exact amount, as text


@PARITY
@given(key=st.one_of(texts, long_texts))
@example(key="")
@example(key="   ")
@example(key="\u200b")
@example(key="k\x1b")
def test_checkin_keys(key: str, dsn: str, desk: Desk, raw: Any, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    doctor = _doctor(desk)
    first, second = (desk.add_patient(f"Key {uuid.uuid4().hex[:6]}").id for _ in range(2))
    code, _ = cli(monkeypatch, capsys, dsn, "checkin", "--doctor", doctor, "--patient",
                  str(first), "--key", key)
    direct, _ = sql_outcome(raw, "SELECT (hms.checkin(%s, %s, 'normal', %s)).visit_id",
                            (doctor, second, key))
    pair = (cli_outcome(code), direct)
    # A valid key used by the CLI is taken for another patient: a conflict, not a refusal.
    assert pair in (("ok", "conflict"), ("refused", "refused")), (key, pair)


def _doctor(desk: Desk) -> str:
    if not desk.doctors():
        desk.add_doctor("D1", "Dr Rao")
    return "D1"


def _a_visit(desk: Desk) -> int:
    doctor = _doctor(desk)
    return desk.checkin(doctor, desk.add_patient(f"Bill {uuid.uuid4().hex[:6]}").id).visit_id
