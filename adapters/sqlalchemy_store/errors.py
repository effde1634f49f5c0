"""Driver errors in the engine's error tree, by exception type and code.

An outage — the database is locked, restarting, unreachable, out of disk, or
the connection broke — is ``StoreUnavailable``: retryable, and the HTTP side
answers 503. PostgreSQL reports those as PEP 249 ``OperationalError`` /
``InterfaceError`` (``AdminShutdown``, ``CannotConnectNow``, a dropped
connection…); SQLite reports *every* failure as ``OperationalError``,
"no such table" included, so there its result code decides. A transaction
that lost a race (PostgreSQL SQLSTATE 40001 serialization failure, 40P01
deadlock) is ``ConcurrencyConflict``, retried on fresh data. Anything else is
a bug or a misconfiguration and propagates as it is. The same rules apply to
raw driver errors (the write path) and to SQLAlchemy's wrappers (reads).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from onboarding_fsm.errors import ConcurrencyConflict, OnboardingError, StoreUnavailable

#: PostgreSQL: serialization_failure, deadlock_detected
RACES = frozenset({"40001", "40P01"})
#: SQLite primary result codes that mean "not now": BUSY, LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL
SQLITE_OUTAGES = frozenset({5, 6, 10, 13, 14, 15})


def translate(exc: BaseException, dbapi: Any) -> OnboardingError | None:
    """The engine's error for ``exc``, or None when it is not a database outage or race."""
    if isinstance(exc, sa.exc.TimeoutError | sa.exc.DisconnectionError):  # pool exhausted, connection lost
        return StoreUnavailable(f"database unavailable: {type(exc).__name__}: {exc}")
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    if getattr(orig, "sqlstate", None) in RACES:
        return ConcurrencyConflict(f"transaction lost a race ({orig.sqlstate}): {orig}")  # type: ignore[union-attr]
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        outage = code & 0xFF in SQLITE_OUTAGES
    else:
        families: tuple[type[BaseException], ...] = (sa.exc.OperationalError, sa.exc.InterfaceError)
        if dbapi is not None:
            families += (dbapi.OperationalError, dbapi.InterfaceError)
        outage = isinstance(exc, families) or isinstance(orig, families)
    return StoreUnavailable(f"database unavailable: {type(orig).__name__}: {orig}") if outage else None
