"""Accounts that need attention, as index scans (``engine.attention``).

* ``ofsm_accounts.eventually_due_left``, ``future_due``, ``future_deadline``:
  kept from the snapshot on every write (``onboarding_fsm.attention.marks``),
  backfilled here from each row's stored snapshot in batches of ``BATCH``
  accounts (rows with nothing to mark keep the column defaults: 0, 0, NULL).
  The audit trail is not touched.
* one partial index per kind: waiting states by ``state_since`` (stuck),
  verified accounts with eventually_due left, accounts owing future
  requirements by their deadline; and unfired timers by due time (overdue),
  which ``status`` counts with too.

The backfill reads the snapshot with the same parser and rule the store
writes with, so an upgraded row holds what a fresh write would.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from adapters.sqlalchemy_store.tables import JSONType, UTCDateTime
from adapters.sqlalchemy_store.timeconv import read_json
from onboarding_fsm.attention import Marks, marks
from onboarding_fsm.errors import MalformedPayload
from onboarding_fsm.snapshot import AccountSnapshot, parse_requirements

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BATCH = 2000
#: the states ``attention`` calls stuck after a while, as of this revision
WAITING = "state IN ('created', 'link_issued', 'returned_incomplete', 'past_due')"

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
    op.create_index(
        "ix_ofsm_accounts_waiting",
        "ofsm_accounts",
        ["state_since", "stripe_account_id"],
        sqlite_where=sa.text(WAITING),
        postgresql_where=sa.text(WAITING),
    )
    eventually = sa.text("state = 'verified' AND eventually_due_left > 0")
    op.create_index(
        "ix_ofsm_accounts_eventually_due",
        "ofsm_accounts",
        ["stripe_account_id"],
        sqlite_where=eventually,
        postgresql_where=eventually,
    )
    op.create_index(
        "ix_ofsm_accounts_future",
        "ofsm_accounts",
        ["future_deadline", "stripe_account_id"],
        sqlite_where=sa.text("future_due > 0"),
        postgresql_where=sa.text("future_due > 0"),
    )
    op.create_index(
        "ix_ofsm_timers_due",
        "ofsm_timers",
        ["due_at", "account_id"],
        sqlite_where=sa.text("fired_at IS NULL"),
        postgresql_where=sa.text("fired_at IS NULL"),
    )


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
            found = _marks(account_id, raw)
            if found.eventually_due_left or found.future_due or found.future_deadline is not None:
                changed.append(
                    {
                        "k_id": account_id,
                        "k_left": found.eventually_due_left,
                        "k_future": found.future_due,
                        "k_deadline": found.future_deadline,
                    }
                )
        if changed:
            conn.execute(write, changed)
        after = batch[-1][0]


def _marks(account_id: str, raw: object) -> Marks:
    """A snapshot no parser reads (no engine wrote it) marks nothing, rather than stop the upgrade."""
    data = read_json(raw)
    if not isinstance(data, dict):
        return Marks()
    future = data.get("future_requirements")
    try:
        snapshot = AccountSnapshot(
            id=account_id,
            requirements=parse_requirements(data.get("requirements")),
            future_requirements=None if future is None else parse_requirements(future, "future_requirements"),
        )
    except MalformedPayload:
        return Marks()
    return marks(snapshot)


def downgrade() -> None:
    for name in ("ix_ofsm_accounts_waiting", "ix_ofsm_accounts_eventually_due", "ix_ofsm_accounts_future"):
        op.drop_index(name, table_name="ofsm_accounts")
    op.drop_index("ix_ofsm_timers_due", table_name="ofsm_timers")
    # plain DROP COLUMN (SQLite >= 3.35 too): rebuilding ofsm_accounts would trip its foreign keys
    for name in ("future_deadline", "future_due", "eventually_due_left"):
        op.execute(f"ALTER TABLE ofsm_accounts DROP COLUMN {name}")
