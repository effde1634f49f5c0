"""One contract for the Store port, run against every database backend."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from adapters.sqlalchemy_store import SqlStore
from adapters.sqlalchemy_store.store import VERSION_TABLE
from adapters.sqlalchemy_store.tables import metadata
from onboarding_fsm.account import Account, CreationIntent, LinkParams
from onboarding_fsm.audit import GENESIS, Cause, Transition, seal
from onboarding_fsm.errors import ConcurrencyConflict, DuplicateEvent
from onboarding_fsm.events import InboxEntry, Outcome
from onboarding_fsm.snapshot import AccountSnapshot, Requirements
from onboarding_fsm.states import Source, State, Trigger
from onboarding_fsm.timers import ClaimedTimer, Timer, TimerBacklog, TimerKind
from tests.conftest import START


def account(n: int = 1, **changes: object) -> Account:
    snap = AccountSnapshot(
        id=f"acct_{n}",
        country="US",
        capabilities=(("card_payments", "inactive"),),
        requirements=Requirements(currently_due=("individual.dob.day",), current_deadline=START + timedelta(days=3)),
        platform_ref=f"ref-{n}",
    )
    birth = record(f"acct_{n}", 1, GENESIS, None, State.CREATED)
    acct = Account(
        stripe_account_id=f"acct_{n}",
        platform_ref=f"ref-{n}",
        state=State.CREATED,
        reason="created",
        version=1,
        snapshot=snap,
        requested_capabilities=("card_payments",),
        created_at=START,
        updated_at=START,
        synced_at=START,
        watermark=START,
        audit_seq=1,
        audit_head=birth.hash,
    )
    return replace(acct, **changes)  # type: ignore[arg-type]


def record(account_id: str, seq: int, prev: str, frm: State | None, to: State) -> Transition:
    return seal(
        account_id=account_id,
        seq=seq,
        prev_hash=prev,
        from_state=frm,
        to_state=to,
        trigger=Trigger.CREATE if frm is None else Trigger.ISSUE_LINK,
        cause=Cause(Source.API, "ref", "tester", START),
        reason="because",
        delta=(),
        at=START + timedelta(seconds=seq),
    )


def insert(store: SqlStore, acct: Account, timers: tuple[Timer, ...] = ()) -> bool:
    with store.write() as tx:
        return tx.insert(acct, record(acct.stripe_account_id, 1, GENESIS, None, State.CREATED), timers)


def advance(store: SqlStore, acct: Account, expected: int | None = None) -> Account:
    t = record(acct.stripe_account_id, acct.audit_seq + 1, acct.audit_head, acct.state, State.LINK_ISSUED)
    moved = replace(
        acct,
        state=State.LINK_ISSUED,
        version=acct.version + 1,
        audit_seq=t.seq,
        audit_head=t.hash,
        link=LinkParams(),
        link_issued_at=START,
        link_expires_at=START + timedelta(minutes=5),
    )
    with store.write() as tx:
        tx.save(moved, expected_version=acct.version if expected is None else expected, transition=t, timers=None)
    return moved


def test_migrations_create_exactly_the_tables_module(store: SqlStore) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}), metadata)
    assert diff == []


def test_migrate_twice_is_a_no_op(store: SqlStore) -> None:
    store.migrate()


def test_insert_load_round_trip(store: SqlStore) -> None:
    acct = account()
    assert insert(store, acct)
    assert store.get("acct_1") == acct
    assert store.get_by_ref("ref-1") == acct
    assert store.get("acct_2") is None


def test_duplicate_id_or_reference_is_refused(store: SqlStore) -> None:
    assert insert(store, account())
    assert not insert(store, account())
    assert not insert(store, account(2, platform_ref="ref-1"))
    assert [a.stripe_account_id for a in store.accounts()] == ["acct_1"]


def test_optimistic_version(store: SqlStore) -> None:
    acct = account()
    insert(store, acct)
    moved = advance(store, acct)
    assert store.get("acct_1") == moved
    with pytest.raises(ConcurrencyConflict):
        advance(store, acct)  # stale: version 1 was already replaced
    assert store.get("acct_1") == moved
    assert [t.seq for t in store.history("acct_1")] == [1, 2]


def test_failed_save_rolls_back_everything(store: SqlStore) -> None:
    acct = account()
    insert(store, acct)
    t = record("acct_1", 2, acct.audit_head, State.CREATED, State.LINK_ISSUED)
    with pytest.raises(ConcurrencyConflict), store.write() as tx:  # noqa: PT012 - the rollback is the point
        tx.record_event(inbox("evt_x"))
        tx.save(replace(acct, version=2), expected_version=7, transition=t, timers=None)
    assert store.inbox() == []
    assert len(store.history("acct_1")) == 1


def test_history_and_outbox_per_transition(store: SqlStore) -> None:
    acct = account()
    insert(store, acct)
    advance(store, acct)
    history = store.history("acct_1")
    assert [(t.from_state, t.to_state) for t in history] == [(None, State.CREATED), (State.CREATED, State.LINK_ISSUED)]
    assert history[1].prev_hash == history[0].hash
    pending = store.pending_outbox()
    assert [p["seq"] for _, p in pending] == [1, 2]
    store.ack_outbox([pending[0][0]], START)
    assert [p["seq"] for _, p in store.pending_outbox()] == [2]


def test_audit_rows_are_append_only(store: SqlStore) -> None:
    insert(store, account())
    with pytest.raises(sa.exc.DBAPIError), store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE ofsm_transitions SET reason = 'edited'")
    with pytest.raises(sa.exc.DBAPIError), store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM ofsm_transitions")
    assert store.history("acct_1")[0].reason == "because"


def inbox(event_id: str, outcome: Outcome = Outcome.APPLIED) -> InboxEntry:
    return InboxEntry(event_id, "account.updated", "acct_1", START, False, START, outcome, None, {"id": event_id})


def test_inbox_dedupes_by_event_id(store: SqlStore) -> None:
    insert(store, account())
    with store.write() as tx:
        tx.record_event(inbox("evt_1"))
    with pytest.raises(DuplicateEvent) as info, store.write() as tx:
        tx.record_event(inbox("evt_1", Outcome.STALE))
    assert info.value.event_id == "evt_1"
    assert [(e.event_id, e.outcome) for e in store.inbox()] == [("evt_1", Outcome.APPLIED)]


def test_a_duplicate_rolls_back_the_whole_transaction(store: SqlStore) -> None:
    acct = account()
    insert(store, acct)
    with store.write() as tx:
        tx.record_event(inbox("evt_1"))
    with pytest.raises(DuplicateEvent), store.write() as tx:  # noqa: PT012 - the rollback is the point
        tx.emit("acct_1", "note", {"n": 1}, START)
        tx.record_event(inbox("evt_1"))
    assert [p for _, p in store.pending_outbox() if p == {"n": 1}] == []


def test_a_failed_event_may_be_processed_again(store: SqlStore) -> None:
    with store.write() as tx:
        tx.record_event(inbox("evt_1", Outcome.FAILED))
    with store.write() as tx:
        tx.record_event(inbox("evt_1", Outcome.APPLIED))
    with pytest.raises(DuplicateEvent), store.write() as tx:
        tx.record_event(inbox("evt_1", Outcome.APPLIED))
    assert store.inbox()[0].outcome is Outcome.APPLIED


LEASE = timedelta(minutes=1)


def claim(tx: Any, now: datetime) -> ClaimedTimer | None:
    return tx.claim_due_timer(now, lease_until=now + LEASE)


def test_timers_fire_once_and_survive_rederivation(store: SqlStore) -> None:
    due = Timer(START + timedelta(hours=1), "acct_1", TimerKind.DEADLINE)
    later = Timer(START + timedelta(days=2), "acct_1", TimerKind.ABANDON)
    acct = account()
    insert(store, acct, (due, later))
    with store.write() as tx:
        assert claim(tx, START) is None
        claimed = claim(tx, START + timedelta(hours=2))
        assert claimed == ClaimedTimer(due, acct, 0)
        assert tx.finish_timer(due, START + timedelta(hours=2))
        assert not tx.finish_timer(due, START + timedelta(hours=3))  # once
    # re-deriving the same set must not resurrect the fired timer
    with store.write() as tx:
        moved = replace(acct, version=2)
        tx.save(moved, expected_version=1, transition=None, timers=(due, later))
    with store.write() as tx:
        assert claim(tx, START + timedelta(days=3)) == ClaimedTimer(later, replace(acct, version=2), 0)
        assert tx.finish_timer(later, START + timedelta(days=3))
    fired = dict(store.timers("acct_1"))
    assert fired[due] == START + timedelta(hours=2)
    assert fired[later] == START + timedelta(days=3)


def test_a_leased_timer_wakes_again_when_the_lease_runs_out(store: SqlStore) -> None:
    due = Timer(START, "acct_1", TimerKind.DEADLINE)
    insert(store, account(), (due,))
    with store.write() as tx:
        assert claim(tx, START) is not None
    with store.write() as tx:  # the claimer died holding the lease
        assert claim(tx, START + LEASE - timedelta(seconds=1)) is None
    assert store.next_due_at() == START + LEASE
    with store.write() as tx:
        assert claim(tx, START + LEASE) == ClaimedTimer(due, account(), 0)


def test_a_retried_timer_counts_attempts_and_wakes_later(store: SqlStore) -> None:
    due = Timer(START, "acct_1", TimerKind.DEADLINE)
    insert(store, account(), (due,))
    later = START + timedelta(minutes=10)
    with store.write() as tx:
        assert claim(tx, START) is not None
        tx.retry_timer(due, later)
    assert store.timer_backlog(START + timedelta(minutes=5)) == TimerBacklog(due=0, retrying=1)
    assert store.timer_backlog(later) == TimerBacklog(due=1, retrying=1)
    with store.write() as tx:
        assert claim(tx, later - timedelta(seconds=1)) is None
        assert claim(tx, later) == ClaimedTimer(due, account(), 1)
        assert tx.finish_timer(due, later)
    assert store.timer_backlog(later) == TimerBacklog(due=0, retrying=0)
    assert dict(store.timers("acct_1"))[due] == later


def test_creation_intents_live_until_the_account_is_inserted(store: SqlStore) -> None:
    intent = CreationIntent("ref-1", "key-1", START)
    with store.write() as tx:
        assert tx.intent("ref-1") is None
        tx.record_intent(intent)
    with store.write() as tx:
        assert tx.intent("ref-1") == intent
        tx.record_intent(replace(intent, requested_at=START + timedelta(days=1)))
    with store.write() as tx:
        assert tx.intent("ref-1") == replace(intent, requested_at=START + timedelta(days=1))
    insert(store, account())
    with store.write() as tx:
        assert tx.intent("ref-1") is None
        tx.record_intent(replace(intent, platform_ref="ref-2"))
    with store.write() as tx:
        tx.drop_intent("ref-2")
        assert tx.intent("ref-2") is None


def test_a_rate_budget_spaces_slots_across_callers(store: SqlStore, any_db_url: str) -> None:
    step = timedelta(milliseconds=40)
    slots = [store.reserve("stripe:test", step, START) for _ in range(3)]
    assert slots == [START + step, START + 2 * step, START + 3 * step]
    # another process on the same database draws from the same budget
    other = SqlStore.from_url(any_db_url)
    try:
        assert other.reserve("stripe:test", step, START) == START + 4 * step
    finally:
        other.close()
    # after a quiet spell the budget starts from now again; other budgets are apart
    assert store.reserve("stripe:test", step, START + timedelta(seconds=10)) == START + timedelta(seconds=10) + step
    assert store.reserve("stripe:live", step, START) == START + step


def test_replacing_timers_drops_unfired_ones(store: SqlStore) -> None:
    old = Timer(START + timedelta(hours=1), "acct_1", TimerKind.DEADLINE)
    new = Timer(START + timedelta(hours=5), "acct_1", TimerKind.DEADLINE)
    acct = account()
    insert(store, acct, (old,))
    with store.write() as tx:
        tx.save(replace(acct, version=2), expected_version=1, transition=None, timers=(new,))
    assert [t for t, _ in store.timers("acct_1")] == [new]


def test_emit_outbox_message(store: SqlStore) -> None:
    insert(store, account())
    with store.write() as tx:
        tx.emit("acct_1", "deadline_approaching", {"type": "onboarding.deadline_approaching"}, START)
    assert store.pending_outbox()[-1][1] == {"type": "onboarding.deadline_approaching"}


def test_chains_cover_every_account(store: SqlStore) -> None:
    for n in range(1, 4):
        insert(store, account(n))
    chains = list(store.chains(page=2))
    assert [a.stripe_account_id for a, _ in chains] == ["acct_1", "acct_2", "acct_3"]
    assert all(len(records) == 1 for _, records in chains)


def test_times_come_back_aware_utc(store: SqlStore) -> None:
    insert(store, account())
    got = store.get("acct_1")
    assert got is not None and got.created_at == START and got.created_at.tzinfo is not None
    assert store.history("acct_1")[0].at.utcoffset() == timedelta(0)


def test_an_event_and_the_save_it_causes_are_one_unit(store: SqlStore) -> None:
    acct = account()
    insert(store, acct)
    t = record("acct_1", 2, acct.audit_head, State.CREATED, State.LINK_ISSUED)
    moved = replace(acct, state=State.LINK_ISSUED, version=2, audit_seq=2, audit_head=t.hash)
    with store.write() as tx:
        tx.record_event(inbox("evt_1"))
        tx.save(moved, expected_version=1, transition=t, timers=None)
    assert store.get("acct_1") == moved
    assert [p["seq"] for _, p in store.pending_outbox()] == [1, 2]
    # the same event again: nothing written, not even the account
    again = replace(moved, reason="again", version=3)
    with pytest.raises(DuplicateEvent), store.write() as tx:  # noqa: PT012 - the rollback is the point
        tx.record_event(inbox("evt_1"))
        tx.save(again, expected_version=2, transition=None, timers=None)
    assert store.get("acct_1") == moved
    # a stale version: the whole unit rolls back, inbox row included
    with pytest.raises(ConcurrencyConflict), store.write() as tx:  # noqa: PT012 - the rollback is the point
        tx.record_event(inbox("evt_2"))
        tx.save(again, expected_version=1, transition=None, timers=None)
    assert [e.event_id for e in store.inbox()] == ["evt_1"]
    assert len(store.history("acct_1")) == 2


def test_a_decision_on_an_outdated_read_is_never_committed(any_db_url: str, store: SqlStore) -> None:
    """Two processes: this one read the account (its cache may answer later
    loads), the other one moves it. A transaction here that loaded the
    account and wrote something else must not commit on the old version."""
    acct = account()
    insert(store, acct)
    with store.write() as tx:
        assert tx.load("acct_1") == acct
    other = SqlStore.from_url(any_db_url)
    try:
        advance(other, acct)
    finally:
        other.close()
    with pytest.raises(ConcurrencyConflict), store.write() as tx:  # noqa: PT012 - the rollback is the point
        seen = tx.load("acct_1")
        assert seen is not None
        tx.record_event(inbox("evt_decided_on", Outcome.STALE))
    assert store.inbox() == []
    with store.write() as tx:  # the retry reads what the other process wrote
        fresh = tx.load("acct_1")
    assert fresh is not None and fresh.version == 2 and fresh.state is State.LINK_ISSUED


def test_a_rolled_back_claim_leaves_the_timer_unfired(store: SqlStore) -> None:
    due = Timer(START, "acct_1", TimerKind.DEADLINE)
    insert(store, account(), (due,))
    with pytest.raises(RuntimeError), store.write() as tx:  # noqa: PT012 - the rollback is the point
        assert claim(tx, START) is not None
        raise RuntimeError("crash mid-fire")
    assert dict(store.timers("acct_1"))[due] is None
    with store.write() as tx:
        assert claim(tx, START) is not None


def test_an_event_and_its_save_keep_their_own_values(store: SqlStore) -> None:
    """One statement on PostgreSQL: the inbox row and the account row both have a
    ``livemode``; each must keep its own."""
    acct = account()
    insert(store, acct)
    t = record("acct_1", 2, acct.audit_head, State.CREATED, State.LINK_ISSUED)
    moved = replace(acct, state=State.LINK_ISSUED, version=2, audit_seq=2, audit_head=t.hash)
    live_event = replace(inbox("evt_live"), livemode=True)
    with store.write() as tx:
        tx.record_event(live_event)
        tx.save(moved, expected_version=1, transition=t, timers=None)
    assert [(e.event_id, e.livemode) for e in store.inbox()] == [("evt_live", True)]
    assert store.get("acct_1") == moved and moved.livemode is False


def test_rederiving_the_same_timer_keeps_its_lease_and_backoff(store: SqlStore) -> None:
    due = Timer(START, "acct_1", TimerKind.DEADLINE)
    other = Timer(START + timedelta(days=1), "acct_1", TimerKind.REMINDER)
    acct = account()
    insert(store, acct, (due, other))
    later = START + timedelta(minutes=10)
    with store.write() as tx:
        assert claim(tx, START) is not None
        tx.retry_timer(due, later)
    with store.write() as tx:  # the account changed; its deadline did not
        tx.save(replace(acct, version=2), expected_version=1, transition=None, timers=(due,))
    assert [t for t, _ in store.timers("acct_1")] == [due]
    assert store.timer_backlog(later) == TimerBacklog(due=1, retrying=1)
    with store.write() as tx:
        assert claim(tx, START + timedelta(minutes=5)) is None  # still backing off
        assert claim(tx, later) == ClaimedTimer(due, replace(acct, version=2), 1)


def test_prune_deletes_published_outbox_rows_and_empties_old_inbox_payloads(store: SqlStore) -> None:
    """Issue 9, item 11: retention. Old published messages go; pending ones,
    inbox rows (their ids dedupe Stripe's retries) and audit records stay."""
    from adapters.sqlalchemy_store.tables import outbox

    insert(store, account())
    cut = START + timedelta(days=90)
    with store.write() as tx:
        for n in range(3):
            tx.emit("acct_1", "note", {"n": n}, START)
        tx.record_event(replace(inbox("evt_old"), received_at=START))
        tx.record_event(replace(inbox("evt_new"), received_at=cut + timedelta(seconds=1)))
    ids = {p.get("n"): i for i, p in store.pending_outbox()}
    store.ack_outbox([ids[0]], START + timedelta(days=1))  # published long ago
    store.ack_outbox([ids[1]], cut + timedelta(seconds=1))  # published recently
    history = store.history("acct_1")

    report = store.prune(cut)

    assert (report.before, report.outbox_deleted, report.inbox_emptied) == (cut, 1, 1)
    with store.engine.connect() as conn:
        kept = sorted(conn.execute(sa.select(outbox.c.payload)).scalars(), key=str)
    assert {"n": 0} not in kept and {"n": 1} in kept and {"n": 2} in kept, "pending and recent messages stay"
    entries = {e.event_id: e for e in store.inbox()}
    assert entries["evt_old"].payload == {} and entries["evt_new"].payload == {"id": "evt_new"}
    assert (entries["evt_old"].type, entries["evt_old"].outcome) == ("account.updated", Outcome.APPLIED)
    with pytest.raises(DuplicateEvent), store.write() as tx:
        tx.record_event(inbox("evt_old"))  # dedupe still knows it
    assert store.history("acct_1") == history, "the audit trail is never pruned"
    again = store.prune(cut)
    assert (again.outbox_deleted, again.inbox_emptied) == (0, 0), "a second prune rewrites nothing"
