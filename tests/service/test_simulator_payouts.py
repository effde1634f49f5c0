"""Payout failures (Stripe's test bank numbers, STRIPE_FACTS §5): a payout to
a bad bank account fails with its ``failure_code``, the bank account becomes
``errored``, payouts stop and a bank account is owed again — the engine sees
the ``account.updated`` and re-classifies, and records the ``payout.*``
events as ignored; the holder fixes it through an onboarding link. End to
end through the engine, on SQLite and PostgreSQL; and over HTTP with the
``Stripe-Account`` header, as a platform calls Stripe."""

from __future__ import annotations

import pytest
import stripe

from adapters.simulator import FormError, Simulator
from adapters.simulator.server import OTHER_TEST_KEY, TEST_KEY
from onboarding_fsm import Outcome, State
from onboarding_fsm.errors import StripeAccountInaccessible, StripeRequestFailed
from onboarding_fsm.queries import InboxQuery
from tests.conftest import PLATFORM_COLLECTED, World

FAILURES = {
    "000111111116": "no_account",
    "000111111113": "account_closed",
    "000222222227": "insufficient_funds",
    "000333333335": "debit_not_authorized",
    "000444444440": "invalid_currency",
}


@pytest.fixture
def db_url(any_db_url: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_db_url


def bank(world: World, acct: str) -> dict[str, object]:
    data: list[dict[str, object]] = world.sim.account_json(acct)["external_accounts"]["data"]
    assert len(data) == 1
    return data[0]


def test_a_failed_payout_owes_a_bank_account_until_the_holder_replaces_it(world: World) -> None:
    acct = world.create("seller-po")
    assert world.onboard(acct, {"external_account": "000111111116"}) == "verified"
    assert bank(world, acct)["last4"] == "1116"

    payout = world.sim.payout(acct, amount=2500)
    assert (payout["status"], payout["failure_code"]) == ("failed", "no_account")
    assert payout["failure_message"] and payout["destination"] == bank(world, acct)["id"]
    shape = (payout["object"], payout["amount"], payout["currency"], payout["type"], payout["method"])
    assert shape == ("payout", 2500, "usd", "bank_account", "standard")

    account = world.engine.get_account(acct)
    assert account.state is State.RETURNED_INCOMPLETE
    assert "currently_due=1" in account.reason
    r = account.snapshot.requirements
    assert (r.currently_due, r.errors, r.past_due, r.current_deadline) == (("external_account",), (), (), None)
    assert (account.snapshot.payouts_enabled, account.snapshot.charges_enabled) == (False, True)
    assert account.snapshot.capability("transfers") == "inactive"
    assert bank(world, acct)["status"] == "errored"
    failed = list(world.engine.inbox(InboxQuery(account_id=acct, type="payout.failed")).items)
    assert [e.outcome for e in failed] == [Outcome.IGNORED]
    types = [e["type"] for e in world.sim.events if e["account"] == acct][-5:]
    assert types[:3] == ["payout.created", "payout.failed", "account.external_account.updated"]
    assert "account.updated" in types[3:]

    with pytest.raises(StripeRequestFailed) as refused:  # payouts stopped
        world.sim.payout(acct)
    assert (refused.value.http_status, refused.value.code) == (400, "payouts_not_allowed")

    session = world.sim.visit(world.engine.issue_link(acct).url)
    assert session.asked == ("external_account",)
    session.complete({"external_account": "000123456789"})
    fixed = world.engine.handle_return(acct)
    assert fixed.state is State.VERIFIED
    assert (bank(world, acct)["status"], bank(world, acct)["last4"]) == ("new", "6789")
    assert world.sim.payout(acct)["status"] == "paid"
    assert world.engine.get_account(acct).state is State.VERIFIED


@pytest.mark.parametrize(("number", "code"), sorted(FAILURES.items()))
def test_each_test_bank_number_fails_with_its_code(world: World, number: str, code: str) -> None:
    acct = world.create("seller-n")
    assert world.onboard(acct, {"external_account": number}) == "verified"
    payout = world.sim.payout(acct)
    assert (payout["status"], payout["failure_code"]) == ("failed", code)
    assert world.engine.get_account(acct).state is State.RETURNED_INCOMPLETE


def test_the_default_token_and_the_success_number_pay_out(world: World) -> None:
    token = world.create("seller-t")
    assert world.onboard(token) == "verified"  # the form's test data: btok_us_verified
    assert world.sim.payout(token)["status"] == "paid"
    number = world.create("seller-s")
    assert world.onboard(number, {"external_account": "000123456789"}) == "verified"
    paid = world.sim.payout(number, amount=100)
    assert (paid["status"], paid["failure_code"], paid["failure_message"]) == ("paid", None, None)
    assert [e["type"] for e in world.sim.events if e["account"] == number][-2:] == ["payout.created", "payout.paid"]
    assert world.engine.get_account(number).state is State.VERIFIED


def test_the_platform_replaces_the_bank_account_with_stripes_nested_shape(world: World) -> None:
    acct = world.create("custom-po", controller=PLATFORM_COLLECTED)
    assert world.onboard(acct, {"external_account": "000333333335"}) == "verified"
    assert world.sim.payout(acct)["failure_code"] == "debit_not_authorized"
    assert world.engine.get_account(acct).state is State.RETURNED_INCOMPLETE
    nested = {"object": "bank_account", "account_number": "000123456789", "routing_number": "110000000",
              "country": "US", "currency": "usd"}  # fmt: skip
    fixed = world.engine.update_account(acct, {"external_account": nested})
    assert fixed.state is State.VERIFIED
    assert world.sim.payout(acct)["status"] == "paid"


def test_bank_numbers_stripe_would_refuse_change_nothing(world: World) -> None:
    acct = world.create("seller-r", controller=PLATFORM_COLLECTED)  # the platform may replace its bank account
    session = world.sim.visit(world.engine.issue_link(acct).url)
    with pytest.raises(FormError, match="test bank account number"):
        session.submit({"external_account": "123456789012"})  # a "live" number in test mode
    with pytest.raises(FormError, match="Routing number 021000021"):
        session.submit({"external_account": {"account_number": "000123456789", "routing_number": "021000021",
                                              "country": "US"}})  # fmt: skip
    with pytest.raises(FormError, match=r"external_account\[country\]"):
        session.submit({"external_account": {"account_number": "000123456789"}})
    session.complete({"external_account": {"account_number": "000123456789", "routing_number": "110000000",
                                           "country": "US"}})  # fmt: skip
    assert world.engine.handle_return(acct).state is State.VERIFIED
    before = bank(world, acct)
    with pytest.raises(StripeRequestFailed) as refused:
        world.sim.api.update_account(
            acct, {"external_account": {"object": "bank_account", "account_number": "42", "country": "US"}}
        )
    assert (refused.value.http_status, refused.value.param) == (400, "external_account[account_number]")
    assert bank(world, acct) == before
    rendered = world.sim.account_json(acct)
    assert "000123456789" not in str(rendered)  # the number is never echoed


def test_where_stripe_collects_the_platform_cannot_replace_the_bank_account_after_a_link(world: World) -> None:
    """OpenAPI, ``POST /v1/accounts/{account}`` ``external_account``: "After you
    create an Account Link or Account Session, this property can only be updated
    for accounts where controller.requirement_collection is application"."""
    acct = world.create("express-po", type="express")
    world.sim.update_account(acct, {"external_account": "000123456789"})  # before any link: pre-fill
    assert world.onboard(acct, {"external_account": "000111111116"}) == "verified"
    assert world.sim.payout(acct)["failure_code"] == "no_account"
    before = bank(world, acct)
    with pytest.raises(StripeRequestFailed) as refused:
        world.sim.update_account(acct, {"external_account": "btok_us_verified"})
    assert (refused.value.http_status, refused.value.code, refused.value.param) == (
        400, "account_locked", "external_account"
    )  # fmt: skip
    assert bank(world, acct) == before and before["status"] == "errored"
    files = {"bank_account_ownership_verification": {"files": ["file_identity_document_success"]}}
    world.sim.update_account(acct, {"documents": files})  # documents carry no such rule
    session = world.sim.visit(world.engine.issue_link(acct).url)  # the holder replaces it
    assert session.asked == ("external_account",)
    session.complete({"external_account": "000123456789"})
    assert world.engine.handle_return(acct).state is State.VERIFIED


@pytest.mark.parametrize("kind", [{"type": "express"}, {"type": "standard"}])
def test_where_stripe_collects_the_platform_never_accepts_the_terms(world: World, kind: dict[str, str]) -> None:
    """OpenAPI, ``tos_acceptance``: "can only be updated for accounts where
    controller.requirement_collection is application" — link or no link."""
    acct = world.create("terms", **kind)
    tos = {"date": 1700000000, "ip": "203.0.113.7"}
    with pytest.raises(StripeRequestFailed) as refused:
        world.sim.api.update_account(acct, {"tos_acceptance": tos})
    assert (refused.value.http_status, refused.value.code, refused.value.param) == (
        400, "account_locked", "tos_acceptance"
    )  # fmt: skip
    assert world.sim.account_json(acct)["tos_acceptance"]["date"] is None
    world.sim.api.update_account(acct, {"individual": {"first_name": "Jenny"}})  # identity: open until a link
    custom = world.create("terms-c", controller=PLATFORM_COLLECTED)
    assert world.sim.api.update_account(custom, {"tos_acceptance": tos})["tos_acceptance"]["date"] == tos["date"]


def test_payouts_are_refused_as_stripe_refuses_them(world: World) -> None:
    fresh = world.create("seller-f")
    with pytest.raises(StripeRequestFailed) as refused:
        world.sim.payout(fresh)  # not onboarded: payouts disabled
    assert (refused.value.http_status, refused.value.code) == (400, "payouts_not_allowed")
    cards_only = world.create("seller-c", capabilities=["card_payments"])
    assert world.onboard(cards_only) == "verified"  # no bank account asked for card payments alone
    with pytest.raises(StripeRequestFailed, match="external accounts in that currency"):
        world.sim.payout(cards_only)
    paid = world.create("seller-p")
    world.onboard(paid)
    with pytest.raises(StripeRequestFailed, match="external accounts in that currency"):
        world.sim.payout(paid, currency="eur")
    with pytest.raises(StripeRequestFailed) as bad:
        world.sim.payout(paid, amount=0)
    assert bad.value.param == "amount"
    with pytest.raises(StripeAccountInaccessible):
        world.sim.as_platform("other").api.create_payout(paid, {"amount": 100, "currency": "usd"})
    assert world.sim.calls["create_payout"] == 5


# --- over HTTP: the platform's key and the Stripe-Account header ------------------------------------


def test_payouts_over_http_with_the_stripe_account_header(served: tuple[Simulator, str]) -> None:
    sim, url = served
    client = stripe.StripeClient(TEST_KEY, base_addresses={"api": url}, max_network_retries=0)
    acct = client.v1.accounts.create(
        {"country": "US", "type": "custom", "capabilities": {"transfers": {"requested": True}},
         "external_account": {"object": "bank_account", "country": "US", "currency": "usd",
                              "routing_number": "110000000", "account_number": "000222222227"}}
    ).id  # fmt: skip  # Custom: the platform may replace the bank account after the link
    link = client.v1.account_links.create(
        {"account": acct, "type": "account_onboarding", "refresh_url": f"{url}/r", "return_url": f"{url}/b"}
    )
    sim.visit(link.url).complete()
    on_behalf: stripe.RequestOptions = {"stripe_account": acct}

    payout = client.v1.payouts.create({"amount": 1200, "currency": "usd"}, on_behalf)
    assert (payout.status, payout.failure_code, payout.object) == ("failed", "insufficient_funds", "payout")
    again = client.v1.payouts.retrieve(payout.id, None, on_behalf)
    assert again.to_dict() == payout.to_dict()
    account = client.v1.accounts.retrieve(acct)
    assert account.payouts_enabled is False
    assert account.requirements is not None and account.requirements.currently_due == ["external_account"]
    assert account.external_accounts is not None and account.external_accounts.data[0].status == "errored"

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payouts.create({"amount": 1200, "currency": "usd"}, on_behalf)
    assert (refused.value.http_status, refused.value.code) == (400, "payouts_not_allowed")
    with pytest.raises(stripe.PermissionError) as other:  # another platform's key
        stripe.StripeClient(OTHER_TEST_KEY, base_addresses={"api": url}, max_network_retries=0).v1.payouts.create(
            {"amount": 1200, "currency": "usd"}, on_behalf
        )
    assert other.value.http_status == 403
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.payouts.retrieve("po_doesnotexist", None, on_behalf)
    assert missing.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as platform_itself:
        client.v1.payouts.create({"amount": 1200, "currency": "usd"})  # no Stripe-Account header
    assert platform_itself.value.http_status == 400

    client.v1.accounts.update(acct, {"external_account": "btok_us_verified"})
    keyed: stripe.RequestOptions = {**on_behalf, "idempotency_key": "po-1"}
    paid = client.v1.payouts.create({"amount": 1200, "currency": "usd"}, keyed)
    replay = client.v1.payouts.create({"amount": 1200, "currency": "usd"}, keyed)
    assert paid.status == "paid" and replay.id == paid.id
    assert [e["type"] for e in sim.events if e["type"].startswith("payout.")] == [
        "payout.created", "payout.failed", "payout.created", "payout.paid"
    ]  # fmt: skip
