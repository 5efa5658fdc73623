"""Staff logins: one PostgreSQL role per person, a member of one hms group role.

Everything here is a call of an admin-only SECURITY DEFINER function (migrations/
0003_security.sql): ``hms.staff_add``, ``staff_list``, ``staff_disable``, ``staff_enable``,
``staff_link``. A password never leaves this process in clear text: it is turned into a
SCRAM-SHA-256 verifier here (libpq's PQencryptPasswordConn, with the server's
password_encryption) and only the verifier is sent; it is never stored anywhere else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from hms_tui.core import validation as v
from hms_tui.core.errors import InvalidInput, NotFound
from hms_tui.db.database import Database, translated_errors

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
    def from_row(cls, row: Sequence[Any]) -> StaffMember:
        login, role, doctors, can_login = row
        return cls(login, role, tuple(doctors or ()), bool(can_login))


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

    def _call(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with translated_errors(), self.db.connect(autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> StaffMember:
        rows = self._call(sql, params)
        if not rows or rows[0][0] is None:
            raise NotFound("nothing found")
        return StaffMember.from_row(rows[0])

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
        with translated_errors(), self.db.connect(autocommit=True) as conn:
            verifier = None
            if password is not None:
                verifier = encrypt_password(conn, name, check_password(password))
            row = conn.execute(
                "SELECT * FROM hms.staff_add(%s, %s, %s, %s)", (name, group, codes, verifier)
            ).fetchone()
        assert row is not None
        return StaffMember.from_row(row)

    def list(self) -> list[StaffMember]:
        return [StaffMember.from_row(r) for r in self._call("SELECT * FROM hms.staff_list()")]

    def disable(self, login: str) -> StaffMember:
        """No more log-ins; open sessions of that login are ended."""
        return self._one("SELECT * FROM hms.staff_disable(%s)", (check_login(login),))

    def enable(self, login: str) -> StaffMember:
        return self._one("SELECT * FROM hms.staff_enable(%s)", (check_login(login),))

    def link(self, login: str, doctor: str, *, linked: bool = True) -> StaffMember:
        """Let a doctor login act on that doctor's visits (``linked=False``: stop it)."""
        return self._one(
            "SELECT * FROM hms.staff_link(%s, %s, %s)",
            (check_login(login), v.doctor_code(doctor), linked),
        )

    def whoami(self) -> StaffMember:
        return self._one("SELECT * FROM hms.whoami()")


def encrypt_password(conn: psycopg.Connection[Any], login: str, password: str) -> str:
    """The verifier PostgreSQL stores (SCRAM-SHA-256 unless the server says md5)."""
    try:
        verifier = conn.pgconn.encrypt_password(password.encode(), login.encode())
    except psycopg.Error as exc:
        raise InvalidInput(f"cannot encrypt the password: {exc}") from None
    return verifier.decode("ascii")
