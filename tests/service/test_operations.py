"""An operator's view and hands (``engine.ops``): every run recorded,
``status``, re-processing failed webhook events, and what observers hear
(time in state, webhook lag, Stripe calls)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from onboarding_fsm import Outcome, Source, State
from onboarding_fsm.audit import Transition
from onboarding_fsm.errors import (
    EventNotFound,
    InvalidInput,
    StoreUnavailable,
    StripeAccountInaccessible,
    StripeUnavailable,
)
from onboarding_fsm.reconcile import reconcile
from onboarding_fsm.reprocessing import Verdict
from onboarding_fsm.runs import RunOutcome
from tests.conftest import World
from tests.service.test_webhooks import account_event, deliver


@pytest.fixture
def db_url(any_db_url: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_db_url


class Heard:
    """An observer with the optional methods too."""

    def __init__(self) -> None:
        self.left: list[tuple[State, float]] = []
        self.lag: list[float] = []
        self.calls: list[tuple[str, str]] = []

    def on_transition(self, transition: Transition) -> None:
        pass

    def on_webhook(self, outcome: str, seconds: float) -> None:
        pass

    def on_state_left(self, state: State, seconds: float) -> None:
        self.left.append((state, seconds))

    def on_webhook_lag(self, seconds: float) -> None:
        self.lag.append(seconds)

    def on_stripe_call(self, operation: str, outcome: str, seconds: float) -> None:
        self.calls.append((operation, outcome))


class OldStyle:
    """An observer written before the optional methods: still called as before."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_transition(self, transition: Transition) -> None:
        self.seen.append(transition.to_state.value)

    def on_webhook(self, outcome: str, seconds: float) -> None:
        self.seen.append(outcome)


# --- runs ------------------------------------------------------------------------------


def test_a_sweep_that_fires_is_recorded_under_its_own_id(world: World) -> None:
    acct = world.create()
    world.engine.issue_link(acct)
    world.clock.advance(timedelta(hours=25))  # the holder never came back
    report = world.engine.sweep()
    [run] = world.engine.ops.runs("sweep")
    assert run.run_id == report.run_id and (run.source, run.actor, run.outcome) == (Source.SCHEDULER, "scheduler", "ok")
    assert run.counts == {"transitions": 1, "reminders": 0, "skipped": 0, "retried": 0}
    assert run.finished_at == world.clock.now()


def test_idle_sweeps_keep_one_row_per_source_updated(world: World) -> None:
    for _ in range(3):
        world.engine.sweep()
        world.clock.advance(5)
    world.engine.sweep(operator="alice")
    runs = world.engine.ops.runs("sweep")
    assert [(r.run_id, r.actor, r.idle) for r in runs] == [
        ("sweep_idle_operator", "operator:alice", True),
        ("sweep_idle_scheduler", "scheduler", True),
    ]
    assert runs[1].started_at == world.clock.now() - timedelta(seconds=5), "the last idle sweep, not the first"


def test_a_sweep_an_error_ends_is_recorded_failed(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def gone() -> Any:
        raise StoreUnavailable("database went away")

    monkeypatch.setattr(world.store, "write", gone)
    with pytest.raises(StoreUnavailable):
        world.engine.sweep()
    [run] = world.engine.ops.runs("sweep")
    assert run.outcome is RunOutcome.FAILED and run.detail == "StoreUnavailable: database went away"
    assert not run.idle and run.run_id.startswith("sweep_") and run.run_id != "sweep_idle_scheduler"


def test_a_reconcile_run_is_recorded_with_its_drift_by_kind(world: World) -> None:
    healed = world.create("seller-1")
    url = world.engine.issue_link(healed).url
    world.sim.delivery.hold = True
    world.sim.visit(url).complete()  # the webhook never arrives
    report = reconcile(world.engine, source=Source.OPERATOR, actor="operator:bob")
    last = world.engine.ops.last_runs()["reconcile"]
    assert last.run_id == report.run_id and (last.source, last.actor) == (Source.OPERATOR, "operator:bob")
    assert last.outcome is RunOutcome.OK and last.detail is None
    assert {k: v for k, v in last.counts.items() if k.startswith("drift.")} == {
        "drift.synced": 1, "drift.adopted": 0, "drift.detached": 0, "drift.restored": 0,
    }  # fmt: skip
    assert (last.counts["listed"], last.counts["errors"]) == (1, 0)


def test_a_guarded_reconcile_run_is_recorded_guarded(world: World) -> None:
    accounts = [world.create(f"seller-{n}") for n in range(4)]
    world.sim.delivery.hold = True
    for acct in accounts[:2]:
        world.sim.deauthorize(acct)
    world.clock.advance(timedelta(days=2))
    assert reconcile(world.engine, full=False).guarded
    last = world.engine.ops.last_runs()["reconcile"]
    assert last.outcome is RunOutcome.GUARDED and "nothing detached" in (last.detail or "")


def test_a_prune_is_recorded_as_a_run(world: World) -> None:
    world.engine.prune(operator="carol")
    [run] = world.engine.ops.runs("prune")
    assert (run.run_id, run.actor, run.counts["outbox_deleted"]) == ("prune_idle_operator", "operator:carol", 0)


# --- status ------------------------------------------------------------------------------


def test_status_shows_overdue_timers_until_a_sweep_fires_them(world: World) -> None:
    acct = world.create()
    world.engine.issue_link(acct)
    world.clock.advance(timedelta(hours=24, minutes=3))  # the abandonment timer: due 3 min ago
    early = world.engine.ops.status()
    assert (early.timers.due, early.timers.overdue, early.overdue) == (1, 0, False)
    world.clock.advance(timedelta(minutes=3))  # no worker: 6 min past due, threshold 5
    late = world.engine.ops.status()
    assert (late.timers.due, late.timers.overdue, late.overdue) == (1, 1, True)
    assert world.engine.ops.status(overdue_after=timedelta(minutes=10)).timers.overdue == 0
    assert late.accounts[State.LINK_ISSUED] == 1 and "sweep" not in late.last_runs
    world.engine.sweep()
    after = world.engine.ops.status()
    assert (after.timers.due, after.timers.overdue) == (0, 0)
    assert after.accounts[State.LINK_ISSUED] == 0 and after.last_runs["sweep"].counts["transitions"] == 1
    with pytest.raises(InvalidInput):
        world.engine.ops.status(overdue_after=timedelta(0))


# --- re-processing -------------------------------------------------------------------------


@pytest.fixture
def failed(world: World, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, Any]]:
    """An account with an event recorded ``failed``: a tie Stripe could not be asked to settle."""
    world.sim.delivery.hold = True  # these tests deliver by hand
    acct = world.create()
    world.engine.issue_link(acct)
    world.clock.advance(10)
    now = int(world.clock.now().timestamp())
    assert deliver(world, account_event(world, acct, created=now, event_id="evt_1")).outcome is Outcome.APPLIED
    tie = account_event(world, acct, created=now, event_id="evt_2", requirements={"disabled_reason": "rejected.fraud"})
    with monkeypatch.context() as m:
        m.setattr(world.sim, "retrieve_account", _unreachable)
        with pytest.raises(StripeUnavailable):
            deliver(world, tie)
    [entry] = [e for e in world.engine.inbox() if e.event_id == "evt_2"]
    assert entry.outcome is Outcome.FAILED
    return acct, tie


def _unreachable(account_id: str) -> Any:
    raise StripeUnavailable("connection reset")


def test_a_failed_event_is_reprocessed_from_stripes_answer(world: World, failed: tuple[str, Any]) -> None:
    acct, _ = failed
    world.sim.reject(acct)  # what Stripe says now (its webhook held back)
    world.clock.advance(60)
    [done] = world.engine.ops.reprocess_failed(operator="alice")
    assert (done.event_id, done.account_id, done.verdict) == ("evt_2", acct, Verdict.APPLIED)
    assert done.transition is not None and done.transition.to_state is State.DISABLED
    last = world.engine.history(acct)[-1]
    assert (last.source, last.source_ref, last.actor, last.seq) == (
        Source.OPERATOR, "evt_2", "operator:alice", done.transition.seq,
    )  # fmt: skip
    assert last.request_id is not None, "Stripe's answer it acted on"
    entry = world.store.inbox_event("evt_2")
    assert entry is not None and (entry.outcome, entry.transition_seq) == (Outcome.APPLIED, last.seq)
    assert "operator:alice" in (entry.detail or "")
    assert world.engine.ops.reprocess_failed(operator="alice") == [], "nothing failed is left"
    assert world.engine.audit.verify().problems == (), "the inbox names the record it caused"


def test_a_failed_event_stays_failed_while_stripe_is_away(
    world: World, failed: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    acct, _ = failed
    history = world.engine.history(acct)
    monkeypatch.setattr(world.sim, "retrieve_account", _unreachable)
    [done] = world.engine.ops.reprocess_failed(operator="alice")
    assert done.verdict is Verdict.FAILED and "StripeUnavailable" in done.detail
    entry = world.store.inbox_event("evt_2")
    assert entry is not None and entry.outcome is Outcome.FAILED
    assert world.engine.history(acct) == history


def test_a_refusal_records_a_failed_event_ignored(
    world: World, failed: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(account_id: str) -> Any:
        raise StripeAccountInaccessible("account_invalid", http_status=403)

    monkeypatch.setattr(world.sim, "retrieve_account", refused)
    done = world.engine.ops.reprocess("evt_2", operator="alice")
    assert done.verdict is Verdict.REFUSED
    entry = world.store.inbox_event("evt_2")
    assert entry is not None and (entry.outcome, entry.detail) == (Outcome.IGNORED, done.detail)


def test_stripes_redelivery_meanwhile_settles_it(
    world: World, failed: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    acct, tie = failed
    fetch = world.sim.retrieve_account
    asked: list[str] = []

    def redelivered_meanwhile(account_id: str) -> Any:
        asked.append(account_id)
        if len(asked) == 1:  # while the operator's call asks Stripe, Stripe's retry gets in
            assert deliver(world, tie).outcome is Outcome.APPLIED
        return fetch(account_id)

    monkeypatch.setattr(world.sim, "retrieve_account", redelivered_meanwhile)
    records = len(world.engine.history(acct))
    done = world.engine.ops.reprocess("evt_2", operator="alice")
    assert done.verdict is Verdict.SETTLED and done.transition is None
    assert [t.source for t in world.engine.history(acct)[records:]] in ([], [Source.WEBHOOK])  # nothing of ours
    entry = world.store.inbox_event("evt_2")
    assert entry is not None and entry.outcome is Outcome.APPLIED and "operator" not in (entry.detail or "")


def test_an_event_named_by_id_is_synced_its_outcome_kept(world: World, failed: tuple[str, Any]) -> None:
    acct, _ = failed
    world.sim.reject(acct)
    done = world.engine.ops.reprocess("evt_1", operator="bob")  # it was applied long ago
    assert done.verdict is Verdict.APPLIED and "stays recorded applied" in done.detail
    assert world.engine.history(acct)[-1].source_ref == "evt_1" and world.state(acct) == "disabled"
    entry = world.store.inbox_event("evt_1")
    assert entry is not None and entry.outcome is Outcome.APPLIED and entry.detail != done.detail
    assert world.store.inbox_event("evt_2").outcome is Outcome.FAILED  # type: ignore[union-attr]


def test_events_that_cannot_be_applied_are_reported(world: World, failed: tuple[str, Any]) -> None:
    acct, _ = failed
    stranger = account_event(world, acct, event_id="evt_s", id="acct_stranger", metadata={})
    stranger["account"] = "acct_stranger"
    live = {**account_event(world, acct, event_id="evt_live"), "livemode": True}
    assert deliver(world, stranger).outcome is Outcome.IGNORED
    assert deliver(world, live).outcome is Outcome.IGNORED
    history = world.engine.history(acct)
    unknown = world.engine.ops.reprocess("evt_s", operator="bob")
    assert (unknown.verdict, unknown.detail) == (Verdict.SKIPPED, "unknown account acct_stranger")
    other = world.engine.ops.reprocess("evt_live", operator="bob")
    assert other.verdict is Verdict.SKIPPED and "livemode=True" in other.detail
    assert world.engine.history(acct) == history
    with pytest.raises(EventNotFound, match="evt_nope"):
        world.engine.ops.reprocess("evt_nope", operator="bob")
    with pytest.raises(InvalidInput):
        world.engine.ops.reprocess("", operator="bob")
    with pytest.raises(InvalidInput):
        world.engine.ops.reprocess("evt_2", operator=" ")


# --- observers ---------------------------------------------------------------------------


def test_observers_hear_time_in_state_webhook_lag_and_stripe_calls(world: World) -> None:
    heard, old = Heard(), OldStyle()
    world.engine.subscribe(heard)
    world.engine.subscribe(old)
    world.sim.delivery.hold = True
    acct = world.create()
    world.clock.advance(timedelta(hours=1))
    world.engine.issue_link(acct)
    assert heard.left == [(State.CREATED, 3600.0)]
    world.clock.advance(90)
    created = int(world.clock.now().timestamp()) - 30
    event = account_event(world, acct, created=created, requirements={"disabled_reason": "rejected.fraud"})
    assert deliver(world, event).outcome is Outcome.APPLIED
    assert heard.lag == [30.0]
    assert heard.left[-1] == (State.LINK_ISSUED, 90.0)
    world.clock.advance(15)
    world.engine.sync_account(acct)  # Stripe never said rejected: back where it classifies
    assert heard.left[-1] == (State.DISABLED, 15.0)
    world.engine.sync_account(acct)  # a quiet sync leaves no state
    assert len(heard.left) == 3
    assert heard.calls[:2] == [("create_account", "ok"), ("create_account_link", "ok")]
    assert heard.calls[-1] == ("retrieve_account", "ok")
    assert old.seen[:4] == ["created", "link_issued", "disabled", "applied"]


def test_a_failing_stripe_call_is_heard_with_its_error_class(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    heard = Heard()
    world.engine.subscribe(heard)
    acct = world.create()
    monkeypatch.setattr(world.sim, "retrieve_account", _unreachable)
    with pytest.raises(StripeUnavailable):
        world.engine.sync_account(acct)
    assert heard.calls[-1] == ("retrieve_account", "StripeUnavailable")


def test_the_metered_gateway_passes_everything_else_through(world: World) -> None:
    """A gateway's extras (and a port method added later) reach it, metered by name."""
    from adapters.stripe.metered import MeteredGateway

    heard: list[tuple[str, str]] = []
    metered = MeteredGateway(world.sim, lambda operation, outcome, seconds: heard.append((operation, outcome)))
    acct = world.create()
    assert metered.account_json(acct)["id"] == acct
    assert metered.inner is world.sim and heard == [("account_json", "ok")]
    with pytest.raises(StripeAccountInaccessible):
        metered.retrieve_account("acct_nope")
    assert heard[-1] == ("retrieve_account", "StripeAccountInaccessible")

    class Broken:
        def retrieve_account(self, account_id: str) -> Any:
            raise KeyError(account_id)

    broken = MeteredGateway(Broken(), lambda operation, outcome, seconds: heard.append((operation, outcome)))  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        broken.retrieve_account(acct)
    assert heard[-1] == ("retrieve_account", "error"), "not an engine error: a bug, counted apart"
