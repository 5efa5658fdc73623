"""A private CUPS for the tests: a cupsd of our own with its own queues, which the tests print
to and whose output files they read (shared by every test module that prints slips).

The cupsd runs in the foreground from a temporary directory with its own cupsd.conf and
cups-files.conf (``FileDevice Yes``), listening only on a Unix socket there; ``lp``/``lpstat``
reach it through ``CUPS_SERVER``. Run as root, cupsd runs its filters as user ``lp``, so the
directory is world-traversable; ``file:`` devices are opened by the scheduler itself and must
exist beforehand (CUPS opens them like a device node, without creating them).

The fixtures are registered for every test module by ``pytest_plugins`` in conftest.py;
``cups`` is one cupsd per test module, ``cups_env`` points this test's lp at it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hms_tui.config import PrinterSettings

CUPS_TOOLS = ("cupsd", "lpadmin", "lp", "lpstat", "cancel", "cupsenable", "cupsdisable",
              "cupsreject")
TEXT_ONLY = "drv:///cupsfilters.drv/textonly.ppd"  # Debian's "Generic Text-Only Printer"


def _tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None)


# --- a private CUPS ----------------------------------------------------------------------------


@dataclasses.dataclass
class Cups:
    base: Path
    server: str
    process: subprocess.Popen[bytes]

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        tool = _tool(argv[0])
        assert tool is not None, argv[0]
        env = {**os.environ, "CUPS_SERVER": self.server, "LC_ALL": "C"}
        return subprocess.run([tool, *argv[1:]], capture_output=True, text=True, env=env,
                              timeout=20, check=check)

    def file_queue(self, name: str, *, create: bool = True) -> Path:
        """A Generic Text-Only queue writing UTF-8 with no margins or paging to a file."""
        out = self.base / "out" / f"{name}.txt"
        if create:
            out.touch()
        self.run("lpadmin", "-p", name, "-E", "-v", f"file://{out}", "-m", TEXT_ONLY,
                 "-o", "PrinterEncoding=Custom.UTF-8", "-o", "page-left=0", "-o", "page-right=0",
                 "-o", "page-top=0", "-o", "page-bottom=0", "-o", "NewlineCharacters=LF",
                 "-o", "Pagination=False")
        return out

    @staticmethod
    def take(out: Path) -> str:
        """What a file queue printed since the last take, emptying the file: CUPS's file
        device writes each job from the start without truncating, so a shorter slip would
        leave the end of the one before."""
        text = out.read_text(encoding="utf-8")
        out.write_bytes(b"")
        return text

    def pending_jobs(self, queue: str) -> list[str]:
        result = self.run("lpstat", "-W", "not-completed", "-o", queue, check=False)
        return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]

    def log(self) -> str:
        path = self.base / "log" / "error_log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _wait_for_scheduler(cups: Cups) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if cups.process.poll() is not None:
            raise RuntimeError(f"cupsd exited with {cups.process.returncode}:\n{cups.log()}")
        if Path(cups.server).exists() and \
                "scheduler is running" in cups.run("lpstat", "-r", check=False).stdout:
            return
        time.sleep(0.1)
    raise RuntimeError(f"cupsd did not start within 15 s:\n{cups.log()}")


@pytest.fixture(scope="module")
def cups() -> Iterator[Cups]:
    """One private cupsd for the test module (skipped where CUPS is not installed)."""
    missing = [t for t in CUPS_TOOLS if _tool(t) is None]
    if missing:
        pytest.skip(f"CUPS is not installed here (missing {', '.join(missing)}; "
                    "apt-get install cups cups-bsd)")
    with private_cups() as instance:
        yield instance


@contextlib.contextmanager
def private_cups() -> Iterator[Cups]:
    """A cupsd of our own in a temporary directory, stopped and removed on exit (also usable
    outside pytest: ``python -m tests.cups_server`` runs one for trying the desk by hand)."""
    # Not under pytest's 0700 basetemp: when root, cupsd's filters run as 'lp' and must reach it.
    base = Path(tempfile.mkdtemp(prefix="hms-cups-"))
    base.chmod(0o755)
    for sub in ("etc/ppd", "spool/tmp", "cache", "state", "log", "out"):
        (base / sub).mkdir(parents=True)
    server = str(base / "cups.sock")
    (base / "etc" / "cupsd.conf").write_text(f"""\
Listen {server}
LogLevel debug
WebInterface No
Browsing No
DefaultAuthType None
MaxJobs 0
PreserveJobHistory Yes
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
""")
    system_group = "root" if os.geteuid() == 0 else grp.getgrgid(os.getegid()).gr_name
    (base / "etc" / "cups-files.conf").write_text(f"""\
ServerRoot {base}/etc
RequestRoot {base}/spool
TempDir {base}/spool/tmp
CacheDir {base}/cache
StateDir {base}/state
ErrorLog {base}/log/error_log
AccessLog {base}/log/access_log
PageLog {base}/log/page_log
FileDevice Yes
Sandboxing Relaxed
SystemGroup {system_group}
""")
    cupsd = _tool("cupsd")
    assert cupsd is not None
    process = subprocess.Popen(
        [cupsd, "-f", "-c", str(base / "etc" / "cupsd.conf"), "-s",
         str(base / "etc" / "cups-files.conf")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    instance = Cups(base=base, server=server, process=process)
    try:
        _wait_for_scheduler(instance)
        yield instance
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def cups_env(cups: Cups, monkeypatch: pytest.MonkeyPatch) -> Cups:
    """This test's lp and lpstat talk to the private cupsd."""
    monkeypatch.setenv("CUPS_SERVER", cups.server)
    return cups


def cups_settings(queue: str, timeout: int = 10) -> PrinterSettings:
    return PrinterSettings(kind="cups", queue=queue, timeout=timeout)


def wait_for_content(path: Path, seconds: float = 10) -> bytes:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = path.read_bytes()
        if data:
            return data
        time.sleep(0.05)
    return path.read_bytes()


if __name__ == "__main__":  # a private CUPS with a file queue 'slips', until Ctrl-C or SIGTERM
    import signal
    import sys

    # A background job ignores Ctrl-C's SIGINT: SIGTERM stops it cleanly too (cupsd stopped,
    # its directory removed).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with private_cups() as running:
        out = running.file_queue("slips")
        print(f"CUPS_SERVER={running.server}\nslips print to {out}", flush=True)
        try:
            running.process.wait()
        except KeyboardInterrupt:
            sys.exit(0)
