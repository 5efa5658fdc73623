"""hms_tui.db.libpq_target: a libpq conninfo (+ service file + PG* variables) resolved as libpq
does and translated into asyncpg.connect() arguments. Where libpq itself can tell, its answer
is the reference: PQconnectStart + PQconninfo report the options libpq settled on (only Unix
socket paths that do not exist and closed loopback ports are used, so nothing is reached)."""
# ruff: noqa: F811  (fixtures imported from tests.infra.fixtures are parameters here)

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from psycopg import pq

from hms_tui.db import libpq_target as lt
from hms_tui.db.libpq_target import (
    NoServerAvailable,
    TargetError,
    asyncpg_connect_kwargs,
    asyncpg_target,
    resolve,
)
from tests.infra.fixtures import no_leftover_servers, replica_set_factory  # noqa: F401
from tests.infra.pgcluster import ReplicaSet

COMPARED = ("host", "hostaddr", "port", "user", "dbname", "password", "passfile", "sslmode",
            "sslrootcert", "sslcert", "sslkey", "target_session_attrs", "application_name",
            "connect_timeout", "load_balance_hosts", "options", "service", "krbsrvname")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A clean libpq environment: no PG* variables, HOME and PGSYSCONFDIR in tmp_path.
    Returned dict is what the module is given; the same is put into os.environ for libpq."""
    for key in list(os.environ):
        if key.startswith("PG"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    sysconf = tmp_path / "etc"
    sysconf.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PGSYSCONFDIR", str(sysconf))
    return {"HOME": str(home), "PGSYSCONFDIR": str(sysconf)}


def setenv(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for key, value in values.items():
        env[key] = value
        monkeypatch.setenv(key, value)


def libpq_view(conninfo: str) -> dict[str, str | None]:
    """What libpq itself resolved ``conninfo`` to (with os.environ as it is now)."""
    conn = pq.PGconn.connect_start(conninfo.encode())
    try:
        return {o.keyword.decode(): (o.val.decode() if o.val is not None else None)
                for o in conn.info}
    finally:
        conn.finish()


def assert_as_libpq(conninfo: str, env: dict[str, str]) -> dict[str, str]:
    ours = resolve(conninfo, environ=env)
    theirs = libpq_view(conninfo)
    for key in COMPARED:
        assert ours.get(key) == (theirs.get(key) or None if key not in ours else
                                 theirs.get(key)), (key, ours.get(key), theirs.get(key))
    return ours


# -- hosts and ports -----------------------------------------------------------------------------


def test_multi_host_url_with_ports(env: dict[str, str]) -> None:
    target = asyncpg_target(
        "postgresql://desk:s%40cret@db1.clinic:5433,db2.clinic,[::1]:5434/hms"
        "?target_session_attrs=read-write&connect_timeout=3&application_name=desk-7", environ=env)
    assert [(e.host, e.port) for e in target.endpoints] == [
        ("db1.clinic", 5433), ("db2.clinic", 5432), ("::1", 5434)]
    kwargs = target.connect_kwargs()
    assert kwargs["host"] == ["db1.clinic", "db2.clinic", "::1"]
    assert kwargs["port"] == [5433, 5432, 5434]
    assert kwargs["user"] == "desk" and kwargs["password"] == "s@cret"
    assert kwargs["database"] == "hms"
    assert kwargs["target_session_attrs"] == "read-write"
    assert kwargs["timeout"] == 9.0  # libpq's 3 s per host; asyncpg's is for the whole try
    assert kwargs["server_settings"] == {"application_name": "desk-7"}
    assert target.describe() == "hms on db1.clinic:5433,db2.clinic:5432,::1:5434"
    assert "s@cret" not in target.describe()


def test_multi_host_url_resolves_as_libpq_does(env: dict[str, str]) -> None:
    url = ("postgresql://u@127.0.0.1:1,127.0.0.1:2/hms?target_session_attrs=read-write"
           "&load_balance_hosts=random")
    p = assert_as_libpq(url, env)
    assert p["host"] == "127.0.0.1,127.0.0.1" and p["port"] == "1,2"


def test_key_value_with_comma_lists(env: dict[str, str]) -> None:
    target = asyncpg_target("host=a,b,/run/pg port=5432,5433,6000 dbname=hms user=desk",
                            environ=env)
    assert [(e.address, e.port, e.is_socket) for e in target.endpoints] == [
        ("a", 5432, False), ("b", 5433, False), ("/run/pg", 6000, True)]
    one_port = asyncpg_target("host=a,b port=6543", environ=env)
    assert one_port.ports == [6543, 6543]  # one port is every host's
    empty_entries = asyncpg_target("host=a,,b port=1,,3", environ=env)
    assert [(e.host, e.port) for e in empty_entries.endpoints] == [
        ("a", 1), (lt.DEFAULT_SOCKET_DIR, 5432), ("b", 3)]  # empty: libpq's defaults
    by_address = asyncpg_target("host=db1,db2 hostaddr=10.0.0.1,10.0.0.2 port=5432",
                                environ=env)
    assert by_address.hosts == ["10.0.0.1", "10.0.0.2"]  # hostaddr is what is connected to
    with pytest.raises(TargetError, match="could not match 3 port numbers to 2 hosts"):
        asyncpg_target("host=a,b port=1,2,3", environ=env)
    with pytest.raises(TargetError, match="could not match 2 host names to 3 hostaddr"):
        asyncpg_target("host=a,b hostaddr=10.0.0.1,10.0.0.2,10.0.0.3", environ=env)
    with pytest.raises(TargetError, match='invalid port number: "70000"'):
        asyncpg_target("host=a port=70000", environ=env)
    with pytest.raises(TargetError, match="invalid connection string"):
        asyncpg_target("host=a nosuchkeyword=1", environ=env)


@pytest.mark.parametrize("conninfo", [
    "host=/nonexistent/a,/nonexistent/b port=1,2 dbname=hms user=desk",
    "host=/nonexistent/a port=7 application_name=x connect_timeout=1",
    "hostaddr=127.0.0.1,127.0.0.1 port=1,2 sslmode=disable",
    "postgresql:///hms?host=/nonexistent/s&port=4",
    "",
])
def test_key_value_resolves_as_libpq_does(conninfo: str, env: dict[str, str]) -> None:
    if not conninfo:
        os.environ["PGHOST"] = env["PGHOST"] = "/nonexistent/env"
    assert_as_libpq(conninfo, env)


# -- the environment -----------------------------------------------------------------------------


def test_pg_variables_only(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(env, monkeypatch, PGHOST="127.0.0.1,127.0.0.1", PGPORT="1,2", PGUSER="desk",
           PGDATABASE="hms", PGTARGETSESSIONATTRS="read-write", PGAPPNAME="from-env",
           PGCONNECT_TIMEOUT="4", PGPASSWORD="pw", PGSSLMODE="disable")
    p = assert_as_libpq("", env)
    assert p["user"] == "desk"
    kwargs = asyncpg_connect_kwargs("", environ=env)
    assert kwargs["host"] == ["127.0.0.1", "127.0.0.1"] and kwargs["port"] == [1, 2]
    assert kwargs["user"] == "desk" and kwargs["database"] == "hms"
    assert kwargs["password"] == "pw" and "passfile" not in kwargs
    assert kwargs["target_session_attrs"] == "read-write"
    assert kwargs["server_settings"] == {"application_name": "from-env"}
    assert kwargs["timeout"] == 8.0 and kwargs["ssl"] is False
    # What is written in the conninfo wins over the environment.
    written = asyncpg_connect_kwargs("host=/x port=9 user=other target_session_attrs=any",
                                     environ=env)
    assert (written["host"], written["port"], written["user"]) == (["/x"], [9], "other")
    assert written["target_session_attrs"] == "any"


def test_defaults_are_libpqs(env: dict[str, str]) -> None:
    p = resolve("", environ=env)
    import pwd

    me = pwd.getpwuid(os.geteuid()).pw_name
    assert p["user"] == me and p["dbname"] == me  # the euid's name, then the user
    assert p["port"] == "5432" and p["sslmode"] == "prefer"
    assert p["passfile"] == str(Path(env["HOME"]) / ".pgpass")
    target = asyncpg_target("", environ=env)
    assert target.endpoints == (lt.Endpoint(lt.DEFAULT_SOCKET_DIR, 5432),)
    assert target.connect_kwargs()["passfile"] == p["passfile"]
    assert target.connect_timeout is None  # libpq waits for ever unless told


def test_the_table_of_environment_variables_is_libpqs() -> None:
    theirs = {o.keyword.decode(): (o.envvar.decode() if o.envvar else None)
              for o in pq.Conninfo.get_defaults()}
    for keyword, var in lt.ENV_VARS.items():
        if keyword in theirs:
            assert theirs[keyword] == var, keyword
    compiled = {o.keyword.decode(): (o.compiled.decode() if o.compiled else None)
                for o in pq.Conninfo.get_defaults()}
    for keyword in ("port", "sslmode", "target_session_attrs", "load_balance_hosts",
                    "ssl_min_protocol_version"):
        assert compiled[keyword] == lt.DEFAULTS[keyword]


# -- service files -------------------------------------------------------------------------------


SERVICE = """\
# clinic database
[other]
host=/nonexistent/other

[clinic]
host=/nonexistent/a,/nonexistent/b
port=5433,5434
dbname=hms
user=desk
target_session_attrs=read-write
application_name=from-service
port=9999
[clinic]
dbname=ignored-second-group
"""


def test_service_file_named_by_pgservicefile(env: dict[str, str], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "services.conf"
    path.write_text(SERVICE)
    setenv(env, monkeypatch, PGSERVICEFILE=str(path), PGAPPNAME="env-loses-to-service",
           PGDATABASE="env-loses-too")
    p = assert_as_libpq("service=clinic", env)
    assert p["port"] == "5433,5434"  # the first value in the group wins
    assert p["dbname"] == "hms"  # service over environment
    assert p["application_name"] == "from-service"
    target = asyncpg_target("service=clinic user=explicit", environ=env)
    assert target.hosts == ["/nonexistent/a", "/nonexistent/b"]
    assert target.ports == [5433, 5434]
    assert target.user == "explicit"  # the conninfo over the service
    assert target.target_session_attrs == "read-write"
    # PGSERVICE names it just as well.
    setenv(env, monkeypatch, PGSERVICE="clinic")
    assert_as_libpq("", env)
    assert asyncpg_target("", environ=env).database == "hms"


def test_service_file_in_home_and_in_sysconfdir(env: dict[str, str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (Path(env["HOME"]) / ".pg_service.conf").write_text(
        "[home]\nhost=/nonexistent/home\nport=1\n")
    (Path(env["PGSYSCONFDIR"]) / "pg_service.conf").write_text(
        "[home]\nport=2\n[system]\nhost=/nonexistent/sys\nport=3\n")
    home = assert_as_libpq("service=home", env)
    assert (home["host"], home["port"]) == ("/nonexistent/home", "1")  # user file first
    system = assert_as_libpq("service=system", env)
    assert (system["host"], system["port"]) == ("/nonexistent/sys", "3")
    url = asyncpg_target("postgresql:///hms?service=system", environ=env)
    assert url.hosts == ["/nonexistent/sys"] and url.database == "hms"


def test_service_file_errors(env: dict[str, str], tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TargetError, match='definition of service "nope" not found'):
        asyncpg_target("service=nope", environ=env)
    setenv(env, monkeypatch, PGSERVICEFILE=str(tmp_path / "missing.conf"))
    with pytest.raises(TargetError, match=r'service file ".*missing\.conf" not found'):
        asyncpg_target("service=x", environ=env)
    bad = tmp_path / "bad.conf"
    setenv(env, monkeypatch, PGSERVICEFILE=str(bad))
    for body, message in (("[x]\nhost\n", "syntax error in service file .*line 2"),
                          ("[x]\nservice=y\n", "nested service specifications"),
                          ("[x]\nnosuch=1\n", "syntax error in service file .*line 2"),
                          ("[x]\nhost = a\n", "syntax error in service file .*line 2")):
        bad.write_text(body)
        with pytest.raises(TargetError, match=message):
            asyncpg_target("service=x", environ=env)
        with pytest.raises(Exception, match=message.split(" .*")[0]):  # libpq agrees
            conn = pq.PGconn.connect_start(b"service=x")
            try:
                if conn.status == pq.ConnStatus.BAD:
                    raise RuntimeError(conn.get_error_message())
            finally:
                conn.finish()


# -- what is sent --------------------------------------------------------------------------------


def test_only_application_name_is_sent_and_never_a_custom_setting(env: dict[str, str]) -> None:
    target = asyncpg_target("host=/x options='-c hms.terminal=desk-3 -c search_path=hms' "
                            "application_name=desk-3", environ=env)
    assert target.connect_kwargs()["server_settings"] == {"application_name": "desk-3"}
    assert any(i.startswith("options:") for i in target.ignored)
    fallback = asyncpg_target("host=/x", fallback_application_name="hms-tui", environ=env)
    assert fallback.application_name == "hms-tui"
    configured = asyncpg_target("host=/x application_name=mine",
                                fallback_application_name="hms-tui", environ=env)
    assert configured.application_name == "mine"
    forced = asyncpg_target("host=/x application_name=mine",
                            application_name="hms-tui-listener", environ=env)
    assert forced.application_name == "hms-tui-listener"


def test_pooled_turns_the_statement_cache_off(env: dict[str, str]) -> None:
    assert "statement_cache_size" not in asyncpg_connect_kwargs("host=/x", environ=env)
    assert asyncpg_connect_kwargs("host=/x", pooled=True, environ=env)[
        "statement_cache_size"] == 0


def test_timeouts_and_invalid_values(env: dict[str, str]) -> None:
    assert asyncpg_target("host=a connect_timeout=1", environ=env).connect_timeout == 2.0
    assert asyncpg_target("host=a connect_timeout=0", environ=env).connect_timeout is None
    assert asyncpg_target("host=a", connect_timeout=5, environ=env).connect_timeout == 5
    assert asyncpg_target("host=a connect_timeout=7", connect_timeout=5,
                          environ=env).connect_timeout == 7
    for conninfo, message in (("sslmode=sometimes", "invalid sslmode value"),
                              ("target_session_attrs=leader", "invalid target_session_attrs"),
                              ("connect_timeout=soon", "connect_timeout"),
                              ("channel_binding=require", "channel_binding=require"),
                              ("gssencmode=require", "gssencmode=require"),
                              ("requirepeer=postgres", "requirepeer")):
        with pytest.raises(TargetError, match=message):
            asyncpg_target(f"host=a {conninfo}", environ=env)


def test_keepalives_become_socket_options(env: dict[str, str]) -> None:
    target = asyncpg_target("host=a keepalives_idle=5 keepalives_interval=2 keepalives_count=3 "
                            "tcp_user_timeout=15000", environ=env)
    assert target.keepalives == {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 5, "TCP_KEEPINTVL": 2,
                                 "TCP_KEEPCNT": 3, "TCP_USER_TIMEOUT": 15000}
    assert asyncpg_target("host=a keepalives=0", environ=env).keepalives == {}


# -- TLS -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for localhost signed by it, and a client certificate."""
    d = tmp_path_factory.mktemp("certs")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    for name, cn in (("server", "localhost"), ("client", "postgres")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout",
            f"{name}.key", "-out", f"{name}.csr")
        ext = d / f"{name}.ext"
        ext.write_text("subjectAltName=DNS:localhost\n" if name == "server" else
                       "basicConstraints=CA:FALSE\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", "-extfile", str(ext))
    for key in d.glob("*.key"):
        key.chmod(0o600)
    return {p.stem + p.suffix.replace(".", "_"): p for p in d.iterdir()}


def ctx_of(conninfo: str, env: dict[str, str]) -> ssl.SSLContext:
    value = asyncpg_target(conninfo, environ=env).ssl
    assert isinstance(value, ssl.SSLContext)
    return value


def test_ssl_modes_have_libpqs_meanings(env: dict[str, str], certs: dict[str, Path]) -> None:
    assert asyncpg_target("host=a sslmode=disable", environ=env).ssl is False
    assert asyncpg_target("host=a sslmode=allow", environ=env).ssl == "allow"
    assert asyncpg_target("host=a sslmode=prefer", environ=env).ssl == "prefer"
    assert asyncpg_target("host=a", environ=env).ssl == "prefer"  # the default
    require = ctx_of("host=a sslmode=require", env)
    assert require.verify_mode == ssl.CERT_NONE and not require.check_hostname
    root = certs["ca_crt"]
    verify_ca = ctx_of(f"host=a sslmode=verify-ca sslrootcert={root}", env)
    assert verify_ca.verify_mode == ssl.CERT_REQUIRED and not verify_ca.check_hostname
    verify_full = ctx_of(f"host=a sslmode=verify-full sslrootcert={root}", env)
    assert verify_full.verify_mode == ssl.CERT_REQUIRED and verify_full.check_hostname
    assert verify_full.minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(TargetError, match=r"root certificate file .* does not exist"):
        asyncpg_target("host=a sslmode=verify-ca", environ=env)
    with pytest.raises(TargetError, match=r"root certificate file .*nope\.crt"):
        asyncpg_target("host=a sslmode=verify-full sslrootcert=/nope.crt", environ=env)
    # libpq: with a root certificate file present, require verifies like verify-ca.
    dot = Path(env["HOME"]) / ".postgresql"
    dot.mkdir()
    (dot / "root.crt").write_bytes(root.read_bytes())
    require_with_root = ctx_of("host=a sslmode=require", env)
    assert require_with_root.verify_mode == ssl.CERT_REQUIRED
    assert not require_with_root.check_hostname
    assert ctx_of("host=a sslmode=verify-ca", env).verify_mode == ssl.CERT_REQUIRED
    # sslrootcert=system: the system store, and verify-full unless said otherwise.
    system = asyncpg_target("host=a sslrootcert=system", environ=env)
    assert system.sslmode == "verify-full"
    assert isinstance(system.ssl, ssl.SSLContext) and system.ssl.check_hostname
    with pytest.raises(TargetError, match='weak sslmode "require"'):
        asyncpg_target("host=a sslrootcert=system sslmode=require", environ=env)
    # Overrides from the config file's [database.ssl] win over the conninfo.
    assert asyncpg_target("host=a sslmode=require", ssl_params={"sslmode": "disable"},
                          environ=env).ssl is False


def test_client_certificates(env: dict[str, str], certs: dict[str, Path]) -> None:
    ctx = ctx_of(f"host=a sslmode=require sslcert={certs['client_crt']} "
                 f"sslkey={certs['client_key']}", env)
    assert ctx.verify_mode == ssl.CERT_NONE  # (loading the pair did not raise)
    with pytest.raises(TargetError, match="certificate present, but not private key"):
        asyncpg_target(f"host=a sslmode=require sslcert={certs['client_crt']} "
                       "sslkey=/nope.key", environ=env)
    with pytest.raises(TargetError, match="sslcertmode=require"):
        asyncpg_target("host=a sslmode=require sslcertmode=require", environ=env)
    with pytest.raises(TargetError, match="invalid ssl_min_protocol_version"):
        asyncpg_target("host=a sslmode=require ssl_min_protocol_version=SSLv3", environ=env)


def test_ssl_modes_against_a_real_server(env: dict[str, str], certs: dict[str, Path],
                                         tmp_path: Path) -> None:
    """A server whose certificate names localhost, reached as 127.0.0.1: verify-ca passes
    (the CA signed it), verify-full fails (wrong name) unless reached as localhost, require
    passes without any root certificate, and a wrong CA fails verify-ca."""
    import asyncpg

    from tests.infra.fixtures import require_postgres
    from tests.infra.pgcluster import Cluster, _chown

    require_postgres()
    cluster = Cluster("tls")
    try:
        cluster.init()
        for name in ("server.crt", "server.key", "ca.crt"):
            target = cluster.data_dir / name
            target.write_bytes(certs[name.replace(".", "_")].read_bytes())
            target.chmod(0o600)
            _chown(target)
        cluster.settings = {"ssl": "on", "ssl_cert_file": "server.crt",
                            "ssl_key_file": "server.key"}
        cluster.write_local_conf()
        cluster.start()

        async def attempt(conninfo: str) -> str:
            try:
                conn = await asyncpg.connect(**asyncpg_connect_kwargs(conninfo, environ=env))
            except (ssl.SSLError, OSError, asyncpg.PostgresError) as exc:
                return f"failed: {type(exc).__name__}"
            try:
                return "tls" if await conn.fetchval(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") else "plain"
            finally:
                await conn.close()

        base = f"port={cluster.port} user=postgres dbname=postgres connect_timeout=5"
        root = certs["ca_crt"]
        results = {
            "require": asyncio.run(attempt(f"host=127.0.0.1 {base} sslmode=require")),
            "prefer": asyncio.run(attempt(f"host=127.0.0.1 {base} sslmode=prefer")),
            "disable": asyncio.run(attempt(f"host=127.0.0.1 {base} sslmode=disable")),
            "verify-ca": asyncio.run(attempt(
                f"host=127.0.0.1 {base} sslmode=verify-ca sslrootcert={root}")),
            "verify-full by address": asyncio.run(attempt(
                f"host=127.0.0.1 {base} sslmode=verify-full sslrootcert={root}")),
            "verify-full by name": asyncio.run(attempt(
                f"host=localhost {base} sslmode=verify-full sslrootcert={root}")),
            "verify-ca, wrong CA": asyncio.run(attempt(
                f"host=127.0.0.1 {base} sslmode=verify-ca sslrootcert={certs['server_crt']}")),
        }
        assert results == {
            "require": "tls", "prefer": "tls", "disable": "plain", "verify-ca": "tls",
            "verify-full by address": "failed: SSLCertVerificationError",
            "verify-full by name": "tls",
            "verify-ca, wrong CA": "failed: SSLCertVerificationError",
        }
    finally:
        cluster.cleanup()


# -- against servers -----------------------------------------------------------------------------


def test_two_hosts_first_a_standby_read_write_lands_on_the_primary(
    env: dict[str, str], replica_set_factory: Callable[..., ReplicaSet]
) -> None:
    import asyncpg

    rs = replica_set_factory(synchronous=False, standbys=1)
    url = rs.url("postgres", order=[rs.standby, rs.primary])  # standby first
    target = asyncpg_target(url, fallback_application_name="hms-tui", environ=env)
    assert target.hosts == ["127.0.0.1", "127.0.0.1"]
    assert target.ports == [rs.standby.port, rs.primary.port]

    async def where(kwargs_or_target: Any) -> tuple[int, bool]:
        if isinstance(kwargs_or_target, dict):
            conn = await asyncpg.connect(**kwargs_or_target)
        else:
            conn = await lt.connect(kwargs_or_target)
        try:
            port = int(await conn.fetchval("SELECT current_setting('port')"))
            return port, bool(await conn.fetchval("SELECT pg_is_in_recovery()"))
        finally:
            await conn.close()

    # asyncpg's own multi-host loop with our arguments, and our per-host loop: both skip it.
    assert asyncio.run(where(target.connect_kwargs())) == (rs.primary.port, False)
    assert asyncio.run(where(target)) == (rs.primary.port, False)
    standby_first = asyncpg_target(rs.url("postgres", order=[rs.standby, rs.primary],
                                          target_session_attrs="prefer-standby"), environ=env)
    assert asyncio.run(where(standby_first)) == (rs.standby.port, True)
    anything = asyncpg_target(rs.url("postgres", order=[rs.standby, rs.primary],
                                     target_session_attrs=None), environ=env)
    assert asyncio.run(where(anything)) == (rs.standby.port, True)

    # Only the standby: one clear line, flagged for the caller.
    only = asyncpg_target(rs.url("postgres", order=[rs.standby]), environ=env)
    with pytest.raises(NoServerAvailable) as caught:
        asyncio.run(where(only))
    assert caught.value.standby_only
    assert str(caught.value).startswith("this server is a read-only standby")
    assert "\n" not in str(caught.value)
    # A host that is down is skipped the same way.
    rs.standby.kill()
    assert asyncio.run(where(target)) == (rs.primary.port, False)
