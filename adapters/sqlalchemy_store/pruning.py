"""Retention on SQL: the statements behind ``SqlStore.prune``.

Both work in batches of ``BATCH`` rows, each its own short transaction, so
pruning a large backlog never holds SQLite's one writer (or PostgreSQL row
locks) for long, and a prune cut short has still done part of its work.
Inbox rows are emptied, never deleted: their event ids dedupe Stripe's
retries. Rate-limit rows of idle budgets are deleted: a budget whose
theoretical arrival time has passed is full again, exactly as with no row.
The audit table is not named here at all.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from .tables import outbox, rate_limits, webhook_events

BATCH = 5000
EMPTY: dict[str, object] = {}


def delete_published(before: datetime, batch: int = BATCH) -> sa.Delete:
    """Outbox messages created and published before ``before``; pending ones
    (and dead letters) are never deleted. Cut on ``created_at`` too, the
    engine's time the audit cross-check compares with: a deliverer whose clock
    runs behind must not delete an announcement still inside retention."""
    o = outbox.c
    ids = (
        sa.select(o.id)
        .where(o.published_at.is_not(None), o.published_at < before, o.created_at < before)
        .order_by(o.id)
        .limit(batch)
    )
    return sa.delete(outbox).where(o.id.in_(ids.scalar_subquery()))


def empty_payloads(before: datetime, batch: int = BATCH) -> sa.Update:
    """Inbox rows received before ``before`` whose payload is not empty yet (so a
    second prune rewrites nothing)."""
    w = webhook_events.c
    ids = (
        sa.select(w.event_id)
        .where(w.received_at < before, sa.cast(w.payload, sa.Text) != "{}")
        .order_by(w.event_id)
        .limit(batch)
    )
    return sa.update(webhook_events).where(w.event_id.in_(ids.scalar_subquery())).values(payload=EMPTY)


def delete_idle_limits(before: datetime, batch: int = BATCH) -> sa.Delete:
    """Rate-limit budgets idle since before ``before`` (their theoretical arrival
    time passed then): deleting one changes no answer, and keys of accounts and
    holders seen once do not pile up."""
    r = rate_limits.c
    names = sa.select(r.name).where(r.tat < before.timestamp()).order_by(r.name).limit(batch)
    return sa.delete(rate_limits).where(r.name.in_(names.scalar_subquery()))
