"""Reconciliation heals what webhooks missed, adopts orphans, reports drift."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from onboarding_fsm import FakeClock, Source, State
from onboarding_fsm.account import NewAccount
from onboarding_fsm.bootstrap import build_engine
from onboarding_fsm.errors import StripeAccountInaccessible, StripeAuthenticationFailed
from onboarding_fsm.reconcile import reconcile
from onboarding_fsm.snapshot import AccountSnapshot
from tests.conftest import World, make_settings, make_world


@pytest.fixture
def db_url(any_db_url: str) -> str:
    return any_db_url


def test_a_dropped_webhook_is_healed_by_an_audited_sync(world: World) -> None:
    acct = world.create()
    url = world.engine.issue_link(acct).url
    world.sim.delivery.hold = True  # the webhook never arrives
    world.sim.visit(url).complete()  # and the holder never comes back to return_url
    assert world.state(acct) == "link_issued"
    report = reconcile(world.engine)
    assert report.listed == 1
    [drift] = report.drift
    assert (drift.account_id, drift.from_state, drift.to_state, drift.how) == (
        acct,
        State.LINK_ISSUED,
        State.VERIFIED,
        "synced",
    )
    last = world.engine.history(acct)[-1]
    assert (last.source, last.to_state, last.actor) == (Source.RECONCILE, State.VERIFIED, "reconcile")
    assert reconcile(world.engine).drift == []  # nothing left to heal


def test_an_orphan_is_adopted(world: World) -> None:
    """Stripe created the account, our commit never happened."""
    orphan = world.sim.create_account(
        NewAccount("seller-orphan", "US", ("card_payments", "transfers")), idempotency_key="lost"
    )
    world.sim.create_account(NewAccount("not-ours", "US", ()), idempotency_key="x")  # tagged, but see below
    stranger = world.sim.create_account_json({"country": "US"}, idempotency_key="stranger")  # no reference at all
    report = reconcile(world.engine)
    assert set(report.adopted) == {orphan.id, world.engine.find_account("not-ours").stripe_account_id}  # type: ignore[union-attr]
    adopted = world.engine.get_account(orphan.id)
    assert (adopted.platform_ref, adopted.state) == ("seller-orphan", State.CREATED)
    assert world.engine.history(orphan.id)[0].source is Source.RECONCILE
    with pytest.raises(Exception, match="no onboarding account"):
        world.engine.get_account(stranger["id"])
    # and creating it again through the API returns the adopted account
    assert (
        world.engine.create_account("seller-orphan", "US", ["card_payments", "transfers"]).stripe_account_id
        == orphan.id
    )


def test_a_missed_deauthorization_is_found_by_refetching_stale_accounts(world: World) -> None:
    acct = world.create()
    world.onboard(acct)
    for n in range(2):  # healthy ones: one inaccessible account in three is not a wrong key
        world.onboard(world.create(f"other-{n}"))
    world.sim.delivery.hold = True
    world.sim.deauthorize(acct)  # event lost; the account vanishes from the listing
    world.clock.advance(timedelta(hours=25))
    first = reconcile(world.engine, stale_after=timedelta(hours=24))
    assert (first.refetched, first.checked, first.drift, first.unconfirmed) == (1, 3, [], [acct])
    world.clock.advance(world.engine.config.reconcile_confirm_after)  # still inaccessible a while later
    report = reconcile(world.engine, stale_after=timedelta(hours=24))
    assert [(d.how, d.to_state) for d in report.drift] == [("detached", State.DISABLED)]
    view = world.engine.get_account(acct)
    assert (view.state, view.deauthorized) == (State.DISABLED, True)


def test_recently_synced_accounts_are_not_refetched(world: World) -> None:
    acct = world.create()
    world.onboard(acct)
    retrieves = world.sim.calls["retrieve_account"]
    report = reconcile(world.engine, full=False, stale_after=timedelta(hours=24))
    assert report.refetched == 0 and world.sim.calls["retrieve_account"] == retrieves


def test_a_wrong_key_does_not_detach_everything(db_url: str, clock: FakeClock) -> None:
    world = make_world(db_url, clock)
    for n in range(3):
        world.create(f"seller-{n}")
    # the same database, pointed at a Stripe that knows none of its accounts
    other = make_world(db_url, clock, simulator={"seed": 99})
    clock.advance(timedelta(days=2))
    report = reconcile(other.engine)
    assert report.drift == [] and report.guarded and "nothing detached" in report.errors[0]
    assert {a.state for a in other.engine.accounts()} == {State.CREATED}


def test_another_platforms_key_detaches_nothing(world: World, db_url: str) -> None:
    """Stripe answers 403 account_invalid for every account another platform's
    key cannot see (facts: recorded shape 2); the run is a configuration error."""
    mine = [world.create(f"seller-{n}") for n in range(3)]
    foreign = world.sim.as_platform("other-platform")
    foreign.create_account(NewAccount("theirs", "US", ("transfers",)), idempotency_key="theirs")
    wrong = build_engine(make_settings(db_url), clock=world.clock, gateway=foreign, store=world.store)
    world.clock.advance(timedelta(days=2))
    report = reconcile(wrong)
    assert report.guarded and (report.checked, report.inaccessible) == (3, 3)
    assert report.drift == [] and [world.state(a) for a in mine] == ["created"] * 3
    # the real key, later: nothing to repair
    assert reconcile(world.engine).errors == []


def test_the_guard_counts_each_checked_account_once(world: World) -> None:
    accounts = [world.create(f"seller-{n}") for n in range(4)]
    world.sim.delivery.hold = True
    for acct in accounts[:2]:
        world.sim.deauthorize(acct)
    world.clock.advance(timedelta(days=2))
    report = reconcile(world.engine, full=False)  # every account re-fetched, two answer 403
    assert (report.refetched, report.checked, report.inaccessible) == (4, 4, 2)
    assert report.guarded and report.drift == []


def test_one_inaccessible_account_among_many_is_detached(world: World) -> None:
    accounts = [world.create(f"seller-{n}") for n in range(4)]
    world.sim.delivery.hold = True  # the deauthorization webhook is lost
    world.sim.deauthorize(accounts[0])
    world.clock.advance(timedelta(days=2))
    assert reconcile(world.engine).unconfirmed == [accounts[0]]  # one answer is not proof yet
    world.clock.advance(world.engine.config.reconcile_confirm_after)
    report = reconcile(world.engine)
    assert not report.guarded and (report.checked, report.inaccessible) == (4, 1)
    assert [d.account_id for d in report.drift] == [accounts[0]]
    assert [world.state(a) for a in accounts] == ["disabled", "created", "created", "created"]


class BlindFor:
    """Stripe answers 403 for some accounts (a hiccup, a key being rotated)."""

    def __init__(self, world: World, blind: set[str]) -> None:
        self.world, self.blind = world, blind

    def __getattr__(self, name: str) -> Any:
        return getattr(self.world.sim, name)

    def retrieve_account(self, account_id: str) -> AccountSnapshot:
        if account_id in self.blind:
            raise StripeAccountInaccessible("no access", http_status=403, code="account_invalid")
        return self.world.sim.retrieve_account(account_id)


def test_one_403_detaches_nothing_and_a_clean_run_clears_it(world: World, db_url: str) -> None:
    accounts = [world.create(f"seller-{n}") for n in range(4)]
    world.clock.advance(timedelta(days=2))
    blinded = build_engine(
        make_settings(db_url), clock=world.clock, gateway=BlindFor(world, {accounts[1]}), store=world.store
    )  # type: ignore[arg-type]
    report = reconcile(blinded, full=False)
    assert report.drift == [] and report.unconfirmed == [accounts[1]]
    assert world.engine.get_account(accounts[1]).inaccessible_since == world.clock.now()
    world.clock.advance(timedelta(hours=1))
    clean = reconcile(world.engine, full=False, stale_after=timedelta(0))
    assert clean.drift == [] and clean.unconfirmed == []
    assert world.engine.get_account(accounts[1]).inaccessible_since is None  # seen again: forgotten
    world.clock.advance(world.engine.config.reconcile_confirm_after)
    assert reconcile(blinded, full=False, stale_after=timedelta(0)).drift == []  # a new first sighting
    assert [world.state(a) for a in accounts] == ["created"] * 4


def test_a_detached_account_stripe_shows_again_is_restored(world: World) -> None:
    acct = world.create()
    assert world.onboard(acct) == "verified"
    world.engine.detach(acct, "access lost (an earlier, mistaken reconcile)")
    assert world.state(acct) == "disabled"
    report = reconcile(world.engine)  # Stripe lists it for this platform
    assert [(d.how, d.from_state, d.to_state) for d in report.drift] == [("restored", State.DISABLED, State.VERIFIED)]
    last = world.engine.history(acct)[-1]
    assert (last.trigger.value, last.source.value, last.to_state) == ("restore", "reconcile", State.VERIFIED)
    assert not world.engine.get_account(acct).deauthorized


def test_a_bad_key_stops_the_run(world: World) -> None:
    world.create()
    world.clock.advance(timedelta(days=2))

    def refuse(account_id: str) -> object:
        raise StripeAuthenticationFailed("Invalid API Key provided", http_status=401)

    world.sim.retrieve_account = refuse  # type: ignore[assignment,method-assign]
    with pytest.raises(StripeAuthenticationFailed):
        reconcile(world.engine, full=False)
    assert world.state(world.engine.accounts()[0].stripe_account_id) == "created"


def test_progress_is_reported(world: World) -> None:
    for n in range(5):
        world.create(f"s{n}")
    ticks: list[int] = []
    reconcile(world.engine, page_size=2, progress=ticks.append)
    assert sum(ticks) == 5
