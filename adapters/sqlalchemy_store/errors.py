"""Driver errors in the engine's error tree, by exception type.

Both drivers follow PEP 249, so ``OperationalError`` and ``InterfaceError``
(the database is locked, restarting, unreachable, the connection broke) are
the same classes whether they come from the driver's cursor (the write path)
or wrapped by SQLAlchemy (reads): they mean "try again", ``StoreUnavailable``.
PostgreSQL's SQLSTATE class 40 (serialization failure, deadlock) means the
transaction lost a race: ``ConcurrencyConflict``, retried on fresh data.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from onboarding_fsm.errors import ConcurrencyConflict, OnboardingError, StoreUnavailable

#: PostgreSQL: transaction rollback (40001 serialization_failure, 40P01 deadlock_detected, ...)
_RACE_CLASS = "40"


def translate(exc: BaseException, dbapi: Any) -> OnboardingError | None:
    """The engine's error for ``exc``, or None when it is not a database outage or race."""
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_RACE_CLASS):
        return ConcurrencyConflict(f"transaction lost a race ({sqlstate}): {orig}")
    retryable: tuple[type[BaseException], ...] = (sa.exc.OperationalError, sa.exc.InterfaceError)
    if dbapi is not None:
        retryable += (dbapi.OperationalError, dbapi.InterfaceError)
    if isinstance(exc, retryable) or isinstance(orig, retryable):
        return StoreUnavailable(f"database unavailable: {type(orig).__name__}: {orig}")
    return None
