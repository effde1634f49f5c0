"""The holder chooses the account's country (Stripe's hosted-onboarding
guide): an account created with neither a country nor capabilities gets the
platform's country, and the hosted form asks for the country first; the
choice applies at once and is final. A country given, or capabilities
requested, fix it from the start. Accounts with a Stripe-hosted dashboard
get capabilities requested automatically; the others wait for the platform
to request some. End to end through the engine, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from adapters.http.serving import Served, bind, url_of
from adapters.simulator import FormError, Simulator
from adapters.simulator.server import TEST_KEY, SimulatorServer
from adapters.stripe import StripeSdkGateway
from onboarding_fsm import FakeClock, InvalidInput, State
from onboarding_fsm.account import LinkParams, LinkRequest, NewAccount
from onboarding_fsm.errors import StripeRequestFailed
from tests.conftest import World

#: Custom-like: the platform collects requirements, no Stripe-hosted dashboard
CUSTOM = {
    "requirement_collection": "application",
    "stripe_dashboard": {"type": "none"},
    "fees": {"payer": "application"},
    "losses": {"payments": "application"},
}
BOTH = ["card_payments", "transfers"]


@pytest.fixture
def db_url(any_db_url: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_db_url


def test_a_custom_account_gets_the_holders_country_then_its_requirements(world: World) -> None:
    acct = world.engine.create_account("custom-gb", None, controller=CUSTOM).stripe_account_id
    created = world.engine.get_account(acct).snapshot
    assert created.country == "US"  # the platform's, until the holder chooses
    assert created.capabilities == ()
    assert created.requirements.disabled_reason == "action_required.requested_capabilities"

    session = world.sim.visit(world.engine.issue_link(acct).url)
    assert session.asked[0] == "country" and "individual.ssn_last_4" in session.due  # asked first; US form so far
    session.submit({"country": "GB"})
    assert "country" not in session.asked and "individual.ssn_last_4" not in session.due  # GB's form now
    assert world.sim.account_json(acct)["country"] == "GB"  # applied at once
    session.complete()

    returned = world.engine.handle_return(acct)
    assert returned.snapshot.country == "GB"
    assert world.engine.get_account(acct).snapshot.country == "GB"
    assert returned.state is State.RETURNED_INCOMPLETE  # nothing requested: nothing to activate
    assert "action_required.requested_capabilities" in returned.reason

    owed = world.engine.request_capabilities(acct, BOTH)
    assert owed.state is State.RETURNED_INCOMPLETE
    assert {"external_account", "business_profile.mcc"} <= set(owed.snapshot.requirements.currently_due)
    assert "individual.ssn_last_4" not in owed.snapshot.requirements.eventually_due  # GB's requirements
    session = world.sim.visit(world.engine.issue_link(acct).url)
    assert "country" not in session.asked
    session.complete()
    done = world.engine.handle_return(acct)
    assert done.state is State.VERIFIED
    assert (done.snapshot.country, done.snapshot.capability("transfers")) == ("GB", "active")


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


@pytest.mark.parametrize("how", ["country", "capabilities"])
def test_a_given_country_or_requested_capabilities_fix_the_country(world: World, how: str) -> None:
    if how == "country":
        acct = world.engine.create_account("fixed", "GB", BOTH).stripe_account_id
    else:  # requested before the holder chose: Stripe fixes the country then
        acct = world.engine.create_account("fixed", None, controller=CUSTOM).stripe_account_id
        world.engine.request_capabilities(acct, BOTH)
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
    acct = world.engine.create_account("mine", None, controller=CUSTOM).stripe_account_id
    with pytest.raises(InvalidInput):
        world.engine.update_account(acct, {"country": "GB"})
    with pytest.raises(StripeRequestFailed) as refused:
        world.sim.api.update_account(acct, {"country": "GB"})
    assert (refused.value.http_status, refused.value.code, refused.value.param) == (400, "parameter_unknown", "country")
    assert world.sim.account_json(acct)["country"] == "US"


def test_accounts_without_a_dashboard_wait_for_capabilities(world: World) -> None:
    custom = world.sim.create_account_json({"type": "custom"})
    assert custom["capabilities"] == {}
    assert custom["requirements"]["disabled_reason"] == "action_required.requested_capabilities"
    for kind in ({"type": "standard"}, {"type": "express"}, {}):
        raw = world.sim.create_account_json({"country": "US", **kind})
        assert set(raw["capabilities"]) == {"card_payments", "transfers"}


# --- over HTTP: the SDK adapter and the hosted pages ---------------------------------------------


@pytest.fixture
def served(clock: FakeClock) -> Iterator[tuple[Simulator, str]]:
    sock = bind()
    sim = Simulator(clock, hosted_base_url=url_of(sock))
    running = Served(SimulatorServer(sim).app, sock)
    try:
        yield sim, running.url
    finally:
        running.stop()


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
