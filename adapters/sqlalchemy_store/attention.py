"""The store's side of ``engine.attention``: one indexed query per kind.

Each kind reads only its own partial index (0006), in the index's order, and
stops at the page's end, so a page costs the same at 10^5 accounts as at 10:

* ``timer_overdue``: ``ix_ofsm_timers_due`` (unfired, by due time); a timer
  is listed only when no earlier unfired timer of its account exists (a
  primary-key probe), so each account appears once, for its earliest;
* ``stuck``: ``ix_ofsm_accounts_waiting`` (waiting states, by ``state_since``);
* ``future_requirements``: ``ix_ofsm_accounts_future`` (owing future
  fields, not disabled) by deadline, then those with no deadline, by id;
* ``eventually_due``: ``ix_ofsm_accounts_eventually_due`` by id.

Every row's ``key`` is ``(time, account id)``: the time it is sorted by
(``NO_DEADLINE`` for a future requirement without one; ``UNSORTED`` where
only the id orders).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from onboarding_fsm.attention import AttentionKind, AttentionQuery, Flagged
from onboarding_fsm.states import State
from onboarding_fsm.timers import TimerKind

from .tables import EVENTUALLY_DUE_ROWS, FUTURE_ROWS, UNFIRED, WAITING_ROWS, accounts, timers
from .timeconv import read_dt

#: the key time of rows ordered by id alone
UNSORTED = datetime(1970, 1, 1, tzinfo=UTC)
#: the key time of future requirements with no deadline: after every deadline
NO_DEADLINE = datetime(9999, 12, 31, tzinfo=UTC)

Key = tuple[datetime, str]
a = accounts.c
#: the account columns, unbound, for statements whose FROM names an index (``_from``)
col_id, col_ref, col_state, since, left, owed, deadline = (
    sa.column(c.name, c.type)
    for c in (a.stripe_account_id, a.platform_ref, a.state, a.state_since, a.eventually_due_left, a.future_due,
              a.future_deadline)
)  # fmt: skip
WAITING, EVENTUALLY_DUE, FUTURE = (
    "ix_ofsm_accounts_waiting",
    "ix_ofsm_accounts_eventually_due",
    "ix_ofsm_accounts_future",
)


def flagged(
    conn: Connection, kind: AttentionKind, query: AttentionQuery, limit: int, after: Key | None
) -> list[Flagged]:
    if kind is AttentionKind.TIMER_OVERDUE:
        return _overdue(conn, query.overdue_before, limit, after)
    if kind is AttentionKind.STUCK:
        return _stuck(conn, query.stuck_before, limit, after)
    if kind is AttentionKind.FUTURE_REQUIREMENTS:
        return _future(conn, limit, after)
    return _eventually_due(conn, limit, after)


def counts(conn: Connection, kinds: Sequence[AttentionKind], query: AttentionQuery) -> dict[AttentionKind, int]:
    t = timers.c
    count = sa.select(sa.func.count())
    statements = {
        AttentionKind.TIMER_OVERDUE: sa.select(sa.func.count(sa.distinct(t.account_id))).where(
            UNFIRED, t.due_at < query.overdue_before
        ),
        AttentionKind.STUCK: count.select_from(_from(conn, WAITING)).where(WAITING_ROWS, since < query.stuck_before),
        AttentionKind.FUTURE_REQUIREMENTS: count.select_from(_from(conn, FUTURE)).where(FUTURE_ROWS),
        AttentionKind.EVENTUALLY_DUE: count.select_from(_from(conn, EVENTUALLY_DUE)).where(EVENTUALLY_DUE_ROWS),
    }
    return {kind: int(conn.execute(statements[kind]).scalar_one()) for kind in kinds}


def _overdue(conn: Connection, before: datetime, limit: int, after: Key | None) -> list[Flagged]:
    t, earlier, others = timers.alias("t"), timers.alias("e"), timers.alias("o")
    first = ~sa.exists().where(
        earlier.c.account_id == t.c.account_id,
        earlier.c.fired_at.is_(None),
        sa.or_(earlier.c.due_at < t.c.due_at, sa.and_(earlier.c.due_at == t.c.due_at, earlier.c.kind < t.c.kind)),
    )
    overdue = (
        sa.select(sa.func.count())
        .where(others.c.account_id == t.c.account_id, others.c.fired_at.is_(None), others.c.due_at < before)
        .scalar_subquery()
    )
    stmt = (
        sa.select(t.c.account_id, t.c.kind, t.c.due_at, t.c.attempts, a.platform_ref, a.state, overdue.label("n"))
        .join(accounts, a.stripe_account_id == t.c.account_id)
        .where(t.c.fired_at.is_(None), t.c.due_at < before, first)
        .order_by(t.c.due_at, t.c.account_id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(sa.tuple_(t.c.due_at, t.c.account_id) > sa.tuple_(*after))
    out = []
    for row in conn.execute(stmt):
        due = _dt(row.due_at)
        out.append(
            Flagged(
                kind=AttentionKind.TIMER_OVERDUE,
                account_id=row.account_id,
                platform_ref=row.platform_ref,
                state=State(row.state),
                at=due,
                key=(due, row.account_id),
                count=int(row.n),
                timer=TimerKind(row.kind),
                attempts=int(row.attempts),
            )
        )
    return out


def _stuck(conn: Connection, before: datetime, limit: int, after: Key | None) -> list[Flagged]:
    stmt = _accounts(conn, WAITING, since).where(WAITING_ROWS, since < before).order_by(since, col_id)
    if after is not None:
        stmt = stmt.where(sa.tuple_(since, col_id) > sa.tuple_(*after))
    return [_flag(AttentionKind.STUCK, row) for row in conn.execute(stmt.limit(limit))]


def _future(conn: Connection, limit: int, after: Key | None) -> list[Flagged]:
    out: list[Flagged] = []
    if after is None or after[0] < NO_DEADLINE:
        dated = _accounts(conn, FUTURE, deadline, owed).where(FUTURE_ROWS, deadline.is_not(None))
        if after is not None:
            dated = dated.where(sa.tuple_(deadline, col_id) > sa.tuple_(*after))
        stmt = dated.order_by(deadline, col_id).limit(limit)
        out = [_flag(AttentionKind.FUTURE_REQUIREMENTS, row) for row in conn.execute(stmt)]
        after = None
    if len(out) < limit:
        undated = _accounts(conn, FUTURE, deadline, owed).where(FUTURE_ROWS, deadline.is_(None))
        if after is not None:
            undated = undated.where(col_id > after[1])
        stmt = undated.order_by(col_id).limit(limit - len(out))
        out += [_flag(AttentionKind.FUTURE_REQUIREMENTS, row, sort=NO_DEADLINE) for row in conn.execute(stmt)]
    return out


def _eventually_due(conn: Connection, limit: int, after: Key | None) -> list[Flagged]:
    stmt = _accounts(conn, EVENTUALLY_DUE, since, left).where(EVENTUALLY_DUE_ROWS).order_by(col_id)
    if after is not None:
        stmt = stmt.where(col_id > after[1])
    return [_flag(AttentionKind.EVENTUALLY_DUE, row, sort=UNSORTED) for row in conn.execute(stmt.limit(limit))]


def _from(conn: Connection, index: str) -> sa.TextClause:
    """``ofsm_accounts``, on SQLite through ``index``: with no statistics its
    planner prefers ``ix_ofsm_accounts_state`` for the state terms and sorts
    every waiting (or verified) account; PostgreSQL picks the index itself."""
    hint = f" INDEXED BY {index}" if conn.dialect.name == "sqlite" else ""
    return sa.text(f"{accounts.name}{hint}")


def _accounts(conn: Connection, index: str, at: Any, count: Any = None) -> sa.Select[Any]:
    """Id, reference, state, the kind's time (``at``) and count (``n``)."""
    n = count if count is not None else sa.literal(0)
    return sa.select(col_id, col_ref, col_state, at.label("at"), n.label("n")).select_from(_from(conn, index))


def _flag(kind: AttentionKind, row: Any, *, sort: datetime | None = None) -> Flagged:
    """``sort``: the key's time when the rows are not ordered by ``at``."""
    at = row.at  # aware UTC: the columns carry the table's types
    return Flagged(
        kind=kind,
        account_id=row.stripe_account_id,
        platform_ref=row.platform_ref,
        state=State(row.state),
        at=at,
        key=(sort or at, row.stripe_account_id),
        count=int(row.n),
    )


def _dt(value: Any) -> datetime:
    when = read_dt(value)
    assert when is not None
    return when
