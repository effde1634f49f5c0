"""Outbox delivery on SQL: the statements behind ``SqlStore.claim_outbox`` and
the rest of the delivery state (Alembic 0005's columns).

A claim picks each account's *head* — its oldest unpublished message — when
that head is not dead, not backing off and not leased, and leases it, in one
transaction. On PostgreSQL the pick is ``FOR UPDATE SKIP LOCKED``: two
claimers never lock the same head, and the other messages of that account
are no candidates for either (an older one is unpublished), so a second
deliverer can never overtake the first within an account. A claimer whose
snapshot is older than a commit re-checks the locked row itself (the lease,
``published_at``) before taking it. SQLite has one writer (``BEGIN
IMMEDIATE``): claims simply queue.

The lease's end doubles as the claim's token: a failure is recorded only
while the row still carries the lease it was claimed with, so a deliverer
whose lease ran out (and whose message another one took) changes nothing.
A publication is recorded whatever the lease: the handler returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from onboarding_fsm.errors import InvalidInput
from onboarding_fsm.outbox import DeadLetter, Failure, OutboxBacklog, OutboxMessage

from .tables import outbox
from .timeconv import read_dt, read_json

o = outbox.c
_older = outbox.alias("older")
_unpublished = o.published_at.is_(None)
_pending = sa.and_(_unpublished, o.dead_at.is_(None))


def _behind(condition: sa.ColumnElement[bool]) -> sa.Exists:
    """An unpublished message of the same account, older, meeting ``condition``."""
    return sa.exists().where(
        _older.c.account_id == o.account_id, _older.c.id < o.id, _older.c.published_at.is_(None), condition
    )


def _dead_accounts() -> sa.Select[tuple[str]]:
    """Accounts with a dead letter: few, so counting what waits behind them starts from them."""
    return sa.select(_older.c.account_id).where(_older.c.published_at.is_(None), _older.c.dead_at.is_not(None))


def _leased(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(o.leased_until.is_not(None), o.leased_until > now)


def _ready(now: datetime) -> sa.ColumnElement[bool]:
    """Its account's head, pending, not backing off and not leased at ``now``: a claim takes it."""
    return sa.and_(
        _pending,
        sa.or_(o.next_attempt_at.is_(None), o.next_attempt_at <= now),
        sa.not_(_leased(now)),
        ~_behind(sa.true()),
    )


def claim(conn: Connection, now: datetime, lease_until: datetime, limit: int) -> list[OutboxMessage]:
    heads = (
        sa.select(o.id, o.account_id, o.kind, o.payload, o.created_at, o.attempts)
        .where(_ready(now))
        .order_by(o.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        heads = heads.with_for_update(skip_locked=True, of=outbox)
    picked = conn.execute(heads).all()
    if not picked:
        return []
    conn.execute(sa.update(outbox).where(o.id.in_([r.id for r in picked])).values(leased_until=lease_until))
    return [
        OutboxMessage(
            id=r.id,
            account_id=r.account_id,
            kind=r.kind,
            payload=read_json(r.payload),
            created_at=r.created_at,
            attempts=r.attempts,
            leased_until=lease_until,
        )
        for r in picked
    ]


def finish(conn: Connection, message: OutboxMessage, at: datetime) -> bool:
    done = conn.execute(
        sa.update(outbox)
        .where(o.id == message.id, _unpublished)
        .values(published_at=at, leased_until=None, next_attempt_at=None, dead_at=None)
    )
    return bool(done.rowcount)


def fail(conn: Connection, message: OutboxMessage, failure: Failure) -> bool:
    done = conn.execute(
        sa.update(outbox)
        .where(o.id == message.id, _unpublished, o.leased_until == message.leased_until)
        .values(
            attempts=failure.attempts,
            last_error=failure.last_error,
            next_attempt_at=failure.retry_at,
            dead_at=failure.dead_at,
            leased_until=None,
        )
    )
    return bool(done.rowcount)


def backlog(conn: Connection, now: datetime) -> OutboxBacklog:
    def count(*conditions: sa.ColumnElement[bool]) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(outbox).where(*conditions)).scalar_one())

    oldest = conn.execute(sa.select(sa.func.min(o.created_at)).where(_pending)).scalar()
    return OutboxBacklog(
        at=now,
        pending=count(_pending),
        due=count(_ready(now)),
        leased=count(_pending, _leased(now)),
        retrying=count(_pending, o.attempts > 0),
        blocked=count(_pending, o.account_id.in_(_dead_accounts()), _behind(_older.c.dead_at.is_not(None))),
        dead=count(_unpublished, o.dead_at.is_not(None)),
        oldest_pending_at=read_dt(oldest),
    )


def dead_letters(conn: Connection, limit: int, after: int) -> list[DeadLetter]:
    query = (
        sa.select(o.id, o.account_id, o.kind, o.created_at, o.attempts, o.dead_at, o.last_error)
        .where(_unpublished, o.dead_at.is_not(None), o.id > after)
        .order_by(o.id)
        .limit(limit)
    )
    return [
        DeadLetter(r.id, r.account_id, r.kind, r.created_at, r.attempts, r.dead_at, r.last_error)
        for r in conn.execute(query)
    ]


def redrive(conn: Connection, ids: Sequence[int] | None) -> list[int]:
    """Raises ``InvalidInput`` inside the transaction (which rolls it back) when an id is not a dead letter."""
    dead = sa.and_(_unpublished, o.dead_at.is_not(None))
    where = dead if ids is None else sa.and_(dead, o.id.in_(list(ids)))
    done = sorted(
        conn.execute(
            sa.update(outbox)
            .where(where)
            .values(dead_at=None, attempts=0, next_attempt_at=None, leased_until=None)
            .returning(o.id)
        ).scalars()
    )
    if ids is not None and done != sorted(set(ids)):
        missing = sorted(set(ids) - set(done))
        raise InvalidInput(f"not dead letters (unknown, pending or delivered): {missing}; nothing re-driven")
    return done
