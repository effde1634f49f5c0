"""Accounts that need attention over 10^5 accounts (SQLite; PostgreSQL too when given).

Seeds N accounts straight in SQL with the engine's own row parameters
(``Statements``: snapshot, state, ``state_since``, the 0006 columns), one
timer each: a fifth verified with eventually_due left, a tenth owing future
requirements (one in ten of those with no deadline; and 5 % disabled with
some, as detached accounts keep them, which no kind lists), three tenths in a
waiting state entered up to a month ago (about three quarters of them
stuck), 1 % with an overdue timer. Then times, medians of 3:

* the first 100-account page of each kind (``engine.attention.accounts``);
* the whole listing of every kind, streamed 1000 at a time;
* the counts per kind (``engine.attention.summary``);

against the naive way, measured in the same run: read every account
(``Store.accounts`` pages, snapshots parsed) and every unfired timer, and
test each in Python — what a page, a listing or a count costs without the
columns and indexes. The two must agree on every count.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from adapters.sqlalchemy_store import SqlStore
from adapters.sqlalchemy_store.statements import ACCOUNT_COLUMNS, ACCOUNTS, TIMER_COLUMNS, TIMERS, Statements
from adapters.sqlalchemy_store.tables import timers
from onboarding_fsm import FakeClock, Settings, build_engine
from onboarding_fsm.account import Account
from onboarding_fsm.attention import WAITING, AttentionKind
from onboarding_fsm.config import EngineConfig
from onboarding_fsm.snapshot import AccountSnapshot, Requirements
from onboarding_fsm.states import State
from onboarding_fsm.timers import Timer, TimerKind

from .common import Figure, report

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)
_BATCH = 10_000


def _account(n: int) -> tuple[Account, Timer]:
    """Account ``n`` and its timer."""
    r, account_id = n % 100, f"acct_att{n:09d}"
    state, since, future = State.VERIFIED, NOW - (n % 30) * DAY, None
    requirements = Requirements()
    if r < 20:
        requirements = Requirements(eventually_due=("individual.id_number",))
    elif 40 <= r < 50:
        deadline = None if r == 49 else NOW + (n % 60 + 1) * DAY
        future = Requirements(currently_due=("individual.verification.document",), current_deadline=deadline)
    elif 50 <= r < 80:
        state, since = WAITING[n % len(WAITING)], NOW - (n % 30) * DAY - timedelta(hours=n % 24)
        requirements = Requirements(currently_due=("individual.dob.day",))
    elif r >= 80:  # the last of them detached with future requirements announced: never listed
        state = State.DISABLED
        if r >= 95:
            future = Requirements(currently_due=("individual.verification.document",), current_deadline=NOW - DAY)
    snapshot = AccountSnapshot(
        id=account_id, country="US", details_submitted=r < 50, charges_enabled=r < 50, payouts_enabled=r < 50,
        requirements=requirements, future_requirements=future, platform_ref=f"att-{n}", created=NOW - 60 * DAY,
    )  # fmt: skip
    account = Account(
        stripe_account_id=account_id, platform_ref=f"att-{n}", state=state, reason="seeded", version=1,
        snapshot=snapshot, requested_capabilities=("transfers",), created_at=NOW - 60 * DAY, updated_at=since,
        synced_at=since, watermark=NOW, state_since=since, audit_head="0" * 64,
    )  # fmt: skip
    due = NOW - timedelta(hours=1) if r == 55 else NOW + (n % 20 + 1) * DAY
    return account, Timer(due, account_id, TimerKind.DEADLINE)


def seed(store: SqlStore, count: int) -> None:
    """On the driver's cursor with the engine's own parameters (``Statements``),
    so every column, the 0006 ones included, holds what the engine writes."""
    statements = Statements(store.engine.dialect.name)
    style = "%({})s" if statements.postgres else ":{}"  # the driver's parameter style
    insert = {
        table: f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(style.format(c) for c in cols)})"
        for table, cols in ((ACCOUNTS, ACCOUNT_COLUMNS), (TIMERS, TIMER_COLUMNS))
    }
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if statements.begin:  # SQLite's driver runs in autocommit here: one transaction, as the store does
            cursor.execute(statements.begin)
        for lo in range(0, count, _BATCH):
            pairs = [_account(n) for n in range(lo, min(count, lo + _BATCH))]
            cursor.executemany(insert[ACCOUNTS], [statements.account(a) for a, _ in pairs])
            cursor.executemany(insert[TIMERS], [statements.timer(t) for _, t in pairs])
        raw.commit()
        if statements.postgres:
            cursor.execute("ANALYZE")
            raw.commit()
    finally:
        raw.close()


def naive(store: SqlStore, config: EngineConfig) -> Counter[AttentionKind]:
    """Every account read and tested in Python, every unfired timer too."""
    found: Counter[AttentionKind] = Counter()
    stuck_before, after = NOW - config.stuck_after, ""
    while page := store.accounts(limit=1000, after=after):
        for acct in page:
            snap = acct.snapshot
            left = set(snap.requirements.eventually_due) - set(snap.requirements.currently_due)
            future = snap.future_requirements
            found[AttentionKind.EVENTUALLY_DUE] += bool(acct.state is State.VERIFIED and left)
            owed = bool(future and (future.currently_due or future.eventually_due))
            found[AttentionKind.FUTURE_REQUIREMENTS] += owed and acct.state is not State.DISABLED
            since = acct.state_since
            found[AttentionKind.STUCK] += bool(acct.state in WAITING and since is not None and since < stuck_before)
        after = page[-1].stripe_account_id
    t = timers.c
    with store.engine.connect() as conn:
        unfired = conn.execute(sa.select(t.account_id, t.due_at).where(t.fired_at.is_(None))).all()
    overdue_before = NOW - config.timer_overdue_after
    found[AttentionKind.TIMER_OVERDUE] = len({a for a, due in unfired if _utc(due) < overdue_before})
    return found


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _ms(work: Callable[[], Any], rounds: int) -> tuple[list[float], Any]:
    samples, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = work()
        samples.append((time.perf_counter() - started) * 1e3)
    return samples, result


def measure(url: str, count: int, rounds: int = 3, label: str = "SQLite") -> None:
    store = SqlStore.from_url(url)
    store.migrate()
    started = time.perf_counter()
    seed(store, count)
    seeded = time.perf_counter() - started
    engine = build_engine(Settings(database_url=url), store=store, clock=FakeClock(NOW))
    attention = engine.attention
    firsts = {kind: _ms(partial(attention.accounts, kind, limit=100), rounds)[0] for kind in AttentionKind}
    listing, listed = _ms(lambda: sum(1 for _ in attention.stream(batch=1000)), rounds)
    counting, summary = _ms(attention.summary, rounds)
    scanning, found = _ms(lambda: naive(store, engine.config), rounds)
    assert dict(summary.counts) == {k: found[k] for k in AttentionKind}, (summary.counts, found)
    assert listed == summary.total, (listed, summary.total)
    engine.close()
    per_kind = ", ".join(f"{k.value} {n:,}" for k, n in summary.counts.items())
    print(f"\naccounts that need attention, {label}: {count:,} accounts seeded in {seeded:.1f} s ({per_kind})")
    ours = [Figure(f"first 100 of {kind.value}", "ms", samples) for kind, samples in firsts.items()]
    whole = Figure(f"whole listing, every kind ({listed:,} rows, streamed)", "ms", listing)
    counts = Figure("counts per kind (engine.attention.summary)", "ms", counting)
    scan = Figure("naive: read every account and timer, test in Python", "ms", scanning)
    report(f"engine.attention against the naive scan ({label}, medians of {rounds})", [*ours, whole, counts, scan])
    slowest_first = max(statistics.median(s) for s in firsts.values())
    print(f"  ratio naive / slowest first page: {scan.median / slowest_first:,.0f}")
    print(f"  ratio naive / whole listing: {scan.median / whole.median:,.1f}")
    print(f"  ratio naive / counts: {scan.median / counts.median:,.1f}")


def main(accounts_count: int = 100_000, rounds: int = 3, *, sqlite: bool = True, postgres: str | None = None) -> None:
    """On SQLite (a temporary file) unless told not to, and on PostgreSQL
    (a temporary schema) when given a server URL."""
    if sqlite:
        with tempfile.TemporaryDirectory(prefix="ofsm-bench-attention-") as tmp:
            measure(f"sqlite:///{Path(tmp) / 'attention.sqlite3'}", accounts_count, rounds)
    if postgres:
        from .pg import schema

        with schema(postgres) as url:
            measure(url, accounts_count, rounds, label="PostgreSQL")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000, postgres=sys.argv[2] if len(sys.argv) > 2 else None)
