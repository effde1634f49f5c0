"""Issue 12, item 4: ``Store.admit``, the rate budgets every web worker shares.

On both backends: a budget lets ``burst`` through, then one per interval; a
refused call moves nothing; several budgets take a slot each or none; every
store on the database draws from the same budgets; concurrent callers (threads
on separate stores, i.e. separate connections) never get more than the budget
holds; a caller holding a budget's row makes the next one wait for its answer;
prune deletes idle budgets only.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from adapters.sqlalchemy_store import SqlStore, limiting
from adapters.sqlalchemy_store.tables import rate_limits
from onboarding_fsm.config import Pace
from tests.conftest import START

#: 3 per minute: a burst of 3, then one every 20 s
THREE_A_MINUTE = Pace(3 / 60, 3)
STEP = timedelta(seconds=20)


def names(store: SqlStore) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.execute(sa.select(rate_limits.c.name)).scalars())


def test_a_budget_lets_a_burst_through_then_one_per_interval(store: SqlStore) -> None:
    budget = [("refresh:acct:acct_1", THREE_A_MINUTE)]
    assert [store.admit(budget, START) for _ in range(4)] == [None, None, None, "refresh:acct:acct_1"]
    # refused calls take nothing: hammering does not push the next slot further away
    assert all(store.admit(budget, START + timedelta(seconds=n)) is not None for n in range(1, 20))
    assert store.admit(budget, START + STEP) is None, "one slot frees per interval"
    assert store.admit(budget, START + STEP) is not None
    assert store.admit([("refresh:acct:acct_2", THREE_A_MINUTE)], START) is None, "other budgets are apart"
    after_a_quiet_spell = START + timedelta(minutes=5)
    assert [store.admit(budget, after_a_quiet_spell) for _ in range(4)][-2:] == [None, "refresh:acct:acct_1"]


def test_several_budgets_take_a_slot_each_or_none(store: SqlStore) -> None:
    account, holder = ("start:acct:acct_1", THREE_A_MINUTE), ("start:holder:#h", Pace(1 / 60, 1))
    assert store.admit([account, holder], START) is None
    # the account's slot is taken first (name order), then the holder refuses: the account's is given back
    assert store.admit([holder, account], START) == "start:holder:#h"
    assert [store.admit([account], START) for _ in range(3)] == [None, None, "start:acct:acct_1"]


def test_every_store_on_the_database_shares_the_budgets(store: SqlStore, any_db_url: str) -> None:
    other = SqlStore.from_url(any_db_url)
    try:
        budget = [("refresh:acct:acct_1", THREE_A_MINUTE)]
        answers = [(store if n % 2 else other).admit(budget, START) for n in range(5)]
    finally:
        other.close()
    assert answers.count(None) == 3


def test_concurrent_callers_never_exceed_the_budget(store: SqlStore, any_db_url: str) -> None:
    """Eight stores (eight connection pools, as eight workers), three threads
    each, all at the same instant on one account budget and on crossing
    holder budgets: the account's 5 slots go to exactly 5 callers, and crossing
    budgets taken in one transaction never deadlock."""
    stores = [SqlStore.from_url(any_db_url) for _ in range(8)]
    account = ("refresh:acct:acct_1", Pace(5 / 600, 5))
    barrier = threading.Barrier(len(stores) * 3)
    answers: list[str | None] = []
    failures: list[BaseException] = []

    def call(s: SqlStore, n: int) -> None:
        try:
            barrier.wait(timeout=30)
            for k in range(4):
                holder = (f"refresh:holder:#{(n + k) % 3}", Pace(100 / 600, 100))
                answer = s.admit([holder, account] if k % 2 else [account, holder], START)
                answers.append(answer)
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            failures.append(exc)

    threads = [threading.Thread(target=call, args=(s, n)) for n, s in enumerate(stores * 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for s in stores:
        s.close()
    assert not failures, failures
    assert len(answers) == 8 * 3 * 4
    assert answers.count(None) == 5, "the account budget's five slots, no more"
    assert set(answers) == {None, "refresh:acct:acct_1"}


def test_a_caller_waits_for_the_one_holding_the_budget(store: SqlStore, any_db_url: str) -> None:
    """Two connections: the first takes the budget's last slot and has not
    committed yet; the second waits for it, then sees the slot gone."""
    budget = [("start:acct:acct_1", Pace(1 / 60, 1))]
    other = SqlStore.from_url(any_db_url)
    answer: list[str | None] = []
    waiter = threading.Thread(target=lambda: answer.append(other.admit(budget, START)))
    try:
        with store.engine.connect() as first, first.begin():
            assert limiting.admit(first, budget, START.timestamp()) is None
            waiter.start()
            waiter.join(timeout=0.5)
            assert waiter.is_alive(), "the second caller must wait for the first one's commit"
        waiter.join(timeout=30)
    finally:
        other.close()
    assert answer == ["start:acct:acct_1"]


def test_prune_deletes_idle_budgets_only(store: SqlStore) -> None:
    store.admit([("refresh:acct:acct_old", THREE_A_MINUTE)], START)
    store.reserve("stripe:test", timedelta(milliseconds=40), START)
    later = START + timedelta(days=5)
    for _ in range(3):
        store.admit([("refresh:acct:acct_busy", THREE_A_MINUTE)], later)
    report = store.prune(later - timedelta(seconds=1))
    assert report.limits_deleted == 2
    assert names(store) == {"refresh:acct:acct_busy"}, "a budget still refilling is kept"
    assert store.admit([("refresh:acct:acct_busy", THREE_A_MINUTE)], later) is not None, "and still counts"
    assert store.admit([("refresh:acct:acct_old", THREE_A_MINUTE)], later) is None, "a pruned budget is full"
    assert store.prune(later - timedelta(seconds=1)).limits_deleted == 0
