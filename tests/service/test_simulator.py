"""The simulator's documented behaviours: the test-mode values it honours and
its operator API, seen through the engine as a platform would see Stripe."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.simulator import FormError, LinkUnusable, Simulator
from onboarding_fsm import FakeClock, State
from onboarding_fsm.account import NewAccount
from onboarding_fsm.errors import StripeAccountInaccessible
from tests.conftest import World, make_world


def reqs(world: World, account_id: str) -> object:
    return world.engine.get_account(account_id).snapshot.requirements


def test_card_4202_makes_the_next_requirements_currently_due_with_a_deadline(world: World) -> None:
    acct = world.create()
    world.onboard(acct)
    world.sim.charge(acct, "4000000000004202")
    r = world.engine.get_account(acct).snapshot.requirements
    assert r.currently_due == ("individual.id_number",)
    assert r.current_deadline == world.clock.now() + timedelta(days=14)
    assert world.state(acct) == "returned_incomplete"


@pytest.mark.parametrize(
    ("card", "charges", "payouts"), [("4000000000004210", False, False), ("4000000000004236", True, False)]
)
def test_block_cards_move_requirements_to_past_due(world: World, card: str, charges: bool, payouts: bool) -> None:
    acct = world.create()
    world.onboard(acct)
    world.sim.charge(acct, card)
    view = world.engine.get_account(acct)
    assert view.state is State.PAST_DUE
    assert view.snapshot.requirements.past_due == ("individual.id_number",)
    assert (view.snapshot.charges_enabled, view.snapshot.payouts_enabled) == (charges, payouts)


def test_cards_do_nothing_before_onboarding(world: World) -> None:
    acct = world.create()
    world.sim.charge(acct, "4000000000004210")
    assert world.state(acct) == "created"


def test_address_tokens(world: World) -> None:
    acct = world.create()
    assert world.onboard(acct, {"individual.address.line1": "address_no_match"}) == "returned_incomplete"
    codes = [(e.requirement, e.code) for e in world.engine.get_account(acct).snapshot.requirements.errors]
    assert codes == [("individual.address.line1", "verification_failed_address_match")]


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://disallowed.stripe.com", "invalid_url_denylisted"),
        ("https://geoblocked.stripe.com", "invalid_url_website_inaccessible_geoblocked"),
        ("https://underconstruction.stripe.com", "invalid_url_website_incomplete_under_construction"),
    ],
)
def test_business_url_tokens(world: World, url: str, code: str) -> None:
    acct = world.create()
    assert world.onboard(acct, {"business_profile.url": url}) == "returned_incomplete"
    assert [e.code for e in world.engine.get_account(acct).snapshot.requirements.errors] == [code]


def test_inactivity_url_pauses_capabilities(world: World) -> None:
    acct = world.create()
    world.onboard(acct, {"business_profile.url": "https://inactivity.stripe.com"})
    view = world.engine.get_account(acct)
    assert view.state is State.RETURNED_INCOMPLETE
    assert dict(view.snapshot.capabilities) == {"card_payments": "inactive", "transfers": "inactive"}


def test_alternative_fields_resolve_the_original(world: World) -> None:
    acct = world.create()
    assert any(a.original_fields_due == ("business_profile.url",) for a in reqs(world, acct).alternatives or ())  # type: ignore[attr-defined]
    session = world.sim.visit(world.engine.issue_link(acct).url)
    session.submit({"business_profile": {"product_description": "Handmade goods"}})
    assert "business_profile.url" not in session.due
    session.complete()
    assert world.engine.handle_return(acct).state is State.VERIFIED


def test_the_form_needs_every_field_and_the_sms_code(world: World) -> None:
    acct = world.create()
    session = world.sim.visit(world.engine.issue_link(acct).url)
    with pytest.raises(FormError, match="still needs"):
        session.finish()
    with pytest.raises(FormError, match="does not ask"):
        session.submit({"individual": {"favourite_colour": "blue"}})
    session.fill()
    with pytest.raises(FormError, match="wrong SMS code"):
        session.confirm_sms("111-111")
    session.finish()
    with pytest.raises(FormError, match="ended"):
        session.finish()


def test_an_unconfirmed_phone_is_not_kept_when_saving_for_later(world: World) -> None:
    acct = world.create()
    session = world.sim.visit(world.engine.issue_link(acct).url)
    session.submit({"individual": {"phone": "0000000000", "first_name": "Jenny"}})
    session.save_for_later()
    due = world.engine.handle_return(acct).snapshot.requirements.currently_due
    assert "individual.phone" in due and "individual.first_name" not in due


def test_complete_verifications_now(db_url: str, clock: FakeClock) -> None:
    world = make_world(db_url, clock, simulator={"verification_delay": 3600})
    acct = world.create()
    assert world.onboard(acct, {"individual.dob.year": "1901"}) == "returned_incomplete"
    world.sim.complete_verifications(acct)
    assert world.state(acct) == "verified"


def test_a_deleted_account_is_disabled_for_good(world: World) -> None:
    acct = world.create()
    world.onboard(acct)
    minted = world.sim.create_account_link(_request(acct))
    world.sim.delete(acct)
    view = world.engine.sync_account(acct)
    assert (view.state, view.reason, view.detached) == (State.DISABLED, "deleted", True)
    with pytest.raises(LinkUnusable):
        world.sim.visit(minted.url)
    with pytest.raises(StripeAccountInaccessible):  # it no longer exists: no new link
        world.sim.create_account_link(_request(acct))


def _request(account_id: str) -> object:
    from onboarding_fsm.account import LinkParams, LinkRequest

    return LinkRequest(account_id, LinkParams(), "http://127.0.0.1/r", "http://127.0.0.1/b")


def test_identity_fields_lock_after_the_first_link(world: World) -> None:
    acct = world.create(type="express")
    world.sim.update_account(acct, {"individual": {"first_name": "Jenny"}})  # pre-fill: fine
    world.engine.issue_link(acct)
    with pytest.raises(Exception, match="can no longer be changed"):
        world.sim.update_account(acct, {"individual": {"last_name": "Rosen"}})


def test_idempotency_keys_expire_after_a_day(clock: FakeClock) -> None:
    sim = Simulator(clock)
    new = NewAccount("s", "US", ("transfers",))
    first = sim.create_account(new, idempotency_key="k")
    assert sim.create_account(new, idempotency_key="k").id == first.id
    clock.advance(timedelta(hours=24))
    assert sim.create_account(new, idempotency_key="k").id != first.id  # pruned: a new request


def test_future_requirements_become_past_due_at_their_deadline(world: World) -> None:
    acct = world.create()
    world.onboard(acct)
    world.sim.add_future_requirements(acct, ["company.tax_id"], world.clock.now() + timedelta(days=2))
    world.clock.advance(timedelta(days=2))
    world.sim.tick()  # the simulator's own clock passes the date: Stripe says past_due
    view = world.engine.get_account(acct)
    assert view.state is State.PAST_DUE
    assert view.snapshot.requirements.disabled_reason == "requirements.past_due"
