"""State you can trust against the real Stripe: each test reproduces a wrong
state the engine reached when held against Stripe's recorded answers
(issue 8), on the simulator calibrated to them, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest

from adapters.http.metrics import Metrics
from adapters.simulator import Simulator
from onboarding_fsm import FakeClock, Outcome, State, build_engine
from onboarding_fsm.account import AccountPage, NewAccount
from onboarding_fsm.errors import EventAheadOfAccount, StoreUnavailable, StripeUnavailable
from onboarding_fsm.snapshot import AccountSnapshot
from onboarding_fsm.timers import TimerBacklog
from tests.conftest import START, World, make_settings


@pytest.fixture
def db_url(any_db_url: str) -> str:
    return any_db_url


def transition_messages(world: World) -> list[tuple[str, str]]:
    """(from, to) of every transition message in the outbox, for downstream consumers."""
    return [(p["from"], p["to"]) for _, p in world.store.pending_outbox(10_000) if p["type"] == "onboarding.transition"]


# --- 1. a never-onboarded account is not past due ----------------------------------------


def test_a_new_account_starts_created_and_save_for_later_returns_incomplete(world: World) -> None:
    acct = world.create()
    raw = world.sim.account_json(acct)["requirements"]  # Stripe's shape: initial fields listed past due
    assert raw["past_due"] and raw["disabled_reason"] == "requirements.past_due" and raw["current_deadline"] is None
    assert world.state(acct) == "created"
    session = world.sim.visit(world.engine.issue_link(acct).url)
    session.submit({"business_type": "individual"}).save_for_later()
    assert world.sim.account_json(acct)["requirements"]["past_due"]  # the leftovers stay "past due"
    view = world.engine.handle_return(acct)
    assert view.state is State.RETURNED_INCOMPLETE
    assert "details_not_submitted" in view.reason
    assert world.onboard(acct) == "verified"
    assert State.PAST_DUE not in {t.to_state for t in world.engine.history(acct)}


# --- 3. a deadline is decided on Stripe's answer, fetched when it fires ------------------


def test_a_deadline_fires_on_stripes_answer_not_the_stored_snapshot(world: World) -> None:
    acct = world.create()
    assert world.onboard(acct) == "verified"
    world.sim.trigger_next_requirements(acct, world.clock.now() + timedelta(days=14))
    assert world.state(acct) == "returned_incomplete"
    url = world.engine.issue_link(acct).url
    world.sim.delivery.hold = True  # no webhook from here on
    world.sim.visit(url).complete()  # the holder finishes but never reaches the return URL
    world.clock.advance(timedelta(days=14, seconds=1))
    report = world.engine.sweep()
    assert world.state(acct) == "verified"  # what Stripe says, not what we last heard
    assert ("returned_incomplete", "past_due") not in transition_messages(world)
    assert all(t.to_state is not State.PAST_DUE for t in report.transitions)
    # the abandonment timer went back to what the stored snapshot said (owing), then Stripe's answer applied
    assert [(t.trigger.value, t.to_state.value) for t in world.engine.history(acct)[-2:]] == [
        ("abandon", "returned_incomplete"),
        ("sync", "verified"),
    ]


def test_a_missed_deadline_confirmed_by_stripe_moves_to_past_due(world: World) -> None:
    acct = world.create()
    assert world.onboard(acct) == "verified"
    deadline = world.clock.now() + timedelta(days=14)
    world.sim.trigger_next_requirements(acct, deadline)
    world.sim.delivery.hold = True
    world.clock.advance(timedelta(days=14, seconds=1))
    world.engine.sweep()
    assert world.state(acct) == "past_due"
    assert ("returned_incomplete", "past_due") in transition_messages(world)


class FlakyStripe:
    """Stripe unreachable for account reads until ``up`` is set."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.up = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sim, name)

    def retrieve_account(self, account_id: str) -> AccountSnapshot:
        if not self.up:
            raise StripeUnavailable("connection reset by peer")
        return self.sim.retrieve_account(account_id)


def test_stripe_unreachable_at_a_deadline_retries_with_backoff_and_never_guesses(world: World, db_url: str) -> None:
    acct = world.create()
    assert world.onboard(acct) == "verified"
    world.sim.trigger_next_requirements(acct, world.clock.now() + timedelta(days=14))
    world.sim.delivery.hold = True
    flaky = FlakyStripe(world.sim)
    engine = build_engine(make_settings(db_url), clock=world.clock, gateway=flaky, store=world.store)  # type: ignore[arg-type]
    world.clock.advance(timedelta(days=14, seconds=1))
    first = engine.sweep()
    assert first.retried == 1 and first.transitions == () and world.state(acct) == "returned_incomplete"
    assert engine.stats.timer_retries == 1
    assert engine.timer_backlog() == TimerBacklog(due=0, retrying=1)
    scraped = generate_latest(Metrics(engine.count_by_state, engine.timer_backlog).registry).decode()
    assert "onboarding_fsm_timers_retrying 1.0" in scraped
    assert engine.next_due() == world.clock.now() + engine.config.timer_retry_after(0)
    world.clock.advance(engine.config.timer_retry_after(0))
    assert engine.sweep().retried == 1  # still down: the second wait is twice as long
    assert engine.next_due() == world.clock.now() + engine.config.timer_retry_after(1)
    flaky.up = True
    world.clock.advance(engine.config.timer_retry_after(1))
    assert [t.to_state for t in engine.sweep().transitions] == [State.PAST_DUE]
    assert engine.timer_backlog() == TimerBacklog(due=0, retrying=0)


def test_many_deadlines_due_at_once_are_fetched_at_stripes_pace(world: World) -> None:
    accounts = [world.create(f"seller-{n}") for n in range(60)]
    regulatory_date = world.clock.now() + timedelta(days=30)
    for acct in accounts:
        world.sim.trigger_next_requirements(acct, regulatory_date)
    world.sim.delivery.hold = True
    world.clock.set(regulatory_date)
    pace = world.engine.config.stripe_pace
    assert (pace.rate, pace.burst) == (25.0, 5)  # test mode
    started = world.clock.now()
    report = world.engine.sweep()
    assert len([t for t in report.transitions if t.to_state is State.PAST_DUE]) == 60
    waited = (world.clock.now() - started).total_seconds()  # the fake clock moves instead of sleeping
    assert waited == pytest.approx((60 - pace.burst) / pace.rate, abs=0.05)


def test_a_timer_whose_lease_ran_out_fires_once(world: World, db_url: str) -> None:
    """A sweep that takes longer than its lease: another sweep takes the timer
    over and fires it; the first one's answer is then dropped, not applied twice."""
    acct = world.create()
    assert world.onboard(acct) == "verified"
    world.sim.trigger_next_requirements(acct, world.clock.now() + timedelta(days=14))
    world.sim.delivery.hold = True
    world.clock.advance(timedelta(days=14, seconds=1))
    settings = make_settings(db_url)
    other = build_engine(settings, clock=world.clock, gateway=world.sim, store=world.store)

    class Slow:
        def __getattr__(self, name: str) -> Any:
            return getattr(world.sim, name)

        def retrieve_account(self, account_id: str) -> AccountSnapshot:
            world.clock.advance(other.config.timer_lease + timedelta(seconds=1))
            assert [t.to_state for t in other.sweep().transitions] == [State.PAST_DUE]  # took it over
            return world.sim.retrieve_account(account_id)

    slow = build_engine(settings, clock=world.clock, gateway=Slow(), store=world.store)  # type: ignore[arg-type]
    assert slow.sweep().transitions == ()
    moves = [t for t in world.engine.history(acct) if t.to_state is State.PAST_DUE]
    assert len(moves) == 1 and world.state(acct) == "past_due"


# --- 4. an event that races our own create ---------------------------------------------


class RacingStripe:
    """Stripe delivers ``account.updated`` (a rejection) after answering our
    create but before our commit."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sim, name)

    def create_account(self, new: NewAccount, *, idempotency_key: str) -> AccountSnapshot:
        snapshot = self.sim.create_account(new, idempotency_key=idempotency_key)
        self.sim.reject(snapshot.id, "fraud")  # delivered at once, before we commit
        return snapshot


def test_an_event_that_races_our_create_is_retried_not_lost(world: World, db_url: str) -> None:
    """Stripe's rejection reaches us before our create commits: answered retry,
    applied on redelivery (the create's answer is older than the rejection)."""
    engine = build_engine(make_settings(db_url), clock=world.clock, gateway=RacingStripe(world.sim), store=world.store)  # type: ignore[arg-type]
    acct = engine.create_account("seller-race", "US", ["card_payments", "transfers"]).stripe_account_id
    [first] = [a for a in world.sim.outbox.log if a.event["account"] == acct and a.event["type"] == "account.updated"]
    assert isinstance(first.error, EventAheadOfAccount)  # answered "retry", recorded nowhere
    assert list(world.engine.inbox()) == [] and world.state(acct) == "created"
    world.clock.advance(timedelta(minutes=5))
    world.sim.tick()  # Stripe's redelivery
    assert world.state(acct) == "disabled"
    assert [(e.outcome, e.account_id) for e in world.engine.inbox()] == [(Outcome.APPLIED, acct)]


def test_a_rejection_redelivered_after_a_crashed_create_still_applies(world: World, db_url: str) -> None:
    """Crash after Stripe's answer, with the rejection answered "retry"; the
    retried create gets Stripe's replay of its older answer: the redelivered
    rejection must not look stale against it."""
    racing = RacingStripe(world.sim)
    with crash_on_insert(world.store) as crashing:
        engine = build_engine(make_settings(db_url), clock=world.clock, gateway=racing, store=crashing)  # type: ignore[arg-type]
        with pytest.raises(StoreUnavailable):
            engine.create_account("seller-crash", "US", ["transfers"])
    world.clock.advance(timedelta(hours=1))  # within Stripe's idempotency window: the same answer, replayed
    acct = world.engine.create_account("seller-crash", "US", ["transfers"]).stripe_account_id
    world.clock.advance(timedelta(minutes=5))
    world.sim.tick()  # Stripe redelivers the rejection
    assert world.state(acct) == "disabled"


def test_an_unknown_account_without_our_reference_is_still_ignored(world: World) -> None:
    foreign = world.sim.api_as("elsewhere").create_account(
        {"country": "US", "capabilities": {"transfers": {"requested": True}}}
    )
    event = {"id": "evt_foreign", "object": "event", "type": "account.updated", "account": foreign["id"],
             "created": int(world.clock.now().timestamp()), "livemode": False, "data": {"object": foreign}}  # fmt: skip
    body, header = world.sim.sign(event)
    assert world.engine.ingest_webhook(body, header).outcome is Outcome.IGNORED


# --- 5. clock skew between us and Stripe --------------------------------------------------


class SkewedClock:
    """The engine's clock, ``offset`` off Stripe's (the simulator's)."""

    def __init__(self, stripe: FakeClock, offset: timedelta) -> None:
        self._stripe = stripe
        self._offset = offset

    def now(self) -> datetime:
        return self._stripe.now() + self._offset

    def sleep(self, seconds: float) -> None:
        self._stripe.sleep(seconds)


@pytest.mark.parametrize("offset", [0.5, -0.5, 4.5, -4.5], ids=lambda s: f"engine{s:+}s")
def test_clock_skew_does_not_drop_a_verification_that_finished_after_our_fetch(db_url: str, offset: float) -> None:
    stripe_clock = FakeClock(START + timedelta(milliseconds=700))
    sim = Simulator(stripe_clock, verification_delay=3600)
    engine = build_engine(
        make_settings(db_url), clock=SkewedClock(stripe_clock, timedelta(seconds=offset)), gateway=sim
    )
    sim.connect(engine.ingest_webhook)
    acct = engine.create_account("seller-skew", "US", ["card_payments", "transfers"]).stripe_account_id
    sim.visit(engine.issue_link(acct).url).complete({"individual.dob.year": "1901"})  # verification pending
    assert engine.handle_return(acct).state is State.RETURNED_INCOMPLETE
    stripe_clock.advance(0.2)  # Stripe finishes right after our fetch: its events carry this second
    sim.complete_verifications(acct)
    assert engine.get_account(acct).state is State.VERIFIED
    assert Outcome.STALE not in {e.outcome for e in engine.inbox()}
    engine.close()


# --- 6. an ignored optional link demotes nothing -------------------------------------------


def test_an_ignored_account_update_link_leaves_a_verified_account_verified(world: World) -> None:
    custom = world.create("custom", controller={"requirement_collection": "application", "stripe_dashboard": {"type": "none"}, "fees": {"payer": "application"}, "losses": {"payments": "application"}})  # fmt: skip
    assert world.onboard(custom) == "verified"
    world.engine.issue_link(custom, type="account_update")  # never used
    world.clock.advance(world.engine.config.abandon_after + timedelta(seconds=1))
    [moved] = world.engine.check_deadlines()
    assert (moved.trigger.value, moved.from_state, moved.to_state) == ("abandon", State.LINK_ISSUED, State.VERIFIED)
    assert world.state(custom) == "verified"


# --- 7. a retry after Stripe's idempotency window ---------------------------------------


@contextmanager
def crash_on_insert(engine_store: Any) -> Iterator[Any]:
    """A store whose account insert fails: the crash between Stripe's answer and our commit."""

    class Tx:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def insert(self, *args: Any) -> bool:
            raise StoreUnavailable("the database went away")

    class Store:
        def __getattr__(self, name: str) -> Any:
            return getattr(engine_store, name)

        @contextmanager
        def write(self) -> Iterator[Any]:
            with engine_store.write() as tx:
                yield Tx(tx)

    yield Store()


def test_a_retry_after_the_idempotency_window_finds_the_account_instead_of_making_another(
    world: World, db_url: str
) -> None:
    with crash_on_insert(world.store) as crashing:
        engine = build_engine(make_settings(db_url), clock=world.clock, gateway=world.sim, store=crashing)
        with pytest.raises(StoreUnavailable):
            engine.create_account("seller-late", "US", ["card_payments", "transfers"])
    for n in range(3):  # other accounts made meanwhile, before and after
        world.create(f"noise-{n}")
    world.clock.advance(timedelta(hours=25))  # Stripe forgot the idempotency key
    creates = world.sim.calls["create_account"]
    acct = world.engine.create_account("seller-late", "US", ["card_payments", "transfers"])
    assert world.sim.calls["create_account"] == creates  # found, not created again
    ours = [a for a in all_accounts(world.sim) if a.platform_ref == "seller-late"]
    assert [a.id for a in ours] == [acct.stripe_account_id]
    assert world.engine.history(acct.stripe_account_id)[0].trigger.value == "create"


def test_a_retry_after_the_window_creates_when_stripe_has_no_account(world: World, db_url: str) -> None:
    class Refusing:
        def __getattr__(self, name: str) -> Any:
            return getattr(world.sim, name)

        def create_account(self, new: NewAccount, *, idempotency_key: str) -> AccountSnapshot:
            raise StripeUnavailable("timed out before Stripe created anything")

    engine = build_engine(make_settings(db_url), clock=world.clock, gateway=Refusing(), store=world.store)  # type: ignore[arg-type]
    with pytest.raises(StripeUnavailable):
        engine.create_account("seller-never", "US", ["transfers"])
    world.clock.advance(timedelta(hours=25))
    acct = world.engine.create_account("seller-never", "US", ["transfers"])
    assert [a.id for a in all_accounts(world.sim) if a.platform_ref == "seller-never"] == [acct.stripe_account_id]


def all_accounts(sim: Simulator) -> list[AccountSnapshot]:
    out: list[AccountSnapshot] = []
    page: AccountPage | None = None
    while page is None or page.has_more:
        page = sim.list_accounts(limit=100, starting_after=out[-1].id if out else None)
        out.extend(page.accounts)
    return out
