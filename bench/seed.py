"""Seed many accounts with due deadline timers straight in SQL (PostgreSQL or SQLite).

Going through the engine costs a few milliseconds per account; a benchmark
or a concurrency test needs 10^4 to 10^6 of them in seconds. The rows are
what the engine itself would write for a verified account whose requirements
gained a deadline (snapshot, audit head, one ``deadline`` timer).
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa


def seed_due_accounts(
    engine: sa.Engine, count: int, *, due_at: datetime, start: int = 0, due_every: int = 1, prefix: str = "acct_seed"
) -> None:
    """``count`` verified accounts; every ``due_every``-th has a deadline timer at ``due_at``
    (the others a week later). Ids are ``{prefix}{n:09d}``."""
    due = int(due_at.timestamp())
    later = due + 7 * 86400
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        for lo in range(start, start + count, 50_000):
            hi = min(lo + 50_000, start + count)
            if postgres:
                _seed_postgres(conn, prefix, lo, hi, due, later, due_every)
            else:
                _seed_rows(conn, prefix, lo, hi, due, later, due_every)


def _snapshot(account_id: str, deadline: int) -> str:
    return json.dumps(
        {
            "id": account_id,
            "object": "account",
            "country": "US",
            "details_submitted": True,
            "charges_enabled": True,
            "payouts_enabled": True,
            "capabilities": {"transfers": "active"},
            "requirements": {"currently_due": ["individual.id_number"], "current_deadline": deadline},
        }
    )


def _seed_postgres(conn: sa.Connection, prefix: str, lo: int, hi: int, due: int, later: int, every: int) -> None:
    conn.exec_driver_sql(
        """
        INSERT INTO ofsm_accounts (stripe_account_id, platform_ref, state, reason, version, livemode, country,
            account_type, requirement_collection, stripe_dashboard, requested_capabilities, snapshot,
            charges_enabled, payouts_enabled, details_submitted, deauthorized, watermark, audit_seq, audit_head,
            created_at, updated_at, synced_at)
        SELECT id, 'seed-' || id, 'verified', 'currently_due=1', 1, false, 'US', 'custom', 'application', 'none',
            '["transfers"]'::jsonb,
            jsonb_build_object('id', id, 'object', 'account', 'country', 'US', 'details_submitted', true,
                'charges_enabled', true, 'payouts_enabled', true, 'capabilities', jsonb_build_object('transfers', 'active'),
                'requirements', jsonb_build_object('currently_due', jsonb_build_array('individual.id_number'),
                    'current_deadline', deadline)),
            true, true, true, false, now(), 0, repeat('0', 64), now(), now(), now()
        FROM (SELECT %(prefix)s || lpad(n::text, 9, '0') AS id,
                     CASE WHEN n %% %(every)s = 0 THEN %(due)s ELSE %(later)s END AS deadline
              FROM generate_series(%(lo)s, %(hi)s - 1) AS n) AS s
        """,
        {"prefix": prefix, "lo": lo, "hi": hi, "due": due, "later": later, "every": every},
    )
    conn.exec_driver_sql(
        """
        INSERT INTO ofsm_timers (account_id, kind, due_at, fired_at)
        SELECT %(prefix)s || lpad(n::text, 9, '0'), 'deadline',
               to_timestamp(CASE WHEN n %% %(every)s = 0 THEN %(due)s ELSE %(later)s END), NULL
        FROM generate_series(%(lo)s, %(hi)s - 1) AS n
        """,
        {"prefix": prefix, "lo": lo, "hi": hi, "due": due, "later": later, "every": every},
    )


def _seed_rows(conn: sa.Connection, prefix: str, lo: int, hi: int, due: int, later: int, every: int) -> None:
    from adapters.sqlalchemy_store.tables import accounts, timers
    from onboarding_fsm.clock import from_unix

    now = from_unix(due)
    rows, timer_rows = [], []
    for n in range(lo, hi):
        account_id = f"{prefix}{n:09d}"
        deadline = due if n % every == 0 else later
        rows.append(
            {
                "stripe_account_id": account_id, "platform_ref": f"seed-{account_id}", "state": "verified",
                "reason": "currently_due=1", "version": 1, "livemode": False, "country": "US",
                "account_type": "custom", "requirement_collection": "application", "stripe_dashboard": "none",
                "requested_capabilities": ["transfers"], "snapshot": json.loads(_snapshot(account_id, deadline)),
                "charges_enabled": True, "payouts_enabled": True, "details_submitted": True, "deauthorized": False,
                "watermark": now, "audit_seq": 0, "audit_head": "0" * 64, "created_at": now, "updated_at": now,
                "synced_at": now,
            }
        )  # fmt: skip
        timer_rows.append(
            {"account_id": account_id, "kind": "deadline", "due_at": from_unix(deadline), "fired_at": None}
        )
    conn.execute(accounts.insert(), rows)
    conn.execute(timers.insert(), timer_rows)
