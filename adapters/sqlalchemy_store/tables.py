"""The schema, as SQLAlchemy Core tables (DESIGN §4).

The Alembic migrations create exactly this; a test compares them. Times are
stored as UTC (``UTCDateTime``) so SQLite and PostgreSQL hand back the same
aware datetimes, which the audit hash chain depends on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from .timeconv import read_dt


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on every backend (SQLite has no zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused by the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return read_dt(value)


JSONType = JSON().with_variant(JSONB(), "postgresql")
metadata = MetaData()

# 0006: the rows each kind of ``attention`` lists, as the partial indexes' predicates; a query
# repeats the same text (SQLite uses a partial index only when the query has its terms verbatim).
# Frozen as 0006 wrote them, not built from ``attention.WAITING``: Alembic does not compare an
# index's WHERE, so a change here needs a revision (tests/contract/test_migrations.py compares them).
WAITING_ROWS = text("state IN ('created', 'link_issued', 'returned_incomplete', 'past_due')")
EVENTUALLY_DUE_ROWS = text("state = 'verified' AND eventually_due_left > 0")
# disabled (every detached account is) waits on nobody: nothing announced can be collected
FUTURE_ROWS = text("future_due > 0 AND state <> 'disabled'")
UNFIRED = text("fired_at IS NULL")

accounts = Table(
    "ofsm_accounts",
    metadata,
    Column("stripe_account_id", String(64), primary_key=True),
    Column("platform_ref", String(200), nullable=False, unique=True),
    Column("state", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("country", String(2)),
    Column("account_type", String(32)),
    Column("requirement_collection", String(32)),
    Column("stripe_dashboard", String(32)),
    Column("requested_capabilities", JSONType, nullable=False),
    # normalized snapshot: requirement field names, flags, capabilities; never identity data
    Column("snapshot", JSONType, nullable=False),
    Column("charges_enabled", Boolean, nullable=False),
    Column("payouts_enabled", Boolean, nullable=False),
    Column("details_submitted", Boolean, nullable=False),
    Column("deauthorized", Boolean, nullable=False),
    Column("watermark", UTCDateTime()),
    # last link's parameters and expiry; never its URL (a bearer credential)
    Column("link_params", JSONType),
    Column("link_issued_at", UTCDateTime()),
    Column("link_expires_at", UTCDateTime()),
    Column("audit_seq", Integer, nullable=False),
    Column("audit_head", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("synced_at", UTCDateTime(), nullable=False),
    # when we last fetched it ourselves (our clock; ``watermark`` is Stripe's)
    Column("fetched_at", UTCDateTime()),
    # when reconciliation first could not see it (detached only once confirmed later)
    Column("inaccessible_since", UTCDateTime()),
    # 0005: when it entered its current state (time-in-state metrics, "stuck" views)
    Column("state_since", UTCDateTime()),
    # 0006: from the snapshot (``attention.marks``): eventually_due not currently_due,
    # future_requirements owed (currently_due or eventually_due), and their deadline
    Column("eventually_due_left", Integer, nullable=False, server_default="0"),
    Column("future_due", Integer, nullable=False, server_default="0"),
    Column("future_deadline", UTCDateTime()),
    # no index on synced_at: reconciliation scans rarely, ingestion writes it every event
    Index("ix_ofsm_accounts_state", "state"),
    # 0006: one per kind of ``attention``, each holding only the rows it lists, in its order
    Index("ix_ofsm_accounts_waiting", "state_since", "stripe_account_id", sqlite_where=WAITING_ROWS,
          postgresql_where=WAITING_ROWS),
    Index("ix_ofsm_accounts_eventually_due", "stripe_account_id", sqlite_where=EVENTUALLY_DUE_ROWS,
          postgresql_where=EVENTUALLY_DUE_ROWS),
    Index("ix_ofsm_accounts_future", "future_deadline", "stripe_account_id", sqlite_where=FUTURE_ROWS,
          postgresql_where=FUTURE_ROWS),
)  # fmt: skip

transitions = Table(
    "ofsm_transitions",
    metadata,
    Column("account_id", String(64), ForeignKey("ofsm_accounts.stripe_account_id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("from_state", String(32)),
    Column("to_state", String(32), nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("source", String(32), nullable=False),
    Column("source_ref", String(255)),
    Column("actor", String(255)),
    Column("reason", Text, nullable=False),
    Column("delta", JSONType, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("stripe_time", UTCDateTime()),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # 0004: Stripe's request id, the run id, the hashed layout, the key's id,
    # and the checkpoint that sealed it (NULL until sealed; not hashed)
    Column("request_id", String(255)),
    Column("run_id", String(64)),
    Column("layout", Integer, nullable=False, server_default="1"),
    Column("key_id", String(16)),
    Column("checkpoint", BigInteger().with_variant(Integer, "sqlite")),
    # 0004: time order as the auditor's queries page it (was ``at`` alone)
    Index("ix_ofsm_transitions_time", "at", "account_id", "seq"),
    # 0004: sealing picks unsealed records in chain order; exports read them by checkpoint
    Index("ix_ofsm_transitions_checkpoint", "checkpoint", "account_id", "seq"),
)

webhook_events = Table(
    "ofsm_webhook_events",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("type", String(255), nullable=False),
    Column("account_id", String(64)),
    Column("created", UTCDateTime(), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text),
    # identity data stripped before storing (onboarding_fsm.redact)
    Column("payload", JSONType, nullable=False),
    # 0004: the audit record it caused (seq on its account), for cross-checks
    Column("transition_seq", Integer),
    Index("ix_ofsm_webhook_events_account", "account_id", "created"),
    Index("ix_ofsm_webhook_events_received", "received_at", "event_id"),
)

outbox = Table(
    "ofsm_outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", String(64), nullable=False),
    Column("seq", Integer),
    Column("kind", String(64), nullable=False),
    Column("payload", JSONType, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("published_at", UTCDateTime()),
    # 0005: delivery to the configured handler (at least once, in order per account)
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime()),  # NULL: as soon as possible
    Column("leased_until", UTCDateTime()),  # a deliverer holds it until then
    Column("dead_at", UTCDateTime()),  # dead-lettered: attempts exhausted, waits for a re-drive
    Column("last_error", Text),  # the handler's error type and message (no payload)
    # 0004: the audit cross-check joins transitions to their announcements
    Index("ix_ofsm_outbox_account_seq", "account_id", "seq"),
    # 0005: "is it its account's oldest undelivered message?" reads only undelivered rows
    Index(
        "ix_ofsm_outbox_unpublished",
        "account_id",
        "id",
        sqlite_where=text("published_at IS NULL"),
        postgresql_where=text("published_at IS NULL"),
    ),
    Index(
        "ix_ofsm_outbox_pending",
        "id",
        sqlite_where=text("published_at IS NULL"),
        postgresql_where=text("published_at IS NULL"),
    ),
)

timers = Table(
    "ofsm_timers",
    metadata,
    Column("account_id", String(64), ForeignKey("ofsm_accounts.stripe_account_id"), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("due_at", UTCDateTime(), primary_key=True),
    Column("fired_at", UTCDateTime()),
    # when a sweep next looks at it: ``due_at``, later while leased or backing off
    Column("wake_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Index(
        "ix_ofsm_timers_wake",
        "wake_at",
        sqlite_where=text("fired_at IS NULL"),
        postgresql_where=text("fired_at IS NULL"),
    ),
    # 0006: overdue timers (due long ago, whenever they wake) in due order: ``attention``, ``status``
    Index("ix_ofsm_timers_due", "due_at", "account_id", sqlite_where=UNFIRED, postgresql_where=UNFIRED),
)

creation_intents = Table(
    "ofsm_creation_intents",
    metadata,
    Column("platform_ref", String(200), primary_key=True),
    Column("idempotency_key", String(255), nullable=False),
    Column("requested_at", UTCDateTime(), nullable=False),
)

audit_checkpoints = Table(
    "ofsm_audit_checkpoints",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("records", Integer, nullable=False),
    Column("covered", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("key_id", String(16)),
)

runs = Table(
    "ofsm_runs",
    metadata,
    # 0005: every sweep, reconcile, checkpoint, prune and outbox run, for `status` and metrics
    Column("run_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("source", String(32), nullable=False),
    Column("actor", String(255)),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("outcome", String(16)),  # ok | failed | guarded
    Column("counts", JSONType, nullable=False),  # e.g. {"transitions": 3, "drift.synced": 1}
    Column("detail", Text),
    Index("ix_ofsm_runs_kind_started", "kind", "started_at"),
)

rate_limits = Table(
    "ofsm_rate_limits",
    metadata,
    Column("name", String(64), primary_key=True),
    # GCRA's theoretical arrival time, unix seconds
    Column("tat", Float(precision=53), nullable=False),
)
