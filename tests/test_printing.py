"""Printing slips against real components: a private cupsd with its own queues (file and
AppSocket devices; ``tests/cups_server.py``), a fake ESC/POS network printer on loopback, and
device files."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hms_tui.config import PrinterSettings, SlipSettings
from hms_tui.domain.models import Priority, Status, Visit
from hms_tui.services.printing import PrintFailed, parse_device, print_slip
from hms_tui.services.slips import Slip, escpos_bytes, format_slip_text
from tests.cups_server import Cups, cups_settings

DLE_EOT_4 = b"\x10\x04\x04"  # the paper-sensor status query

def make_slip(**changes: object) -> Slip:
    visit = Visit(
        visit_id=42, token="D1-007", serial=7, position=4, status=Status.WAITING,
        priority=Priority.NORMAL, patient_id=3, patient_name="Zoë Kumar", mrn="MRN-0003",
        doctor="D1", doctor_name="Dr Rao", room="Room 3", business_date=date(2026, 12, 1),
        appointment_at=None, checked_in_at=datetime(2026, 12, 1, 4, 11, tzinfo=UTC),
        called_at=None, call_count=0, started_at=None, ended_at=None, cancel_reason=None,
        transferred_from=None, transferred_to=None, wait_minutes=23, replayed=False,
    )
    visit = dataclasses.replace(visit, **changes)
    return Slip.from_visit(visit, clinic_name="City Clinic", zone=ZoneInfo("Asia/Kolkata"),
                           show_name=True,
                           now=datetime(2026, 12, 1, 4, 12, tzinfo=UTC))


# --- CUPS: the slip arrives ---------------------------------------------------------------------


def test_text_slip_goes_through_cups_to_the_file_unchanged(cups_env: Cups) -> None:
    out = cups_env.file_queue("hms_text")
    slip = make_slip()
    message = print_slip(slip, cups_settings("hms_text"))
    assert message.startswith("slip printed on 'hms_text' (job hms_text-")
    # print_slip returns once CUPS has passed the job on, so the file is already complete.
    assert out.read_bytes().decode("utf-8") == format_slip_text(slip), cups_env.log()
    assert "Zoë Kumar" in out.read_text(encoding="utf-8")
    assert cups_env.pending_jobs("hms_text") == []


def test_ascii_slip_for_text_only_printers(cups_env: Cups) -> None:
    out = cups_env.file_queue("hms_ascii")
    print_slip(make_slip(), cups_settings("hms_ascii"), SlipSettings(ascii=True))
    data = out.read_bytes()
    assert data.isascii() and b"Zoe Kumar" in data and b"D1-007" in data


def test_empty_queue_means_the_default_destination(cups_env: Cups) -> None:
    out = cups_env.file_queue("hms_default")
    cups_env.run("lpadmin", "-d", "hms_default")
    try:
        message = print_slip(make_slip(), cups_settings(""))
    finally:
        cups_env.run("lpadmin", "-x", "hms_default")  # no default for the other tests
    assert "'hms_default'" in message
    assert "TOKEN" in out.read_text(encoding="utf-8")


class FakePrinter:
    """An ESC/POS network printer on loopback: answers the paper-sensor query with ``status``
    (or not at all when None) and records every byte it receives."""

    def __init__(self, status: bytes | None = b"\x12") -> None:
        self.status = status
        self.received = b""
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(20)
        self.port = self.listener.getsockname()[1]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            self.done.set()
            return
        self.connections += 1
        with conn:
            conn.settimeout(20)
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                self.received += chunk
                if DLE_EOT_4 in chunk and self.status is not None:
                    conn.sendall(self.status)
        self.done.set()

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def fake_printer() -> Iterator[FakePrinter]:
    printer = FakePrinter()
    yield printer
    printer.close()


def test_escpos_through_a_raw_cups_queue_reaches_the_printer_byte_for_byte(
        cups_env: Cups, fake_printer: FakePrinter) -> None:
    cups_env.run("lpadmin", "-p", "hms_thermal", "-E", "-v",
                 f"socket://127.0.0.1:{fake_printer.port}")
    slip = make_slip()
    settings = PrinterSettings(kind="escpos", device="cups:hms_thermal")
    message = print_slip(slip, settings)
    assert "'hms_thermal'" in message
    assert fake_printer.done.wait(10)
    assert fake_printer.received == escpos_bytes(slip)


# --- CUPS: every failure is one clear line -------------------------------------------------------


def assert_one_line(exc: pytest.ExceptionInfo[PrintFailed], *parts: str) -> str:
    message = str(exc.value)
    assert "\n" not in message and message.strip() == message
    for part in parts:
        assert part in message, message
    return message


def test_unknown_queue(cups_env: Cups) -> None:
    with pytest.raises(PrintFailed) as exc:
        print_slip(make_slip(), cups_settings("no_such_queue"))
    assert_one_line(exc, "printer queue 'no_such_queue' does not exist", "lpstat -e")


def test_no_default_destination(cups_env: Cups) -> None:
    with pytest.raises(PrintFailed) as exc:
        print_slip(make_slip(), cups_settings(""))
    assert_one_line(exc, "no default printer is set", "printer.queue")


def test_queue_rejecting_jobs(cups_env: Cups) -> None:
    out = cups_env.file_queue("hms_reject")
    cups_env.run("cupsreject", "-r", "paper jam", "hms_reject")
    with pytest.raises(PrintFailed) as exc:
        print_slip(make_slip(), cups_settings("hms_reject"))
    assert_one_line(exc, "'hms_reject' is not accepting jobs", "cupsaccept hms_reject")
    assert out.read_bytes() == b""


def test_stopped_printer_is_refused_before_submitting(cups_env: Cups) -> None:
    out = cups_env.file_queue("hms_stopped")
    cups_env.run("cupsdisable", "-r", "out of paper", "hms_stopped")
    with pytest.raises(PrintFailed) as exc:
        print_slip(make_slip(), cups_settings("hms_stopped"))
    assert_one_line(exc, "printer 'hms_stopped' is stopped (out of paper)",
                    "cupsenable hms_stopped")
    assert cups_env.pending_jobs("hms_stopped") == []  # nothing left to print later
    assert out.read_bytes() == b""


def test_printer_that_never_takes_the_slip_times_out_and_the_job_is_cancelled(
        cups_env: Cups) -> None:
    # A file: device that is not there is CUPS's view of a printer that is off or unplugged:
    # the job stays queued.
    out = cups_env.file_queue("hms_off", create=False)
    started = time.monotonic()
    with pytest.raises(PrintFailed) as exc:
        print_slip(make_slip(), cups_settings("hms_off", timeout=2))
    elapsed = time.monotonic() - started
    assert_one_line(exc, "printer 'hms_off'", "the slip was cancelled", "reprint")
    assert 1.9 <= elapsed < 5, elapsed
    assert cups_env.pending_jobs("hms_off") == []
    assert not out.exists()


def test_cups_not_running(cups_env: Cups, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
                          ) -> None:
    monkeypatch.setenv("CUPS_SERVER", str(tmp_path / "no-cupsd.sock"))
    with pytest.raises(PrintFailed) as exc:
        print_slip(make_slip(), cups_settings("hms_text"))
    assert_one_line(exc, "the print service (CUPS) is not running")


def test_no_lp_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrintFailed) as exc:
        print_slip(make_slip(), cups_settings("x"))
    assert_one_line(exc, "no 'lp' command on this machine")


def test_printing_off() -> None:
    with pytest.raises(PrintFailed) as exc:
        print_slip(make_slip(), PrinterSettings(kind="none"))
    assert_one_line(exc, "slip printing is off")


# --- ESC/POS straight to the printer ------------------------------------------------------------


def test_network_printer_asked_for_paper_then_sent_the_slip(fake_printer: FakePrinter) -> None:
    slip = make_slip()
    message = print_slip(slip, PrinterSettings(kind="escpos",
                                               device=f"tcp://127.0.0.1:{fake_printer.port}"))
    assert message == f"slip printed on tcp://127.0.0.1:{fake_printer.port}"
    assert fake_printer.done.wait(10)
    assert fake_printer.received == DLE_EOT_4 + escpos_bytes(slip)


def test_network_printer_out_of_paper_gets_no_slip() -> None:
    printer = FakePrinter(status=b"\x72")  # paper-end sensor bits set
    try:
        with pytest.raises(PrintFailed) as exc:
            print_slip(make_slip(), PrinterSettings(kind="escpos",
                                                    device=f"tcp://127.0.0.1:{printer.port}"))
        assert printer.done.wait(10)
    finally:
        printer.close()
    assert_one_line(exc, "is out of paper", "reprint")
    assert printer.received == DLE_EOT_4


def test_network_printer_that_does_not_report_status_still_prints() -> None:
    printer = FakePrinter(status=None)
    try:
        slip = make_slip()
        started = time.monotonic()
        print_slip(slip, PrinterSettings(kind="escpos", device=f"tcp://127.0.0.1:{printer.port}"))
        assert time.monotonic() - started < 3
        assert printer.done.wait(10)
    finally:
        printer.close()
    assert printer.received == DLE_EOT_4 + escpos_bytes(slip)


def test_network_printer_refusing_connections() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PrintFailed) as exc:
        print_slip(make_slip(), PrinterSettings(kind="escpos", device=f"tcp://127.0.0.1:{port}"))
    assert_one_line(exc, f"127.0.0.1:{port} refused the connection", "9100")


def test_device_file_receives_the_bytes(tmp_path: Path) -> None:
    device = tmp_path / "lp0"
    device.touch()
    slip = make_slip()
    assert print_slip(slip, PrinterSettings(kind="escpos", device=str(device))) == \
        f"slip printed on {device}"
    assert device.read_bytes() == escpos_bytes(slip)


def test_missing_device_file(tmp_path: Path) -> None:
    with pytest.raises(PrintFailed) as exc:
        print_slip(make_slip(), PrinterSettings(kind="escpos", device=str(tmp_path / "lp9")))
    assert_one_line(exc, f"no printer at {tmp_path / 'lp9'}", "plugged in")


def test_device_with_nobody_listening_is_not_ready(tmp_path: Path) -> None:
    fifo = tmp_path / "lp1"
    os.mkfifo(fifo)  # a FIFO without a reader: like a character device whose printer is off
    with pytest.raises(PrintFailed) as exc:
        print_slip(make_slip(), PrinterSettings(kind="escpos", device=str(fifo)))
    assert_one_line(exc, f"the printer at {fifo} is not ready")


def test_device_that_stops_taking_data_times_out(tmp_path: Path) -> None:
    fifo = tmp_path / "lp2"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opened, never read: a wedged printer
    try:
        big = make_slip(doctor_name="Dr " + "R" * 90)
        settings = PrinterSettings(kind="escpos", device=str(fifo), timeout=1)
        # Fill the pipe so the slip cannot fit, as a printer that stopped reading would.
        filler = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            while True:
                os.write(filler, b"\0" * 4096)
        except BlockingIOError:
            pass
        finally:
            os.close(filler)
        started = time.monotonic()
        with pytest.raises(PrintFailed) as exc:
            print_slip(big, settings)
        assert 0.9 <= time.monotonic() - started < 3
    finally:
        os.close(reader)
    assert_one_line(exc, "stopped taking data", "reprint")


def test_usb_printer_that_is_not_plugged_in() -> None:
    pytest.importorskip("usb.core", reason="pyusb is not installed")
    with pytest.raises(PrintFailed) as exc:
        print_slip(make_slip(), PrinterSettings(kind="escpos", device="usb:dead:beef", timeout=2))
    assert_one_line(exc, "usb:dead:beef")


def test_device_specs_parse() -> None:
    assert parse_device("tcp://printer.lan").port == 9100
    assert parse_device("tcp://[2001:db8::7]:9101").host == "2001:db8::7"
    usb = parse_device("usb:04b8:0e15:81:03")
    assert (usb.usb_vendor, usb.usb_product, usb.usb_in_ep, usb.usb_out_ep) == \
        (0x04B8, 0x0E15, 0x81, 0x03)
    assert parse_device("cups:").cups_queue == ""
    assert parse_device("/dev/usb/lp0").path == "/dev/usb/lp0"
    with pytest.raises(PrintFailed, match="not understood"):
        parse_device("lpt1")
