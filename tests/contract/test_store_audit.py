"""The Store port's auditor side (queries, checkpoints, cross-checks), run
against every database backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from adapters.sqlalchemy_store import SqlStore
from onboarding_fsm.audit import AuditKey, sign
from onboarding_fsm.checkpoints import Anchor, Checkpoint, covered, make, verify
from onboarding_fsm.events import InboxEntry, Outcome
from onboarding_fsm.queries import InboxQuery, Order, TransitionQuery
from onboarding_fsm.states import State, Trigger
from tests.conftest import START
from tests.contract.test_store import account, insert, record


@pytest.fixture
def store(any_db_url: str) -> Iterator[SqlStore]:
    s = SqlStore.from_url(any_db_url)
    s.migrate()
    yield s
    s.close()


def grow(store: SqlStore, n: int, links: int) -> None:
    """Account ``acct_n`` born, then ``links`` link issuances on it."""
    acct = account(n)
    insert(store, acct)
    for seq in range(2, links + 2):
        t = record(acct.stripe_account_id, seq, acct.audit_head, acct.state, State.LINK_ISSUED)
        t = replace(t, at=START + timedelta(seconds=seq * 10 + n))
        t = sign(t, None, prev_hash=acct.audit_head)  # re-hash after moving its time
        after = replace(acct, state=State.LINK_ISSUED, version=acct.version + 1, audit_seq=seq, audit_head=t.hash)
        with store.write() as tx:
            tx.save(after, expected_version=acct.version, transition=t, timers=None)
        acct = after


@pytest.fixture
def trail(store: SqlStore) -> SqlStore:
    for n in (1, 2, 3):
        grow(store, n, links=3)
    return store


def keys(records: list) -> list[tuple[str, int]]:  # type: ignore[type-arg]
    return [(t.account_id, t.seq) for t in records]


@pytest.mark.parametrize("order", list(Order))
def test_transitions_page_by_keyset_in_both_orders(trail: SqlStore, order: Order) -> None:
    query = TransitionQuery(order=order)
    everything = trail.transitions(query, limit=100)
    assert len(everything) == 12
    if order is Order.CHAIN:
        assert keys(everything) == sorted(keys(everything))
    else:
        assert [(t.at, t.account_id, t.seq) for t in everything] == sorted(
            (t.at, t.account_id, t.seq) for t in everything
        )
    paged, after = [], None
    while page := trail.transitions(query, limit=5, after=after):
        paged.extend(page)
        last = page[-1]
        after = (last.account_id, last.seq) if order is Order.CHAIN else (last.at, last.account_id, last.seq)
    assert paged == everything


def test_transitions_filter_by_every_field(trail: SqlStore) -> None:
    linked = trail.transitions(TransitionQuery(trigger=Trigger.ISSUE_LINK, account_id="acct_2"))
    assert keys(linked) == [("acct_2", 2), ("acct_2", 3), ("acct_2", 4)]
    assert keys(trail.transitions(TransitionQuery(from_state=State.CREATED, to_state=State.LINK_ISSUED))) == [
        ("acct_1", 2), ("acct_2", 2), ("acct_3", 2),
    ]  # fmt: skip
    window = TransitionQuery(since=START + timedelta(seconds=31), until=START + timedelta(seconds=42))
    assert sorted(keys(trail.transitions(window))) == [("acct_1", 3), ("acct_1", 4), ("acct_2", 3), ("acct_3", 3)]
    assert trail.transitions(TransitionQuery(actor="nobody")) == []


def test_latest_records_say_where_each_account_stood(trail: SqlStore) -> None:
    at = START + timedelta(seconds=22)  # acct_1 and acct_2 linked once, acct_3's link at 23 s not yet
    assert [(t.account_id, t.seq) for t in trail.latest_records(at)] == [("acct_1", 2), ("acct_2", 2), ("acct_3", 1)]
    assert trail.latest_records(START, account_id="acct_1") == []  # born at START + 1 s
    assert [t.account_id for t in trail.latest_records(at, limit=1, after="acct_1")] == ["acct_2"]


def test_the_inbox_pages_newest_first_through_ties(store: SqlStore) -> None:
    insert(store, account(1))
    entries = [
        InboxEntry(f"evt_{n}", "account.updated", "acct_1", START, False, START + timedelta(seconds=n // 2),
                   Outcome.APPLIED if n % 3 else Outcome.STALE, None, {})
        for n in range(7)
    ]  # fmt: skip
    for e in entries:
        with store.write() as tx:
            tx.record_event(e)
    everything = store.inbox(limit=100)
    assert [e.event_id for e in everything] == ["evt_6", "evt_5", "evt_4", "evt_3", "evt_2", "evt_1", "evt_0"]
    paged, after = [], None
    while page := store.inbox(limit=2, after=after):
        paged.extend(page)
        after = (page[-1].received_at, page[-1].event_id)
    assert paged == everything
    stale = store.inbox(InboxQuery(outcome=Outcome.STALE))
    assert [e.event_id for e in stale] == ["evt_6", "evt_3", "evt_0"]
    assert store.inbox(InboxQuery(type="capability.updated")) == []


def _make(last: Checkpoint | None, anchors: list[Anchor]) -> Checkpoint:
    return make(last, anchors, START, None)


def test_sealing_covers_every_record_once(trail: SqlStore) -> None:
    first = trail.seal_checkpoint(_make, limit=5, keyed_only=False)
    second = trail.seal_checkpoint(_make, limit=100, keyed_only=False)
    assert first is not None and second is not None
    assert (first.seq, first.records, second.seq, second.records) == (1, 5, 2, 7)
    assert second.prev_hash == first.hash
    assert trail.seal_checkpoint(_make, limit=100, keyed_only=False) is None  # nothing left
    assert trail.checkpoints() == [first, second]
    assert list(verify(trail.checkpoints(), trail.sealed(), None)) == []
    assert trail.evidence(outbox_since=START).unsealed == 0
    assert [cp for cp, *_ in trail.sealed()] == [1, 2]


def test_concurrent_sealers_never_seal_a_record_twice(trail: SqlStore) -> None:
    made: list[Checkpoint | None] = []

    def seal() -> None:
        for _ in range(6):
            made.append(trail.seal_checkpoint(_make, limit=1, keyed_only=False))

    threads = [threading.Thread(target=seal) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sealed = trail.checkpoints()
    assert [cp.seq for cp in sealed] == list(range(1, 13)) and sum(cp.records for cp in sealed) == 12
    assert list(verify(sealed, trail.sealed(), None)) == []


def test_keyed_only_leaves_plain_records_unsealed(store: SqlStore) -> None:
    key = AuditKey(b"k" * 32)
    insert(store, account(1))  # a plain-hash record
    keyed = sign(record("acct_2", 1, "0" * 64, None, State.CREATED), key)
    with store.write() as tx:
        tx.insert(account(2, audit_head=keyed.hash), keyed, ())
    sealed = store.seal_checkpoint(lambda last, anchors: make(last, anchors, START, key), limit=10, keyed_only=True)
    assert sealed is not None and sealed.records == 1 and sealed.covered == covered([Anchor("acct_2", 1, keyed.hash)])
    evidence = store.evidence(outbox_since=START)
    assert (evidence.unsealed, evidence.unsealed_unkeyed, evidence.problems) == (1, 1, ())
