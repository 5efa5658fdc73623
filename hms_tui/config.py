"""Settings: one frozen, validated object, read from one TOML file.

Discovery order (first hit wins): ``--config PATH``, then ``$HMS_TUI_CONFIG``, then
``$XDG_CONFIG_HOME/hms-tui/config.toml`` (``~/.config`` when XDG_CONFIG_HOME is unset).
No file at all is fine: every setting has a default. The database is chosen by
``$HMS_DATABASE_URL``, then ``database.url``; with neither, the embedded server is used.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hms_tui.db.connection import DEFAULT_ACTION_TIMEOUT, DEFAULT_POOL_SIZE, MAX_POOL_SIZE
from hms_tui.domain.errors import ConfigError

DATABASE_URL_ENV = "HMS_DATABASE_URL"
CONFIG_ENV = "HMS_TUI_CONFIG"
SSL_KEYS = ("sslmode", "sslrootcert", "sslcert", "sslkey")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class DatabaseSettings:
    url: str | None = None
    embedded_dir: Path | None = None
    connect_timeout: int = 5
    ssl: Mapping[str, str] = field(default_factory=dict)
    pool_size: int = DEFAULT_POOL_SIZE  # with the listener: 2 server connections per terminal
    listen_url: str | None = None  # the listener's own address, e.g. past a transaction pooler
    action_timeout: int = int(DEFAULT_ACTION_TIMEOUT)  # seconds a call may wait to be confirmed


@dataclass(frozen=True)
class ClinicSettings:
    """Clinic-wide rules. They live in the database (every terminal must agree);
    ``hms-tui db upgrade`` copies the keys present in the file into it."""

    name: str | None = None
    timezone: str | None = None
    recall_limit: int | None = None
    requeue_after: int | None = None
    skip_places: int | None = None
    consult_minutes: int | None = None
    statement_limit_s: int | None = None
    idle_limit_s: int | None = None
    wait_target_minutes: int | None = None
    close_as: str | None = None
    calls_ahead: int | None = None
    # [booking]
    booking_early_minutes: int | None = None
    booking_late_minutes: int | None = None
    queue_rule: str | None = None

    def changes(self) -> dict[str, object]:
        """The settings the file gives, by their names in the database (hms.settings)."""
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        given["clinic_name"] = given.pop("name")
        return {k: v for k, v in given.items() if v is not None}


@dataclass(frozen=True)
class TerminalSettings:
    label: str = ""


@dataclass(frozen=True)
class DisplaySettings:
    doctors: tuple[str, ...] = ()
    names: str = "hidden"  # "hidden" or "initials"
    bell: bool = True
    next_count: int = 4
    announce_seconds: int = 8


PRINTER_KINDS = ("cups", "escpos", "none")
DEFAULT_VOICE_COMMAND = ("espeak-ng", "-v", "{voice}", "{text}")
DEFAULT_VOICE_TEMPLATE = "Token {token}, please go to {room}"
VOICE_TEMPLATE_FIELDS = ("token", "room", "doctor")


@dataclass(frozen=True)
class PrinterSettings:
    """Where token slips go: ``cups`` (plain text through ``lp``), ``escpos`` (a thermal printer
    spoken to directly) or ``none``. ``queue`` empty means CUPS's default destination.
    ``preview``: reception shows the slip after a check-in or arrival and prints it on a key;
    False prints it at once."""

    kind: str = "cups"
    queue: str = ""
    device: str = ""
    timeout: int = 10
    preview: bool = True


@dataclass(frozen=True)
class SlipSettings:
    show_name: bool = False
    ascii: bool = False


@dataclass(frozen=True)
class VoiceSettings:
    """Spoken calls on the display. ``command`` is an argument list (no shell); ``{text}``,
    ``{voice}`` and ``{n}`` (the announcement's number) are replaced in each argument."""

    enabled: bool = False
    command: tuple[str, ...] = DEFAULT_VOICE_COMMAND
    voice: str = "en"
    template: str = DEFAULT_VOICE_TEMPLATE


@dataclass(frozen=True)
class Settings:
    source: Path | None = None
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    clinic: ClinicSettings = field(default_factory=ClinicSettings)
    terminal: TerminalSettings = field(default_factory=TerminalSettings)
    display: DisplaySettings = field(default_factory=DisplaySettings)
    printer: PrinterSettings = field(default_factory=PrinterSettings)
    slip: SlipSettings = field(default_factory=SlipSettings)
    voice: VoiceSettings = field(default_factory=VoiceSettings)

    @property
    def database_url(self) -> str | None:
        """The external database URL, or None for the embedded server."""
        return os.environ.get(DATABASE_URL_ENV) or self.database.url


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hms-tui" / "config.toml"


def state_dir() -> Path:
    """Where hms-tui keeps what it writes about itself (crash logs):
    ``$XDG_STATE_HOME/hms-tui`` (``~/.local/state/hms-tui`` when XDG_STATE_HOME is unset)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hms-tui"


def find_config(explicit: Path | None) -> Path | None:
    """Return the config file to read, or None when no file is configured or present."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"{explicit}: config file not found")
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found (from ${CONFIG_ENV})")
        return path
    default = default_config_path()
    return default if default.is_file() else None


def load_settings(explicit: Path | None = None) -> Settings:
    path = find_config(explicit)
    if path is None:
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return _parse(raw, path)


# --- parsing -------------------------------------------------------------------------------


class _Section:
    """Typed access to one TOML table; every error names file, key and expected form."""

    def __init__(self, raw: Mapping[str, Any], name: str, path: Path, known: set[str]) -> None:
        self.raw = raw
        self.name = name
        self.path = path
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                f"{path}: unknown key '{name}.{unknown[0]}' (known keys in [{name}]: "
                f"{', '.join(sorted(known))})"
            )

    def fail(self, key: str, expected: str) -> ConfigError:
        return ConfigError(
            f"{self.path}: '{self.name}.{key}' = {self.raw[key]!r} is invalid; expected {expected}"
        )

    def get(self, key: str, check: Callable[[Any], bool], expected: str) -> Any:
        if key not in self.raw:
            return None
        value = self.raw[key]
        if not check(value):
            raise self.fail(key, expected)
        return value

    def text(self, key: str, max_len: int = 200) -> str | None:
        return self.get(  # type: ignore[no-any-return]
            key,
            lambda v: isinstance(v, str) and 0 < len(v) <= max_len,
            f"a non-empty string of at most {max_len} characters",
        )

    def int_range(self, key: str, low: int, high: int) -> int | None:
        return self.get(  # type: ignore[no-any-return]
            key,
            lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high,
            f"a whole number from {low} to {high}",
        )

    def boolean(self, key: str) -> bool | None:
        return self.get(key, lambda v: isinstance(v, bool), "true or false")  # type: ignore[no-any-return]


def _table(raw: Mapping[str, Any], name: str, path: Path) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: '{name}' must be a table ([{name}])")
    return value


def _parse(raw: Mapping[str, Any], path: Path) -> Settings:
    sections = {"database", "clinic", "booking", "terminal", "display", "printer", "slip", "voice"}
    unknown = sorted(set(raw) - sections)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key '{unknown[0]}' (expected tables: {', '.join(sorted(sections))})"
        )

    db = _Section(
        _table(raw, "database", path),
        "database",
        path,
        {"url", "embedded_dir", "connect_timeout", "pool_size", "listen_url", "action_timeout",
         *SSL_KEYS},
    )
    url, listen_url = (db.get(
        key,
        lambda v: isinstance(v, str) and v.startswith(("postgresql://", "postgres://")),
        "a libpq URL such as 'postgresql://user@host:5432/hms' (no password: use .pgpass)",
    ) for key in ("url", "listen_url"))
    for key, value in (("url", url), ("listen_url", listen_url)):
        if value is not None and _url_has_password(value):
            raise db.fail(key, "a URL without a password (put it in ~/.pgpass or PGPASSWORD)")
    embedded_dir = db.text("embedded_dir", 4096)
    ssl: dict[str, str] = {}
    mode = db.get("sslmode", lambda v: v in SSL_MODES, "one of " + ", ".join(SSL_MODES))
    if mode is not None:
        ssl["sslmode"] = mode
    for key in ("sslrootcert", "sslcert", "sslkey"):
        value = db.text(key, 4096)
        if value is not None:
            ssl[key] = str(Path(value).expanduser())
    database = DatabaseSettings(
        url=url,
        embedded_dir=Path(embedded_dir).expanduser() if embedded_dir else None,
        connect_timeout=db.int_range("connect_timeout", 1, 120) or 5,
        ssl=ssl,
        pool_size=db.int_range("pool_size", 1, MAX_POOL_SIZE) or DEFAULT_POOL_SIZE,
        listen_url=listen_url,
        action_timeout=db.int_range("action_timeout", 2, 600) or int(DEFAULT_ACTION_TIMEOUT),
    )

    bo = _Section(_table(raw, "booking", path), "booking", path,
                  {"early_minutes", "late_minutes", "rule"})
    cl = _Section(
        _table(raw, "clinic", path),
        "clinic",
        path,
        {"name", "timezone", "recall_limit", "requeue_after", "skip_places", "consult_minutes",
         "statement_limit_s", "idle_limit_s", "wait_target_minutes", "close_as",
         "calls_ahead"},
    )
    timezone = cl.get(
        "timezone",
        lambda v: isinstance(v, str) and _is_timezone(v),
        "an IANA time zone name such as 'Asia/Kolkata' or 'Europe/Berlin'",
    )
    clinic = ClinicSettings(
        name=cl.text("name", 80),
        timezone=timezone,
        recall_limit=cl.int_range("recall_limit", 0, 10),
        requeue_after=cl.int_range("requeue_after", 0, 100),
        skip_places=cl.int_range("skip_places", 1, 100),
        consult_minutes=cl.int_range("consult_minutes", 1, 240),
        statement_limit_s=cl.int_range("statement_limit_s", 1, 600),
        idle_limit_s=cl.int_range("idle_limit_s", 1, 3600),
        wait_target_minutes=cl.int_range("wait_target_minutes", 1, 600),
        close_as=cl.get("close_as", lambda v: v in ("NO_SHOW", "CANCELLED"),
                        "'NO_SHOW' or 'CANCELLED'"),
        calls_ahead=cl.int_range("calls_ahead", 0, 10),
        booking_early_minutes=bo.int_range("early_minutes", 0, 240),
        booking_late_minutes=bo.int_range("late_minutes", 0, 240),
        queue_rule=bo.get("rule", lambda v: v in ("fair", "arrival"), "'fair' or 'arrival'"),
    )

    te = _Section(_table(raw, "terminal", path), "terminal", path, {"label"})
    terminal = TerminalSettings(label=te.text("label", 40) or "")

    di = _Section(
        _table(raw, "display", path),
        "display",
        path,
        {"doctors", "names", "bell", "next_count", "announce_seconds"},
    )
    doctors = di.get(
        "doctors",
        lambda v: isinstance(v, list) and all(isinstance(d, str) and d for d in v),
        "a list of doctor codes such as [\"D1\", \"D2\"]",
    )
    names = di.get("names", lambda v: v in ("hidden", "initials"), "'hidden' or 'initials'")
    bell = di.boolean("bell")
    display = DisplaySettings(
        doctors=tuple(d.upper() for d in doctors or ()),
        names=names or "hidden",
        bell=True if bell is None else bell,
        next_count=_default(di.int_range("next_count", 0, 10), 4),
        announce_seconds=di.int_range("announce_seconds", 1, 120) or 8,
    )
    printer, slip, voice = _parse_printing_and_voice(raw, path)
    return Settings(source=path, database=database, clinic=clinic, terminal=terminal,
                    display=display, printer=printer, slip=slip, voice=voice)


# CUPS destination names: printable, no spaces, '/', '\', quotes or '#' (at most 127).
CUPS_QUEUE_FORM = re.compile(r"[^\s\x00-\x1f\x7f/\\'\"#]{1,127}")
# ESC/POS devices (printing.parse_device reads the same forms).
ESCPOS_DEVICE_FORM = re.compile(
    r"tcp://(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?"
    r"|usb:(?P<vid>[0-9A-Fa-f]{4}):(?P<pid>[0-9A-Fa-f]{4})"
    r"(?::(?P<in_ep>[0-9A-Fa-f]{1,2}):(?P<out_ep>[0-9A-Fa-f]{1,2}))?"
    r"|cups:(?P<queue>[^\s\x00-\x1f\x7f/\\'\"#]{0,127})"
    r"|(?P<path>/[^\x00-\x1f\x7f]+)"
)


def _is_escpos_device(value: object) -> bool:
    if not isinstance(value, str):
        return False
    match = ESCPOS_DEVICE_FORM.fullmatch(value)
    return match is not None and 0 < int(match["port"] or 9100) <= 65535


_VOICE_NAME = re.compile(r"[A-Za-z0-9_+.\-]{1,40}")
_TEMPLATE_FIELD = re.compile(r"\{([^{}]*)\}")


def _parse_printing_and_voice(
    raw: Mapping[str, Any], path: Path
) -> tuple[PrinterSettings, SlipSettings, VoiceSettings]:
    """[printer], [slip] and [voice]: token slips and spoken calls."""
    pr = _Section(_table(raw, "printer", path), "printer", path,
                  {"kind", "queue", "device", "timeout", "preview"})
    kind = pr.get("kind", lambda v: v in PRINTER_KINDS,
                  "one of " + ", ".join(f'"{k}"' for k in PRINTER_KINDS))
    queue = pr.get("queue",
                   lambda v: isinstance(v, str)
                   and (v == "" or CUPS_QUEUE_FORM.fullmatch(v) is not None),
                   "a CUPS destination name (no spaces, '/' or '#'), or \"\" for the default")
    device = pr.get(
        "device", _is_escpos_device,
        "\"tcp://HOST:9100\", \"usb:VENDOR:PRODUCT\" (hex), \"cups:QUEUE\" or a device path "
        "such as \"/dev/usb/lp0\"",
    )
    if (kind or "cups") == "escpos" and not device:
        raise ConfigError(f"{path}: 'printer.device' is required when printer.kind = \"escpos\" "
                          "(e.g. \"tcp://192.0.2.10:9100\" or \"/dev/usb/lp0\")")
    printer = PrinterSettings(kind=kind or "cups", queue=queue or "", device=device or "",
                              timeout=pr.int_range("timeout", 1, 120) or 10,
                              preview=pr.boolean("preview") is not False)

    sl = _Section(_table(raw, "slip", path), "slip", path, {"show_name", "ascii"})
    slip = SlipSettings(show_name=bool(sl.boolean("show_name")), ascii=bool(sl.boolean("ascii")))

    vo = _Section(_table(raw, "voice", path), "voice", path,
                  {"enabled", "command", "voice", "template"})
    command = vo.get(
        "command",
        lambda v: isinstance(v, list) and len(v) > 0 and all(isinstance(a, str) for a in v)
        and v[0] != "" and any("{text}" in a for a in v),
        'a list of arguments with "{text}" in one, such as ["espeak-ng", "-v", "{voice}", "{text}"]',
    )
    template = vo.get(
        "template",
        lambda v: isinstance(v, str) and 0 < len(v) <= 200 and "{token}" in v
        and set(_TEMPLATE_FIELD.findall(v)) <= set(VOICE_TEMPLATE_FIELDS),
        "text of at most 200 characters with {token}, and optionally {room} and {doctor}",
    )
    voice_name = vo.get("voice", lambda v: isinstance(v, str) and _VOICE_NAME.fullmatch(v) is not None,
                        "a voice name such as \"en\", \"en-us\", \"hi\" or \"en+f3\"")
    voice = VoiceSettings(
        enabled=bool(vo.boolean("enabled")),
        command=tuple(command) if command else DEFAULT_VOICE_COMMAND,
        voice=voice_name or "en",
        template=template or DEFAULT_VOICE_TEMPLATE,
    )
    return printer, slip, voice


def _default(value: int | None, default: int) -> int:
    return default if value is None else value


def _url_has_password(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


def _is_timezone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # Without any zone data on this machine, leave the check to the database.
        from zoneinfo import available_timezones

        return not available_timezones()
    return True
