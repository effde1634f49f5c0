"""The holder chooses the account's country (Stripe's hosted-onboarding
guide): an account with a Stripe-hosted dashboard created with neither a
country nor capabilities gets the platform's country, Stripe requests its
capabilities itself, and the hosted form asks for the country first; the
choice applies at once and is final. A country given, or capabilities
requested, fix it from the start. Accounts without a dashboard (Custom)
must request capabilities at creation — Stripe refuses them otherwise — so
their country is always the platform's or the one given. End to end through
the engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from adapters.simulator import FormError, Simulator
from adapters.simulator.server import TEST_KEY
from adapters.stripe import StripeSdkGateway
from onboarding_fsm import InvalidInput, State
from onboarding_fsm.account import LinkParams, LinkRequest, NewAccount
from onboarding_fsm.errors import StripeRequestFailed
from tests.conftest import PLATFORM_COLLECTED, World

#: Custom-like: the platform collects requirements, no Stripe-hosted dashboard
BOTH = ["card_payments", "transfers"]


@pytest.fixture
def db_url(any_db_url: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_db_url


def test_a_standard_account_gets_the_holders_country_then_its_requirements(world: World) -> None:
    acct = world.engine.create_account("standard-gb", None, type="standard").stripe_account_id
    created = world.engine.get_account(acct).snapshot
    assert created.country == "US"  # the platform's, until the holder chooses
    assert dict(created.capabilities) == {"card_payments": "inactive", "transfers": "inactive"}  # Stripe's own

    session = world.sim.visit(world.engine.issue_link(acct).url)
    assert session.asked[0] == "country" and "individual.ssn_last_4" in session.due  # asked first; US form so far
    session.submit({"country": "GB"})
    assert "country" not in session.asked and "individual.ssn_last_4" not in session.due  # GB's form now
    assert world.sim.account_json(acct)["country"] == "GB"  # applied at once
    session.save_for_later()

    returned = world.engine.handle_return(acct)
    assert (returned.state, returned.snapshot.country) == (State.RETURNED_INCOMPLETE, "GB")
    assert world.engine.get_account(acct).snapshot.country == "GB"
    owed = set(returned.snapshot.requirements.currently_due)
    assert {"external_account", "business_profile.mcc"} <= owed  # the auto-requested capabilities' needs
    assert "individual.ssn_last_4" not in returned.snapshot.requirements.eventually_due  # GB's requirements
    session = world.sim.visit(world.engine.issue_link(acct).url)
    assert "country" not in session.asked  # final
    session.complete()
    done = world.engine.handle_return(acct)
    assert done.state is State.VERIFIED
    assert (done.snapshot.country, done.snapshot.capability("transfers")) == ("GB", "active")
    assert world.sim.account_json(acct)["default_currency"] == "gbp"


def test_an_express_account_gets_capabilities_and_the_holders_country(world: World) -> None:
    acct = world.engine.create_account("express-de", type="express").stripe_account_id
    assert dict(world.engine.get_account(acct).snapshot.capabilities) == {
        "card_payments": "inactive",
        "transfers": "inactive",
    }  # requested by Stripe for a dashboard account
    session = world.sim.visit(world.engine.issue_link(acct).url)
    assert session.due[0] == "country"
    session.complete({"country": "DE"})  # chosen first, then the German form filled
    done = world.engine.handle_return(acct)
    assert done.state is State.VERIFIED
    assert done.snapshot.country == "DE"
    assert world.sim.account_json(acct)["default_currency"] == "eur"


def test_filling_the_form_keeps_the_platforms_country(world: World) -> None:
    acct = world.engine.create_account("express-us", type="express").stripe_account_id
    world.sim.visit(world.engine.issue_link(acct).url).complete()
    done = world.engine.handle_return(acct)
    assert (done.state, done.snapshot.country) == (State.VERIFIED, "US")


def test_save_for_later_leaves_the_country_open_until_chosen(world: World) -> None:
    acct = world.engine.create_account("later", type="express").stripe_account_id
    session = world.sim.visit(world.engine.issue_link(acct).url)
    session.submit({"business_type": "individual"}).save_for_later()
    assert world.engine.handle_return(acct).snapshot.country == "US"
    session = world.sim.visit(world.engine.issue_link(acct).url)
    assert session.asked[0] == "country"
    with pytest.raises(FormError, match="still needs"):
        session.finish()  # the country must be chosen
    session.submit({"country": "FR"})
    with pytest.raises(FormError, match="country"):
        session.submit({"country": "DE"})  # chosen: final
    session.complete()
    assert world.engine.handle_return(acct).snapshot.country == "FR"


def test_an_unsupported_country_is_refused_and_changes_nothing(world: World) -> None:
    acct = world.engine.create_account("zz", type="express").stripe_account_id
    session = world.sim.visit(world.engine.issue_link(acct).url)
    with pytest.raises(FormError, match="country must be one of"):
        session.submit({"country": "ZZ"})
    assert session.asked[0] == "country"
    assert world.sim.account_json(acct)["country"] == "US"


def test_a_refused_submit_changes_nothing_not_even_the_country(world: World) -> None:
    acct = world.engine.create_account("atomic", type="express").stripe_account_id
    session = world.sim.visit(world.engine.issue_link(acct).url)
    with pytest.raises(FormError, match="does not ask for"):
        session.submit({"country": "GB", "favourite_colour": "blue"})
    with pytest.raises(FormError, match="test bank account number"):
        session.submit({"country": "GB", "external_account": "123456789012"})  # a "live" number in test mode
    assert (session.country, session.asked[0]) == ("US", "country")  # still open
    assert world.sim.account_json(acct)["country"] == "US"
    session.complete({"country": "GB"})
    assert world.engine.handle_return(acct).snapshot.country == "GB"


@pytest.mark.parametrize("how", ["country", "capabilities"])
def test_a_given_country_or_requested_capabilities_fix_the_country(world: World, how: str) -> None:
    if how == "country":
        acct = world.engine.create_account("fixed", "GB", BOTH).stripe_account_id
    else:  # the platform requests one before the holder chose: Stripe fixes the country then
        acct = world.engine.create_account("fixed", None, type="express").stripe_account_id
        world.engine.request_capabilities(acct, ["us_bank_account_ach_payments"])
    session = world.sim.visit(world.engine.issue_link(acct).url)
    assert "country" not in session.asked
    with pytest.raises(FormError, match="country"):
        session.submit({"country": "DE"})
    with pytest.raises(FormError, match="country"):
        session.complete({"country": "DE"})
    session.complete()
    done = world.engine.handle_return(acct)
    assert (done.state, done.snapshot.country) == (State.VERIFIED, "GB" if how == "country" else "US")


def test_stripe_fixes_the_country_when_capabilities_come_without_one(world: World) -> None:
    raw = world.sim.create_account_json({"type": "custom", "capabilities": {"transfers": {"requested": True}}})
    assert raw["country"] == "US"
    link = world.sim.api.create_account_link(
        {"account": raw["id"], "type": "account_onboarding", "refresh_url": "https://p.example/r",
         "return_url": "https://p.example/b"}
    )  # fmt: skip
    assert "country" not in world.sim.visit(link["url"]).asked


def test_capabilities_without_a_country_are_refused_before_stripe(world: World) -> None:
    calls = world.sim.calls["create_account"]
    with pytest.raises(InvalidInput, match="country"):
        world.engine.create_account("x", None, ["transfers"])
    assert world.sim.calls["create_account"] == calls
    assert world.engine.accounts() == []


def test_the_platform_cannot_change_the_country(world: World) -> None:
    acct = world.engine.create_account("mine", None, type="express").stripe_account_id
    with pytest.raises(InvalidInput):
        world.engine.update_account(acct, {"country": "GB"})
    with pytest.raises(StripeRequestFailed) as refused:
        world.sim.api.update_account(acct, {"country": "GB"})
    assert (refused.value.http_status, refused.value.code, refused.value.param) == (400, "parameter_unknown", "country")
    assert world.sim.account_json(acct)["country"] == "US"


@pytest.mark.parametrize("kind", [{"type": "custom"}, {"controller": PLATFORM_COLLECTED}])
def test_stripe_refuses_an_account_without_a_dashboard_and_without_capabilities(
    world: World, kind: dict[str, object]
) -> None:
    """OpenAPI, ``POST /v1/accounts`` ``capabilities``: "Required when
    controller.stripe_dashboard.type is none, which includes Custom accounts"."""
    for params in ({**kind}, {"country": "DE", **kind}):
        with pytest.raises(StripeRequestFailed) as refused:
            world.sim.create_account_json(params, idempotency_key="no-caps")
        assert (refused.value.http_status, refused.value.code, refused.value.param) == (
            400, "parameter_missing", "capabilities"
        )  # fmt: skip
    assert world.sim.api.list_accounts()["data"] == []
    made = world.sim.create_account_json({**kind, "capabilities": {"transfers": {"requested": True}}},
                                         idempotency_key="no-caps")  # fmt: skip
    assert list(made["capabilities"]) == ["transfers"]  # a refused parameter check stored no answer for the key


def test_the_engine_refuses_an_account_without_a_dashboard_and_without_capabilities(world: World) -> None:
    calls = world.sim.calls["create_account"]
    for kind in ({"type": "custom"}, {"controller": PLATFORM_COLLECTED}):
        with pytest.raises(InvalidInput, match="capabilities"):
            world.engine.create_account("no-caps", None, **kind)
    assert world.sim.calls["create_account"] == calls  # refused before Stripe
    assert world.engine.accounts() == []


def test_accounts_with_a_dashboard_get_capabilities_from_stripe(world: World) -> None:
    for kind in (
        {"type": "standard"},
        {"type": "express"},
        {},
        {"controller": {"stripe_dashboard": {"type": "express"}}},
    ):
        raw = world.sim.create_account_json({"country": "US", **kind})
        assert raw["capabilities"] == {"card_payments": "inactive", "transfers": "inactive"}
        assert raw["requirements"]["disabled_reason"] == "requirements.past_due"  # not onboarded yet


# --- over HTTP: the SDK adapter and the hosted pages ---------------------------------------------


def test_over_http_the_holder_chooses_the_country_on_the_hosted_page(served: tuple[Simulator, str]) -> None:
    sim, url = served
    gateway = StripeSdkGateway(TEST_KEY, api_base=url, max_network_retries=0, sleep=lambda s: None)
    snap = gateway.create_account(NewAccount("sdk-1", None, (), type="express"), idempotency_key="sdk-1")
    assert snap.country == "US"
    link = gateway.create_account_link(LinkRequest(snap.id, LinkParams(), f"{url}/refresh", f"{url}/return"))
    with httpx.Client(follow_redirects=False) as browser:
        page = browser.get(link.url)
        assert page.status_code == 200 and '<select name="country">' in page.text and 'id="finish"' not in page.text
        session = page.text.split('name="_session" value="', 1)[1].split('"', 1)[0]
        chosen = browser.post(link.url, data={"_session": session, "_action": "continue", "country": "GB"})
        assert chosen.status_code == 200 and "<select" not in chosen.text and 'id="finish"' in chosen.text
        assert "individual.ssn_last_4" not in chosen.text  # the British form
        assert gateway.retrieve_account(snap.id).country == "GB"
        again = browser.post(link.url, data={"_session": session, "_action": "continue", "country": "DE"})
        assert again.status_code == 400  # final
    assert sim.account_json(snap.id)["country"] == "GB"
