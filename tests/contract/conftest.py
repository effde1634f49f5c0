"""What every Store contract suite starts from: a migrated store on each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.sqlalchemy_store import SqlStore


@pytest.fixture
def store(any_db_url: str) -> Iterator[SqlStore]:
    """A store migrated to head, on SQLite and on PostgreSQL (``any_db_url``);
    a module needing another (``test_migrations``: not migrated) overrides it."""
    s = SqlStore.from_url(any_db_url)
    s.migrate()
    yield s
    s.close()
