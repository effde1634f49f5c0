"""The Store port's operations side (recorded runs, one inbox event, overdue
timers, the retention of runs), run against every database backend."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from adapters.sqlalchemy_store import SqlStore
from onboarding_fsm.events import Outcome
from onboarding_fsm.runs import Run, RunOutcome, RunRecord
from onboarding_fsm.states import Source
from onboarding_fsm.timers import Timer, TimerBacklog, TimerKind
from tests.conftest import START
from tests.contract.test_store import account, claim, inbox, insert


def run(n: int, kind: str = "sweep", **counts: int) -> RunRecord:
    started = START + timedelta(minutes=n)
    return Run(f"{kind}_{n:04d}").record(started, started + timedelta(seconds=2), counts)


def test_a_run_reads_back_as_recorded(store: SqlStore) -> None:
    recorded = Run.start("reconcile", source=Source.OPERATOR, actor="operator:alice").record(
        START, START + timedelta(seconds=90), {"listed": 4, "drift.synced": 1}, RunOutcome.GUARDED, "3 of 4: 403"
    )
    store.record_run(recorded)
    assert store.runs("reconcile") == [recorded]
    [back] = store.runs()
    assert back.started_at.tzinfo is not None and back.finished_at == START + timedelta(seconds=90)


def test_runs_are_latest_first_and_filtered_by_kind(store: SqlStore) -> None:
    for n in range(5):
        store.record_run(run(n, "sweep" if n % 2 else "reconcile", transitions=n + 1))
    assert [r.run_id for r in store.runs(limit=3)] == ["reconcile_0004", "sweep_0003", "reconcile_0002"]
    assert [r.run_id for r in store.runs("reconcile")] == ["reconcile_0004", "reconcile_0002", "reconcile_0000"]
    assert store.runs("prune") == []


def test_recording_a_run_again_updates_its_row(store: SqlStore) -> None:
    """An idle run is rewritten under one id each time a worker finds nothing to do."""
    first = Run.start("sweep").record(START, START, {"transitions": 0})
    later = Run.start("sweep").record(START + timedelta(seconds=5), START + timedelta(seconds=5), {"transitions": 0})
    assert first.run_id == later.run_id == "sweep_idle_scheduler"
    store.record_run(first)
    store.record_run(later)
    assert store.runs("sweep") == [later]
    failed = Run.start("sweep").record(START, START, {}, RunOutcome.FAILED, "StoreUnavailable: gone")
    store.record_run(failed)
    assert failed.run_id.startswith("sweep_") and failed.run_id != later.run_id, "a failed run keeps its own id"
    assert len(store.runs("sweep")) == 2


def test_an_inbox_event_by_its_id(store: SqlStore) -> None:
    insert(store, account())
    with store.write() as tx:
        tx.record_event(replace(inbox("evt_1", Outcome.FAILED), detail="re-fetch failed: StripeUnavailable"))
    entry = store.inbox_event("evt_1")
    assert entry is not None and (entry.outcome, entry.account_id) == (Outcome.FAILED, "acct_1")
    assert store.inbox_event("evt_nope") is None


def test_overdue_timers_count_by_their_due_time_whatever_wakes_them(store: SqlStore) -> None:
    old = Timer(START, "acct_1", TimerKind.DEADLINE)
    recent = Timer(START + timedelta(minutes=9), "acct_1", TimerKind.REMINDER)
    insert(store, account(), (old, recent))
    now = START + timedelta(minutes=10)
    with store.write() as tx:
        assert claim(tx, START) is not None
        tx.retry_timer(old, now + timedelta(minutes=30))  # Stripe away: it sleeps, still overdue
    cut = now - timedelta(minutes=5)
    assert store.timer_backlog(now, overdue_before=cut) == TimerBacklog(due=1, retrying=1, overdue=1)
    assert store.timer_backlog(now) == TimerBacklog(due=1, retrying=1, overdue=0), "not asked: not counted"


def test_prune_deletes_runs_started_before_the_cut_off(store: SqlStore) -> None:
    for n in range(3):
        store.record_run(run(n * 60 * 24, transitions=1))  # one a day
    idle = Run.start("sweep").record(START, START + timedelta(days=3), {})
    store.record_run(replace(idle, started_at=START + timedelta(days=3)))  # restarted every time: stays
    report = store.prune(START + timedelta(days=1, hours=1))
    assert report.runs_deleted == 2
    assert [r.run_id for r in store.runs()] == ["sweep_idle_scheduler", "sweep_2880"]
