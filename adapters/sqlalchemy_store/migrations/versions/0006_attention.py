"""Accounts that need attention, as index scans (``engine.attention``).

* ``ofsm_accounts.eventually_due_left``, ``future_due``, ``future_deadline``:
  kept from the snapshot on every write (``onboarding_fsm.attention.marks``),
  backfilled here from each row's stored snapshot in batches of ``BATCH``
  accounts (rows with nothing to mark keep the column defaults: 0, 0, NULL).
  The audit trail is not touched.
* one partial index per kind: waiting states by ``state_since`` (stuck),
  verified accounts with eventually_due left, accounts owing future
  requirements by their deadline (disabled ones, detached included, left
  out); and unfired timers by due time (overdue), which ``status`` counts
  with too.

The backfill applies the rule the store wrote with when this revision was
made, frozen here (``_marks``) on the stored snapshot's JSON rather than
imported, so a later change to the core cannot change what upgrading to
0006 does; a later rule gets a revision of its own.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from adapters.sqlalchemy_store.tables import JSONType, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BATCH = 2000
#: the states ``attention`` calls stuck after a while, as of this revision
WAITING = "state IN ('created', 'link_issued', 'returned_incomplete', 'past_due')"
EVENTUALLY_DUE = "state = 'verified' AND eventually_due_left > 0"
#: owing future requirements: anyone but a disabled account (nobody can act on one)
FUTURE = "future_due > 0 AND state <> 'disabled'"
UNFIRED = "fired_at IS NULL"
#: the latest ``current_deadline`` a stored snapshot holds (3000-01-01, as the parser bounds it)
MAX_UNIX_TIME = 32_503_680_000

_accounts = sa.table(
    "ofsm_accounts",
    sa.column("stripe_account_id", sa.String),
    sa.column("snapshot", JSONType),
    sa.column("eventually_due_left", sa.Integer),
    sa.column("future_due", sa.Integer),
    sa.column("future_deadline", UTCDateTime()),
)


def upgrade() -> None:
    op.add_column("ofsm_accounts", sa.Column("eventually_due_left", sa.Integer, nullable=False, server_default="0"))
    op.add_column("ofsm_accounts", sa.Column("future_due", sa.Integer, nullable=False, server_default="0"))
    op.add_column("ofsm_accounts", sa.Column("future_deadline", UTCDateTime()))
    _backfill(op.get_bind())
    for name, table, columns, where in (
        ("ix_ofsm_accounts_waiting", "ofsm_accounts", ["state_since", "stripe_account_id"], WAITING),
        ("ix_ofsm_accounts_eventually_due", "ofsm_accounts", ["stripe_account_id"], EVENTUALLY_DUE),
        ("ix_ofsm_accounts_future", "ofsm_accounts", ["future_deadline", "stripe_account_id"], FUTURE),
        ("ix_ofsm_timers_due", "ofsm_timers", ["due_at", "account_id"], UNFIRED),
    ):
        op.create_index(name, table, columns, sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def _backfill(conn: sa.Connection) -> None:
    """Batch by batch in account id order; only rows that have something to
    mark are updated (one executemany per batch)."""
    a = _accounts.c
    read = sa.select(a.stripe_account_id, a.snapshot).order_by(a.stripe_account_id).limit(BATCH)
    write = (
        sa.update(_accounts)
        .where(a.stripe_account_id == sa.bindparam("k_id"))
        .values(
            eventually_due_left=sa.bindparam("k_left"),
            future_due=sa.bindparam("k_future"),
            future_deadline=sa.bindparam("k_deadline", type_=UTCDateTime()),
        )
    )
    after = ""
    while batch := conn.execute(read.where(a.stripe_account_id > after)).all():
        changed = []
        for account_id, raw in batch:
            left, owed, deadline = _marks(raw)
            if left or owed or deadline is not None:
                changed.append({"k_id": account_id, "k_left": left, "k_future": owed, "k_deadline": deadline})
        if changed:
            conn.execute(write, changed)
        after = batch[-1][0]


class _Unreadable(Exception):
    """A stored snapshot not in the shape the engine writes."""


def _marks(raw: object) -> tuple[int, int, datetime | None]:
    """``eventually_due_left``, ``future_due`` and ``future_deadline`` of a
    stored snapshot: eventually_due fields not also currently_due; fields
    future_requirements lists as currently_due or eventually_due; its
    current_deadline (unix seconds). A snapshot not in the stored shape (no
    engine wrote it) marks nothing, rather than stop the upgrade."""
    data = json.loads(raw) if isinstance(raw, str | bytes) else raw
    if not isinstance(data, dict):
        return 0, 0, None
    try:
        req = _section(data.get("requirements"))
        left = len(_fields(req, "eventually_due") - _fields(req, "currently_due"))
        if data.get("future_requirements") is None:
            return left, 0, None
        future = _section(data["future_requirements"])
        owed = len(_fields(future, "currently_due") | _fields(future, "eventually_due"))
        return left, owed, _deadline(future.get("current_deadline"))
    except _Unreadable:
        return 0, 0, None


def _section(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Unreadable
    return value


def _fields(section: dict[str, Any], name: str) -> set[str]:
    value = section.get(name)
    if value is None:
        return set()
    if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
        raise _Unreadable
    return set(value)


def _deadline(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UNIX_TIME:
        raise _Unreadable
    return datetime.fromtimestamp(value, UTC)


def downgrade() -> None:
    for name in ("ix_ofsm_accounts_waiting", "ix_ofsm_accounts_eventually_due", "ix_ofsm_accounts_future"):
        op.drop_index(name, table_name="ofsm_accounts")
    op.drop_index("ix_ofsm_timers_due", table_name="ofsm_timers")
    # plain DROP COLUMN (SQLite >= 3.35 too): rebuilding ofsm_accounts would trip its foreign keys
    for name in ("future_deadline", "future_due", "eventually_due_left"):
        op.execute(f"ALTER TABLE ofsm_accounts DROP COLUMN {name}")
