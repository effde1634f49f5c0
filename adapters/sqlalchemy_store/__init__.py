"""SQLAlchemy store: SQLite by default, PostgreSQL for scale; Alembic migrations."""

from .store import SqlStore, create_sql_engine

__all__ = ["SqlStore", "create_sql_engine"]
