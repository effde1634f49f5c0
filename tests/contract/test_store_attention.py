"""The Store port's attention queries (``needing_attention``,
``count_needing_attention``), run against every database backend: each
kind lists the accounts it should, with the facts behind it, in its order,
each once, paged by key; and every write keeps the columns they read."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from adapters.sqlalchemy_store import SqlStore
from onboarding_fsm.account import Account
from onboarding_fsm.attention import AttentionKind, AttentionQuery, Flagged
from onboarding_fsm.events import InboxEntry, Outcome
from onboarding_fsm.snapshot import Requirements
from onboarding_fsm.states import State
from onboarding_fsm.timers import Timer, TimerKind
from tests.conftest import START
from tests.contract.test_store import account, insert, record

DAY = timedelta(days=1)
QUERY = AttentionQuery(stuck_before=START - 7 * DAY, overdue_before=START - timedelta(minutes=5))
DEADLINE = START + 30 * DAY


def acct(n: int, state: State, since: datetime | None, **requirements: Requirements | None) -> Account:
    """Account ``acct_{n}`` in ``state`` since ``since``, with these (future_)requirements."""
    base = account(n)
    snapshot = replace(base.snapshot, **{"requirements": Requirements(), **requirements})  # type: ignore[arg-type]
    return replace(base, state=state, state_since=since, snapshot=snapshot)


def listed(store: SqlStore, kind: AttentionKind, query: AttentionQuery = QUERY, **paging: object) -> list[Flagged]:
    return store.needing_attention(kind, query, **paging)  # type: ignore[arg-type]


def ids(flags: list[Flagged]) -> list[str]:
    return [f.account_id for f in flags]


def test_eventually_due_lists_verified_accounts_with_fields_not_currently_due(store: SqlStore) -> None:
    later = ("individual.id_number", "individual.dob.day")
    insert(store, acct(1, State.VERIFIED, START, requirements=Requirements(eventually_due=later)))
    both = Requirements(currently_due=("company.tax_id",), eventually_due=("company.tax_id", "company.phone"))
    insert(store, acct(2, State.VERIFIED, None, requirements=both))  # one left; no state_since: listed all the same
    owed = Requirements(currently_due=("x",), eventually_due=("x",))
    insert(store, acct(3, State.VERIFIED, START, requirements=owed))  # nothing beyond currently_due
    insert(store, acct(4, State.RETURNED_INCOMPLETE, START, requirements=Requirements(eventually_due=later)))
    found = listed(store, AttentionKind.EVENTUALLY_DUE)
    assert [(f.account_id, f.count, f.at, f.state, f.platform_ref) for f in found] == [
        ("acct_1", 2, START, State.VERIFIED, "ref-1"),
        ("acct_2", 1, None, State.VERIFIED, "ref-2"),
    ]


def test_future_requirements_soonest_deadline_first_then_those_without_one(store: SqlStore) -> None:
    soon = Requirements(currently_due=("a", "b"), eventually_due=("b", "c"), current_deadline=DEADLINE)
    later = Requirements(eventually_due=("d",), current_deadline=DEADLINE + DAY)
    undated = Requirements(eventually_due=("e",))
    insert(store, acct(1, State.VERIFIED, START, future_requirements=later))
    insert(store, acct(2, State.RETURNED_INCOMPLETE, START, future_requirements=soon))  # any state but disabled
    insert(store, acct(3, State.VERIFIED, START, future_requirements=undated))
    insert(store, acct(4, State.VERIFIED, START, future_requirements=Requirements(current_deadline=DEADLINE)))
    insert(store, acct(5, State.VERIFIED, START, future_requirements=None))  # an API version without the hash
    # disabled (a detached account keeps its last snapshot): nobody can collect them, dated or not
    insert(store, acct(6, State.DISABLED, START, future_requirements=soon))
    insert(store, acct(7, State.DISABLED, START, future_requirements=undated))
    found = listed(store, AttentionKind.FUTURE_REQUIREMENTS)
    assert [(f.account_id, f.count, f.at, f.state) for f in found] == [
        ("acct_2", 3, DEADLINE, State.RETURNED_INCOMPLETE),
        ("acct_1", 1, DEADLINE + DAY, State.VERIFIED),
        ("acct_3", 1, None, State.VERIFIED),
    ]
    # a page that ends among the dated ones continues into the undated ones, and on
    first = listed(store, AttentionKind.FUTURE_REQUIREMENTS, limit=1)
    second = listed(store, AttentionKind.FUTURE_REQUIREMENTS, limit=1, after=first[-1].key)
    third = listed(store, AttentionKind.FUTURE_REQUIREMENTS, limit=2, after=second[-1].key)
    assert ids(first + second + third) == ["acct_2", "acct_1", "acct_3"]
    assert listed(store, AttentionKind.FUTURE_REQUIREMENTS, after=third[-1].key) == []
    assert store.count_needing_attention([AttentionKind.FUTURE_REQUIREMENTS], QUERY) == {
        AttentionKind.FUTURE_REQUIREMENTS: 3
    }


def test_stuck_is_a_waiting_state_entered_before_the_cutoff(store: SqlStore) -> None:
    old = START - 10 * DAY
    insert(store, acct(1, State.RETURNED_INCOMPLETE, old))
    insert(store, acct(2, State.LINK_ISSUED, old - DAY))
    insert(store, acct(3, State.CREATED, old))
    insert(store, acct(4, State.PAST_DUE, old + timedelta(seconds=1)))
    insert(store, acct(5, State.VERIFIED, old - 30 * DAY))  # waits on nobody
    insert(store, acct(6, State.DISABLED, old))
    insert(store, acct(7, State.PAST_DUE, START - DAY))  # not long enough
    insert(store, acct(8, State.CREATED, None))  # since when is unknown: left out
    found = listed(store, AttentionKind.STUCK)
    assert [(f.account_id, f.state, f.at) for f in found] == [
        ("acct_2", State.LINK_ISSUED, old - DAY),
        ("acct_1", State.RETURNED_INCOMPLETE, old),
        ("acct_3", State.CREATED, old),
        ("acct_4", State.PAST_DUE, old + timedelta(seconds=1)),
    ]
    pages, after = [], None
    while page := listed(store, AttentionKind.STUCK, limit=2, after=after):
        pages.append(ids(page))
        after = page[-1].key
    assert pages == [["acct_2", "acct_1"], ["acct_3", "acct_4"]]


def test_overdue_timers_one_row_per_account_for_its_earliest(store: SqlStore) -> None:
    late = START - timedelta(hours=2)
    insert(store, acct(1, State.LINK_ISSUED, START), (
        Timer(late, "acct_1", TimerKind.REMINDER),
        Timer(START - timedelta(hours=1), "acct_1", TimerKind.DEADLINE),
        Timer(START + DAY, "acct_1", TimerKind.ABANDON),  # not due yet
    ))  # fmt: skip
    insert(store, acct(2, State.VERIFIED, START), (Timer(late, "acct_2", TimerKind.FUTURE_DEADLINE),))
    insert(store, acct(3, State.VERIFIED, START), (Timer(START - timedelta(minutes=1), "acct_3", TimerKind.DEADLINE),))
    found = listed(store, AttentionKind.TIMER_OVERDUE)
    assert [(f.account_id, f.timer, f.at, f.count, f.attempts) for f in found] == [
        ("acct_1", TimerKind.REMINDER, late, 2, 0),
        ("acct_2", TimerKind.FUTURE_DEADLINE, late, 1, 0),
    ]
    assert ids(listed(store, AttentionKind.TIMER_OVERDUE, limit=1, after=found[0].key)) == ["acct_2"]
    with store.write() as tx:  # Stripe could not be asked; later a sweep fires the reminder
        tx.retry_timer(Timer(late, "acct_2", TimerKind.FUTURE_DEADLINE), START + timedelta(minutes=1))
        assert tx.finish_timer(Timer(late, "acct_1", TimerKind.REMINDER), START)
    found = listed(store, AttentionKind.TIMER_OVERDUE)
    assert [(f.account_id, f.timer, f.count, f.attempts) for f in found] == [
        ("acct_2", TimerKind.FUTURE_DEADLINE, 1, 1),
        ("acct_1", TimerKind.DEADLINE, 1, 0),
    ]


def test_counts_are_the_listings_lengths(store: SqlStore) -> None:
    insert(store, acct(1, State.VERIFIED, START, requirements=Requirements(eventually_due=("x",))))
    insert(store, acct(2, State.CREATED, START - 8 * DAY), (Timer(START - DAY, "acct_2", TimerKind.DEADLINE),))
    insert(store, acct(3, State.LINK_ISSUED, START - 9 * DAY), (
        Timer(START - DAY, "acct_3", TimerKind.DEADLINE), Timer(START - DAY, "acct_3", TimerKind.REMINDER),
    ))  # fmt: skip
    future = Requirements(currently_due=("y",), current_deadline=DEADLINE)
    insert(store, acct(4, State.RETURNED_INCOMPLETE, START - 8 * DAY, future_requirements=future))
    left = Requirements(eventually_due=("x",))  # disabled: of no kind (but an overdue timer would be)
    insert(store, acct(5, State.DISABLED, START - 9 * DAY, requirements=left, future_requirements=future))
    kinds = list(AttentionKind)
    counts = store.count_needing_attention(kinds, QUERY)
    assert counts == {kind: len(listed(store, kind)) for kind in kinds}
    assert counts == {
        AttentionKind.TIMER_OVERDUE: 2,
        AttentionKind.STUCK: 3,
        AttentionKind.FUTURE_REQUIREMENTS: 1,
        AttentionKind.EVENTUALLY_DUE: 1,
    }
    assert store.count_needing_attention([AttentionKind.STUCK], QUERY) == {AttentionKind.STUCK: 3}


def test_every_write_keeps_the_columns_the_queries_read(store: SqlStore) -> None:
    """A save with an audit record, one without, and one with an inbox row
    (one statement each on PostgreSQL) all refresh them from the snapshot."""
    later = Requirements(eventually_due=("individual.id_number",))
    first = acct(1, State.VERIFIED, START, requirements=later)
    insert(store, first)
    assert ids(listed(store, AttentionKind.EVENTUALLY_DUE)) == ["acct_1"]

    future = Requirements(currently_due=("company.tax_id",), current_deadline=DEADLINE)
    moved = replace(first, version=2, snapshot=replace(first.snapshot, requirements=Requirements(),
                                                       future_requirements=future))  # fmt: skip
    with store.write() as tx:
        tx.save(moved, expected_version=1, transition=None, timers=None)
    assert listed(store, AttentionKind.EVENTUALLY_DUE) == []
    assert [(f.account_id, f.at) for f in listed(store, AttentionKind.FUTURE_REQUIREMENTS)] == [("acct_1", DEADLINE)]

    t = record("acct_1", 2, moved.audit_head, State.VERIFIED, State.RETURNED_INCOMPLETE)
    stuck = replace(
        moved, version=3, state=State.RETURNED_INCOMPLETE, state_since=START - 8 * DAY, audit_seq=2,
        audit_head=t.hash, snapshot=replace(moved.snapshot, future_requirements=Requirements()),
    )  # fmt: skip
    with store.write() as tx:
        tx.save(stuck, expected_version=2, transition=t, timers=None)
    assert listed(store, AttentionKind.FUTURE_REQUIREMENTS) == []
    assert ids(listed(store, AttentionKind.STUCK)) == ["acct_1"]

    event = InboxEntry("evt_1", "account.updated", "acct_1", START, False, START, Outcome.APPLIED, None, {})
    verified = replace(stuck, version=4, state=State.VERIFIED, state_since=START,
                       snapshot=replace(stuck.snapshot, requirements=later))  # fmt: skip
    with store.write() as tx:
        tx.record_event(event)
        tx.save(verified, expected_version=3, transition=None, timers=None)
    assert listed(store, AttentionKind.STUCK) == []
    assert ids(listed(store, AttentionKind.EVENTUALLY_DUE)) == ["acct_1"]


def test_a_disabled_account_keeps_its_columns_and_is_listed_again_once_it_leaves(store: SqlStore) -> None:
    """The columns follow the snapshot in every state; only the listing
    leaves disabled accounts out (Stripe can re-enable one, e.g. a platform
    pause lifted; a detached one stays disabled)."""
    future = Requirements(currently_due=("company.tax_id",), current_deadline=DEADLINE)
    first = acct(1, State.VERIFIED, START, future_requirements=future)
    insert(store, first)
    query = [AttentionKind.FUTURE_REQUIREMENTS]
    disabled = replace(first, version=2, state=State.DISABLED, state_since=START + DAY)
    with store.write() as tx:
        tx.save(disabled, expected_version=1, transition=None, timers=None)
    assert listed(store, AttentionKind.FUTURE_REQUIREMENTS) == []
    assert store.count_needing_attention(query, QUERY) == {AttentionKind.FUTURE_REQUIREMENTS: 0}
    with store.write() as tx:
        tx.save(replace(disabled, version=3, state=State.VERIFIED), expected_version=2, transition=None, timers=None)
    assert [(f.account_id, f.count, f.at) for f in listed(store, AttentionKind.FUTURE_REQUIREMENTS)] == [
        ("acct_1", 1, DEADLINE)
    ]
    assert store.count_needing_attention(query, QUERY) == {AttentionKind.FUTURE_REQUIREMENTS: 1}
