"""Config discovery and validation: every bad value gives one message naming file, key, form."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from hms_tui.config import find_config, load_settings
from hms_tui.domain.errors import ConfigError

SAMPLE = Path(__file__).resolve().parents[1] / "sample_config.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_sample_config_documents_every_setting_and_parses_uncommented(tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    assert load_settings(SAMPLE).database.url is None  # all commented: defaults
    uncommented = "\n".join(re.sub(r"^# ([a-z_]+ = .*)$", r"\1", line)
                            for line in text.splitlines())
    settings = load_settings(write(tmp_path, uncommented))
    raw = tomllib.loads(uncommented)
    assert raw["clinic"]["timezone"] == settings.clinic.timezone == "UTC"
    assert settings.database.ssl["sslmode"] == "verify-full"
    assert settings.display.doctors == ("D1", "D2", "D3")
    assert settings.terminal.label == "Reception desk 1"
    # Every key the parser knows appears in the sample.
    assert (settings.database.pool_size, settings.database.action_timeout) == (1, 15)
    assert settings.database.listen_url == "postgresql://asha@db1.clinic.lan:5432/hms"
    for key in ("url", "embedded_dir", "connect_timeout", "pool_size", "listen_url",
                "action_timeout", "sslmode", "sslrootcert", "sslcert",
                "sslkey", "name", "timezone", "recall_limit", "requeue_after", "skip_places",
                "consult_minutes", "calls_ahead", "label", "doctors", "names", "bell", "next_count",
                "announce_seconds"):
        assert f"# {key} = " in text, key


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[clinic]\ntimezone = 'Mars/Olympus'", "'clinic.timezone' = 'Mars/Olympus' is invalid; "
                                                "expected an IANA time zone name"),
        ("[clinic]\nrecall_limit = 'two'", "'clinic.recall_limit' = 'two' is invalid; "
                                           "expected a whole number from 0 to 10"),
        ("[clinic]\nrecall_limit = 11", "expected a whole number from 0 to 10"),
        ("[database]\nurl = 'mysql://x'", "'database.url' = 'mysql://x' is invalid; "
                                          "expected a libpq URL"),
        ("[database]\nurl = 'postgresql://u:secret@h/db'", "expected a URL without a password"),
        ("[database]\nsslmode = 'sometimes'", "'database.sslmode' = 'sometimes' is invalid"),
        ("[display]\nnames = 'full'", "expected 'hidden' or 'initials'"),
        ("[display]\nbell = 'yes'", "expected true or false"),
        ("[clinic]\ntimezon = 'UTC'", "unknown key 'clinic.timezon'"),
        ("[clinc]\ntimezone = 'UTC'", "unknown key 'clinc'"),
        ("clinic = 3", "'clinic' must be a table"),
        ("[clinic\n", "not valid TOML"),
        ("[database]\npool_size = 0", "'database.pool_size' = 0 is invalid; expected a whole "
                                      "number from 1 to 10"),
        ("[database]\npool_size = 11", "expected a whole number from 1 to 10"),
        ("[database]\naction_timeout = 1", "expected a whole number from 2 to 600"),
        ("[database]\nlisten_url = 'postgresql://u:pw@h/db'", "'database.listen_url'"),
    ],
)
def test_bad_config_names_file_key_and_form(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = write(tmp_path, "[terminal]\nlabel = 'explicit'")
    env_file = tmp_path / "env.toml"
    env_file.write_text("[terminal]\nlabel = 'from env'")
    xdg = tmp_path / "xdg"
    (xdg / "hms-tui").mkdir(parents=True)
    (xdg / "hms-tui" / "config.toml").write_text("[terminal]\nlabel = 'from xdg'")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.delenv("HMS_TUI_CONFIG", raising=False)
    assert load_settings().terminal.label == "from xdg"
    monkeypatch.setenv("HMS_TUI_CONFIG", str(env_file))
    assert load_settings().terminal.label == "from env"
    assert load_settings(explicit).terminal.label == "explicit"
    monkeypatch.setenv("HMS_TUI_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="config file not found"):
        find_config(None)


def test_database_url_from_environment_wins(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[database]\nurl = 'postgresql://desk@db.clinic/hms'")
    monkeypatch.delenv("HMS_DATABASE_URL", raising=False)
    assert load_settings(path).database_url == "postgresql://desk@db.clinic/hms"
    monkeypatch.setenv("HMS_DATABASE_URL", "postgresql://other@elsewhere/hms")
    assert load_settings(path).database_url == "postgresql://other@elsewhere/hms"


def test_ssl_settings_reach_every_connection(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from hms_tui.db.connection import Database

    path = write(tmp_path, "[database]\nurl = 'postgresql://desk@db.clinic/hms'\n"
                           "sslmode = 'verify-full'\nsslrootcert = '/etc/hms/ca.crt'\n")
    settings = load_settings(path)
    params = Database(settings.database.url or "", ssl=settings.database.ssl).params()
    assert params["sslmode"] == "verify-full"
    assert params["sslrootcert"] == "/etc/hms/ca.crt"
    assert params["host"] == "db.clinic"
    assert params["keepalives"] == "1"  # TCP gets keepalives; sockets do not need them


def test_listener_tls_follows_libpq_modes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """verify-ca/verify-full always verify (never silently CERT_NONE); only verify-full checks
    the host name; a missing root certificate is one clear error, as with libpq."""
    import asyncio
    import shutil
    import ssl
    import subprocess

    from hms_tui.db.connection import Database
    from hms_tui.db.libpq_target import connect_listener, ssl_for
    from hms_tui.domain.errors import DatabaseUnavailable

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a throwaway CA certificate")
    ca = tmp_path / "ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(ca), "-days", "1", "-subj", "/CN=hms-tui-test"],
                   check=True, capture_output=True)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ssl_for({"sslmode": "disable"}, tmp_path) is False
    assert ssl_for({"sslmode": "prefer", "sslrootcert": str(ca)}, tmp_path) == "prefer"
    required = ssl_for({"sslmode": "require"}, tmp_path)
    assert (required.verify_mode, required.check_hostname) == (ssl.CERT_NONE, False)
    for mode, hostname in (("verify-ca", False), ("verify-full", True)):
        ctx = ssl_for({"sslmode": mode, "sslrootcert": str(ca)}, tmp_path)
        assert (ctx.verify_mode, ctx.check_hostname) == (ssl.CERT_REQUIRED, hostname)
    db = Database("postgresql://desk@127.0.0.1:1/hms", ssl={"sslmode": "verify-full"})
    with pytest.raises(DatabaseUnavailable, match="cannot connect"):
        # no ~/.postgresql/root.crt under this HOME
        asyncio.run(connect_listener(db, application_name="test"))
