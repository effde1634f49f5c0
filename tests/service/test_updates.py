"""Issue 11, items 1 and 2: update and pre-fill after creation, and new
capabilities later — through the engine, against the simulator, on SQLite
and PostgreSQL. Stripe locks identity fields once the first link exists on
accounts where it collects requirements; the engine refuses them first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from onboarding_fsm import IdentityLocked, InvalidInput, State, Trigger, updates
from onboarding_fsm.errors import UpdateNotAllowed
from onboarding_fsm.snapshot import AccountSnapshot
from tests.conftest import PLATFORM_COLLECTED, World


@pytest.fixture
def db_url(any_db_url: str) -> str:
    return any_db_url


def triggers(world: World, account_id: str) -> list[str]:
    return [t.trigger.value for t in world.engine.history(account_id)]


def test_prefill_after_creation_is_audited_and_the_form_asks_less(world: World) -> None:
    acct = world.create("express-1", type="express")
    before = set(world.engine.get_account(acct).snapshot.requirements.currently_due)
    updated = world.engine.update_account(
        acct,
        {"business_type": "individual", "individual": {"first_name": "Jenny", "last_name": "Rosen"}},
        actor="ops:alice",
    )
    assert updated.state is State.CREATED
    record = world.engine.history(acct)[-1]
    assert (record.trigger, record.from_state, record.to_state, record.actor) == (
        Trigger.UPDATE, State.CREATED, State.CREATED, "ops:alice"
    )  # fmt: skip
    # the record names what was set, never the values (identity data)
    assert "set=business_type,individual.first_name,individual.last_name" in record.reason
    assert "Jenny" not in record.reason and "Rosen" not in record.reason
    assert record.request_id  # Stripe's Request-Id of the update
    now_due = set(updated.snapshot.requirements.currently_due)
    assert {"individual.first_name", "individual.last_name"} <= before - now_due
    session = world.sim.visit(world.engine.issue_link(acct).url)
    assert "individual.first_name" not in session.asked
    session.complete()
    assert world.engine.handle_return(acct).state is State.VERIFIED


def test_identity_fields_lock_after_the_first_link_where_stripe_collects(world: World) -> None:
    acct = world.create("express-2", type="express")
    world.engine.issue_link(acct)
    history = world.engine.history(acct)
    calls = world.sim.calls["update_account"]
    for params in (
        {"individual": {"first_name": "Jenny"}},
        {"business_type": "company"},
        {"external_account": "btok_us_verified"},
    ):
        with pytest.raises(IdentityLocked) as refused:
            world.engine.update_account(acct, params)
        assert refused.value.fields == tuple(params)
    # refused before Stripe was asked, and nothing was recorded
    assert world.sim.calls["update_account"] == calls
    assert world.engine.history(acct) == history
    # what is not identity stays the platform's to set
    after = world.engine.update_account(acct, {"business_profile": {"url": "https://accessible.stripe.com"}})
    assert after.state is State.LINK_ISSUED
    assert "business_profile.url" not in after.snapshot.requirements.currently_due
    assert triggers(world, acct)[-1] == "update"


def test_the_bank_account_locks_too_and_terms_are_never_the_platforms_where_stripe_collects(world: World) -> None:
    """Stripe's update parameters: ``external_account`` locks after the first
    link like identity; ``tos_acceptance`` is only for platforms that collect."""
    fresh = world.create("express-3", type="express")
    calls = world.sim.calls["update_account"]
    with pytest.raises(UpdateNotAllowed, match="tos_acceptance"):
        world.engine.update_account(fresh, {"tos_acceptance": {"date": 1700000000, "ip": "203.0.113.7"}})
    world.engine.update_account(fresh, {"external_account": "btok_us_verified"})  # before the link: fine
    world.engine.issue_link(fresh)
    with pytest.raises(IdentityLocked) as refused:
        world.engine.update_account(fresh, {"external_account": "btok_us_verified"})
    assert refused.value.fields == ("external_account",)
    assert world.sim.calls["update_account"] == calls + 1


def test_details_submitted_means_a_link_existed_even_if_the_engine_never_issued_one(world: World) -> None:
    """An adopted account, or a link whose commit failed: the holder submitted
    through Stripe's form, so Stripe has locked the account already."""
    acct = world.create("express-4", type="express")
    account = world.engine.get_account(acct)
    submitted = replace(account, snapshot=replace(account.snapshot, details_submitted=True))
    update = updates.checked({"individual": {"first_name": "Jenny"}})
    assert updates.allowed(account, update) is update
    with pytest.raises(IdentityLocked):
        updates.allowed(submitted, update)


def test_disabled_accounts_take_no_update_and_stripe_is_not_asked(world: World) -> None:
    acct = world.create("under-review", type="express")
    world.onboard(acct)
    world.sim.review(acct)
    assert world.state(acct) == "disabled"
    history, calls = world.engine.history(acct), world.sim.calls["update_account"]
    with pytest.raises(UpdateNotAllowed, match="disabled"):
        world.engine.update_account(acct, {"business_profile": {"name": "Shop"}})
    assert (world.engine.history(acct), world.sim.calls["update_account"]) == (history, calls)


def test_an_account_that_moved_while_stripe_was_asked_is_fetched_anew(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder finishes Stripe's form (and its webhook is applied) while
    our update is in flight: Stripe's answer to the update is older than
    what is stored, so it must not overwrite it."""
    acct = world.create("racing", type="express")
    session = world.sim.visit(world.engine.issue_link(acct).url).fill()
    update = world.sim.update_account

    def racing(account_id: str, params: Mapping[str, Any], **kwargs: Any) -> AccountSnapshot:
        answer = update(account_id, params, **kwargs)  # "still owing"
        session.finish()  # ...and meanwhile the holder finished: account.updated applied, verified
        return answer

    monkeypatch.setattr(world.sim, "update_account", racing)
    after = world.engine.update_account(acct, {"business_profile": {"name": "Shop"}})
    assert after.state is State.VERIFIED
    assert world.engine.get_account(acct).snapshot.details_submitted
    record = [t for t in world.engine.history(acct) if t.trigger is Trigger.UPDATE][-1]
    assert record.to_state is State.VERIFIED  # recorded against the newer view, not moved back


def test_platform_collected_accounts_keep_identity_updatable(world: World) -> None:
    acct = world.create("custom-1", controller=PLATFORM_COLLECTED)
    assert world.onboard(acct) == "verified"
    after = world.engine.update_account(acct, {"individual": {"phone": "0000000000"}})
    assert after.state is State.VERIFIED
    assert triggers(world, acct)[-1] == "update"


def test_a_capability_requested_later_is_collected_by_a_new_onboarding_link(world: World) -> None:
    acct = world.create("later-cap", capabilities=["transfers"])
    assert world.onboard(acct) == "verified"
    world.sim.delivery.hold = True  # Stripe's webhook comes after its answer, as in production
    account = world.engine.request_capabilities(acct, ["card_payments"], actor="ops:bob")
    # Stripe reports the new capability's requirements: owed again
    assert account.state is State.RETURNED_INCOMPLETE
    owed = set(account.snapshot.requirements.currently_due)
    assert {"business_profile.mcc", "business_profile.url"} <= owed
    assert account.snapshot.capability("card_payments") == "inactive"
    assert account.requested_capabilities == ("transfers", "card_payments")
    record = world.engine.history(acct)[-1]
    assert (record.trigger, record.from_state, record.to_state) == (
        Trigger.UPDATE, State.VERIFIED, State.RETURNED_INCOMPLETE
    )  # fmt: skip
    assert record.reason.startswith("update requested=card_payments: ")
    assert record.reason.removeprefix("update requested=card_payments: ") == account.reason
    # the webhook Stripe sends after the update says nothing new: no further record
    world.sim.delivery.hold = False
    world.sim.deliver()
    assert len(world.engine.history(acct)) == record.seq

    session = world.sim.visit(world.engine.issue_link(acct).url)
    assert {"business_profile.mcc", "business_profile.url"} <= set(session.asked)
    session.complete()
    done = world.engine.handle_return(acct)
    assert done.state is State.VERIFIED
    assert done.snapshot.capability("card_payments") == "active"
    # the requested capabilities survive a reload from the database
    assert world.engine.get_account(acct).requested_capabilities == ("transfers", "card_payments")


def test_a_webhook_before_the_commit_leaves_the_same_account(world: World) -> None:
    """Stripe may deliver the update's webhook before our commit (the
    in-process simulator always does): the sync moves the account, the
    update record follows, the end state is the same."""
    acct = world.create("early-hook", capabilities=["transfers"])
    assert world.onboard(acct) == "verified"
    account = world.engine.request_capabilities(acct, ["card_payments"])
    assert account.state is State.RETURNED_INCOMPLETE
    assert triggers(world, acct)[-2:] == ["sync", "update"]
    assert world.engine.history(acct)[-1].from_state is State.RETURNED_INCOMPLETE


@pytest.mark.parametrize(
    ("params", "capabilities"),
    [
        ({"country": "GB"}, ()),
        ({"metadata": {"onboarding_fsm_ref": "someone-else"}}, ()),
        ({"controller": {"fees": {"payer": "application"}}}, ()),
        ({}, ()),
        (None, ()),
        ("individual", ()),
        (None, ("Card Payments",)),
        ({"capabilities": {"card_payments": {"requested": False}}}, ()),
        ({"capabilities": ["card_payments"]}, ()),
    ],
)
def test_bad_updates_are_refused_and_change_nothing(
    world: World, params: object, capabilities: tuple[str, ...]
) -> None:
    acct = world.create("bad-update")
    history = world.engine.history(acct)
    calls = world.sim.calls["update_account"]
    with pytest.raises(InvalidInput):
        world.engine.update_account(acct, params, capabilities=capabilities)  # type: ignore[arg-type]
    assert world.engine.history(acct) == history
    assert world.sim.calls["update_account"] == calls


def test_detached_accounts_take_no_updates(world: World) -> None:
    acct = world.create("gone", type="standard")
    world.onboard(acct)
    world.sim.deauthorize(acct)
    assert world.state(acct) == "disabled"
    calls = world.sim.calls["update_account"]
    with pytest.raises(UpdateNotAllowed):
        world.engine.update_account(acct, {"business_profile": {"name": "Shop"}})
    assert world.sim.calls["update_account"] == calls
