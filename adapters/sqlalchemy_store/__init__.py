"""SQLAlchemy store: SQLite by default, PostgreSQL for scale; Alembic migrations."""

from .connection import create_sql_engine
from .store import SqlStore

__all__ = ["SqlStore", "create_sql_engine"]
