"""Running it in production: outbox delivery state, runs, time in state.

* ``ofsm_outbox``: ``attempts``, ``next_attempt_at``, ``leased_until``,
  ``dead_at``, ``last_error`` — the worker delivers messages to the
  configured handler, retries with backoff and dead-letters after the
  configured attempts. Existing pending messages start with no attempts;
  published ones keep their ``published_at``. A partial index on undelivered
  rows ``(account_id, id)`` keeps "is it its account's oldest?" cheap however
  many delivered rows retention keeps.
* ``ofsm_runs``: one row per sweep, reconcile, checkpoint, prune or outbox
  run (id, who, when, outcome, counts), for ``status`` and the metrics.
* ``ofsm_accounts.state_since``: when the account entered its current state,
  backfilled from the audit trail (the newest record that moved it there).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from adapters.sqlalchemy_store.tables import JSONType, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ofsm_accounts", sa.Column("state_since", UTCDateTime()))
    op.execute(
        "UPDATE ofsm_accounts SET state_since = (SELECT max(t.at) FROM ofsm_transitions t "
        "WHERE t.account_id = ofsm_accounts.stripe_account_id AND t.to_state = ofsm_accounts.state "
        "AND (t.from_state IS NULL OR t.from_state <> t.to_state))"
    )
    op.add_column("ofsm_outbox", sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
    op.add_column("ofsm_outbox", sa.Column("next_attempt_at", UTCDateTime()))
    op.add_column("ofsm_outbox", sa.Column("leased_until", UTCDateTime()))
    op.add_column("ofsm_outbox", sa.Column("dead_at", UTCDateTime()))
    op.add_column("ofsm_outbox", sa.Column("last_error", sa.Text))
    op.create_index(
        "ix_ofsm_outbox_unpublished",
        "ofsm_outbox",
        ["account_id", "id"],
        sqlite_where=sa.text("published_at IS NULL"),
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "ofsm_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(255)),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("outcome", sa.String(16)),
        sa.Column("counts", JSONType, nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_ofsm_runs_kind_started", "ofsm_runs", ["kind", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_ofsm_outbox_unpublished", table_name="ofsm_outbox")
    op.drop_index("ix_ofsm_runs_kind_started", table_name="ofsm_runs")
    op.drop_table("ofsm_runs")
    # plain DROP COLUMN (SQLite >= 3.35 too): rebuilding ofsm_accounts would trip its foreign keys
    for name in ("last_error", "dead_at", "leased_until", "next_attempt_at", "attempts"):
        op.execute(f"ALTER TABLE ofsm_outbox DROP COLUMN {name}")
    op.execute("ALTER TABLE ofsm_accounts DROP COLUMN state_since")
