"""A throw-away PostgreSQL schema, for test suites and benchmarks that must
not touch each other's rows on a shared server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def temporary_schema(base_url: str, prefix: str = "ofsm_tmp_") -> Iterator[str]:
    """Yield ``base_url`` with its search_path set to a fresh schema; drop it after."""
    name = prefix + uuid.uuid4().hex[:12]
    admin = sa.create_engine(base_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()
