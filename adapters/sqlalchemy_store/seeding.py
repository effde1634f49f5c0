"""Many accounts with due deadline timers, written straight in SQL.

Going through the engine costs milliseconds per account; a load test or a
benchmark needs 10^4 to 10^6 of them in seconds. The rows are what the engine
itself would write for a verified account whose requirements gained a
deadline (snapshot, audit head, one ``deadline`` timer). Every column of the
``tables`` definition must be given a value here: a new column fails loudly
instead of seeding rows the engine would not write.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from onboarding_fsm.clock import from_unix

from .tables import accounts, timers

_BATCH = 50_000


def seed_due_accounts(
    engine: sa.Engine,
    count: int,
    *,
    due_at: datetime,
    start: int = 0,
    due_every: int = 1,
    prefix: str = "acct_seed",
    due_ids: Sequence[str] = (),
) -> None:
    """``count`` verified accounts; every ``due_every``-th has a deadline timer at ``due_at``
    (the others a week later; ``due_every=0``: none). Ids are ``{prefix}{n:09d}``.
    ``due_ids`` are further accounts, all due, under the ids given (e.g. accounts
    a simulator knows, so a sweep's fetch finds them)."""
    due = int(due_at.timestamp())
    later = due + 7 * 86400
    with engine.begin() as conn:
        for lo in range(0, len(due_ids), _BATCH):
            _insert(conn, [(i, due) for i in due_ids[lo : lo + _BATCH]], from_unix(due))
        for lo in range(start, start + count, _BATCH):
            hi = min(lo + _BATCH, start + count)
            if engine.dialect.name == "postgresql":
                _seed_postgres(conn, prefix, lo, hi, due, later, due_every)
            else:
                _seed_rows(conn, prefix, lo, hi, due, later, due_every)


def _snapshot(account_id: str, deadline: int) -> dict[str, Any]:
    return {
        "id": account_id,
        "object": "account",
        "country": "US",
        "details_submitted": True,
        "charges_enabled": True,
        "payouts_enabled": True,
        "capabilities": {"transfers": "active"},
        "requirements": {"currently_due": ["individual.id_number"], "current_deadline": deadline},
    }


def _account_row(account_id: str, deadline: int, now: datetime) -> dict[str, Any]:
    return {
        "stripe_account_id": account_id, "platform_ref": f"seed-{account_id}", "state": "verified",
        "reason": "currently_due=1", "version": 1, "livemode": False, "country": "US", "account_type": "custom",
        "requirement_collection": "application", "stripe_dashboard": "none", "requested_capabilities": ["transfers"],
        "snapshot": _snapshot(account_id, deadline), "charges_enabled": True, "payouts_enabled": True,
        "details_submitted": True, "deauthorized": False, "watermark": now, "link_params": None,
        "link_issued_at": None, "link_expires_at": None, "audit_seq": 0, "audit_head": "0" * 64, "created_at": now,
        "updated_at": now, "synced_at": now, "fetched_at": now, "inaccessible_since": None,
    }  # fmt: skip


def _complete(values: dict[str, Any], table: sa.Table) -> dict[str, Any]:
    missing = {c.name for c in table.columns} - set(values)
    if missing:
        raise AssertionError(f"seeding gives no value for {table.name} columns {sorted(missing)}")
    return values


def _seed_rows(conn: sa.Connection, prefix: str, lo: int, hi: int, due: int, later: int, every: int) -> None:
    pairs = [(f"{prefix}{n:09d}", due if every and n % every == 0 else later) for n in range(lo, hi)]
    _insert(conn, pairs, from_unix(due))


def _insert(conn: sa.Connection, pairs: Sequence[tuple[str, int]], now: datetime) -> None:
    """Accounts (id, deadline) with one deadline timer each."""
    rows = [_complete(_account_row(account_id, deadline, now), accounts) for account_id, deadline in pairs]
    timer_rows = [
        _complete(
            {"account_id": a, "kind": "deadline", "due_at": from_unix(d), "fired_at": None, "wake_at": from_unix(d),
             "attempts": 0},
            timers,
        )
        for a, d in pairs
    ]  # fmt: skip
    if rows:
        conn.execute(accounts.insert(), rows)
        conn.execute(timers.insert(), timer_rows)


#: the same row as ``_account_row``, as SQL over ``generate_series`` (ids ``id``, deadlines ``deadline``)
_PG_ACCOUNT = {
    "stripe_account_id": "id", "platform_ref": "'seed-' || id", "state": "'verified'", "reason": "'currently_due=1'",
    "version": "1", "livemode": "false", "country": "'US'", "account_type": "'custom'",
    "requirement_collection": "'application'", "stripe_dashboard": "'none'",
    "requested_capabilities": """'["transfers"]'::jsonb""",
    "snapshot": "jsonb_build_object('id', id, 'object', 'account', 'country', 'US', 'details_submitted', true, "
    "'charges_enabled', true, 'payouts_enabled', true, 'capabilities', jsonb_build_object('transfers', 'active'), "
    "'requirements', jsonb_build_object('currently_due', jsonb_build_array('individual.id_number'), "
    "'current_deadline', deadline))",
    "charges_enabled": "true", "payouts_enabled": "true", "details_submitted": "true", "deauthorized": "false",
    "watermark": "now()", "link_params": "NULL", "link_issued_at": "NULL", "link_expires_at": "NULL",
    "audit_seq": "0", "audit_head": "repeat('0', 64)", "created_at": "now()", "updated_at": "now()",
    "synced_at": "now()", "fetched_at": "now()", "inaccessible_since": "NULL",
}  # fmt: skip
_PG_TIMER = {
    "account_id": "id", "kind": "'deadline'", "due_at": "to_timestamp(deadline)", "fired_at": "NULL",
    "wake_at": "to_timestamp(deadline)", "attempts": "0",
}  # fmt: skip


def _seed_postgres(conn: sa.Connection, prefix: str, lo: int, hi: int, due: int, later: int, every: int) -> None:
    series = (
        "FROM (SELECT %(prefix)s || lpad(n::text, 9, '0') AS id, "
        "CASE WHEN %(every)s > 0 AND n %% GREATEST(%(every)s, 1) = 0 THEN %(due)s ELSE %(later)s END AS deadline "
        "FROM generate_series(%(lo)s, %(hi)s - 1) AS n) AS s"
    )
    params = {"prefix": prefix, "lo": lo, "hi": hi, "due": due, "later": later, "every": every}
    for table, expressions in ((accounts, _PG_ACCOUNT), (timers, _PG_TIMER)):
        _complete(expressions, table)
        columns = ", ".join(expressions)
        conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({columns}) SELECT {', '.join(expressions.values())} {series}", params
        )
