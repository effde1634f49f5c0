"""Decisions on fresh data: timers that wait and retry, fetch times apart from
Stripe times, creation intents, and a rate budget shared by every worker.

* ``ofsm_timers.wake_at`` / ``attempts``: a deadline timer is leased while its
  account is fetched from Stripe, and woken again later (with backoff) when
  Stripe cannot be reached; ``due_at`` stays the deadline itself. The due
  index moves to ``wake_at``.
* ``ofsm_accounts.fetched_at``: when we last fetched the account ourselves,
  on our clock; ``watermark`` keeps Stripe times only, so the two clocks are
  never compared as if they were one.
* ``ofsm_creation_intents``: recorded before Stripe is asked to create, so a
  retry after Stripe's 24-hour idempotency window looks for the account
  before creating another.
* ``ofsm_rate_limits``: one row per budget (GCRA's theoretical arrival time).

Existing rows keep everything they had: timers wake at their due time with
no attempts, audit records are not touched.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from adapters.sqlalchemy_store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ofsm_accounts", sa.Column("fetched_at", UTCDateTime()))

    op.drop_index("ix_ofsm_timers_due", table_name="ofsm_timers")
    with op.batch_alter_table("ofsm_timers") as batch:
        batch.add_column(sa.Column("wake_at", UTCDateTime()))
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
    op.execute("UPDATE ofsm_timers SET wake_at = due_at")
    with op.batch_alter_table("ofsm_timers") as batch:
        batch.alter_column("wake_at", existing_type=UTCDateTime(), nullable=False)
    op.create_index(
        "ix_ofsm_timers_wake",
        "ofsm_timers",
        ["wake_at"],
        sqlite_where=sa.text("fired_at IS NULL"),
        postgresql_where=sa.text("fired_at IS NULL"),
    )

    op.create_table(
        "ofsm_creation_intents",
        sa.Column("platform_ref", sa.String(200), primary_key=True),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "ofsm_rate_limits",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("tat", sa.Float(precision=53), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ofsm_rate_limits")
    op.drop_table("ofsm_creation_intents")
    op.drop_index("ix_ofsm_timers_wake", table_name="ofsm_timers")
    with op.batch_alter_table("ofsm_timers") as batch:
        batch.drop_column("attempts")
        batch.drop_column("wake_at")
    op.create_index(
        "ix_ofsm_timers_due",
        "ofsm_timers",
        ["due_at"],
        sqlite_where=sa.text("fired_at IS NULL"),
        postgresql_where=sa.text("fired_at IS NULL"),
    )
    op.drop_column("ofsm_accounts", "fetched_at")
