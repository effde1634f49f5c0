"""The simulator's documented behaviours: the test-mode values it honours and
its operator API, seen through the engine as a platform would see Stripe;
and the answers Stripe was recorded giving (STRIPE_FACTS, "Recorded shapes"),
in process and over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from adapters.http.serving import Served, bind, url_of
from adapters.simulator import FormError, LinkUnusable, Simulator
from adapters.simulator.server import OTHER_TEST_KEY, TEST_KEY, SimulatorServer
from onboarding_fsm import FakeClock, State
from onboarding_fsm.account import NewAccount
from onboarding_fsm.errors import (
    StripeAccountInaccessible,
    StripeIdempotencyConflict,
    StripeRequestFailed,
)
from onboarding_fsm.snapshot import PLATFORM_REF_KEY
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
    with pytest.raises(Exception, match="can no longer be changed"):
        world.sim.update_account(acct, {"business_type": "company"})


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


# --- recorded shapes ---------------------------------------------------------------------------

CAPS = {"card_payments": {"requested": True}, "transfers": {"requested": True}}
CUSTOM = {"fees": {"payer": "application"}, "losses": {"payments": "application"},
          "requirement_collection": "application", "stripe_dashboard": {"type": "none"}}  # fmt: skip
LINK = {"type": "account_onboarding", "refresh_url": "http://127.0.0.1/r", "return_url": "http://127.0.0.1/b"}


@pytest.fixture
def sim(clock: FakeClock) -> Simulator:
    return Simulator(clock)


@pytest.fixture
def http(clock: FakeClock) -> Iterator[tuple[Simulator, str]]:
    sock = bind()
    sim = Simulator(clock, hosted_base_url=url_of(sock))
    served = Served(SimulatorServer(sim).app, sock)
    yield sim, served.url + "/v1"
    served.stop()


def auth(key: str = TEST_KEY, idempotency_key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    return {**headers, "Idempotency-Key": idempotency_key} if idempotency_key else headers


@pytest.mark.parametrize(
    "kind", [{"type": "express"}, {"type": "custom"}, {"type": "standard"}, {"controller": CUSTOM}, {}]
)
def test_a_never_onboarded_account_lists_its_initial_fields_as_past_due(sim: Simulator, kind: dict[str, Any]) -> None:
    acct = sim.create_account_json({"country": "US", "capabilities": CAPS, **kind})
    r = acct["requirements"]
    assert r["currently_due"] and r["past_due"] == r["currently_due"]
    assert (r["disabled_reason"], r["current_deadline"]) == ("requirements.past_due", None)
    assert (acct["details_submitted"], acct["charges_enabled"], acct["payouts_enabled"]) == (False, False, False)


def test_after_save_for_later_the_leftovers_stay_past_due(world: World) -> None:
    acct = world.create()
    session = world.sim.visit(world.engine.issue_link(acct).url)
    session.submit({"individual": {"first_name": "Jenny", "last_name": "Rosen"}, "business_profile": {"mcc": "5734"}})
    session.save_for_later()
    r = world.sim.account_json(acct)["requirements"]
    assert "individual.first_name" not in r["currently_due"] and "business_profile.mcc" not in r["past_due"]
    assert r["past_due"] == r["currently_due"] and "individual.dob.day" in r["past_due"]
    assert (r["disabled_reason"], r["current_deadline"]) == ("requirements.past_due", None)
    assert world.engine.handle_return(acct).state is State.RETURNED_INCOMPLETE  # not a missed deadline
    world.sim.visit(world.engine.refresh_link(acct).url).complete()
    r = world.sim.account_json(acct)["requirements"]
    assert (r["past_due"], r["disabled_reason"]) == ([], None)


ACCESS = re.compile(
    r"The provided key 'sk_test_\*+\w{4}' does not have access to account '(acct_\w+)' "
    r"\(or that account does not exist\)\. Application access may have been revoked\."
)


def test_403_for_accounts_the_key_cannot_access_in_process(sim: Simulator) -> None:
    mine = sim.create_account_json({"country": "US", "capabilities": CAPS})["id"]
    gone = sim.create_account_json({"country": "US", "capabilities": CAPS})["id"]
    sim.deauthorize(gone)
    other = sim.as_platform("other")
    calls = [
        lambda: other.api.retrieve_account(mine),
        lambda: other.api.update_account(mine, {"email": "x@example.com"}),
        lambda: other.api.create_account_link({"account": mine, **LINK}),
        lambda: sim.api.retrieve_account(gone),  # access revoked
        lambda: sim.api.retrieve_account("acct_1NeverExisted"),
    ]
    for call in calls:
        with pytest.raises(StripeAccountInaccessible) as info:
            call()
        assert (info.value.http_status, info.value.code) == (403, "account_invalid")
        assert ACCESS.fullmatch(str(info.value))
    assert other.api.list_accounts()["data"] == []
    assert [a["id"] for a in sim.api.list_accounts()["data"]] == [mine]


def test_403_for_accounts_the_key_cannot_access_over_http(http: tuple[Simulator, str]) -> None:
    sim, api = http
    mine = httpx.post(f"{api}/accounts", data={"country": "US"}, headers=auth()).json()["id"]
    theirs = httpx.post(f"{api}/accounts", data={"country": "US"}, headers=auth(OTHER_TEST_KEY)).json()["id"]
    sim.deauthorize(theirs)
    refused = [
        httpx.get(f"{api}/accounts/{mine}", headers=auth(OTHER_TEST_KEY)),
        httpx.post(f"{api}/accounts/{mine}", data={"email": "x@example.com"}, headers=auth(OTHER_TEST_KEY)),
        httpx.post(f"{api}/account_links", data={"account": mine, **LINK}, headers=auth(OTHER_TEST_KEY)),
        httpx.get(f"{api}/accounts/{theirs}", headers=auth(OTHER_TEST_KEY)),
        httpx.get(f"{api}/accounts/acct_1NeverExisted", headers=auth()),
    ]
    for answer in refused:
        error = answer.json()["error"]
        assert (answer.status_code, error["type"], error["code"]) == (403, "invalid_request_error", "account_invalid")
        assert ACCESS.fullmatch(error["message"])
    assert "_simulator" not in refused[-1].json()["error"]["message"]  # the key is masked
    listed = httpx.get(f"{api}/accounts", headers=auth(OTHER_TEST_KEY)).json()
    assert listed["data"] == []


def test_a_refused_request_stores_nothing_under_its_key(sim: Simulator, http: tuple[Simulator, str]) -> None:
    with pytest.raises(StripeRequestFailed) as info:
        sim.create_account_json({"country": "US", "colour": "blue"}, idempotency_key="k")
    assert info.value.code == "parameter_unknown"
    first = sim.create_account_json({"country": "US"}, idempotency_key="k")  # the corrected request executes
    assert sim.create_account_json({"country": "US"}, idempotency_key="k")["id"] == first["id"]
    _, api = http
    bad = httpx.post(f"{api}/accounts", data={"country": "US", "type": "platinum"}, headers=auth(idempotency_key="h"))
    assert bad.status_code == 400
    good = httpx.post(f"{api}/accounts", data={"country": "US"}, headers=auth(idempotency_key="h"))
    assert good.status_code == 200 and "Idempotent-Replayed" not in good.headers


def test_idempotency_keys_as_stripe_checks_them(sim: Simulator, http: tuple[Simulator, str]) -> None:
    with pytest.raises(StripeRequestFailed) as info:
        sim.create_account_json({"country": "US"}, idempotency_key="k" * 256)
    assert info.value.http_status == 400
    sim.create_account_json({"country": "US"}, idempotency_key="k" * 255)
    with pytest.raises(StripeIdempotencyConflict):
        sim.create_account_json({"country": "GB"}, idempotency_key="k" * 255)
    _, api = http
    long = httpx.post(f"{api}/accounts", data={"country": "US"}, headers=auth(idempotency_key="k" * 256))
    assert (long.status_code, long.json()["error"]["type"]) == (400, "invalid_request_error")
    first = httpx.post(f"{api}/accounts", data={"country": "US"}, headers=auth(idempotency_key="k"))
    replay = httpx.post(f"{api}/accounts", data={"country": "US"}, headers=auth(idempotency_key="k"))
    assert replay.json() == first.json() and replay.headers["Idempotent-Replayed"] == "true"
    clash = httpx.post(f"{api}/accounts", data={"country": "GB"}, headers=auth(idempotency_key="k"))
    assert (clash.status_code, clash.json()["error"]["type"]) == (400, "idempotency_error")
    other = httpx.post(f"{api}/accounts", data={"country": "GB"}, headers=auth(OTHER_TEST_KEY, "k"))
    assert other.status_code == 200  # keys belong to one platform


def test_in_process_and_http_see_the_same_request_alike(http: tuple[Simulator, str]) -> None:
    sim, api = http
    new = NewAccount("s", "US", ("transfers",))
    first = sim.create_account(new, idempotency_key="k")
    data = {"country": "US", "capabilities[transfers][requested]": "true", f"metadata[{PLATFORM_REF_KEY}]": "s"}
    again = httpx.post(f"{api}/accounts", data=data, headers=auth(idempotency_key="k"))
    assert again.json()["id"] == first.id and again.headers["Idempotent-Replayed"] == "true"


def test_idempotent_answers_last_a_day_on_the_simulator_clock(sim: Simulator, clock: FakeClock) -> None:
    first = sim.create_account_json({"country": "US"}, idempotency_key="k")
    clock.advance(timedelta(hours=24) - timedelta(seconds=1))
    assert sim.create_account_json({"country": "US"}, idempotency_key="k")["id"] == first["id"]
    clock.advance(timedelta(seconds=1))
    assert sim.create_account_json({"country": "US"}, idempotency_key="k")["id"] != first["id"]


@pytest.mark.parametrize(
    ("legacy", "controller"),
    [
        ("express", {"fees": {"payer": "application_express"}, "losses": {"payments": "application"},
                     "requirement_collection": "stripe", "stripe_dashboard": {"type": "express"}}),
        ("standard", {"fees": {"payer": "account"}, "losses": {"payments": "stripe"},
                      "requirement_collection": "stripe", "stripe_dashboard": {"type": "full"}}),
        ("custom", {"fees": {"payer": "application"}, "losses": {"payments": "application"},
                    "requirement_collection": "application", "stripe_dashboard": {"type": "none"}}),
    ],
)  # fmt: skip
def test_legacy_types_are_controller_properties(sim: Simulator, legacy: str, controller: dict[str, Any]) -> None:
    acct = sim.create_account_json({"country": "US", "type": legacy, "capabilities": CAPS})
    assert acct["type"] == legacy
    assert acct["controller"] == {**controller, "is_controller": True, "type": "application"}


@pytest.mark.parametrize(
    ("controller", "param"),
    [
        ({"losses": {"payments": "application"}}, "controller[losses][payments]"),
        ({"fees": {"payer": "account"}, "losses": {"payments": "application"}}, "controller[losses][payments]"),
        ({"requirement_collection": "application", "fees": {"payer": "application"},
          "losses": {"payments": "application"}}, "controller[stripe_dashboard][type]"),
    ],
)  # fmt: skip
def test_controller_combinations_stripe_refuses(sim: Simulator, controller: dict[str, Any], param: str) -> None:
    with pytest.raises(StripeRequestFailed) as info:
        sim.create_account_json({"country": "US", "controller": controller})
    assert (info.value.http_status, info.value.param) == (400, param)
    allowed = sim.create_account_json({"country": "US", "controller": {**controller, **CUSTOM}, "capabilities": CAPS})
    assert allowed["controller"]["losses"] == {"payments": "application"}


@pytest.mark.parametrize("business_type", ["individual", "company", "non_profit", "government_entity"])
def test_every_business_type_stripe_accepts(sim: Simulator, business_type: str) -> None:
    acct = sim.create_account_json({"country": "US", "business_type": business_type, "capabilities": CAPS})
    due = acct["requirements"]["currently_due"]
    assert acct["business_type"] == business_type and "business_type" not in due
    if business_type == "individual":
        assert "individual.first_name" in due and "company" not in acct
    else:
        assert {"company.name", "company.tax_id", "representative.first_name"} <= set(due)
        assert ("company.owners_provided" in due) is (
            business_type == "company"
        )  # non-profits and public bodies have no owners
        assert acct["company"]["tax_id_provided"] is False
    with pytest.raises(StripeRequestFailed):
        sim.create_account_json({"country": "US", "business_type": "partnership"})


def test_government_entities_are_us_only(sim: Simulator) -> None:
    with pytest.raises(StripeRequestFailed) as info:
        sim.create_account_json({"country": "GB", "business_type": "government_entity"})
    assert info.value.param == "business_type"


def test_list_walks_backwards_with_ending_before_and_filters_by_created(
    sim: Simulator, http: tuple[Simulator, str], clock: FakeClock
) -> None:
    ids = []
    for _ in range(5):
        ids.append(sim.create_account_json({"country": "US"})["id"])
        clock.advance(10)
    newest_first = list(reversed(ids))
    page = sim.api.list_accounts({"limit": 2, "ending_before": ids[1]})  # the two created just after ids[1]
    assert ([a["id"] for a in page["data"]], page["has_more"]) == ([ids[3], ids[2]], True)
    page = sim.api.list_accounts({"limit": 2, "ending_before": ids[3]})
    assert ([a["id"] for a in page["data"]], page["has_more"]) == ([ids[4]], False)
    created = sim.api.retrieve_account(ids[2])["created"]
    within = {"created": {"gte": created, "lt": created + 20}}
    assert [a["id"] for a in sim.api.list_accounts(within)["data"]] == [ids[3], ids[2]]
    assert [a["id"] for a in sim.api.list_accounts({"created": created})["data"]] == [ids[2]]
    assert [a["id"] for a in sim.api.list_accounts({"created": {"gt": created}})["data"]] == newest_first[:2]
    with pytest.raises(StripeRequestFailed):
        sim.api.list_accounts({"starting_after": ids[1], "ending_before": ids[3]})
    _, api = http  # the same over HTTP (another simulator: its own accounts)
    made = [
        httpx.post(f"{api}/accounts", data={"country": "US"}, headers=auth()).json() for _ in range(3)
    ]  # one second
    clock.advance(10)
    late = httpx.post(f"{api}/accounts", data={"country": "US"}, headers=auth()).json()
    back = httpx.get(f"{api}/accounts", params={"ending_before": made[0]["id"], "limit": 10}, headers=auth()).json()
    assert [a["id"] for a in back["data"]] == [late["id"], made[2]["id"], made[1]["id"]]
    query = {"created[gt]": str(made[0]["created"])}
    assert [a["id"] for a in httpx.get(f"{api}/accounts", params=query, headers=auth()).json()["data"]] == [late["id"]]
