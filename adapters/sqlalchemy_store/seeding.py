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

from .tables import accounts, timers, transitions

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
        "state_since": now, "eventually_due_left": 0, "future_due": 0, "future_deadline": None,
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
    "state_since": "now()", "eventually_due_left": "0", "future_due": "0", "future_deadline": "NULL",
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


#: one account's life in the seeded audit trail: (from, to, trigger, source), ten records
_LIFE = (
    (None, "created", "create", "api"),
    ("created", "link_issued", "issue_link", "api"),
    ("link_issued", "returned_incomplete", "return", "return"),
    ("returned_incomplete", "link_issued", "issue_link", "api"),
    ("link_issued", "verified", "return", "return"),
    ("verified", "returned_incomplete", "sync", "webhook"),
    ("returned_incomplete", "past_due", "deadline", "scheduler"),
    ("past_due", "link_issued", "issue_link", "api"),
    ("link_issued", "verified", "return", "return"),
    ("verified", "verified", "sync", "webhook"),
)


def seed_audit_trail(
    engine: sa.Engine, count: int, *, start: datetime, spacing_s: int = 30, step_s: int = 3600, prefix: str = "acct_t"
) -> int:
    """``count`` accounts with ten audit records each, hashed and chained as
    the engine would (``seal``); account ``n`` is born ``n * spacing_s`` after
    ``start`` and moves every ``step_s``. Returns the number of records."""
    from datetime import timedelta

    from onboarding_fsm.audit import GENESIS, Cause, delta_to_dict, seal
    from onboarding_fsm.states import Source, State, Trigger

    written = 0
    base = int(start.timestamp())
    with engine.begin() as conn:
        for lo in range(0, count, _BATCH // len(_LIFE)):
            hi = min(count, lo + _BATCH // len(_LIFE))
            account_rows, records = [], []
            for n in range(lo, hi):
                account_id = f"{prefix}{n:09d}"
                born = from_unix(base + n * spacing_s)
                prev, seq = GENESIS, 0
                for seq, (was, to, trigger, source) in enumerate(_LIFE, start=1):
                    record = seal(
                        account_id=account_id, seq=seq, prev_hash=prev,
                        from_state=State(was) if was else None, to_state=State(to), trigger=Trigger(trigger),
                        cause=Cause(Source(source), f"evt_{n}_{seq}" if source == "webhook" else None, "seed",
                                    request_id=f"req_seed{n}x{seq}"),
                        reason=f"seeded step {seq}", delta=(), at=born + timedelta(seconds=(seq - 1) * step_s),
                    )  # fmt: skip
                    prev = record.hash
                    records.append(_complete(_transition_row(record, delta_to_dict(record.delta)), transitions))
                row = _account_row(account_id, base, born)
                row.update(state="verified", reason="seeded", audit_seq=seq, audit_head=prev)
                account_rows.append(_complete(row, accounts))
            conn.execute(accounts.insert(), account_rows)
            conn.execute(transitions.insert(), records)
            written += len(records)
    return written


def _transition_row(t: Any, delta: Any) -> dict[str, Any]:
    return {
        "account_id": t.account_id, "seq": t.seq, "from_state": t.from_state.value if t.from_state else None,
        "to_state": t.to_state.value, "trigger": t.trigger.value, "source": t.source.value,
        "source_ref": t.source_ref, "actor": t.actor, "reason": t.reason, "delta": delta, "at": t.at,
        "stripe_time": t.stripe_time, "prev_hash": t.prev_hash, "hash": t.hash, "request_id": t.request_id,
        "run_id": t.run_id, "layout": t.layout, "key_id": t.key_id, "checkpoint": None,
    }  # fmt: skip
