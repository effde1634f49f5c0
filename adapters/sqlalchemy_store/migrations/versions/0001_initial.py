"""Initial schema: accounts, append-only audit chain, webhook inbox, outbox, due timers.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from adapters.sqlalchemy_store.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "ofsm_accounts",
        sa.Column("stripe_account_id", sa.String(64), primary_key=True),
        sa.Column("platform_ref", sa.String(200), nullable=False, unique=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("livemode", sa.Boolean, nullable=False),
        sa.Column("country", sa.String(2)),
        sa.Column("account_type", sa.String(32)),
        sa.Column("requirement_collection", sa.String(32)),
        sa.Column("stripe_dashboard", sa.String(32)),
        sa.Column("requested_capabilities", JSONType, nullable=False),
        sa.Column("snapshot", JSONType, nullable=False),
        sa.Column("charges_enabled", sa.Boolean, nullable=False),
        sa.Column("payouts_enabled", sa.Boolean, nullable=False),
        sa.Column("details_submitted", sa.Boolean, nullable=False),
        sa.Column("deauthorized", sa.Boolean, nullable=False),
        sa.Column("watermark", UTCDateTime()),
        sa.Column("link_params", JSONType),
        sa.Column("link_issued_at", UTCDateTime()),
        sa.Column("link_expires_at", UTCDateTime()),
        sa.Column("audit_seq", sa.Integer, nullable=False),
        sa.Column("audit_head", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_ofsm_accounts_state", "ofsm_accounts", ["state"])

    op.create_table(
        "ofsm_transitions",
        sa.Column("account_id", sa.String(64), sa.ForeignKey("ofsm_accounts.stripe_account_id"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("from_state", sa.String(32)),
        sa.Column("to_state", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_ref", sa.String(255)),
        sa.Column("actor", sa.String(255)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("delta", JSONType, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("stripe_time", UTCDateTime()),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_ofsm_transitions_at", "ofsm_transitions", ["at"])

    op.create_table(
        "ofsm_webhook_events",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("account_id", sa.String(64)),
        sa.Column("created", UTCDateTime(), nullable=False),
        sa.Column("livemode", sa.Boolean, nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("payload", JSONType, nullable=False),
    )
    op.create_index("ix_ofsm_webhook_events_account", "ofsm_webhook_events", ["account_id", "created"])

    op.create_table(
        "ofsm_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime()),
    )
    op.create_index(
        "ix_ofsm_outbox_pending",
        "ofsm_outbox",
        ["id"],
        sqlite_where=sa.text("published_at IS NULL"),
        postgresql_where=sa.text("published_at IS NULL"),
    )

    op.create_table(
        "ofsm_timers",
        sa.Column("account_id", sa.String(64), sa.ForeignKey("ofsm_accounts.stripe_account_id"), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("due_at", UTCDateTime(), primary_key=True),
        sa.Column("fired_at", UTCDateTime()),
    )
    op.create_index(
        "ix_ofsm_timers_due",
        "ofsm_timers",
        ["due_at"],
        sqlite_where=sa.text("fired_at IS NULL"),
        postgresql_where=sa.text("fired_at IS NULL"),
    )

    # the audit trail is append-only, enforced by the database itself
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION ofsm_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'ofsm_transitions is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER ofsm_transitions_append_only BEFORE UPDATE OR DELETE ON ofsm_transitions "
            "FOR EACH ROW EXECUTE FUNCTION ofsm_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER ofsm_transitions_no_{action.lower()} BEFORE {action} ON ofsm_transitions "
                "BEGIN SELECT RAISE(ABORT, 'ofsm_transitions is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ofsm_transitions_append_only ON ofsm_transitions")
        op.execute("DROP FUNCTION IF EXISTS ofsm_append_only()")
    for name in ("ofsm_timers", "ofsm_outbox", "ofsm_webhook_events", "ofsm_transitions", "ofsm_accounts"):
        op.drop_table(name)
