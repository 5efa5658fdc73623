"""Where to connect, as libpq would decide, in the form ``asyncpg.connect()`` takes.

The desk connects through libpq (psycopg), which resolves a conninfo in a fixed order: the
conninfo itself (URL or key=value), then the service file entry it names (``service=`` or
PGSERVICE; PGSERVICEFILE or ~/.pg_service.conf, then PGSYSCONFDIR/pg_service.conf), then the
PG* environment variables, then compiled-in defaults; multi-host lists in ``host``,
``hostaddr`` and ``port`` are split per host. The listener connects through asyncpg, which
has its own, different rules. This module applies libpq's rules once and hands asyncpg fully
resolved arguments, so both drivers reach the same servers:

    target = asyncpg_target(conninfo, fallback_application_name="hms-tui", pooled=False)
    conn = await connect(target)                      # each host in turn, like libpq
    # or: await asyncpg.connect(**target.connect_kwargs())

What is translated (everything else asyncpg cannot do is refused with one line, or, when it
is harmless, listed in ``AsyncpgTarget.ignored``):

* hosts and ports: lists, one entry per host (``hostaddr`` is the address connected to);
  an empty host is libpq's default socket directory;
* user, dbname (default: the user), password, or the passfile to read it from;
* ``target_session_attrs`` (any, read-write, read-only, primary, standby, prefer-standby)
  and ``load_balance_hosts``;
* TLS with libpq's meanings: disable/allow/prefer become asyncpg's string modes; require,
  verify-ca and verify-full become an ``ssl.SSLContext``: verify-ca and verify-full always
  verify the server certificate (sslrootcert, else ~/.postgresql/root.crt, or the system
  store with sslrootcert=system), only verify-full checks the host name, require encrypts
  without verifying unless a root certificate file exists (then, as libpq documents, it
  verifies like verify-ca); client certificates, CRLs and protocol bounds as libpq;
* ``connect_timeout``: libpq's is per host (minimum 2 s, 0 = none); ``connect()`` applies it
  per host, ``connect_kwargs()`` gives asyncpg (whose timeout covers the whole attempt) the
  sum over the hosts;
* the only startup parameter sent is ``application_name``: a pooler refuses any other (custom
  GUCs such as ``hms.terminal``, libpq's ``options``), so none is ever sent from here;
* ``pooled=True`` adds ``statement_cache_size=0`` (no named server-side prepared statements,
  which a transaction-mode pooler would hand to another client's server connection).

Nothing here connects or needs a server; ``resolve`` and ``asyncpg_target`` read only the
service file and the home directory, and take ``environ`` and ``home`` for tests.
"""

from __future__ import annotations

import os
import pwd
import random
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo

from hms_tui.db.connection import Database
from hms_tui.domain.errors import ConfigError, DatabaseUnavailable

# Keyword -> environment variable, as in libpq's PQconninfoOptions (PostgreSQL 18).
ENV_VARS: Mapping[str, str] = {
    "service": "PGSERVICE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "channel_binding": "PGCHANNELBINDING",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "dbname": "PGDATABASE",
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "client_encoding": "PGCLIENTENCODING",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "sslmode": "PGSSLMODE",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "sslcompression": "PGSSLCOMPRESSION",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcertmode": "PGSSLCERTMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "requirepeer": "PGREQUIREPEER",
    "require_auth": "PGREQUIREAUTH",
    "min_protocol_version": "PGMINPROTOCOLVERSION",
    "max_protocol_version": "PGMAXPROTOCOLVERSION",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME",
    "gsslib": "PGGSSLIB",
    "gssdelegation": "PGGSSDELEGATION",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS",
}
# Keywords without an environment variable (a service file may still set them).
OTHER_KEYWORDS = frozenset({
    "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "tcp_user_timeout", "sslpassword", "replication", "sslkeylogfile",
    "scram_client_key", "scram_server_key", "oauth_issuer", "oauth_client_id",
    "oauth_client_secret", "oauth_scope",
})
KEYWORDS = frozenset(ENV_VARS) | OTHER_KEYWORDS
# Compiled-in defaults that matter here.
DEFAULTS: Mapping[str, str] = {
    "port": "5432",
    "sslmode": "prefer",
    "target_session_attrs": "any",
    "load_balance_hosts": "disable",
    "ssl_min_protocol_version": "TLSv1.2",
    "channel_binding": "prefer",
    "sslcertmode": "allow",
    "sslnegotiation": "postgres",
    "krbsrvname": "postgres",
}
DEFAULT_SOCKET_DIR = "/var/run/postgresql"  # Debian's (and psycopg's bundled) libpq
DEFAULT_SYSCONFDIR = "/etc/postgresql-common"  # Debian's libpq SYSCONFDIR
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
SESSION_ATTRS = ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")
TLS_VERSIONS: Mapping[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
# Accepted values where asyncpg does not do what libpq would; others are refused.
_ACCEPTED: Mapping[str, tuple[str, ...]] = {
    "channel_binding": ("prefer", "disable"),  # asyncpg never binds: as libpq without TLS
    "gssencmode": ("prefer", "disable"),  # asyncpg never encrypts with GSS: prefer falls back
    "sslnegotiation": ("postgres", "direct"),
    "sslcertmode": ("allow", "disable", "require"),
}
# Set to anything, these would be silently weakened: refused.
_REFUSED = ("requirepeer", "require_auth", "replication", "min_protocol_version",
            "max_protocol_version", "scram_client_key", "scram_server_key", "oauth_issuer",
            "oauth_client_id", "oauth_client_secret", "oauth_scope")


class TargetError(ConfigError):
    """The conninfo cannot be resolved or asyncpg cannot honour it (one line)."""


class NoServerAvailable(DatabaseUnavailable):
    """No host could be connected to with the requested attributes.

    ``standby_only`` is true when every host answered but none was what
    ``target_session_attrs`` asked for because each was a read-only standby."""

    def __init__(self, message: str, *, standby_only: bool = False) -> None:
        super().__init__(message)
        self.standby_only = standby_only


# -- libpq's resolution --------------------------------------------------------------------------


def parse(conninfo: str) -> dict[str, str]:
    """The parameters written in ``conninfo`` (URL or key=value), parsed by libpq itself
    (PQconninfoParse: percent-decoding, quoting, multi-host URLs; no defaults applied)."""
    try:
        params = pg_conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        raise TargetError(f"invalid connection string: {_first_line(exc)}") from None
    return {k: str(v) for k, v in params.items() if v is not None}


def home_dir(environ: Mapping[str, str]) -> Path | None:
    """libpq's home directory: $HOME, else the password database's entry for the euid."""
    if environ.get("HOME"):
        return Path(environ["HOME"])
    try:
        return Path(pwd.getpwuid(os.geteuid()).pw_dir)
    except KeyError:
        return None


def os_user() -> str:
    """libpq's default user: the effective uid's name (not $USER)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        raise TargetError(f"could not look up local user ID {os.geteuid()}") from None


def resolve(conninfo: str = "", *, environ: Mapping[str, str] | None = None,
            home: Path | None = None, sysconfdir: str | None = None) -> dict[str, str]:
    """Every parameter libpq would use for ``conninfo``: written ones, then the service
    file's, then PG* variables, then defaults; ``user`` and ``dbname`` always filled in, and
    ``passfile`` when no password is known. Empty values are kept (an empty ``host`` means
    the default socket directory, as in libpq)."""
    env = os.environ if environ is None else environ
    home = home if home is not None else home_dir(env)
    options = parse(conninfo)
    _apply_service(options, env, home, sysconfdir)
    for key, var in ENV_VARS.items():
        if key not in options and var in env:
            options[key] = env[var]
    if options.get("sslrootcert") == "system" and "sslmode" not in options:
        options["sslmode"] = "verify-full"  # libpq 16+: the system store implies verify-full
    for key, value in DEFAULTS.items():
        options.setdefault(key, value)
    if not options.get("user"):
        options["user"] = os_user()
    if not options.get("dbname"):
        options["dbname"] = options["user"]
    if not options.get("password") and not options.get("passfile") and home is not None:
        options["passfile"] = str(home / ".pgpass")
    return options


def _apply_service(options: dict[str, str], env: Mapping[str, str], home: Path | None,
                   sysconfdir: str | None) -> None:
    """libpq's parseServiceInfo: fill what ``options`` lacks from the named service."""
    service = options.get("service") or env.get("PGSERVICE")
    if not service:
        return
    found = False
    user_file = env.get("PGSERVICEFILE")
    candidates: list[tuple[Path, bool]] = []  # (file, must exist)
    if user_file is not None:
        candidates.append((Path(user_file), True))
    elif home is not None:
        candidates.append((home / ".pg_service.conf", False))
    sysdir = env.get("PGSYSCONFDIR") or sysconfdir or DEFAULT_SYSCONFDIR
    candidates.append((Path(sysdir) / "pg_service.conf", False))
    for path, must_exist in candidates:
        if not path.exists():
            if must_exist:
                raise TargetError(f'service file "{path}" not found')
            continue
        found = _parse_service_file(path, service, options)
        if found:
            break
    if not found:
        raise TargetError(f'definition of service "{service}" not found')


def _parse_service_file(path: Path, service: str, options: dict[str, str]) -> bool:
    """libpq's parseServiceFile: the first ``[service]`` group's ``key=value`` lines, no
    quoting, surrounding whitespace of a line ignored (not around ``=``); a value never
    overrides one already set. True when the group was found."""
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise TargetError(f'service file "{path}" cannot be read: {exc.strerror}') from None
    in_group = False
    found = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip(" \t\r\n\v\f")
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            if in_group:
                return True  # end of our group
            in_group = line[1:1 + len(service)] == service and line[1 + len(service):2 + len(
                service)] == "]"
            found = found or in_group
            continue
        if not in_group:
            continue
        key, eq, value = line.partition("=")
        if not eq:
            raise TargetError(f'syntax error in service file "{path}", line {number}')
        if key == "service":
            raise TargetError(f'nested service specifications not supported in service file '
                              f'"{path}", line {number}')
        if key not in KEYWORDS:
            raise TargetError(f'syntax error in service file "{path}", line {number}')
        options.setdefault(key, value)
    return found


# -- the asyncpg side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One host of the list: ``host`` is a name, an IP address or a socket directory;
    ``address`` is what is connected to (``hostaddr`` when given)."""

    host: str
    port: int
    hostaddr: str = ""

    @property
    def address(self) -> str:
        return self.hostaddr or self.host

    @property
    def is_socket(self) -> bool:
        return not self.hostaddr and self.host.startswith("/")

    def __str__(self) -> str:
        return f"{self.host}:{self.port}" if not self.is_socket else \
            f"{self.host}/.s.PGSQL.{self.port}"


@dataclass(frozen=True)
class AsyncpgTarget:
    """A resolved conninfo for asyncpg (see the module docstring)."""

    endpoints: tuple[Endpoint, ...]
    user: str
    database: str
    password: str | None
    passfile: str | None
    sslmode: str
    ssl: ssl.SSLContext | str | bool
    direct_tls: bool = False
    target_session_attrs: str = "any"
    load_balance_hosts: str = "disable"
    connect_timeout: float | None = None  # per host, seconds; None: wait for ever
    application_name: str | None = None
    statement_cache_size: int | None = None  # 0 for poolers; None: asyncpg's default
    krbsrvname: str | None = None
    gsslib: str | None = None
    keepalives: Mapping[str, int] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()  # "key: why" for parameters asyncpg does not honour

    @property
    def hosts(self) -> list[str]:
        return [e.address for e in self.endpoints]

    @property
    def ports(self) -> list[int]:
        return [e.port for e in self.endpoints]

    def ordered_endpoints(self, rng: random.Random | None = None) -> list[Endpoint]:
        """The hosts in the order to try them (shuffled with load_balance_hosts=random)."""
        endpoints = list(self.endpoints)
        if self.load_balance_hosts == "random":
            (rng or random).shuffle(endpoints)
        return endpoints

    def connect_kwargs(self, endpoints: Sequence[Endpoint] | None = None, *,
                       target_session_attrs: str | None = None,
                       rng: random.Random | None = None) -> dict[str, Any]:
        """Keyword arguments for ``asyncpg.connect`` (every host, or those given). asyncpg's
        ``timeout`` bounds the whole attempt, so it gets the per-host timeout times the
        number of hosts (``connect()`` bounds each host instead)."""
        chosen = list(endpoints) if endpoints is not None else self.ordered_endpoints(rng)
        kwargs: dict[str, Any] = {
            "host": [e.address for e in chosen],
            "port": [e.port for e in chosen],
            "user": self.user,
            "database": self.database,
            "ssl": self.ssl,
            "target_session_attrs": target_session_attrs or self.target_session_attrs,
            "timeout": None if self.connect_timeout is None else
            self.connect_timeout * len(chosen),
            "server_settings": ({"application_name": self.application_name}
                                if self.application_name else {}),
        }
        if self.password is not None:
            kwargs["password"] = self.password
        elif self.passfile:
            kwargs["passfile"] = self.passfile
        if self.direct_tls:
            kwargs["direct_tls"] = True
        if self.statement_cache_size is not None:
            kwargs["statement_cache_size"] = self.statement_cache_size
        if self.krbsrvname:
            kwargs["krbsrvname"] = self.krbsrvname
        if self.gsslib:
            kwargs["gsslib"] = self.gsslib
        return kwargs

    def describe(self) -> str:
        """Where, without secrets: ``hms on db1:5432,db2:5432``."""
        return f"{self.database} on {','.join(str(e) for e in self.endpoints)}"

    def with_application_name(self, name: str) -> AsyncpgTarget:
        return replace(self, application_name=name)


def asyncpg_target(conninfo: str = "", *, application_name: str | None = None,
                   fallback_application_name: str | None = None, pooled: bool = False,
                   connect_timeout: float | None = None, ssl_params: Mapping[str, str] | None = None,
                   environ: Mapping[str, str] | None = None, home: Path | None = None,
                   sysconfdir: str | None = None) -> AsyncpgTarget:
    """Resolve ``conninfo`` as libpq would and translate it for asyncpg.

    ``application_name`` overrides the configured one; ``fallback_application_name`` is used
    when none is configured (libpq's meaning). ``connect_timeout`` applies when the conninfo
    and PGCONNECT_TIMEOUT set none. ``ssl_params`` (sslmode, sslrootcert, ...) override the
    conninfo's, as ``Database.ssl`` does for libpq. ``pooled`` turns the statement cache off."""
    env = os.environ if environ is None else environ
    home = home if home is not None else home_dir(env)
    p = resolve(conninfo, environ=env, home=home, sysconfdir=sysconfdir)
    if ssl_params:
        p.update(ssl_params)
    ignored = _check_supported(p)
    sslmode = p["sslmode"]
    if sslmode not in SSL_MODES:
        raise TargetError(f'invalid sslmode value: "{sslmode}"')
    if p.get("sslrootcert") == "system" and sslmode != "verify-full":
        raise TargetError(f'weak sslmode "{sslmode}" may not be used with sslrootcert=system '
                          '(use "verify-full")')
    attrs = p["target_session_attrs"]
    if attrs not in SESSION_ATTRS:
        raise TargetError(f'invalid target_session_attrs value: "{attrs}"')
    balance = p["load_balance_hosts"]
    if balance not in ("disable", "random"):
        raise TargetError(f'invalid load_balance_hosts value: "{balance}"')
    endpoints = _endpoints(p)
    if sslmode == "verify-full" and any(e.hostaddr and e.hostaddr != e.host
                                        for e in endpoints):
        raise TargetError("sslmode=verify-full with hostaddr is not supported for the listener "
                          "(asyncpg checks the certificate against the address it connects "
                          "to); drop hostaddr")
    timeout = _connect_timeout(p.get("connect_timeout"), connect_timeout)
    name = application_name or p.get("application_name") or p.get(
        "fallback_application_name") or fallback_application_name
    direct = p["sslnegotiation"] == "direct"
    if direct and sslmode not in ("require", "verify-ca", "verify-full"):
        raise TargetError(f'weak sslmode "{sslmode}" may not be used with '
                          'sslnegotiation=direct (use "require", "verify-ca", or "verify-full")')
    return AsyncpgTarget(
        endpoints=tuple(endpoints),
        user=p["user"],
        database=p["dbname"],
        password=p.get("password") or None,
        passfile=None if p.get("password") else p.get("passfile") or None,
        sslmode=sslmode,
        ssl=ssl_for(p, home),
        direct_tls=direct,
        target_session_attrs=attrs,
        load_balance_hosts=balance,
        connect_timeout=timeout,
        application_name=name or None,
        statement_cache_size=0 if pooled else None,
        krbsrvname=p.get("krbsrvname") if p.get("krbsrvname") != "postgres" else None,
        gsslib=p.get("gsslib") or None,
        keepalives=keepalive_options(p),
        ignored=tuple(ignored),
    )


def asyncpg_connect_kwargs(conninfo: str = "", **options: Any) -> dict[str, Any]:
    """``asyncpg_target(conninfo, **options).connect_kwargs()``."""
    return asyncpg_target(conninfo, **options).connect_kwargs()


def _check_supported(p: Mapping[str, str]) -> list[str]:
    """Refuse what asyncpg cannot do where ignoring it would weaken a guarantee; return
    "key: why" for what is harmlessly not honoured."""
    for key, accepted in _ACCEPTED.items():
        value = p.get(key)
        if value and value not in accepted:
            raise TargetError(f"{key}={value} is not supported by the listener's driver "
                              "(asyncpg)")
    for key in _REFUSED:
        if p.get(key):
            raise TargetError(f"{key} is not supported by the listener's driver (asyncpg)")
    ignored = []
    if p.get("options", "").strip():
        ignored.append("options: startup options are never sent (a pooler refuses them)")
    if p.get("client_encoding", "UTF8").upper().replace("-", "") not in ("UTF8", "UNICODE"):
        ignored.append("client_encoding: asyncpg always uses UTF8")
    if p.get("sslsni", "1").strip() == "0":
        ignored.append("sslsni: asyncpg always sends SNI for host names")
    if p.get("gssdelegation", "0").strip() == "1":
        ignored.append("gssdelegation: asyncpg does not delegate GSS credentials")
    return ignored


def _endpoints(p: Mapping[str, str]) -> list[Endpoint]:
    """libpq's connectOptions2: one entry per hostaddr (else per host), ports matched."""
    host, hostaddr, port = p.get("host", ""), p.get("hostaddr", ""), p.get("port", "")
    addrs = hostaddr.split(",") if hostaddr else []
    names = host.split(",") if host else []
    count = len(addrs) or len(names) or 1
    if addrs and names and len(names) != len(addrs):
        raise TargetError(f"could not match {len(names)} host names to {len(addrs)} "
                          "hostaddr values")
    ports = port.split(",") if port else [""]
    if len(ports) == 1:
        ports = ports * count
    elif len(ports) != count:
        raise TargetError(f"could not match {len(ports)} port numbers to {count} hosts")
    endpoints = []
    for i in range(count):
        addr = addrs[i] if addrs else ""
        name = names[i] if names else ""
        if not addr and not name:
            name = DEFAULT_SOCKET_DIR
        if name.startswith("@") and not addr:
            raise TargetError(f'abstract Unix socket "{name}" is not supported by the '
                              "listener's driver (asyncpg)")
        endpoints.append(Endpoint(name or addr, _port(ports[i]), addr))
    return endpoints


def _port(text: str) -> int:
    value = text.strip()
    if not value:
        return int(DEFAULTS["port"])
    try:
        number = int(value)
    except ValueError:
        raise TargetError(f'invalid integer value "{text}" for connection option "port"'
                          ) from None
    if not 1 <= number <= 65535:
        raise TargetError(f'invalid port number: "{text}"')
    return number


def _connect_timeout(text: str | None, default: float | None) -> float | None:
    if text is None or not text.strip():
        return default
    try:
        seconds = int(text.strip())
    except ValueError:
        raise TargetError(f'invalid integer value "{text}" for connection option '
                          '"connect_timeout"') from None
    if seconds <= 0:
        return None
    return float(max(seconds, 2))  # libpq: "a value of 1 is interpreted as 2"


# -- TLS -----------------------------------------------------------------------------------------


def ssl_for(p: Mapping[str, str], home: Path | None) -> ssl.SSLContext | str | bool:
    """asyncpg's ``ssl`` argument for libpq's TLS parameters (see the module docstring)."""
    mode = p.get("sslmode", "prefer")
    if mode == "disable":
        return False
    if mode in ("allow", "prefer"):
        return mode  # asyncpg's own modes: TLS when offered, plaintext otherwise
    dot = home / ".postgresql" if home is not None else None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    root = p.get("sslrootcert") or (str(dot / "root.crt") if dot else "")
    verifying = False
    if root == "system":
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        verifying = True
    elif root and Path(root).is_file():
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_verify_locations(cafile=root)
        except (OSError, ssl.SSLError) as exc:
            raise TargetError(f'could not read root certificate file "{root}": {exc}'
                              ) from None
        verifying = True
    elif mode in ("verify-ca", "verify-full"):
        raise TargetError(f'root certificate file "{root or "~/.postgresql/root.crt"}" does '
                          "not exist; either provide the file, use the system's trusted roots "
                          "with sslrootcert=system, or change sslmode to disable server "
                          "certificate verification")
    else:
        ctx.verify_mode = ssl.CERT_NONE  # require without a root certificate: not verified
    if verifying:
        _load_crl(ctx, p, dot)
    if mode == "verify-full":
        ctx.check_hostname = True
    _load_client_cert(ctx, p, dot)
    low = p.get("ssl_min_protocol_version") or "TLSv1.2"
    high = p.get("ssl_max_protocol_version")
    for key, value in (("ssl_min_protocol_version", low), ("ssl_max_protocol_version", high)):
        if value and value not in TLS_VERSIONS:
            raise TargetError(f'invalid {key} value: "{value}"')
    ctx.minimum_version = TLS_VERSIONS[low]
    if high:
        ctx.maximum_version = TLS_VERSIONS[high]
    if p.get("sslkeylogfile"):
        ctx.keylog_filename = p["sslkeylogfile"]
    ctx.set_alpn_protocols(["postgresql"])
    return ctx


def _load_crl(ctx: ssl.SSLContext, p: Mapping[str, str], dot: Path | None) -> None:
    crl = p.get("sslcrl") or (str(dot / "root.crl") if dot else "")
    crldir = p.get("sslcrldir") or ""
    loaded = False
    try:
        if crl and Path(crl).is_file():
            ctx.load_verify_locations(cafile=crl)
            loaded = True
        if crldir and Path(crldir).is_dir():
            ctx.load_verify_locations(capath=crldir)
            loaded = True
    except (OSError, ssl.SSLError) as exc:
        raise TargetError(f"could not load SSL certificate revocation list: {exc}") from None
    if loaded:
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN


def _load_client_cert(ctx: ssl.SSLContext, p: Mapping[str, str], dot: Path | None) -> None:
    certmode = p.get("sslcertmode", "allow")
    if certmode == "disable":
        return
    cert = p.get("sslcert") or (str(dot / "postgresql.crt") if dot else "")
    key = p.get("sslkey") or (str(dot / "postgresql.key") if dot else "")
    if not cert or not Path(cert).is_file():
        if certmode == "require":
            raise TargetError("sslcertmode=require but no client certificate file "
                              f'"{cert}" exists')
        return  # libpq: no certificate file, no client certificate
    if not key or not Path(key).is_file():
        raise TargetError(f'certificate present, but not private key file "{key}"')
    password = p.get("sslpassword") or None
    try:
        ctx.load_cert_chain(cert, key, password=password)
    except (OSError, ssl.SSLError) as exc:
        raise TargetError(f'could not load client certificate "{cert}": {exc}') from None


# -- keepalives ----------------------------------------------------------------------------------


def keepalive_options(p: Mapping[str, str]) -> dict[str, int]:
    """libpq's keepalive parameters, checked as libpq checks them. asyncpg has no public way
    to set socket options, so the listener does not apply them: its heartbeat and read
    timeouts are what find a dead server (``db/listener.py``)."""
    if p.get("keepalives", "1").strip() == "0":
        return {}
    out = {"SO_KEEPALIVE": 1}
    for key, name in (("keepalives_idle", "TCP_KEEPIDLE"), ("keepalives_interval",
                                                             "TCP_KEEPINTVL"),
                      ("keepalives_count", "TCP_KEEPCNT"), ("tcp_user_timeout",
                                                            "TCP_USER_TIMEOUT")):
        value = p.get(key, "").strip()
        if value:
            try:
                out[name] = int(value)
            except ValueError:
                raise TargetError(f'invalid integer value "{value}" for connection option '
                                  f'"{key}"') from None
    return out


# -- connecting ----------------------------------------------------------------------------------


async def connect(target: AsyncpgTarget, *, rng: random.Random | None = None,
                  **overrides: Any) -> Any:
    """An asyncpg connection chosen as libpq chooses: each host in turn, each with the full
    ``connect_timeout``; a host that answers but does not match ``target_session_attrs`` is
    skipped; prefer-standby makes a second round accepting any server. ``overrides`` go to
    ``asyncpg.connect`` (e.g. ``record_class``). Raises ``NoServerAvailable``."""
    import asyncpg

    endpoints = target.ordered_endpoints(rng)
    attrs = target.target_session_attrs
    rounds = ["standby", "any"] if attrs == "prefer-standby" else [attrs]
    failures: list[str] = []
    mismatched = 0
    for round_attrs in rounds:
        for endpoint in endpoints:
            kwargs = target.connect_kwargs([endpoint], target_session_attrs=round_attrs)
            kwargs.update(overrides)
            try:
                conn = await asyncpg.connect(**kwargs)
            except asyncpg.exceptions.TargetServerAttributeNotMatched:
                mismatched += 1
                failures.append(f"{endpoint}: {_mismatch(round_attrs)}")
                continue
            except (OSError, TimeoutError, asyncpg.PostgresError,
                    asyncpg.InterfaceError) as exc:
                failures.append(f"{endpoint}: {_first_line(exc)}")
                continue
            return conn
    standby_only = mismatched == len(failures) and attrs in ("read-write", "primary")
    if standby_only:
        where = ", ".join(str(e) for e in endpoints)
        raise NoServerAvailable(
            f"{'this server is' if len(endpoints) == 1 else 'every server is'} a read-only "
            f"standby ({where}); point hms-tui at the primary", standby_only=True)
    raise NoServerAvailable(f"cannot connect to {target.describe()}: {'; '.join(failures)}")


def _mismatch(attrs: str) -> str:
    return {"read-write": "server is read-only", "primary": "server is in hot standby mode",
            "read-only": "server is not read-only", "standby": "server is not in hot standby "
            "mode"}.get(attrs, f"does not match target_session_attrs={attrs}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def describe_hosts(endpoints: Iterable[Endpoint]) -> str:
    return ",".join(str(e) for e in endpoints)


async def connect_listener(db: Database, *, application_name: str) -> Any:
    """The listener's connection: to ``database.listen_url`` when set (past a pooler), else to
    the desk's address, with the same settings (TLS, timeout, a password typed at start).
    Without named prepared statements (``pooled``): a pooler may be in front."""
    conninfo = pg_conninfo.make_conninfo(**db.params(db.listen_conninfo))
    try:
        target = asyncpg_target(conninfo, application_name=application_name, pooled=True)
    except TargetError as exc:  # as libpq would fail to connect with it
        raise DatabaseUnavailable(f"cannot connect to {db.describe()}: {exc}") from None
    return await connect(target)
