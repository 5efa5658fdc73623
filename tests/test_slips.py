"""Token slips: the text layout (big token, details, QR code) and the ESC/POS bytes that
python-escpos's Dummy printer produces. No database: visits are built directly."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import qrcode
from qrcode.constants import ERROR_CORRECT_M
from rich.cells import cell_len

from hms_tui.config import load_settings
from hms_tui.domain.errors import ConfigError
from hms_tui.domain.models import Priority, Status, Visit
from hms_tui.services.bigfont import render_big
from hms_tui.services.slips import (
    WIDTH,
    Slip,
    escpos_bytes,
    estimate_range,
    format_slip_text,
    qr_text,
)

ZONE = ZoneInfo("Asia/Kolkata")  # UTC+05:30: a clinic zone that is not the machine's
CHECKED_IN = datetime(2026, 12, 1, 4, 11, tzinfo=UTC)  # 09:41 in the clinic
NOW = datetime(2026, 12, 1, 4, 12, tzinfo=UTC)  # 09:42 in the clinic
ESC, GS = b"\x1b", b"\x1d"


def make_visit(**changes: Any) -> Visit:
    visit = Visit(
        visit_id=42, token="D1-007", serial=7, position=4, status=Status.WAITING,
        priority=Priority.NORMAL, patient_id=3, patient_name="Kumar, Anil", mrn="MRN-0003",
        doctor="D1", doctor_name="Dr Rao", room="Room 3", business_date=date(2026, 12, 1),
        appointment_at=None, checked_in_at=CHECKED_IN, called_at=None, call_count=0,
        started_at=None, ended_at=None, cancel_reason=None, transferred_from=None,
        transferred_to=None, wait_minutes=23, replayed=False,
    )
    return dataclasses.replace(visit, **changes)


def make_slip(visit: Visit | None = None, **kwargs: Any) -> Slip:
    options: dict[str, Any] = {"clinic_name": "City Clinic · Outpatients", "zone": ZONE,
                               "now": NOW}
    options.update(kwargs)
    return Slip.from_visit(visit or make_visit(), **options)


def field(text: str, label: str) -> str:
    """The value printed right of ``label`` (None-safe for the assertions' messages)."""
    for line in text.splitlines():
        if line.startswith(label + " "):
            return line[len(label):].strip()
    raise AssertionError(f"no line {label!r} in:\n{text}")


# --- the text slip -----------------------------------------------------------------------------


def test_text_slip_has_every_detail_in_the_clinic_zone_and_no_name_by_default() -> None:
    text = format_slip_text(make_slip())
    lines = text.splitlines()
    assert lines[0].strip() == "City Clinic · Outpatients"
    assert field(text, "Doctor") == "Dr Rao"
    assert field(text, "Room") == "Room 3"
    assert field(text, "Position in queue") == "4"
    # 09:42 + 23 min = 10:05; + max(5, 23 // 4) = 10:10, on five-minute marks.
    assert field(text, "Expected") == "10:05 - 10:10"
    assert field(text, "Checked in") == "2026-12-01 09:41"
    assert "Kumar" not in text and "Patient" not in text
    assert "Reprinted" not in text
    assert all(cell_len(line) <= WIDTH for line in lines), text


def test_text_slip_shows_the_name_only_when_asked_and_marks_reprints() -> None:
    text = format_slip_text(make_slip(show_name=True, reprint=True))
    assert field(text, "Patient") == "Kumar, Anil"
    assert field(text, "Reprinted") == "2026-12-01 09:42"
    assert field(text, "Checked in") == "2026-12-01 09:41"


def test_big_token_is_drawn_with_the_display_font_and_centred() -> None:
    text = format_slip_text(make_slip())
    big = render_big("D1-007", "#")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == big[0].strip())
    drawn = lines[start:start + len(big)]
    pad = (WIDTH - len(big[0])) // 2
    assert drawn == [(" " * pad + row).rstrip() for row in big]


def test_token_too_long_for_the_big_font_is_printed_plain_within_the_width() -> None:
    text = format_slip_text(make_slip(make_visit(token="ABCDEF-123")))
    assert "A B C D E F - 1 2 3" in text
    assert all(cell_len(line) <= WIDTH for line in text.splitlines())


def _qr_from_text(text: str) -> list[list[bool]]:
    """Read the half-block QR code back out of a slip into a module matrix."""
    rows = [line for line in text.splitlines() if set(line.strip()) and
            set(line.strip()) <= {"█", "▀", "▄", " "}]
    left = min(len(r) - len(r.lstrip()) for r in rows)
    width = max(len(r) for r in rows) - left
    matrix: list[list[bool]] = []
    for row in rows:
        cells = row[left:].ljust(width)
        matrix.append([ch in "█▀" for ch in cells])
        matrix.append([ch in "█▄" for ch in cells])
    return matrix


def test_qr_code_on_the_text_slip_encodes_the_token() -> None:
    text = format_slip_text(make_slip())
    printed = _qr_from_text(text)
    # An independent encoding of the token, quiet zone trimmed like the printed rows are.
    code = qrcode.QRCode(border=0, error_correction=ERROR_CORRECT_M)
    code.add_data("D1-007")
    code.make(fit=True)
    expected = [[bool(c) for c in row] for row in code.get_matrix()]
    size = len(expected)
    assert [row[:size] for row in printed[:size]] == expected
    assert not any(any(row) for row in printed[size:])  # only the quiet zone below
    # The three finder patterns (7x7, dark ring, dark 3x3 centre) are where a scanner looks.
    for top, left in ((0, 0), (0, size - 7), (size - 7, 0)):
        block = [row[left:left + 7] for row in printed[top:top + 7]]
        assert all(block[0]) and all(block[6]) and all(r[0] and r[6] for r in block)
        assert all(block[y][x] for y in range(2, 5) for x in range(2, 5))
        assert not any(block[1][1:6]) and not any(block[5][1:6])


def test_qr_text_is_half_blocks_two_modules_per_cell() -> None:
    rows = qr_text("D1-007")
    # Version 1 (21 modules) + two quiet modules a side = 25 wide, 13 rows of two.
    assert {len(r) for r in rows} == {25}
    assert len(rows) == 13


def test_hostile_text_never_reaches_the_printer() -> None:
    visit = make_visit(patient_name="Evil\x1b[2J\x1b]0;x\x07Name", room="R\u202e3",
                       doctor_name="Dr\x00Rao")
    slip = make_slip(visit, show_name=True, clinic_name="Clinic\x1b@")
    text = format_slip_text(slip)
    assert not re.search("[\x00-\x1f\x7f\u202e]", text.replace("\n", ""))
    assert "Evil\ufffd[2J" in text
    data = escpos_bytes(slip)
    assert b"\x1b[2J" not in data and b"\x1b]0;" not in data and b"Dr\x00Rao" not in data
    assert b"Clinic\x1b@" not in data


def test_ascii_slip_is_pure_ascii_without_the_qr_code() -> None:
    visit = make_visit(patient_name="Zoë Ōkubo 山田", room="Salle 3 – Est")
    text = format_slip_text(make_slip(visit, show_name=True), ascii_only=True)
    assert text.isascii()
    assert field(text, "Patient") == "Zoe Okubo ??"
    assert field(text, "Room") == "Salle 3 ? Est"
    assert "#####" in text  # the big token stays
    assert "█" not in text and "▀" not in text


def test_long_names_are_cut_to_the_width_with_an_ellipsis() -> None:
    visit = make_visit(patient_name="Venkatanarasimharajuvaripeta Subrahmanyam, Lakshmi",
                       doctor_name="山田" * 30)
    text = format_slip_text(make_slip(visit, show_name=True))
    assert all(cell_len(line) <= WIDTH for line in text.splitlines()), text
    assert field(text, "Patient").endswith("…")
    assert field(text, "Doctor").endswith("…")


def test_eta_range_given_explicitly_wins_and_is_shown_in_the_clinic_zone() -> None:
    eta_from = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
    text = format_slip_text(make_slip(eta_from=eta_from, eta_to=eta_from + timedelta(minutes=20)))
    assert field(text, "Expected") == "10:30 - 10:50"
    text = format_slip_text(make_slip(make_visit(wait_minutes=None)))
    assert "Expected" not in text


def test_eta_fields_on_a_visit_are_used_when_visits_carry_them() -> None:
    @dataclasses.dataclass(frozen=True)
    class FutureVisit:
        token: str | None = "D2-001"
        patient_name: str = "A"
        doctor_name: str = "Dr B"
        room: str | None = None
        position: int | None = None
        wait_minutes: int | None = 99
        checked_in_at: datetime | None = None
        eta_from: datetime | None = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
        eta_to: datetime | None = datetime(2026, 12, 1, 6, 15, tzinfo=UTC)

    slip = Slip.from_visit(FutureVisit(), clinic_name="C", zone=ZONE, now=NOW)
    text = format_slip_text(slip)
    assert field(text, "Expected") == "11:30 - 11:45"
    assert "Room" not in text and "Position" not in text
    assert field(text, "Checked in") == "2026-12-01 09:42"  # not checked in: printing time


@pytest.mark.parametrize(
    ("now", "wait", "expected"),
    [
        ("09:42", 23, ("10:05", "10:10")),
        ("09:42", 0, ("09:40", "09:50")),   # 09:42-09:47 on five-minute marks
        ("09:40", 0, ("09:40", "09:45")),
        ("09:40", 60, ("10:40", "10:55")),  # a quarter of the wait
    ],
)
def test_estimate_range_rounds_outwards_to_five_minutes(now: str, wait: int,
                                                        expected: tuple[str, str]) -> None:
    hours, minutes = map(int, now.split(":"))
    start, end = estimate_range(wait, datetime(2026, 12, 1, hours, minutes, 17, tzinfo=ZONE))
    assert (f"{start:%H:%M}", f"{end:%H:%M}") == expected


def test_a_booking_without_a_token_has_no_slip() -> None:
    with pytest.raises(ValueError, match="no slip"):
        make_slip(make_visit(token=None))


# --- ESC/POS -----------------------------------------------------------------------------------


def test_escpos_bytes_initialise_centre_enlarge_qr_and_cut_in_order() -> None:
    data = escpos_bytes(make_slip())
    assert data.startswith(ESC + b"@")  # ESC @: initialise
    centre = data.index(ESC + b"a\x01")  # ESC a 1: centred
    # GS ! n: the token in big text (width 4, height 4 -> n = 0x33), then the token itself.
    big = data.index(GS + b"!\x33" + ESC + b"a\x01D1-007\n")
    assert centre < big
    # GS ( k: QR model 2, module size 8, error correction M, store "D1-007", print it.
    model = data.index(GS + b"(k\x04\x00" + b"1A2\x00")
    size = data.index(GS + b"(k\x03\x00" + b"1C\x08")
    level = data.index(GS + b"(k\x03\x00" + b"1E1")
    store = data.index(GS + b"(k\x09\x00" + b"1P0D1-007")
    show = data.index(GS + b"(k\x03\x00" + b"1Q0")
    assert big < model < size < level < store < show
    # ESC d 6 (feed) and GS V 0 (full cut) end the slip.
    assert data.endswith(ESC + b"d\x06" + GS + b"V\x00")
    for text in (b"Dr Rao", b"Room 3", b"Position in queue  4", b"10:05 - 10:10",
                 b"2026-12-01 09:41"):
        assert text in data, text
    assert b"Kumar" not in data
    assert b"Kumar, Anil" in escpos_bytes(make_slip(show_name=True))


def test_escpos_token_size_shrinks_for_long_tokens() -> None:
    data = escpos_bytes(make_slip(make_visit(token="ABCDEFG-123")))  # 11 characters
    assert GS + b"!\x23" + ESC + b"a\x01ABCDEFG-123\n" in data  # width 3, height 4


# --- config -------------------------------------------------------------------------------------


SAMPLE = Path(__file__).resolve().parents[1] / "sample_config.toml"


def test_sample_config_documents_printer_slip_and_voice_keys(tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    for key in ("kind", "queue", "device", "timeout", "preview", "show_name", "ascii", "enabled",
                "command", "voice", "template"):
        assert re.search(rf"^# {key} = ", text, re.M), key
    uncommented = "\n".join(re.sub(r"^# ([a-z_]+ = .*)$", r"\1", line)
                            for line in text.splitlines())
    path = tmp_path / "config.toml"
    path.write_text(uncommented, encoding="utf-8")
    settings = load_settings(path)
    assert settings.printer.kind == "cups" and settings.printer.queue == ""
    assert settings.printer.device == "tcp://192.0.2.10:9100"
    assert settings.printer.timeout == 10 and settings.printer.preview is True
    assert settings.slip.show_name is False and settings.slip.ascii is False
    assert settings.voice.command == ("espeak-ng", "-v", "{voice}", "{text}")
    assert settings.voice.template == "Token {token}, please go to {room}"
    defaults = load_settings(SAMPLE)
    assert defaults.printer == settings.printer.__class__(device="")
    assert defaults.voice == settings.voice


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[printer]\nkind = 'laser'", "'printer.kind' = 'laser' is invalid; expected one of "
                                      '"cups", "escpos", "none"'),
        ("[printer]\nqueue = 'front desk'", "'printer.queue' = 'front desk' is invalid; "
                                            "expected a CUPS destination name"),
        ("[printer]\nkind = 'escpos'", "'printer.device' is required when printer.kind"),
        ("[printer]\nkind = 'escpos'\ndevice = 'http://x'", "'printer.device' = 'http://x' is "
                                                             "invalid; expected \"tcp://HOST:9100\""),
        ("[printer]\ndevice = 'tcp://p:70000'", "'printer.device' = 'tcp://p:70000' is invalid"),
        ("[printer]\ndevice = 'usb:4b8:202'", "'printer.device' = 'usb:4b8:202' is invalid"),
        ("[printer]\ntimeout = 0", "'printer.timeout' = 0 is invalid; expected a whole number "
                                   "from 1 to 120"),
        ("[printer]\nqeue = 'x'", "unknown key 'printer.qeue'"),
        ("[slip]\nshow_name = 'yes'", "'slip.show_name' = 'yes' is invalid; expected true or false"),
        ("[printer]\npreview = 'no'", "'printer.preview' = 'no' is invalid; expected true or false"),
    ],
)
def test_bad_printer_and_slip_values_give_one_line(tmp_path: Path, text: str, expected: str
                                                   ) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


@pytest.mark.parametrize(
    "device",
    ["tcp://printer.lan", "tcp://192.0.2.7:9100", "tcp://[2001:db8::7]:9100", "usb:04b8:0e15",
     "usb:04b8:0e15:81:03", "/dev/usb/lp0", "cups:", "cups:Thermal_1"],
)
def test_escpos_device_forms_are_accepted(tmp_path: Path, device: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[printer]\nkind = 'escpos'\ndevice = '{device}'\n", encoding="utf-8")
    assert load_settings(path).printer.device == device


def test_services_stay_ui_free_and_load_printer_libraries_only_when_printing() -> None:
    import subprocess
    import sys

    code = ("import sys, hms_tui.services.slips, hms_tui.services.printing, "
            "hms_tui.services.voice; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('textual', 'escpos', 'qrcode', 'PIL', 'usb')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_readme_and_sample_config_document_every_printing_and_voice_key() -> None:
    """The README's table of keys and sample_config.toml name every [printer], [slip] and
    [voice] setting there is (a key added to the config and not documented fails here)."""
    from hms_tui.config import PrinterSettings, SlipSettings, VoiceSettings

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    sample = (root / "sample_config.toml").read_text(encoding="utf-8")
    tabled = set(re.findall(r"^\| `((?:printer|slip|voice)\.\w+)` \|", readme, re.MULTILINE))
    keys = {f"{section}.{field.name}" for section, cls in
            (("printer", PrinterSettings), ("slip", SlipSettings), ("voice", VoiceSettings))
            for field in dataclasses.fields(cls)}
    assert tabled == keys
    for key in keys:
        assert re.search(rf"^# ?{key.split('.')[1]} = ", sample, re.MULTILINE), key


def test_printing_without_the_preview(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[printer]\nqueue = 'slips'\npreview = false\n", encoding="utf-8")
    printer = load_settings(path).printer
    assert (printer.kind, printer.queue, printer.preview) == ("cups", "slips", False)
