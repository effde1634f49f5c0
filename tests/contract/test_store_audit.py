"""The Store port's auditor side (queries, checkpoints, cross-checks), run
against every database backend."""

from __future__ import annotations

import threading
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
    found, cursor = trail.latest_records(at)
    assert [(t.account_id, t.seq) for t in found] == [("acct_1", 2), ("acct_2", 2), ("acct_3", 1)]
    assert cursor is None  # a short page: no more accounts
    assert trail.latest_records(START, account_id="acct_1") == ([], None)  # born at START + 1 s
    found, cursor = trail.latest_records(at, limit=1, after="acct_1")
    assert ([t.account_id for t in found], cursor) == (["acct_2"], "acct_2")
    # a page of accounts none of which existed yet still moves the cursor on
    assert trail.latest_records(START, limit=2) == ([], "acct_2")


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
    assert list(verify(trail.checkpoints(), trail.sealed(2), None)) == []
    assert trail.evidence(outbox_since=START).unsealed == 0
    assert [cp for cp, *_ in trail.sealed(2)] == [1, 2] and [cp for cp, *_ in trail.sealed(1)] == [1]
    assert trail.last_checkpoint() == second
    assert sorted(trail.announced_checkpoints(START)) == [(1, first.hash), (2, second.hash)]
    sealed = trail.sealed_records(1, limit=100)
    assert len(sealed) == 5 and {t.checkpoint for t in sealed} == {1}
    unsealed = trail.unsealed_records(1, limit=100)
    assert len(unsealed) == 7 and {t.checkpoint for t in unsealed} == {None}  # sealed by 2: not by 1..1
    paged, after = [], None
    while page := trail.sealed_records(2, limit=3, after=after):
        paged.extend(page)
        after = (page[-1].checkpoint, page[-1].account_id, page[-1].seq)
    assert len(paged) == 12 and [t.checkpoint for t in paged] == sorted(t.checkpoint or 0 for t in paged)


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
    assert list(verify(sealed, trail.sealed(12), None)) == []


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


def test_checkpoints_are_append_only(trail: SqlStore) -> None:
    import sqlalchemy as sa

    trail.seal_checkpoint(_make, limit=100, keyed_only=False)
    for sql in ("UPDATE ofsm_audit_checkpoints SET records = 0", "DELETE FROM ofsm_audit_checkpoints"):
        with pytest.raises(sa.exc.DBAPIError), trail.engine.begin() as conn:
            conn.execute(sa.text(sql))
    assert len(trail.checkpoints()) == 1


def test_a_digest_does_not_depend_on_the_databases_collation(store: SqlStore) -> None:
    """Mixed-case Stripe ids sort differently under a language collation; the
    digest is over code-point order, whatever order the database returns."""
    for n, ref in ((1, "acct_B"), (2, "acct_a"), (3, "acct_C")):
        acct = account(n)
        birth = record(ref, 1, "0" * 64, None, State.CREATED)
        with store.write() as tx:
            tx.insert(replace(acct, stripe_account_id=ref, audit_head=birth.hash), birth, ())
    cp = store.seal_checkpoint(_make, limit=10, keyed_only=False)
    assert cp is not None and cp.records == 3
    assert list(verify([cp], store.sealed(1), None)) == []
