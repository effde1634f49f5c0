"""Every hosted-onboarding scenario, end to end on the simulator."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.simulator import LinkUnusable
from onboarding_fsm import LinkNotAllowed, LinkParams, Outcome, Source, State, Trigger
from onboarding_fsm.account import LinkFields
from tests.conftest import World


@pytest.fixture
def db_url(any_db_url: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_db_url


def path(world: World, account_id: str) -> list[tuple[str, str]]:
    return [(t.to_state.value, t.trigger.value) for t in world.engine.history(account_id)]


def test_upfront_onboarding_in_one_visit(world: World) -> None:
    acct = world.create()
    link = world.engine.issue_link(acct, fields="eventually_due")
    session = world.sim.visit(link.url)
    assert "individual.id_number" in session.asked  # eventually_due: asked up front
    session.complete()
    view = world.engine.handle_return(acct)
    assert view.state is State.VERIFIED
    assert view.snapshot.requirements.eventually_due == ()
    assert path(world, acct) == [("created", "create"), ("link_issued", "issue_link"), ("verified", "sync")]


def test_incremental_onboarding_leaves_eventually_due_listed(world: World) -> None:
    acct = world.create()
    link = world.engine.issue_link(acct)  # policy default: incremental
    assert link.params.fields is LinkFields.CURRENTLY_DUE
    session = world.sim.visit(link.url)
    assert "individual.id_number" not in session.asked
    session.complete()
    view = world.engine.handle_return(acct)
    assert view.state is State.VERIFIED
    assert view.snapshot.requirements.eventually_due == ("individual.id_number",)


def test_upfront_policy_is_not_verified_until_eventually_due_is_provided(db_url: str, clock: object) -> None:
    from tests.conftest import make_world

    world = make_world(db_url, clock, collection="upfront")  # type: ignore[arg-type]
    acct = world.create()
    assert world.engine.issue_link(acct, fields="currently_due").params.fields is LinkFields.CURRENTLY_DUE
    assert world.onboard(acct, fields="currently_due") == "returned_incomplete"
    assert "eventually_due=1" in world.engine.get_account(acct).reason
    assert world.onboard(acct) == "verified"  # policy default link: eventually_due


def test_save_for_later_then_finish(world: World) -> None:
    acct = world.create()
    session = world.sim.visit(world.engine.issue_link(acct).url)
    session.submit({"business_type": "individual", "individual": {"first_name": "Jenny"}})
    session.save_for_later()
    # the webhook arrives while the holder is "still in the flow": held in link_issued
    assert world.state(acct) == "link_issued"
    assert world.engine.handle_return(acct).state is State.RETURNED_INCOMPLETE
    assert world.onboard(acct) == "verified"
    triggers = [t for _, t in path(world, acct)]
    assert triggers.count("issue_link") == 2 and "return" in triggers


def test_link_visited_twice_then_refreshed_with_the_same_parameters(world: World) -> None:
    acct = world.create()
    first = world.engine.issue_link(acct, fields="eventually_due", future_requirements="include")
    world.sim.visit(first.url)
    with pytest.raises(LinkUnusable) as info:
        world.sim.visit(first.url)  # e.g. a link-preview bot got there first
    assert info.value.refresh_url.endswith(f"/onboarding/{acct}/refresh")
    second = world.engine.refresh_link(acct)
    assert second.url != first.url
    assert second.params == first.params == LinkParams(fields=LinkFields.EVENTUALLY_DUE, future_requirements="include")  # type: ignore[arg-type]
    world.sim.visit(second.url).complete()
    assert world.engine.handle_return(acct).state is State.VERIFIED
    assert ("link_issued", "refresh") in path(world, acct)


def test_expired_link_is_refreshed(world: World) -> None:
    acct = world.create()
    link = world.engine.issue_link(acct)
    world.clock.advance(link.expires_at - world.clock.now())
    with pytest.raises(LinkUnusable, match="expired"):
        world.sim.visit(link.url)
    fresh = world.engine.refresh_link(acct)
    assert fresh.expires_at == world.clock.now() + timedelta(seconds=300)
    assert world.engine.get_account(acct).link_expires_at == fresh.expires_at
    world.sim.visit(fresh.url).complete()
    assert world.engine.handle_return(acct).state is State.VERIFIED


def test_identity_mismatch_then_remediation(world: World) -> None:
    acct = world.create()
    assert world.onboard(acct, {"individual.id_number": "111111111"}, fields="eventually_due") == "returned_incomplete"
    view = world.engine.get_account(acct)
    errors = view.snapshot.requirements.errors
    assert [(e.requirement, e.code) for e in errors] == [
        ("individual.id_number", "verification_failed_id_number_match")
    ]
    assert "individual.verification.document" in view.snapshot.requirements.currently_due
    assert "errors=1" in view.reason
    session = world.sim.visit(world.engine.issue_link(acct).url)
    assert set(session.asked) == {"individual.id_number", "individual.verification.document"}
    session.complete()
    assert world.engine.handle_return(acct).state is State.VERIFIED


def test_prefilled_account_is_asked_fewer_fields(world: World) -> None:
    plain = world.engine.get_account(world.create("plain"))
    prefilled = world.engine.get_account(
        world.create("prefilled", prefill={"business_profile": {"url": "https://accessible.stripe.com"}})
    )
    asked_plain = set(plain.snapshot.requirements.currently_due)
    asked_prefilled = set(prefilled.snapshot.requirements.currently_due)
    assert asked_plain - asked_prefilled == {"business_profile.url"}
    session = world.sim.visit(world.engine.issue_link(prefilled.stripe_account_id).url)
    assert "business_profile.url" not in session.asked


def test_future_requirements_missed_become_past_due_when_the_timer_asks_stripe(world: World) -> None:
    acct = world.create()
    assert world.onboard(acct) == "verified"
    deadline = world.clock.now() + timedelta(days=30)
    world.sim.add_future_requirements(acct, ["individual.id_number"], deadline)
    view = world.engine.get_account(acct)
    assert view.state is State.VERIFIED  # future requirements never change the state
    assert view.snapshot.future_requirements is not None
    assert view.snapshot.future_requirements.currently_due == ("individual.id_number",)

    world.sim.delivery.hold = True  # from here on no webhook reaches the engine
    world.clock.advance(timedelta(days=30) - timedelta(seconds=1))
    assert world.engine.check_deadlines() == []
    world.clock.advance(timedelta(seconds=1))
    fired = world.engine.check_deadlines()
    # the timer fetched the account: Stripe's answer (past due) moved it, no webhook
    assert [(t.from_state, t.to_state, t.trigger, t.source) for t in fired] == [
        (State.VERIFIED, State.PAST_DUE, Trigger.SYNC, Source.SCHEDULER)
    ]
    assert world.state(acct) == "past_due"
    assert world.engine.check_deadlines() == []  # fires once
    assert not [a for a in world.sim.outbox.log if a.event["created"] >= int(deadline.timestamp())]

    world.sim.delivery.hold = False
    session = world.sim.visit(world.engine.issue_link(acct).url)
    assert "individual.id_number" in session.asked
    session.complete()
    assert world.engine.handle_return(acct).state is State.VERIFIED


def test_current_deadline_passes_without_webhook(world: World) -> None:
    acct = world.create()
    assert world.onboard(acct) == "verified"
    world.sim.trigger_next_requirements(acct, deadline=world.clock.now() + timedelta(days=14))
    assert world.state(acct) == "returned_incomplete"  # currently_due with a deadline
    world.sim.delivery.hold = True
    world.clock.advance(timedelta(days=14))
    assert [t.to_state for t in world.engine.check_deadlines()] == [State.PAST_DUE]


def test_rejection_disables(world: World) -> None:
    acct = world.create()
    world.onboard(acct)
    world.sim.reject(acct, "fraud")
    view = world.engine.get_account(acct)
    assert (view.state, view.reason) == (State.DISABLED, "disabled_reason=rejected.fraud")
    with pytest.raises(Exception, match="not allowed"):
        world.engine.issue_link(acct)


def test_review_disables_and_lifting_it_moves_the_account_again(world: World) -> None:
    acct = world.create()
    world.onboard(acct)
    world.sim.review(acct)
    assert world.state(acct) == "disabled"
    world.clock.advance(60)
    world.sim.review(acct, under_review=False)
    assert world.state(acct) == "verified"


def test_ofac_alert_on_date_of_birth_puts_the_account_under_review(world: World) -> None:
    acct = world.create()
    assert world.onboard(acct, {"individual.dob.year": "1900"}) == "disabled"
    assert world.engine.get_account(acct).reason == "disabled_reason=under_review"


def test_deauthorization_disables_for_good(world: World) -> None:
    acct = world.create(type="standard")
    world.onboard(acct)
    world.sim.deauthorize(acct)
    view = world.engine.get_account(acct)
    assert (view.state, view.reason, view.deauthorized) == (State.DISABLED, "deauthorized", True)
    assert path(world, acct)[-1] == ("disabled", "deauthorize")
    # later syncs are recorded but never move it
    assert world.engine.handle_return(acct).state is State.DISABLED


def test_account_update_refused_with_a_stripe_dashboard_allowed_where_platform_collects(world: World) -> None:
    express = world.create("express", type="express")
    with pytest.raises(LinkNotAllowed):
        world.engine.issue_link(express, type="account_update")
    assert world.state(express) == "created"
    assert world.sim.calls["create_account_link"] == 0  # refused before calling Stripe
    custom = world.create(
        "custom",
        controller={"requirement_collection": "application", "stripe_dashboard": {"type": "none"},
                    "fees": {"payer": "application"}, "losses": {"payments": "application"}},
    )  # fmt: skip
    assert world.onboard(custom) == "verified"
    link = world.engine.issue_link(custom, type="account_update")
    assert link.params.type.value == "account_update"
    world.sim.visit(link.url).complete()
    assert world.engine.handle_return(custom).state is State.VERIFIED


def test_abandoned_link(world: World) -> None:
    acct = world.create()
    world.engine.issue_link(acct)
    world.clock.advance(timedelta(hours=23))
    assert world.engine.check_deadlines() == []
    world.clock.advance(timedelta(hours=1))
    fired = world.engine.check_deadlines()
    assert [(t.trigger, t.to_state) for t in fired] == [(Trigger.ABANDON, State.RETURNED_INCOMPLETE)]


def test_pending_verification_then_verified_by_webhook(db_url: str, clock: object) -> None:
    from tests.conftest import make_world

    world = make_world(db_url, clock, simulator={"verification_delay": 600})  # type: ignore[arg-type]
    acct = world.create()
    assert world.onboard(acct, {"individual.dob.year": "1901"}) == "returned_incomplete"
    assert "pending_verification=3" in world.engine.get_account(acct).reason
    world.clock.advance(600)
    attempts = world.sim.tick()
    assert any(a.result.outcome is Outcome.APPLIED for a in attempts)
    assert world.state(acct) == "verified"


@pytest.mark.parametrize("country", ["US", "GB", "DE", "FR", "CA", "AU", "JP"])
@pytest.mark.parametrize("business_type", ["individual", "company"])
def test_every_country_onboards(world: World, country: str, business_type: str) -> None:
    acct = world.create(f"{country}-{business_type}", country=country, business_type=business_type)
    assert world.onboard(acct) == "verified"
