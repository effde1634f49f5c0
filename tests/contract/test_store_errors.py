"""What the store's callers see when the database fails: real driver errors,
produced by the real databases, in the engine's error tree."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.sqlalchemy_store import SqlStore
from adapters.sqlalchemy_store.errors import translate
from onboarding_fsm.errors import ConcurrencyConflict, StoreUnavailable
from tests.conftest import postgres_url


def test_a_locked_sqlite_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    store = SqlStore.from_url(f"sqlite:///{path}")
    store.migrate()
    raw = store.engine.raw_connection()
    raw.cursor().execute("PRAGMA busy_timeout=0")  # give up at once instead of after 30 s
    raw.close()  # back to the pool, where the next write finds it
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(StoreUnavailable, match="locked"), store.write() as tx:
            tx.load("acct_1")
    finally:
        holder.rollback()
        holder.close()
    with store.write() as tx:  # and once it is released, writes go through
        assert tx.load("acct_1") is None
    store.close()


def test_a_missing_schema_is_a_bug_not_an_outage(tmp_path: Path) -> None:
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'empty.sqlite3'}")  # never migrated
    with pytest.raises(sa.exc.OperationalError, match="no such table"):
        store.get("acct_1")
    with pytest.raises(sqlite3.OperationalError, match="no such table"), store.write() as tx:
        tx.load("acct_1")
    store.close()


def _raised_by_postgres(url: str, errcode: str) -> Exception:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DO $$ BEGIN RAISE EXCEPTION 'drill' USING ERRCODE = '{errcode}'; END $$")
    except sa.exc.DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("PostgreSQL raised nothing")


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("errcode", "expected"),
    [
        ("serialization_failure", ConcurrencyConflict),
        ("deadlock_detected", ConcurrencyConflict),
        ("admin_shutdown", StoreUnavailable),  # a failover or restart
        ("cannot_connect_now", StoreUnavailable),
        ("undefined_table", None),
        ("unique_violation", None),
    ],
)
def test_postgres_errors_by_kind(errcode: str, expected: type[Exception] | None) -> None:
    import psycopg

    wrapped = _raised_by_postgres(postgres_url(), errcode)
    for exc in (wrapped, wrapped.orig):  # a read (SQLAlchemy's wrapper) and the write path (the driver's)
        translated = translate(exc, psycopg)  # type: ignore[arg-type]
        assert (type(translated) if translated is not None else None) is expected, exc


@pytest.mark.postgres
def test_a_connection_killed_under_the_store_is_unavailable_then_recovers(pg_url: str) -> None:
    store = SqlStore.from_url(pg_url)
    store.migrate()
    store.engine.dispose()  # one pooled connection from here on: the one whose pid we take
    raw = store.engine.raw_connection()
    cursor = raw.cursor()
    cursor.execute("SELECT pg_backend_pid()")
    pid = cursor.fetchone()[0]
    raw.rollback()
    raw.close()
    admin = sa.create_engine(postgres_url())
    with admin.connect() as conn:  # a failover, as the store's connection sees it
        assert conn.exec_driver_sql("SELECT pg_terminate_backend(%s)", (pid,)).scalar() is True
    admin.dispose()
    with pytest.raises(StoreUnavailable), store.write() as tx:
        tx.load("acct_1")
    with store.write() as tx:  # the broken connection was invalidated, not handed out again
        assert tx.load("acct_1") is None
    store.close()
