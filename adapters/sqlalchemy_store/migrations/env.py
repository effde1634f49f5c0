"""Alembic environment: runs on the connection the store hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from adapters.sqlalchemy_store.store import VERSION_TABLE
from adapters.sqlalchemy_store.tables import metadata

config = context.config


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":  # type: ignore[attr-defined]
            # several workers may start at once: one migrates, the others wait
            connection.execute(text("SELECT pg_advisory_xact_lock(7201100)"))  # type: ignore[attr-defined]
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # `alembic upgrade head` from a shell, with sqlalchemy.url configured
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///onboarding-fsm.sqlite3")
    with engine.begin() as conn:
        _run(conn)
