"""Staff logins: one PostgreSQL role per person, a member of one hms group role.

Everything here is a call of an admin-only SECURITY DEFINER function (db/sql/routines/
71_staff.sql): ``hms.staff_add``, ``staff_list``, ``staff_disable``, ``staff_enable``,
``staff_link``. A password never leaves this process in clear text: it is turned into a
SCRAM-SHA-256 verifier here (libpq's PQencryptPasswordConn, with the server's
password_encryption) and only the verifier is sent; it is never stored anywhere else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from hms_tui.db.connection import Database, translated_errors
from hms_tui.domain import validation as v
from hms_tui.domain.errors import InvalidInput, NotFound

ROLES = ("reception", "doctor", "display", "admin")
LOGIN = re.compile(r"[a-z_][a-z0-9_.-]{0,62}")
PASSWORD_MIN = 8
PASSWORD_MAX = 1000


@dataclass(frozen=True)
class StaffMember:
    login: str
    role: str | None  # reception, doctor, display, admin; 'owner' for whoami of the owner
    doctors: tuple[str, ...]
    can_login: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StaffMember:
        return cls(row["login"], row["role"], tuple(row["doctors"] or ()), bool(row["can_login"]))


def check_login(value: str) -> str:
    login = value.strip()
    if not LOGIN.fullmatch(login):
        raise InvalidInput(
            f"login {login[:80]!r} is invalid; use 1-63 lower-case letters, digits, "
            "_ . or -, starting with a letter or _"
        )
    if login.startswith(("pg_", "hms_")):
        raise InvalidInput(f"login {login} is reserved (pg_ and hms_ names are taken)")
    return login


def check_role(value: str) -> str:
    role = value.strip().lower()
    if role not in ROLES:
        raise InvalidInput(f"role {value[:80]!r} is invalid; use {', '.join(ROLES)}")
    return role


def check_password(value: str) -> str:
    if "\x00" in value:
        raise InvalidInput("the password contains a NUL character")
    if len(value) < PASSWORD_MIN:
        raise InvalidInput(f"the password is too short; use at least {PASSWORD_MIN} characters")
    if len(value) > PASSWORD_MAX:
        raise InvalidInput(f"the password is longer than {PASSWORD_MAX} characters")
    return value


class Staff:
    """Staff administration over one ``Database`` (the caller must be in hms_admin)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _call(self, sql: str, **params: Any) -> list[StaffMember]:
        rows = self.db.call(sql, params)
        return [StaffMember.from_row(r) for r in rows if r["login"] is not None]

    def _one(self, sql: str, **params: Any) -> StaffMember:
        rows = self._call(sql, **params)
        if not rows:
            raise NotFound("nothing found")
        return rows[0]

    def add(
        self,
        login: str,
        role: str,
        doctors: Iterable[str] = (),
        password: str | None = None,
    ) -> StaffMember:
        """Create the login (no password: peer, cert or trust authentication only)."""
        name = check_login(login)
        codes = [v.doctor_code(c) for c in doctors]
        group = check_role(role)
        if group == "doctor" and not codes:
            raise InvalidInput("a doctor login needs at least one linked doctor (--doctor CODE)")
        if group != "doctor" and codes:
            raise InvalidInput("only doctor logins are linked to doctors; drop --doctor")
        verifier = None
        if password is not None:
            with translated_errors(), self.db.pooled() as conn:
                verifier = encrypt_password(conn, name, check_password(password))
        return self._one("SELECT * FROM hms.staff_add(%(login)s, %(role)s, %(doctors)s, "
                         "%(verifier)s)", login=name, role=group, doctors=codes, verifier=verifier)

    def list(self) -> list[StaffMember]:
        return self._call("SELECT * FROM hms.staff_list()")

    def disable(self, login: str) -> StaffMember:
        """No more log-ins; open sessions of that login are ended."""
        return self._one("SELECT * FROM hms.staff_disable(%(login)s)", login=check_login(login))

    def enable(self, login: str) -> StaffMember:
        return self._one("SELECT * FROM hms.staff_enable(%(login)s)", login=check_login(login))

    def link(self, login: str, doctor: str, *, linked: bool = True) -> StaffMember:
        """Let a doctor login act on that doctor's visits (``linked=False``: stop it)."""
        return self._one("SELECT * FROM hms.staff_link(%(login)s, %(doctor)s, %(linked)s)",
                         login=check_login(login), doctor=v.doctor_code(doctor), linked=linked)

    def whoami(self) -> StaffMember:
        return self._one("SELECT * FROM hms.whoami()")


def encrypt_password(conn: psycopg.Connection[Any], login: str, password: str) -> str:
    """The verifier PostgreSQL stores (SCRAM-SHA-256 unless the server says md5)."""
    try:
        verifier = conn.pgconn.encrypt_password(password.encode(), login.encode())
    except psycopg.Error as exc:
        raise InvalidInput(f"cannot encrypt the password: {exc}") from None
    return verifier.decode("ascii")
