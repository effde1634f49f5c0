"""Operations (embedded default: SQLite): outbox delivery and the shared link limits.

* Outbox: N messages over K accounts delivered to a handler that does
  nothing, through ``engine.outbox.deliver`` (claim a batch of accounts'
  oldest messages under a lease, hand each, mark it) — against the path
  ``dispatch_outbox`` took before, in the same run: read pending messages by
  id, mark each sent after its handler, no lease and no per-account order.
* Limits: ``engine.limits.admit`` (one transaction, an account and a holder
  budget, refused ones change nothing) — against ``Store.reserve``, the
  one-statement GCRA the Stripe pace uses, on one budget.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from adapters.sqlalchemy_store import SqlStore
from adapters.sqlalchemy_store.tables import outbox
from onboarding_fsm import FakeClock, Settings, build_engine
from onboarding_fsm.limits import Limit

from .common import Figure, report

START = datetime(2026, 1, 1, tzinfo=UTC)


def _seed(store: SqlStore, messages: int, accounts: int) -> None:
    rows = [
        {"account_id": f"acct_b{n % accounts:07d}", "seq": n // accounts + 1, "kind": "transition",
         "payload": {"type": "onboarding.transition", "n": n}, "created_at": START}
        for n in range(messages)
    ]  # fmt: skip
    with store.engine.begin() as conn:
        conn.execute(sa.insert(outbox), rows)


def _engine(tmp: Path, name: str) -> tuple[Any, SqlStore]:
    url = f"sqlite:///{tmp / name}"
    store = SqlStore.from_url(url)
    store.migrate()
    return build_engine(Settings(database_url=url), store=store, clock=FakeClock(START)), store


def _deliver(tmp: Path, n: int, messages: int, accounts: int) -> tuple[float, float]:
    engine, store = _engine(tmp, f"outbox{n}.sqlite3")
    _seed(store, messages, accounts)
    started = time.perf_counter()
    delivered = engine.outbox.deliver(lambda payload: None, limit=messages).delivered
    ours = delivered / (time.perf_counter() - started)
    assert delivered == messages, delivered
    engine.close()
    engine, store = _engine(tmp, f"bare{n}.sqlite3")
    _seed(store, messages, accounts)
    started, sent = time.perf_counter(), 0
    while batch := store.pending_outbox(100):  # the pre-issue-12 dispatch_outbox: by id, no lease, no order
        for message_id, _ in batch:
            store.ack_outbox([message_id], START)  # marked sent one by one, after its handler, as it did
            sent += 1
    bare = sent / (time.perf_counter() - started)
    engine.close()
    return ours, bare


def _limits(tmp: Path, n: int, calls: int) -> tuple[float, float]:
    engine, store = _engine(tmp, f"limits{n}.sqlite3")
    per = Limit(10, timedelta(minutes=10))
    started = time.perf_counter()
    for i in range(calls):
        engine.limits.admit("refresh", f"acct_l{i % 500:07d}", f"holder-{i % 50}", per_account=per, per_holder=per)
    ours = calls / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(calls):
        store.reserve(f"budget-{i % 500}", timedelta(seconds=60), START)
    bare = calls / (time.perf_counter() - started)
    engine.close()
    return ours, bare


def main(messages: int = 20_000, accounts: int = 2_000, calls: int = 2_000, rounds: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        delivered, by_id, admitted, reserved = [], [], [], []
        for n in range(rounds):  # interleaved, so noise hits both sides alike
            ours, bare = _deliver(Path(tmp), n, messages, accounts)
            delivered.append(ours)
            by_id.append(bare)
            ours, bare = _limits(Path(tmp), n, calls)
            admitted.append(ours)
            reserved.append(bare)
    deliver = Figure("engine.outbox.deliver (lease, order per account)", "msg/s", delivered)
    bare = Figure("by id, each marked sent (the old dispatch_outbox)", "msg/s", by_id)
    title = f"outbox delivery of {messages:,} messages of {accounts:,} accounts to a handler that does nothing"
    report(title, [deliver, bare], ratio=(deliver, bare))
    admit = Figure("engine.limits.admit (account + holder)", "calls/s", admitted)
    reserve = Figure("Store.reserve (one budget, one statement)", "calls/s", reserved)
    report("shared link limits", [admit, reserve], ratio=(admit, reserve))


if __name__ == "__main__":
    main()
