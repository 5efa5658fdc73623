"""Errors a desk action can end with. Each carries one line meant for the person at the desk.

The server-side functions raise with SQLSTATEs of class ``HM``; ``from_sqlstate`` maps them
(and the few PostgreSQL errors a user can cause) onto these classes.
"""

from __future__ import annotations


class HmsError(Exception):
    """Base class: ``str(err)`` is the one-line message shown to the user; ``details`` are
    fields scripts may read beside it (the --json error object carries them)."""

    exit_code = 1

    def __init__(self, message: str = "", details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class ConfigError(HmsError):
    exit_code = 2


class InvalidInput(HmsError):
    exit_code = 2


class NotFound(HmsError):
    exit_code = 3


class IllegalTransition(HmsError):
    exit_code = 4


class DoctorBusy(IllegalTransition):
    """Call refused: the doctor still has a patient called or in consultation (one patient
    at a time, unless the clinic allows calling ahead or the caller insists)."""


class Conflict(HmsError):
    exit_code = 5


class DuplicatePatient(Conflict):
    """The person being registered looks registered already; ``matches`` are the records
    (filled in by the desk, which asks the database for them)."""

    def __init__(self, message: str, matches: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.matches = matches


class Forbidden(HmsError):
    exit_code = 6


class LoginFailed(Forbidden):
    """The server refused the login (unknown role, wrong password, not allowed by pg_hba):
    not an outage, so not 'database unavailable'."""


class Busy(HmsError):
    """A lock or statement timeout: nothing was written; trying again is safe."""

    exit_code = 7


class DatabaseUnavailable(HmsError):
    exit_code = 8


class StandbyOnly(DatabaseUnavailable):
    """The server reached is a read-only standby: nothing can be written there."""

    MESSAGE = "this server is a read-only standby; point hms-tui at the primary"


class Unconfirmed(DatabaseUnavailable):
    """An action was sent but its commit was not confirmed in time (e.g. a synchronous standby
    is down): it may or may not have happened. Never retried blindly."""


class SchemaMismatch(HmsError):
    exit_code = 9


class NumberingHeld(HmsError):
    """No token or bill number is issued: after a change of server (failover, restore) numbers
    acknowledged before may be missing, and an admin has not confirmed yet."""

    exit_code = 11



class SlipNotPrinted(HmsError):
    """``--print``: the check-in or arrival was done, but its token slip did not print (the
    printer is missing, off, out of paper, or printing is off). Its own exit code, so a
    script can tell "done, no slip" from "not done"."""

    exit_code = 12

# SQLSTATEs raised by hms functions (see migrations) and by PostgreSQL for user-caused errors.
_BY_SQLSTATE: dict[str, type[HmsError]] = {
    "HM404": NotFound,
    "HM409": Conflict,
    "HM410": DuplicatePatient,
    "HM422": InvalidInput,
    "HM423": IllegalTransition,
    "HM424": DoctorBusy,
    "HM403": Forbidden,
    "HM503": NumberingHeld,
    "25006": StandbyOnly,  # read_only_sql_transaction: connected to a standby
    "23505": Conflict,  # unique_violation
    "23514": InvalidInput,  # check_violation
    "23502": InvalidInput,  # not_null_violation
    "22001": InvalidInput,  # string_data_right_truncation
    "22003": InvalidInput,  # numeric_value_out_of_range
    "22007": InvalidInput,  # invalid_datetime_format
    "22008": InvalidInput,  # datetime_field_overflow
    "22P02": InvalidInput,  # invalid_text_representation
    "22023": InvalidInput,  # invalid_parameter_value (e.g. unknown time zone)
    "55P03": Busy,  # lock_not_available (lock_timeout)
    "40P01": Busy,  # deadlock_detected (one of two crossing changes gave way)
    "57014": Busy,  # query_canceled (statement_timeout)
    "42501": Forbidden,  # insufficient_privilege
}


def from_sqlstate(sqlstate: str | None, message: str,
                  details: dict[str, object] | None = None) -> HmsError | None:
    cls = _BY_SQLSTATE.get(sqlstate or "")
    if cls is None:
        return None
    if cls is Busy:
        message = f"the database is busy ({message}); nothing was changed, try again"
    elif cls is StandbyOnly:
        message = StandbyOnly.MESSAGE
    return cls(message, details)
