"""The Store port's outbox delivery (claims, leases, failures, dead letters,
re-drive, backlog), run against every database backend, and two deliverers
at once never sharing a message nor overtaking each other within an account."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from adapters.sqlalchemy_store import SqlStore
from onboarding_fsm.clock import FakeClock
from onboarding_fsm.config import EngineConfig
from onboarding_fsm.delivery import OutboxDelivery
from onboarding_fsm.errors import InvalidInput
from onboarding_fsm.outbox import Failure, OutboxBacklog, OutboxMessage
from tests.conftest import START

LEASE = timedelta(seconds=60)


def emit(store: SqlStore, *messages: tuple[str, int], at: datetime = START) -> None:
    """``(account, n)`` messages, in this order, in one transaction."""
    with store.write() as tx:
        for account_id, n in messages:
            tx.emit(account_id, "note", {"account": account_id, "n": n}, at)


def claim(store: SqlStore, now: datetime = START, limit: int = 100) -> list[OutboxMessage]:
    return store.claim_outbox(now, lease_until=now + LEASE, limit=limit)


def keys(messages: list[OutboxMessage]) -> list[tuple[str, int]]:
    return [(m.account_id, m.payload["n"]) for m in messages]


def retry(message: OutboxMessage, at: datetime, error: str = "TimeoutError: consumer slow") -> Failure:
    return Failure(message.attempts + 1, error, at, None)


def dead(message: OutboxMessage, at: datetime) -> Failure:
    return Failure(message.attempts + 1, "ValueError: refused", None, at)


def test_a_claim_takes_each_accounts_oldest_message_in_id_order(store: SqlStore) -> None:
    emit(store, ("acct_1", 1), ("acct_2", 1), ("acct_1", 2), ("", 1), ("acct_3", 1))
    claimed = claim(store)
    assert keys(claimed) == [("acct_1", 1), ("acct_2", 1), ("", 1), ("acct_3", 1)]
    assert [m.id for m in claimed] == sorted(m.id for m in claimed)
    first = claimed[0]
    assert (first.kind, first.attempts, first.leased_until, first.created_at) == ("note", 0, START + LEASE, START)
    assert keys(claim(store, limit=1)) == [], "every head is leased; acct_1's second waits behind its first"


def test_a_lease_holds_until_it_ends(store: SqlStore) -> None:
    emit(store, ("acct_1", 1), ("acct_1", 2))
    assert keys(claim(store)) == [("acct_1", 1)]
    assert claim(store, START + LEASE - timedelta(microseconds=1)) == []
    again = claim(store, START + LEASE)
    assert keys(again) == [("acct_1", 1)], "a deliverer that stopped: handed over again, not counted a failure"
    assert again[0].attempts == 0


def test_finishing_publishes_and_the_account_moves_on(store: SqlStore) -> None:
    emit(store, ("acct_1", 1), ("acct_1", 2))
    [head] = claim(store)
    assert store.finish_outbox(head, START) is True
    assert store.finish_outbox(head, START) is False, "published already"
    assert keys(claim(store)) == [("acct_1", 2)]
    assert [p["n"] for _, p in store.pending_outbox()] == [2]


def test_a_failure_backs_off_and_keeps_the_line(store: SqlStore) -> None:
    emit(store, ("acct_1", 1), ("acct_1", 2), ("acct_2", 1))
    first, other = claim(store)
    assert store.fail_outbox(first, retry(first, START + timedelta(seconds=10))) is True
    store.finish_outbox(other, START)
    assert claim(store, START + timedelta(seconds=9)) == [], "backing off: its account's next one waits too"
    [back] = claim(store, START + timedelta(seconds=10))
    assert (keys([back]), back.attempts) == ([("acct_1", 1)], 1)


def test_a_lease_that_ran_out_cannot_record_a_failure(store: SqlStore) -> None:
    emit(store, ("acct_1", 1))
    [slow] = claim(store)
    [taken] = claim(store, START + LEASE)  # the first deliverer outlived its lease
    assert store.fail_outbox(slow, retry(slow, START + LEASE)) is False
    assert store.fail_outbox(taken, retry(taken, START + LEASE)) is True
    assert store.outbox_backlog(START + LEASE).retrying == 1


def test_a_late_success_still_publishes(store: SqlStore) -> None:
    emit(store, ("acct_1", 1))
    [slow] = claim(store)
    claim(store, START + LEASE)
    assert store.finish_outbox(slow, START + LEASE) is True, "the handler returned: it was delivered"
    assert store.pending_outbox() == []


def test_a_dead_letter_blocks_its_account_and_not_the_others(store: SqlStore) -> None:
    emit(store, ("acct_1", 1), ("acct_1", 2), ("acct_2", 1), ("acct_2", 2))
    poison, fine = claim(store)
    store.fail_outbox(poison, dead(poison, START))
    store.finish_outbox(fine, START)
    later = START + timedelta(days=1)
    assert keys(claim(store, later)) == [("acct_2", 2)]
    [letter] = store.dead_letters()
    assert (letter.id, letter.account_id, letter.kind, letter.attempts) == (poison.id, "acct_1", "note", 1)
    assert (letter.dead_at, letter.created_at, letter.last_error) == (START, START, "ValueError: refused")
    assert store.dead_letters(after=poison.id) == []


def test_redrive_puts_dead_letters_back_in_line_with_attempts_reset(store: SqlStore) -> None:
    emit(store, ("acct_1", 1), ("acct_1", 2), ("acct_2", 1))
    poison, other = claim(store)
    store.fail_outbox(poison, dead(poison, START))
    store.fail_outbox(other, dead(other, START))
    pending = [i for i, _ in store.pending_outbox()]
    with pytest.raises(InvalidInput, match="not dead letters"):
        store.redrive_outbox([poison.id, pending[1]])  # acct_1's second is pending, not dead
    assert len(store.dead_letters()) == 2, "a refused re-drive changes nothing"
    assert store.redrive_outbox([poison.id]) == [poison.id]
    [back] = claim(store)
    assert (back.id, back.attempts) == (poison.id, 0)
    assert store.redrive_outbox(None) == [other.id]
    assert store.redrive_outbox(None) == []


def test_the_backlog(store: SqlStore) -> None:
    assert store.outbox_backlog(START) == OutboxBacklog(at=START)
    emit(store, ("acct_1", 1), ("acct_1", 2), ("acct_2", 1), ("acct_3", 1), ("acct_3", 2))
    emit(store, ("acct_4", 1), at=START + timedelta(minutes=5))
    one, two, three, four = claim(store, limit=4)
    assert [m.account_id for m in (one, two, three, four)] == ["acct_1", "acct_2", "acct_3", "acct_4"]
    store.fail_outbox(one, dead(one, START))
    store.fail_outbox(two, retry(two, START + timedelta(minutes=1)))
    store.finish_outbox(three, START)
    now = START + timedelta(seconds=30)
    backlog = store.outbox_backlog(now)
    # acct_1's second (blocked), acct_2's first (retrying), acct_3's second (due), acct_4's (leased)
    assert backlog == OutboxBacklog(
        at=now, pending=4, due=1, leased=1, retrying=1, blocked=1, dead=1, oldest_pending_at=START
    )
    assert backlog.oldest_pending_age == timedelta(seconds=30)


def test_prune_never_deletes_a_dead_letter(store: SqlStore) -> None:
    emit(store, ("acct_1", 1))
    [poison] = claim(store)
    store.fail_outbox(poison, dead(poison, START))
    assert store.prune(START + timedelta(days=365)).outbox_deleted == 0
    assert [d.id for d in store.dead_letters()] == [poison.id]
    store.redrive_outbox([poison.id])
    [back] = claim(store, START + timedelta(days=365))
    store.finish_outbox(back, START + timedelta(days=365))
    assert store.prune(START + timedelta(days=366)).outbox_deleted == 1, "once delivered, retention applies"


def test_concurrent_deliverers_never_share_an_account_and_keep_its_order(any_db_url: str) -> None:
    """Three deliverers, each on its own engine and connection pool (as three
    processes would be), drain 8 accounts x 15 messages: every message once,
    each account's in order, never two handlers on one account at a time."""
    stores = [SqlStore.from_url(any_db_url) for _ in range(3)]
    stores[0].migrate()
    accounts = [f"acct_{n}" for n in range(8)]
    for n in range(1, 16):
        emit(stores[0], *[(a, n) for a in accounts])
    lock = threading.Lock()
    inside: dict[str, int] = {}
    overlaps: list[tuple[str, int, int]] = []
    delivered: list[tuple[str, int, int]] = []
    clock = FakeClock(START)  # never moves: no lease ever runs out
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def deliverer(me: int) -> None:
        def handle(payload: Mapping[str, Any]) -> None:
            account, n = payload["account"], payload["n"]
            with lock:
                if account in inside:
                    overlaps.append((account, inside[account], me))
                inside[account] = me
            sum(range(5000))  # some work outside the lock, so deliverers interleave
            with lock:
                delivered.append((account, n, me))
                del inside[account]

        try:
            delivery = OutboxDelivery(stores[me], clock, EngineConfig())
            barrier.wait()
            while delivery.deliver(handle, limit=7).handed:
                pass
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=deliverer, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for s in stores:
        s.close()
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert overlaps == []
    assert sorted((a, n) for a, n, _ in delivered) == sorted((a, n) for a in accounts for n in range(1, 16))
    for account in accounts:
        assert [n for a, n, _ in delivered if a == account] == list(range(1, 16))
