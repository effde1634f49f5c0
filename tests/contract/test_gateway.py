"""One contract for the StripeGateway port, run against every gateway:
the in-process simulator, and the official SDK adapter talking to the
simulator's HTTP server over a loopback socket."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from adapters.http.serving import Served, bind, url_of
from adapters.simulator import Simulator
from adapters.simulator.server import OTHER_TEST_KEY, TEST_KEY, SimulatorServer
from adapters.stripe import StripeSdkGateway
from onboarding_fsm import FakeClock
from onboarding_fsm.account import LinkParams, LinkRequest, LinkType, NewAccount
from onboarding_fsm.errors import (
    StripeAccountInaccessible,
    StripeFailure,
    StripeIdempotencyConflict,
    StripeRequestFailed,
)
from onboarding_fsm.ports import StripeGateway
from tests.conftest import START


@dataclass
class Gateways:
    """The platform's gateway, and one holding another platform's key to the same Stripe."""

    mine: StripeGateway
    other: StripeGateway
    #: the Stripe behind both (to set up what they read, such as webhook endpoints)
    sim: Simulator


@pytest.fixture(params=["simulator", "sdk-over-http"])
def gateways(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Gateways]:
    if request.param == "simulator":
        sim = Simulator(clock)
        yield Gateways(sim, sim.as_platform("other"), sim)
        return
    sock = bind()
    server = SimulatorServer(Simulator(clock, hosted_base_url=url_of(sock)))
    served = Served(server.app, sock)

    def sdk(key: str) -> StripeSdkGateway:
        return StripeSdkGateway(key, api_base=served.url, max_network_retries=0, sleep=lambda s: None)

    try:
        yield Gateways(sdk(TEST_KEY), sdk(OTHER_TEST_KEY), server.sim)
    finally:
        served.stop()


@pytest.fixture
def gateway(gateways: Gateways) -> StripeGateway:
    return gateways.mine


def new(ref: str = "seller-1", **kw: object) -> NewAccount:
    kw.setdefault("capabilities", ("card_payments", "transfers"))
    return NewAccount(platform_ref=ref, country=str(kw.pop("country", "US")), **kw)  # type: ignore[arg-type]


def link_request(account_id: str, **params: object) -> LinkRequest:
    return LinkRequest(
        account_id=account_id,
        params=LinkParams(**params),  # type: ignore[arg-type]
        refresh_url="http://127.0.0.1:8000/r",
        return_url="http://127.0.0.1:8000/b",
    )


def test_create_returns_a_snapshot_tagged_with_the_platform_ref(gateway: StripeGateway) -> None:
    snap = gateway.create_account(new(), idempotency_key="k1")
    assert snap.id.startswith("acct_")
    assert snap.platform_ref == "seller-1"
    assert snap.country == "US"
    assert dict(snap.capabilities).keys() == {"card_payments", "transfers"}
    assert snap.requirements.currently_due
    assert not snap.details_submitted


def test_same_idempotency_key_same_account(gateway: StripeGateway) -> None:
    first = gateway.create_account(new(), idempotency_key="k1")
    again = gateway.create_account(new(), idempotency_key="k1")
    assert again.id == first.id
    other = gateway.create_account(new("seller-2"), idempotency_key="k2")
    assert other.id != first.id


def test_same_key_different_parameters_is_refused(gateway: StripeGateway) -> None:
    gateway.create_account(new(), idempotency_key="k1")
    with pytest.raises(StripeIdempotencyConflict):
        gateway.create_account(new(country="GB"), idempotency_key="k1")


@pytest.mark.parametrize(
    "bad",
    [new(country="ZZ"), new(capabilities=("teleportation",)), new(type="platinum")],
    ids=["country", "capability", "type"],
)
def test_bad_create_parameters_are_permanent_errors_with_a_request_id(gateway: StripeGateway, bad: NewAccount) -> None:
    with pytest.raises(StripeRequestFailed) as info:
        gateway.create_account(bad, idempotency_key="bad")
    assert info.value.http_status == 400 and info.value.request_id and info.value.param
    assert not info.value.retryable


def test_retrieve(gateway: StripeGateway) -> None:
    snap = gateway.create_account(new(), idempotency_key="k1")
    assert gateway.retrieve_account(snap.id) == snap
    with pytest.raises(StripeAccountInaccessible) as info:  # Stripe: 403, "(or that account does not exist)"
        gateway.retrieve_account("acct_doesnotexist")
    assert (info.value.http_status, info.value.code) == (403, "account_invalid")
    assert not info.value.retryable


def test_another_platforms_key_cannot_see_the_account(gateways: Gateways) -> None:
    snap = gateways.mine.create_account(new(), idempotency_key="k1")
    for call in (
        lambda: gateways.other.retrieve_account(snap.id),
        lambda: gateways.other.update_account(snap.id, {"business_profile": {"name": "Shop"}}),
        lambda: gateways.other.create_account_link(link_request(snap.id)),
    ):
        with pytest.raises(StripeAccountInaccessible) as info:
            call()
        assert (info.value.http_status, info.value.code) == (403, "account_invalid")
        assert f"does not have access to account '{snap.id}'" in str(info.value)
    assert gateways.other.list_accounts().accounts == ()
    theirs = gateways.other.create_account(new("theirs"), idempotency_key="k1")  # keys are per platform
    assert theirs.id != snap.id
    assert [a.id for a in gateways.mine.list_accounts().accounts] == [snap.id]


def test_update_prefills_before_the_first_link(gateway: StripeGateway) -> None:
    snap = gateway.create_account(new(), idempotency_key="k1")
    updated = gateway.update_account(snap.id, {"business_profile": {"url": "https://accessible.stripe.com"}})
    assert "business_profile.url" in snap.requirements.currently_due
    assert "business_profile.url" not in updated.requirements.currently_due


def test_list_pages_newest_first(gateway: StripeGateway, clock: FakeClock) -> None:
    ids = []
    for n in range(5):
        ids.append(gateway.create_account(new(f"s{n}"), idempotency_key=f"k{n}").id)
        clock.advance(1)
    seen, cursor = [], None
    while True:
        page = gateway.list_accounts(limit=2, starting_after=cursor)
        seen += [a.id for a in page.accounts]
        if not page.has_more:
            break
        cursor = page.accounts[-1].id
    assert seen == list(reversed(ids))


def test_list_from_a_creation_time(gateway: StripeGateway, clock: FakeClock) -> None:
    old = gateway.create_account(new("s0"), idempotency_key="k0")
    clock.advance(timedelta(hours=1))
    since = clock.now()
    fresh = [gateway.create_account(new(f"s{n}"), idempotency_key=f"k{n}").id for n in (1, 2)]
    clock.advance(1)
    gateway.create_account(new("s3"), idempotency_key="k3")
    listed = [a.id for a in gateway.list_accounts(created_gte=since).accounts]
    assert old.id not in listed and set(fresh) <= set(listed) and len(listed) == 3
    page = gateway.list_accounts(limit=1, created_gte=since)
    assert len(page.accounts) == 1 and page.has_more
    later = gateway.list_accounts(created_gte=clock.now() + timedelta(seconds=1))
    assert (later.accounts, later.has_more) == ((), False)


def test_account_link(gateway: StripeGateway) -> None:
    snap = gateway.create_account(new(), idempotency_key="k1")
    link = gateway.create_account_link(link_request(snap.id))
    assert link.url.startswith("http")
    assert link.created_at == START
    assert link.expires_at - link.created_at == timedelta(seconds=300)


def test_account_update_links_only_where_the_platform_collects(gateway: StripeGateway) -> None:
    express = gateway.create_account(new(type="express"), idempotency_key="k1")
    with pytest.raises(StripeRequestFailed) as info:
        gateway.create_account_link(link_request(express.id, type=LinkType.ACCOUNT_UPDATE))
    assert info.value.param == "type"
    custom = gateway.create_account(new("s2", type="custom"), idempotency_key="k2")
    assert gateway.create_account_link(link_request(custom.id, type=LinkType.ACCOUNT_UPDATE)).url


def test_every_answer_carries_its_own_request_id(gateway: StripeGateway) -> None:
    """Stripe's ``Request-Id`` of each call's answer, for the audit trail's cause."""
    created = gateway.create_account(new(), idempotency_key="k1")
    replayed = gateway.create_account(new(), idempotency_key="k1")  # another request, though its answer is replayed
    retrieved = gateway.retrieve_account(created.id)
    again = gateway.retrieve_account(created.id)
    updated = gateway.update_account(created.id, {"business_profile": {"name": "Shop"}})
    link = gateway.create_account_link(link_request(created.id))
    ids = [a.request_id for a in (created, replayed, retrieved, again, updated, link)]
    assert all(i is not None and re.fullmatch(r"req_[A-Za-z0-9]+", i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    assert replayed == created and again == retrieved  # the id is not part of what Stripe says about the account


def test_a_listing_tags_its_accounts_with_its_own_request_id(gateway: StripeGateway) -> None:
    for n in range(2):
        gateway.create_account(new(f"s{n}"), idempotency_key=f"k{n}")
    first, second = gateway.list_accounts(), gateway.list_accounts()
    (one,) = {a.request_id for a in first.accounts}
    (two,) = {a.request_id for a in second.accounts}
    assert one and two and one != two and re.fullmatch(r"req_[A-Za-z0-9]+", one)


def test_the_simulator_server_answers_every_api_call_with_a_new_request_id(clock: FakeClock) -> None:
    sock = bind()
    server = SimulatorServer(Simulator(clock, hosted_base_url=url_of(sock)))
    served = Served(server.app, sock)
    api, auth = served.url + "/v1", {"Authorization": f"Bearer {TEST_KEY}"}
    try:
        created = httpx.post(f"{api}/accounts", data={"country": "US"}, headers={**auth, "Idempotency-Key": "k1"})
        replay = httpx.post(f"{api}/accounts", data={"country": "US"}, headers={**auth, "Idempotency-Key": "k1"})
        server.faults.add("status", status=429, path_prefix="/v1/balance")
        answers = [
            created,
            replay,
            httpx.get(f"{api}/accounts/{created.json()['id']}", headers=auth),
            httpx.get(f"{api}/accounts", headers={"Authorization": "Bearer sk_test_nope"}),  # 401
            httpx.get(f"{api}/charges", headers=auth),  # 404
            httpx.get(f"{api}/balance", headers=auth),  # the injected 429
        ]
    finally:
        served.stop()
    assert [a.status_code for a in answers] == [200, 200, 200, 401, 404, 429]
    ids = [a.headers.get("Request-Id", "") for a in answers]
    assert all(re.fullmatch(r"req_[A-Za-z0-9]{14}", i) for i in ids), ids
    assert len(set(ids)) == len(ids)  # a replay is another request: its answer is the first one's
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == created.json()


def test_link_for_unknown_account(gateway: StripeGateway) -> None:
    with pytest.raises(StripeFailure):
        gateway.create_account_link(link_request("acct_doesnotexist"))


def test_webhook_endpoints_are_listed_as_values(gateways: Gateways) -> None:
    """The self-check's read: every endpoint of the key's account, Connect or not."""
    assert gateways.mine.list_webhook_endpoints() == []
    url = "https://pay.example/webhooks/stripe"
    connect = gateways.sim.add_webhook_endpoint(url, ["account.updated", "capability.updated"])
    platform = gateways.sim.add_webhook_endpoint(url, ["*"], connect=False)
    listed = {e.id: e for e in gateways.mine.list_webhook_endpoints()}
    assert set(listed) == {connect["id"], platform["id"]}
    mine = listed[connect["id"]]
    assert (mine.url, mine.enabled_events, mine.status, mine.livemode) == (
        url,
        ("account.updated", "capability.updated"),
        "enabled",
        False,
    )
    assert mine.connect and mine.application and not listed[platform["id"]].connect
    assert gateways.other.list_webhook_endpoints() == []  # another platform's key sees its own only
