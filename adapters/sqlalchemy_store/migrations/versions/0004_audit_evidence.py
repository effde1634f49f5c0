"""Tamper evidence and causes: checkpoints, request and run ids, keyed hashes.

* ``ofsm_transitions``: ``request_id`` (Stripe's, for API-caused records),
  ``run_id`` (the sweep or reconcile run), ``layout`` (the hashed form: 1 for
  every existing record, which keeps its hash; new records are 2),
  ``key_id`` (the audit key a record's HMAC is under; NULL: plain SHA-256),
  ``checkpoint`` (the checkpoint that sealed it; NULL until sealed). No
  existing record is rewritten or re-hashed: the new columns are added with
  NULL / 1, and the first checkpoint seals the old records as they are.
* The trail stays append-only (database triggers); the one update now
  allowed is sealing: an unsealed record's ``checkpoint`` set once.
* ``ix_ofsm_transitions_at`` becomes ``ix_ofsm_transitions_time`` on
  ``(at, account_id, seq)``: the auditor's time-ordered pages read it in order.
* ``ofsm_audit_checkpoints``: the global checkpoint chain, append-only by trigger.
* The downgrade refuses while any record or checkpoint of the new layout
  exists: it would drop what their hashes cover.
* ``ofsm_webhook_events.transition_seq``: the record an applied event caused
  (inbox cross-check), and an index on ``received_at`` for inbox queries and
  pruning; an index on ``ofsm_outbox (account_id, seq)`` for the outbox
  cross-check.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from adapters.sqlalchemy_store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")
#: every column of ofsm_transitions at this revision but ``checkpoint``
_SEALED_COLUMNS = (
    "account_id", "seq", "from_state", "to_state", "trigger", "source", "source_ref", "actor", "reason", "delta",
    "at", "stripe_time", "prev_hash", "hash", "request_id", "run_id", "layout", "key_id",
)  # fmt: skip
_REFUSAL = "ofsm_transitions is append-only"


def _append_only(allow_sealing: bool) -> None:
    """The trail stays append-only; from 0004 one update is allowed: sealing
    an unsealed record (its ``checkpoint`` from NULL to a number, nothing else)."""
    if op.get_bind().dialect.name == "postgresql":
        body = f"BEGIN RAISE EXCEPTION '{_REFUSAL}'; END"
        if allow_sealing:
            body = (
                "BEGIN IF TG_OP = 'UPDATE' AND OLD.checkpoint IS NULL AND NEW.checkpoint IS NOT NULL "
                "AND to_jsonb(NEW) - 'checkpoint' = to_jsonb(OLD) - 'checkpoint' THEN RETURN NEW; END IF; "
                f"RAISE EXCEPTION '{_REFUSAL}'; END"
            )
        op.execute(f"CREATE OR REPLACE FUNCTION ofsm_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ {body} $$")
        return
    op.execute("DROP TRIGGER IF EXISTS ofsm_transitions_no_update")
    op.execute("DROP TRIGGER IF EXISTS ofsm_transitions_no_delete")
    when = ""
    if allow_sealing:
        same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _SEALED_COLUMNS)
        when = f"WHEN NOT (OLD.checkpoint IS NULL AND NEW.checkpoint IS NOT NULL AND {same}) "
    op.execute(
        f"CREATE TRIGGER ofsm_transitions_no_update BEFORE UPDATE ON ofsm_transitions {when}"
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END"
    )
    op.execute(
        "CREATE TRIGGER ofsm_transitions_no_delete BEFORE DELETE ON ofsm_transitions "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END"
    )


def upgrade() -> None:
    op.add_column("ofsm_transitions", sa.Column("request_id", sa.String(255)))
    op.add_column("ofsm_transitions", sa.Column("run_id", sa.String(64)))
    op.add_column("ofsm_transitions", sa.Column("layout", sa.Integer, nullable=False, server_default="1"))
    op.add_column("ofsm_transitions", sa.Column("key_id", sa.String(16)))
    op.add_column("ofsm_transitions", sa.Column("checkpoint", _BIGINT))
    op.create_index("ix_ofsm_transitions_checkpoint", "ofsm_transitions", ["checkpoint", "account_id", "seq"])
    op.drop_index("ix_ofsm_transitions_at", table_name="ofsm_transitions")
    op.create_index("ix_ofsm_transitions_time", "ofsm_transitions", ["at", "account_id", "seq"])
    _append_only(allow_sealing=True)
    op.create_table(
        "ofsm_audit_checkpoints",
        sa.Column("seq", _BIGINT, primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("covered", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(16)),
    )
    _checkpoints_append_only()
    op.add_column("ofsm_webhook_events", sa.Column("transition_seq", sa.Integer))
    op.create_index("ix_ofsm_webhook_events_received", "ofsm_webhook_events", ["received_at", "event_id"])
    op.create_index("ix_ofsm_outbox_account_seq", "ofsm_outbox", ["account_id", "seq"])


def _checkpoints_append_only() -> None:
    refusal = "ofsm_audit_checkpoints is append-only"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION ofsm_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{refusal}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER ofsm_checkpoints_append_only BEFORE UPDATE OR DELETE ON ofsm_audit_checkpoints "
            "FOR EACH ROW EXECUTE FUNCTION ofsm_checkpoints_append_only()"
        )
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER ofsm_checkpoints_no_{action.lower()} BEFORE {action} ON ofsm_audit_checkpoints "
            f"BEGIN SELECT RAISE(ABORT, '{refusal}'); END"
        )


def _refuse_losing_evidence() -> None:
    """Going back to 0003 drops request and run ids, layouts, keys and
    checkpoints: every record written since 0004 would then fail its hash.
    Refused while there is any; an empty or pre-0004 trail goes back freely."""
    bind = op.get_bind()
    newer = bind.execute(sa.text("SELECT count(*) FROM ofsm_transitions WHERE layout > 1 OR key_id IS NOT NULL"))
    sealed = bind.execute(sa.text("SELECT count(*) FROM ofsm_audit_checkpoints"))
    records, checkpoints = newer.scalar_one(), sealed.scalar_one()
    if records or checkpoints:
        raise RuntimeError(
            f"refusing to downgrade below 0004: {records} audit record(s) written in the 0004 layout and "
            f"{checkpoints} checkpoint(s) would lose what their hashes cover (restore a backup instead)"
        )


def downgrade() -> None:
    _refuse_losing_evidence()
    op.drop_index("ix_ofsm_outbox_account_seq", table_name="ofsm_outbox")
    op.drop_index("ix_ofsm_webhook_events_received", table_name="ofsm_webhook_events")
    with op.batch_alter_table("ofsm_webhook_events") as batch:
        batch.drop_column("transition_seq")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ofsm_checkpoints_append_only ON ofsm_audit_checkpoints")
        op.execute("DROP FUNCTION IF EXISTS ofsm_checkpoints_append_only()")
    op.drop_table("ofsm_audit_checkpoints")
    op.drop_index("ix_ofsm_transitions_checkpoint", table_name="ofsm_transitions")
    op.drop_index("ix_ofsm_transitions_time", table_name="ofsm_transitions")
    op.create_index("ix_ofsm_transitions_at", "ofsm_transitions", ["at"])
    with op.batch_alter_table("ofsm_transitions") as batch:
        for name in ("checkpoint", "key_id", "layout", "run_id", "request_id"):
            batch.drop_column(name)
    _append_only(allow_sealing=False)  # SQLite's batch mode rebuilt the table without its triggers
