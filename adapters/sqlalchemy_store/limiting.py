"""Rate limits on SQL: the statement behind ``SqlStore.admit``.

One upsert per budget takes a slot only if the budget has one (GCRA): the new
theoretical arrival time ``max(tat, now) + interval`` must stay within
``now + burst × interval``. When it would not, the ``WHERE`` of ``DO UPDATE``
leaves the row as it was and ``RETURNING`` gives no row: refused, and nothing
moved. The read and the write are one statement under the row's lock
(PostgreSQL locks the conflicting row, a concurrent insert of the same new
name waits and then updates; SQLite has one writer), so two workers can never
both take a budget's last slot. Several budgets go in one transaction, in name
order, so two transactions never wait on each other's rows in a cycle.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from onboarding_fsm.config import Pace

from .tables import rate_limits

#: seconds of float rounding forgiven (``burst`` intervals summed one by one
#: against their product): a burst of 1000 is off by far less
SLACK = 1e-3


def _take(dialect: str) -> sa.Insert:
    r = rate_limits.c
    now, interval, tolerance = (sa.bindparam(n, type_=sa.Float(precision=53)) for n in ("now", "interval", "tol"))
    insert = postgresql.insert(rate_limits) if dialect == "postgresql" else sqlite.insert(rate_limits)
    later = (sa.func.greatest if dialect == "postgresql" else sa.func.max)(r.tat, now) + interval
    upsert = insert.values(name=sa.bindparam("name"), tat=now + interval).on_conflict_do_update(
        index_elements=[r.name], set_={"tat": later}, where=later <= now + tolerance
    )
    return upsert.returning(r.tat)


def admit(conn: Connection, budgets: Sequence[tuple[str, Pace]], now: float) -> str | None:
    """Take a slot of each budget in name order; the first that refuses is
    named (the caller rolls the transaction back), None when all took one."""
    statement = _take(conn.dialect.name)
    for name, pace in sorted(budgets, key=lambda budget: budget[0]):
        interval = 1 / pace.rate
        params = {"name": name, "now": now, "interval": interval, "tol": pace.burst * interval + SLACK}
        if conn.execute(statement, params).first() is None:
            return name
    return None
