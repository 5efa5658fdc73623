"""The listener's asyncpg connection, made from the same libpq settings as every other one.

libpq's conninfo (URL or key=value, with PG* variables) is turned into the keyword arguments
``asyncpg.connect`` takes -- host and port lists for multi-host URLs, ``target_session_attrs``,
an SSL context with libpq's meanings -- and never a custom startup parameter (a pooler refuses
those).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hms_tui.db.connection import Database, first_line
from hms_tui.domain.errors import DatabaseUnavailable


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def asyncpg_kwargs(params: Mapping[str, str], *, application_name: str,
                   timeout: float) -> dict[str, Any]:
    """asyncpg.connect() keywords for libpq ``params`` (already merged with our defaults)."""
    hosts = _split(params.get("host") or os.environ.get("PGHOST"))
    ports = [int(p) for p in _split(params.get("port") or os.environ.get("PGPORT"))]
    kwargs: dict[str, Any] = {
        "host": hosts or None,
        "port": (ports[0] if len(ports) == 1 else ports) or None,
        "user": params.get("user"),
        "database": params.get("dbname"),
        "password": params.get("password"),
        "timeout": timeout,
        "server_settings": {"application_name": application_name},
    }
    attrs = params.get("target_session_attrs") or os.environ.get("PGTARGETSESSIONATTRS")
    if attrs:
        kwargs["target_session_attrs"] = attrs
    if "sslmode" in params:
        kwargs["ssl"] = ssl_for(params)
    return {k: v for k, v in kwargs.items() if v is not None}


def ssl_for(p: Mapping[str, str]) -> Any:
    """libpq's SSL settings as asyncpg takes them, with libpq's meanings: verify-ca and
    verify-full always check the certificate (against sslrootcert, else
    ~/.postgresql/root.crt, as libpq does); only verify-full checks the host name."""
    mode = p["sslmode"]
    if mode in ("disable", "allow", "prefer"):
        return {"disable": False, "allow": "allow", "prefer": "prefer"}[mode]
    if mode == "require":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # libpq's require: encrypted, not verified
    else:
        cafile = p.get("sslrootcert") or str(Path.home() / ".postgresql" / "root.crt")
        ctx = ssl.create_default_context(cafile=cafile)  # CERT_REQUIRED
        ctx.check_hostname = mode == "verify-full"
    if "sslcert" in p:
        ctx.load_cert_chain(p["sslcert"], p.get("sslkey"))
    return ctx


async def connect_listener(db: Database, *, application_name: str) -> Any:
    """A new asyncpg connection to the listener's address (``database.listen_url``, else the
    desk's)."""
    import asyncpg

    try:
        kwargs = asyncpg_kwargs(db.params(db.listen_conninfo), application_name=application_name,
                                timeout=db.connect_timeout)
        return await asyncpg.connect(**kwargs)
    except (OSError, asyncpg.PostgresError, TimeoutError, ValueError) as exc:
        raise DatabaseUnavailable(f"cannot connect to {db.describe()}: {first_line(exc)}") from None
