"""Sending a slip to a printer: CUPS (``lp``) or ESC/POS straight to a thermal printer.

``print_slip`` blocks for at most ``PrinterSettings.timeout`` seconds and either returns a
one-line confirmation or raises ``PrintFailed`` with one line saying what is wrong and what to
do. Run it off the UI loop (a worker thread): the desk never waits on a printer.

CUPS: the text goes to ``lp -d QUEUE`` on stdin; then the job is watched until CUPS has handed
it to the printer. A printer that is off, unplugged or out of paper keeps the job queued: after
the timeout the job is cancelled (so a reprint does not produce two slips later) and the message
quotes what CUPS says about the printer. A stopped queue is refused before submitting.

ESC/POS: ``tcp://HOST:PORT`` (a raw socket, as the printers' port 9100 expects; the paper
sensor is asked first), ``usb:VENDOR:PRODUCT[:IN:OUT]`` (python-escpos over pyusb), a device
file such as ``/dev/usb/lp0`` (non-blocking writes, so a wedged printer times out), or
``cups:QUEUE`` (a raw CUPS queue: ``lp -o raw``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from hms_tui.config import ESCPOS_DEVICE_FORM, PrinterSettings, SlipSettings
from hms_tui.domain.errors import HmsError
from hms_tui.services.slips import Slip, escpos_bytes, format_slip_text

__all__ = [
    "EscposDevice",
    "PrintFailed",
    "PrinterSettings",
    "lp_print",
    "parse_device",
    "print_slip",
    "send_escpos",
]

POLL_SECONDS = 0.2
# How long a network printer gets to answer the paper-sensor query before we print anyway
# (some printers never answer it).
STATUS_SECONDS = 1.0
_JOB_ID = re.compile(r"request id is (\S+)")


class PrintFailed(HmsError):
    """Nothing (more) will come out of the printer; ``str()`` says why and what to do."""

    exit_code = 1


@dataclass(frozen=True)
class EscposDevice:
    """A parsed ``printer.device``: exactly one of the groups is set."""

    host: str | None = None
    port: int = 9100
    usb_vendor: int | None = None
    usb_product: int | None = None
    usb_in_ep: int = 0x82
    usb_out_ep: int = 0x01
    cups_queue: str | None = None
    path: str | None = None

    def describe(self) -> str:
        if self.host is not None:
            return f"tcp://{self.host}:{self.port}"
        if self.usb_vendor is not None:
            return f"usb:{self.usb_vendor:04x}:{self.usb_product or 0:04x}"
        if self.cups_queue is not None:
            return f"cups:{self.cups_queue}"
        return self.path or "?"


def parse_device(spec: str) -> EscposDevice:
    """``printer.device`` in one of the forms the config accepts."""
    match = ESCPOS_DEVICE_FORM.fullmatch(spec.strip())
    if match is None:
        raise PrintFailed(f"printer device {spec!r} is not understood; use tcp://HOST:9100, "
                          "usb:VENDOR:PRODUCT, cups:QUEUE or a device path such as /dev/usb/lp0")
    if match["host"] is not None:
        port = int(match["port"] or 9100)
        if not 0 < port <= 65535:
            raise PrintFailed(f"printer device {spec!r}: port {port} is out of range")
        return EscposDevice(host=match["host"].strip("[]"), port=port)
    if match["vid"] is not None:
        return EscposDevice(
            usb_vendor=int(match["vid"], 16), usb_product=int(match["pid"], 16),
            usb_in_ep=int(match["in_ep"], 16) if match["in_ep"] else 0x82,
            usb_out_ep=int(match["out_ep"], 16) if match["out_ep"] else 0x01,
        )
    if match["queue"] is not None:
        return EscposDevice(cups_queue=match["queue"])
    return EscposDevice(path=match["path"])


def print_slip(slip: Slip, settings: PrinterSettings, slip_settings: SlipSettings | None = None
               ) -> str:
    """Print ``slip`` as configured; returns a one-line confirmation, raises ``PrintFailed``."""
    deadline = time.monotonic() + settings.timeout
    if settings.kind == "none":
        raise PrintFailed('slip printing is off (printer.kind = "none" in the config)')
    if settings.kind == "cups":
        ascii_only = slip_settings.ascii if slip_settings else False
        text = format_slip_text(slip, ascii_only=ascii_only)
        return lp_print(text.encode("utf-8"), settings.queue or None, deadline=deadline,
                        title=f"token {slip.token}")
    if settings.kind == "escpos":
        return send_escpos(escpos_bytes(slip), parse_device(settings.device), deadline=deadline)
    raise PrintFailed(f"printer.kind {settings.kind!r} is unknown; use cups, escpos or none")


# --- CUPS ------------------------------------------------------------------------------------


def _remaining(deadline: float, floor: float = 0.05) -> float:
    return max(floor, deadline - time.monotonic())


def _cups_env() -> dict[str, str]:
    """lp and lpstat in the C locale: their messages are parsed."""
    return {**os.environ, "LC_ALL": "C", "LANG": "C"}


def _run(argv: Sequence[str], deadline: float, data: bytes | None = None
         ) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            # A CUPS command gets a second even at the deadline, so that the last look at a
            # job (and the decision to cancel it) is not lost to a busy machine.
            list(argv), input=data, capture_output=True, timeout=_remaining(deadline, 1.0),
            check=False, env=_cups_env(),
        )
    except subprocess.TimeoutExpired:
        raise PrintFailed(f"the print service did not answer '{argv[0]}' in time; "
                          "is CUPS running (systemctl status cups)?") from None
    except OSError as exc:
        raise PrintFailed(f"cannot run {argv[0]}: {exc.strerror}") from None
    return subprocess.CompletedProcess(
        result.args, result.returncode,
        result.stdout.decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace"),
    )


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PrintFailed(f"no '{name}' command on this machine; install the CUPS client "
                          "(apt-get install cups-client) or set printer.kind in the config")
    return path


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _lp_error(stderr: str, queue: str | None) -> PrintFailed:
    """lp's complaint as one line saying what to do."""
    said = _first_line(stderr).removeprefix("lp: ").removeprefix("Error - ")
    lowered = said.lower()
    name = f"'{queue}'" if queue else "the default printer"
    if "does not exist" in lowered or "invalid destination" in lowered or "not found" in lowered:
        return PrintFailed(f"printer queue {name} does not exist; check printer.queue "
                           "(lpstat -e lists the queues)")
    if "no default destination" in lowered:
        return PrintFailed("no default printer is set; set printer.queue in the config "
                           "(or lpoptions -d QUEUE)")
    if "not accepting" in lowered:
        return PrintFailed(f"printer queue {name} is not accepting jobs; fix the printer, then "
                           f"cupsaccept {queue or 'QUEUE'}")
    return PrintFailed(f"lp refused the slip for {name}: {said or 'no reason given'}")


def _default_queue(deadline: float) -> str | None:
    result = _run([_tool("lpstat"), "-d"], deadline)
    match = re.search(r"system default destination: (\S+)", result.stdout)
    return match.group(1) if match else None


@dataclass(frozen=True)
class _QueueState:
    exists: bool
    disabled: bool
    reason: str
    job_pending: bool


def _queue_state(queue: str, job_id: str | None, deadline: float) -> _QueueState:
    """``lpstat -p QUEUE [-o QUEUE]``: is the queue there, stopped, and is our job still in it?"""
    argv = [_tool("lpstat"), "-p", queue]
    if job_id:
        argv += ["-W", "not-completed", "-o", queue]
    result = _run(argv, deadline)
    lines = result.stdout.splitlines()
    if "invalid destination" in result.stderr.lower() or not any(
            line.startswith(f"printer {queue} ") for line in lines):
        return _QueueState(False, False, _first_line(result.stderr), False)
    head = next(i for i, line in enumerate(lines) if line.startswith(f"printer {queue} "))
    disabled = " disabled since " in lines[head]
    reasons = []
    for line in lines[head + 1:]:
        if not line.startswith(("\t", " ")):
            break
        reasons.append(line.strip())
    pending = bool(job_id) and any(line.split(" ", 1)[0] == job_id for line in lines)
    return _QueueState(True, disabled, "; ".join(r for r in reasons if r), pending)


def lp_print(data: bytes, queue: str | None, *, deadline: float, raw: bool = False,
             title: str = "hms-tui") -> str:
    """Submit ``data`` with ``lp`` (``-o raw`` for printer-ready bytes such as ESC/POS) and wait
    until CUPS has passed it to the printer. ``queue`` None is the system default."""
    lp = _tool("lp")
    if "scheduler is running" not in _run([_tool("lpstat"), "-r"], deadline).stdout:
        raise PrintFailed("the print service (CUPS) is not running; start it "
                          "(systemctl start cups) or check CUPS_SERVER")
    name = queue or _default_queue(deadline)
    if name is None:
        raise PrintFailed("no default printer is set; set printer.queue in the config "
                          "(or lpoptions -d QUEUE)")
    before = _queue_state(name, None, deadline)
    if not before.exists:
        raise _lp_error(before.reason or "does not exist", name)
    if before.disabled:
        raise PrintFailed(f"printer '{name}' is stopped ({before.reason or 'no reason given'}); "
                          f"fix it, cupsenable {name}, then reprint")
    argv = [lp, "-d", name, "-t", title]
    if raw:
        argv += ["-o", "raw"]
    result = _run(argv, deadline, data)
    if result.returncode != 0:
        raise _lp_error(result.stderr, name)
    match = _JOB_ID.search(result.stdout)
    if match is None:  # an lp that does not say its job id: nothing to watch
        return f"slip sent to '{name}' ({_first_line(result.stdout) or 'lp accepted it'})"
    job_id = match.group(1)
    while True:
        try:
            state = _queue_state(name, job_id, deadline)
        except PrintFailed:
            _cancel(job_id)  # we cannot tell whether it will print: make sure it does not
            raise
        if not state.job_pending:
            return f"slip printed on '{name}' (job {job_id})"
        if state.disabled or time.monotonic() >= deadline:
            _cancel(job_id)
            why = "stopped" if state.disabled else "did not take the slip in time"
            detail = f": {state.reason}" if state.reason else " (off, unplugged or out of paper?)"
            raise PrintFailed(f"printer '{name}' {why}{detail}; the slip was cancelled, "
                              "check the printer and reprint")
        time.sleep(min(POLL_SECONDS, _remaining(deadline)))


def _cancel(job_id: str) -> None:
    """Withdraw a job that missed its time, so it does not print after a reprint."""
    cancel = shutil.which("cancel")
    if cancel is None:
        return
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        subprocess.run([cancel, job_id], capture_output=True, timeout=5, check=False,
                       env=_cups_env())


# --- ESC/POS ---------------------------------------------------------------------------------


def send_escpos(data: bytes, device: EscposDevice, *, deadline: float) -> str:
    """Send printer-ready ESC/POS bytes to ``device`` before ``deadline``."""
    where = device.describe()
    if device.cups_queue is not None:
        return lp_print(data, device.cups_queue or None, deadline=deadline, raw=True,
                        title="hms-tui slip")
    if device.host is not None:
        _send_tcp(data, device.host, device.port, deadline)
    elif device.usb_vendor is not None:
        _send_usb(data, device, deadline)
    elif device.path is not None:
        _send_file(data, device.path, deadline)
    return f"slip printed on {where}"


def _send_tcp(data: bytes, host: str, port: int, deadline: float) -> None:
    from escpos.constants import RT_MASK_NOPAPER, RT_STATUS_PAPER

    where = f"{host}:{port}"
    try:
        conn = socket.create_connection((host, port), timeout=_remaining(deadline))
    except TimeoutError:
        raise PrintFailed(f"thermal printer at {where} did not answer in time; is it switched "
                          "on and on the network?") from None
    except ConnectionRefusedError:
        raise PrintFailed(f"thermal printer at {where} refused the connection; is it switched "
                          "on, and is the port right (usually 9100)?") from None
    except OSError as exc:
        raise PrintFailed(f"cannot reach thermal printer at {where}: "
                          f"{exc.strerror or exc}") from None
    with conn:
        try:
            conn.sendall(RT_STATUS_PAPER)  # DLE EOT 4: the paper sensor
            conn.settimeout(min(STATUS_SECONDS, _remaining(deadline)))
            try:
                status = conn.recv(1)
            except TimeoutError:
                status = b""  # this printer does not report status: print anyway
            if status and status[0] & RT_MASK_NOPAPER == RT_MASK_NOPAPER:
                raise PrintFailed(f"thermal printer at {where} is out of paper; load a roll "
                                  "and reprint")
            conn.settimeout(_remaining(deadline))
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except TimeoutError:
            raise PrintFailed(f"thermal printer at {where} stopped taking data; check it "
                              "(paper, cover) and reprint") from None
        except OSError as exc:
            raise PrintFailed(f"thermal printer at {where} dropped the connection "
                              f"({exc.strerror or exc}); check it and reprint") from None


def _send_file(data: bytes, path: str, deadline: float) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise PrintFailed(f"no printer at {path}; is it plugged in and switched on?") from None
    except PermissionError:
        raise PrintFailed(f"no permission to write to {path}; add this user to the group that "
                          "owns it (usually 'lp') and log in again") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise PrintFailed(f"the printer at {path} is not ready (off or disconnected); "
                              "check it and reprint") from None
        raise PrintFailed(f"cannot open printer {path}: {exc.strerror}") from None
    try:
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                written = 0
            view = view[written:]
            if view:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
                    raise PrintFailed(f"the printer at {path} stopped taking data (out of "
                                      "paper or offline?); check it and reprint")
    except OSError as exc:
        raise PrintFailed(f"writing to printer {path} failed: {exc.strerror}; check it and "
                          "reprint") from None
    finally:
        os.close(fd)


def _send_usb(data: bytes, device: EscposDevice, deadline: float) -> None:
    from escpos.exceptions import DeviceNotFoundError
    from escpos.printer import Usb

    where = device.describe()
    if not Usb.is_usable():
        raise PrintFailed(f"printing to {where} needs pyusb (pip install pyusb) and libusb; "
                          "or use the device file (/dev/usb/lp0)")
    timeout_ms = int(_remaining(deadline) * 1000)
    printer = Usb(device.usb_vendor, device.usb_product, timeout=timeout_ms,
                  in_ep=device.usb_in_ep, out_ep=device.usb_out_ep)
    try:
        printer.open()
        printer._raw(data)
    except DeviceNotFoundError:
        raise PrintFailed(f"no USB printer {where} found; is it plugged in and switched "
                          "on?") from None
    except (OSError, ValueError) as exc:  # usb.core.USBError is an OSError
        raise PrintFailed(f"USB printer {where} failed: {exc}; check it and reprint") from None
    finally:
        with contextlib.suppress(OSError, ValueError):
            printer.close()
