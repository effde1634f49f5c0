"""A SQLAlchemy engine configured for this store (SQLite pragmas and locking)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

#: execution option marking SQLAlchemy connections that only read
READ_ONLY = "ofsm_read_only"


def create_sql_engine(url: str, *, synchronous: str = "FULL", pool_size: int = 5) -> Engine:
    """SQLite: WAL, ``BEGIN IMMEDIATE`` for writes (a read-then-write
    transaction never fails to upgrade its lock), plain ``BEGIN`` for reads.
    PostgreSQL: no pre-ping and no reset-on-return, each a round trip per
    transaction: writes always end their transaction themselves, reads roll
    back on close, and a connection that breaks is invalidated by the writer."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_reset_on_return=None)
    memory = parsed.database in (None, "", ":memory:")
    if memory:
        engine = sa.create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
    else:
        Path(parsed.database or "").expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_conn.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

    return engine
