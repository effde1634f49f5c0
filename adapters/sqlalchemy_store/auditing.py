"""The auditor's reads and the checkpoint seal, on SQLAlchemy Core.

Every query is keyset-paged on an index (``at`` for time ranges, the
primary key for chain order, ``received_at`` for the inbox) and streamed by
the caller one page at a time, so memory stays flat over 10^6 records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from onboarding_fsm.audit import Transition
from onboarding_fsm.checkpoints import (
    CHECKPOINT_KIND,
    Anchor,
    AuditEvidence,
    Checkpoint,
    Problem,
    announcement,
    covered,
)
from onboarding_fsm.events import InboxEntry
from onboarding_fsm.queries import InboxQuery, Key, Order, TransitionQuery

from . import rows
from .tables import accounts, audit_checkpoints, outbox, transitions, webhook_events
from .timeconv import read_json

t = transitions.c
#: PostgreSQL: one sealer at a time (any constant; scoped to the transaction)
SEAL_LOCK = 0x0F5A_A0D1


def transitions_page(conn: Connection, query: TransitionQuery, limit: int, after: Key | None) -> list[Transition]:
    stmt = sa.select(transitions)
    for column, value in (
        (t.account_id, query.account_id),
        (t.from_state, query.from_state),
        (t.to_state, query.to_state),
        (t.trigger, query.trigger),
        (t.source, query.source),
        (t.actor, query.actor),
    ):
        if value is not None:
            stmt = stmt.where(column == str(value))
    if query.since is not None:
        stmt = stmt.where(t.at >= query.since)
    if query.until is not None:
        stmt = stmt.where(t.at < query.until)
    if query.order is Order.CHAIN:
        stmt = stmt.order_by(t.account_id, t.seq)
        if after is not None:
            stmt = stmt.where(sa.tuple_(t.account_id, t.seq) > sa.tuple_(*after))
    else:
        stmt = stmt.order_by(t.at, t.account_id, t.seq)  # ix_ofsm_transitions_time, in order
        if after is not None:
            stmt = stmt.where(sa.tuple_(t.at, t.account_id, t.seq) > sa.tuple_(*after))
    return [rows.transition(r._mapping) for r in conn.execute(stmt.limit(limit))]


def latest_records(
    conn: Connection, at: datetime, account_id: str | None, limit: int, after: str | None
) -> tuple[list[Transition], str | None]:
    """Each account's last record at or before ``at``, for one page of
    account ids; and the page's last id (None: no more accounts), which is
    the next cursor whether or not those accounts existed yet at ``at``."""
    a = accounts.c
    ids = sa.select(a.stripe_account_id).order_by(a.stripe_account_id).limit(limit)
    if account_id is not None:
        ids = ids.where(a.stripe_account_id == account_id)
    if after is not None:
        ids = ids.where(a.stripe_account_id > after)
    page = [r[0] for r in conn.execute(ids)]
    if not page:
        return [], None
    latest = (
        sa.select(t.account_id, sa.func.max(t.seq).label("seq"))
        .where(t.account_id.in_(page), t.at <= at)
        .group_by(t.account_id)
        .subquery()
    )
    stmt = (
        sa.select(transitions)
        .join(latest, sa.and_(t.account_id == latest.c.account_id, t.seq == latest.c.seq))
        .order_by(t.account_id)
    )
    found = [rows.transition(r._mapping) for r in conn.execute(stmt)]
    return found, page[-1] if len(page) == limit else None


def inbox_page(conn: Connection, query: InboxQuery, limit: int, after: Key | None) -> list[InboxEntry]:
    w = webhook_events.c
    stmt = sa.select(webhook_events).order_by(w.received_at.desc(), w.event_id.desc())
    for column, value in ((w.account_id, query.account_id), (w.type, query.type), (w.outcome, query.outcome)):
        if value is not None:
            stmt = stmt.where(column == str(value))
    if query.since is not None:
        stmt = stmt.where(w.received_at >= query.since)
    if query.until is not None:
        stmt = stmt.where(w.received_at < query.until)
    if after is not None:
        received, event_id = after
        stmt = stmt.where(sa.or_(w.received_at < received, sa.and_(w.received_at == received, w.event_id < event_id)))
    return [rows.inbox_entry(r._mapping) for r in conn.execute(stmt.limit(limit))]


def checkpoints_page(conn: Connection, after: int, limit: int) -> list[Checkpoint]:
    c = audit_checkpoints.c
    stmt = sa.select(audit_checkpoints).where(c.seq > after).order_by(c.seq).limit(limit)
    return [rows.checkpoint(r._mapping) for r in conn.execute(stmt)]


def last_checkpoint(conn: Connection) -> Checkpoint | None:
    c = audit_checkpoints.c
    row = conn.execute(sa.select(audit_checkpoints).order_by(c.seq.desc()).limit(1)).first()
    return rows.checkpoint(row._mapping) if row is not None else None


def sealed_records(conn: Connection, up_to: int, limit: int, after: Key | None) -> list[Transition]:
    """Records sealed by checkpoints 1..``up_to``, by (checkpoint, account, seq)."""
    stmt = sa.select(transitions).where(t.checkpoint.is_not(None), t.checkpoint <= up_to)
    if after is not None:
        stmt = stmt.where(sa.tuple_(t.checkpoint, t.account_id, t.seq) > sa.tuple_(*after))
    stmt = stmt.order_by(t.checkpoint, t.account_id, t.seq).limit(limit)
    return [rows.transition(r._mapping) for r in conn.execute(stmt)]


def unsealed_records(conn: Connection, up_to: int, limit: int, after: Key | None) -> list[Transition]:
    """Records no checkpoint up to ``up_to`` sealed, by (account, seq); as unsealed."""
    stmt = sa.select(transitions).where(sa.or_(t.checkpoint.is_(None), t.checkpoint > up_to))
    if after is not None:
        stmt = stmt.where(sa.tuple_(t.account_id, t.seq) > sa.tuple_(*after))
    stmt = stmt.order_by(t.account_id, t.seq).limit(limit)
    return [rows.transition(r._mapping, unsealed=True) for r in conn.execute(stmt)]


def announced(conn: Connection, since: datetime) -> list[tuple[int, str]]:
    """The checkpoint heads the outbox published since ``since`` (seq, hash)."""
    o = outbox.c
    stmt = sa.select(o.payload).where(o.kind == CHECKPOINT_KIND, o.created_at >= since)
    out = []
    for (payload,) in conn.execute(stmt):
        data = read_json(payload)
        if isinstance(data, dict) and isinstance(data.get("seq"), int) and isinstance(data.get("hash"), str):
            out.append((data["seq"], data["hash"]))
    return out


def seal(
    conn: Connection,
    make: Callable[[Checkpoint | None, list[Anchor]], Checkpoint],
    limit: int,
    keyed_only: bool,
) -> Checkpoint | None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SEAL_LOCK)))
    c = audit_checkpoints.c
    row = conn.execute(sa.select(audit_checkpoints).order_by(c.seq.desc()).limit(1)).first()
    last = rows.checkpoint(row._mapping) if row is not None else None
    number = (last.seq if last else 0) + 1
    # in chain order: an account's records are sealed oldest first, so its
    # seqs never go down from one checkpoint to the next
    pick = sa.select(t.account_id, t.seq).where(t.checkpoint.is_(None)).order_by(t.account_id, t.seq)
    if keyed_only:
        pick = pick.where(t.key_id.is_not(None))
    taken = conn.execute(
        sa.update(transitions)
        .where(sa.tuple_(t.account_id, t.seq).in_(pick.limit(limit)))
        .values(checkpoint=number)
        .returning(t.account_id, t.seq, t.hash)
    ).all()
    if not taken:
        return None
    checkpoint = make(last, [Anchor(r.account_id, r.seq, r.hash) for r in taken])
    if checkpoint.seq != number:
        raise AssertionError("a checkpoint must follow the last one")
    conn.execute(sa.insert(audit_checkpoints).values(**_checkpoint_row(checkpoint)))
    conn.execute(
        sa.insert(outbox).values(
            account_id="",  # about no one account: the whole trail's new head
            seq=None,
            kind=CHECKPOINT_KIND,
            payload=announcement(checkpoint),
            created_at=checkpoint.at,
        )
    )
    return checkpoint


def _checkpoint_row(cp: Checkpoint) -> dict[str, Any]:
    return {
        "seq": cp.seq,
        "at": cp.at,
        "records": cp.records,
        "covered": cp.covered,
        "prev_hash": cp.prev_hash,
        "hash": cp.hash,
        "key_id": cp.key_id,
    }


def sealed(conn: Connection, up_to: int) -> Iterator[tuple[int, str, int]]:
    """Streamed by checkpoint; each checkpoint's anchors (at most one seal's
    batch) are sorted here, in code-point order as ``checkpoints.make`` did:
    the database's collation must not decide a digest."""
    stmt = (
        sa.select(t.checkpoint, t.account_id, t.seq, t.hash)
        .where(t.checkpoint.is_not(None), t.checkpoint <= up_to)
        .order_by(t.checkpoint)
        .execution_options(stream_results=True, yield_per=5000)
    )
    current: int | None = None
    group: list[Anchor] = []
    for row in conn.execute(stmt):
        if row.checkpoint != current:
            if current is not None:
                yield current, covered(sorted(group)), len(group)
            current, group = row.checkpoint, []
        group.append(Anchor(row.account_id, row.seq, row.hash))
    if current is not None:
        yield current, covered(sorted(group)), len(group)


def evidence(conn: Connection, outbox_since: datetime, limit: int) -> AuditEvidence:
    unsealed = sa.select(sa.func.count()).where(t.checkpoint.is_(None))
    unkeyed = unsealed.where(t.key_id.is_(None))
    problems: list[Problem] = []
    for check in (_events_without_record, _outbox_without_record, _records_without_outbox, _records_without_account):
        problems.extend(check(conn, outbox_since, limit - len(problems)))
        if len(problems) >= limit:
            break
    return AuditEvidence(conn.execute(unsealed).scalar_one(), conn.execute(unkeyed).scalar_one(), tuple(problems))


def _events_without_record(conn: Connection, since: datetime, limit: int) -> list[Problem]:
    e = webhook_events.c
    stmt = (
        sa.select(e.event_id, e.account_id, e.transition_seq)
        .select_from(
            webhook_events.outerjoin(transitions, sa.and_(t.account_id == e.account_id, t.seq == e.transition_seq))
        )
        .where(e.transition_seq.is_not(None), sa.or_(t.seq.is_(None), t.source_ref != e.event_id))
        .limit(limit)
    )
    return [
        Problem("inbox", f"event {r.event_id}", f"applied as {r.account_id}#{r.transition_seq}, which is not there")
        for r in conn.execute(stmt)
    ]


def _outbox_without_record(conn: Connection, since: datetime, limit: int) -> list[Problem]:
    o = outbox.c
    stmt = (
        sa.select(o.id, o.account_id, o.seq)
        .select_from(outbox.outerjoin(transitions, sa.and_(t.account_id == o.account_id, t.seq == o.seq)))
        .where(o.seq.is_not(None), o.kind == "transition", t.seq.is_(None))
        .limit(limit)
    )
    return [
        Problem("outbox", f"message {r.id}", f"announces {r.account_id}#{r.seq}, which is not there")
        for r in conn.execute(stmt)
    ]


def _records_without_outbox(conn: Connection, since: datetime, limit: int) -> list[Problem]:
    o = outbox.c
    stmt = (
        sa.select(t.account_id, t.seq)
        .select_from(transitions.outerjoin(outbox, sa.and_(o.account_id == t.account_id, o.seq == t.seq)))
        .where(t.at >= since, o.id.is_(None))
        .limit(limit)
    )
    return [
        Problem("outbox", f"{r.account_id}#{r.seq}", "recorded within retention but never announced")
        for r in conn.execute(stmt)
    ]


def _records_without_account(conn: Connection, since: datetime, limit: int) -> list[Problem]:
    a = accounts.c
    stmt = (
        sa.select(t.account_id)
        .select_from(transitions.outerjoin(accounts, a.stripe_account_id == t.account_id))
        .where(a.stripe_account_id.is_(None))
        .group_by(t.account_id)
        .limit(limit)
    )
    return [
        Problem("account", r.account_id, "audit records of an account row that is gone") for r in conn.execute(stmt)
    ]
