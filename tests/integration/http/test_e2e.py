"""Every seed scenario over real sockets: uvicorn, the HTTP simulator, the SDK
adapter, webhooks over HTTP — including duplicated and reordered deliveries
and injected Stripe faults."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from onboarding_fsm import FakeClock, LinkNotAllowed, Source, State, Trigger
from tests.integration.http.conftest import Stack, make_stack
from tests.integration.http.holder import Holder


@pytest.fixture
def db_url(any_db_url: str) -> str:
    return any_db_url


def landed(response: object) -> str:
    url = str(response.url)  # type: ignore[attr-defined]
    assert "/onboarding/done" in url, url
    return url.split("state=")[1]


def test_upfront_one_visit(db_url: str, clock: FakeClock, holder: Holder) -> None:
    stack = make_stack(db_url, clock, collection="upfront")
    try:
        acct = stack.create()
        start = f"{stack.settings.start_url(acct)}?token={stack.auth.token_for(acct, 'alice@example')}"
        page = holder.onboard(start)
        assert landed(page) == "verified"
        assert stack.engine.get_account(acct).snapshot.requirements.eventually_due == ()
        history = stack.engine.history(acct)
        assert [t.trigger for t in history] == [Trigger.CREATE, Trigger.ISSUE_LINK, Trigger.RETURN]
        # the start (the token) and the return (the session cookie) are the same holder
        holders = [t.actor for t in history if t.trigger in (Trigger.ISSUE_LINK, Trigger.REFRESH, Trigger.RETURN)]
        assert holders == ["holder:alice@example"] * 2
        stack.settle()
        assert [e.outcome.value for e in stack.engine.inbox()] == ["applied"] * len(stack.engine.inbox())
    finally:
        stack.stop()


def test_incremental_leaves_eventually_due(stack: Stack, holder: Holder) -> None:
    acct = stack.create()
    assert landed(holder.onboard(stack.start_url(acct))) == "verified"
    assert stack.engine.get_account(acct).snapshot.requirements.eventually_due == ("individual.id_number",)


def test_save_for_later_then_finish(stack: Stack, holder: Holder) -> None:
    acct = stack.create()
    action, fields, _ = holder.open_form(stack.start_url(acct))
    partial = {
        k: ("" if not k.startswith("_") and k not in ("business_type", "individual.first_name") else v)
        for k, v in fields.items()
    }
    assert landed(holder.follow(holder.submit(action, partial, finish=False))) == "returned_incomplete"
    assert landed(holder.onboard(stack.start_url(acct))) == "verified"


def test_a_link_visited_twice_or_expired_goes_through_refresh(stack: Stack, holder: Holder) -> None:
    acct = stack.create()
    first = holder.get(stack.start_url(acct))
    link = first.headers["location"]
    holder.get(link)  # a preview bot, or the holder, used it
    again = holder.get(link)
    assert again.status_code == 303 and again.headers["location"].endswith(f"/onboarding/{acct}/refresh")
    params = stack.engine.get_account(acct).link
    refreshed = holder.get(again.headers["location"])  # our refresh endpoint, authenticated by the cookie
    assert refreshed.status_code == 303 and refreshed.headers["location"] != link
    assert stack.engine.get_account(acct).link == params
    stack.clock.advance(timedelta(seconds=301))
    expired = holder.get(refreshed.headers["location"])
    assert expired.headers["location"].endswith("/refresh")
    action, fields, _ = holder.open_form(expired.headers["location"])
    assert landed(holder.follow(holder.submit(action, fields))) == "verified"
    assert Counter(t.trigger for t in stack.engine.history(acct))[Trigger.REFRESH] == 2


def test_identity_mismatch_then_remediation(db_url: str, clock: FakeClock, holder: Holder) -> None:
    stack = make_stack(db_url, clock, collection="upfront")
    try:
        acct = stack.create()
        assert (
            landed(holder.onboard(stack.start_url(acct), **{"individual.id_number": "111111111"}))
            == "returned_incomplete"
        )
        errors = stack.engine.get_account(acct).snapshot.requirements.errors
        assert [e.code for e in errors] == ["verification_failed_id_number_match"]
        action, fields, _ = holder.open_form(stack.start_url(acct))
        assert "individual.verification.document" in fields
        assert landed(holder.follow(holder.submit(action, fields))) == "verified"
    finally:
        stack.stop()


def test_prefilled_account_is_asked_fewer_fields(stack: Stack, holder: Holder) -> None:
    acct = stack.create(prefill={"business_profile": {"url": "https://accessible.stripe.com"}})
    _, fields, _ = holder.open_form(stack.start_url(acct))
    assert "business_profile.url" not in fields and "business_profile.mcc" in fields


def test_future_deadline_passes_without_webhook(stack: Stack, holder: Holder) -> None:
    acct = stack.create()
    holder.onboard(stack.start_url(acct))
    stack.sim.add_future_requirements(acct, ["individual.id_number"], stack.clock.now() + timedelta(days=30))
    stack.settle()
    assert stack.state(acct) == "verified"
    stack.clock.advance(timedelta(days=30, seconds=1))
    fired = stack.engine.check_deadlines()
    assert [(t.to_state, t.source) for t in fired] == [(State.PAST_DUE, Source.SCHEDULER)]
    assert landed(holder.onboard(stack.start_url(acct))) == "verified"


def test_rejection_and_deauthorization_arrive_as_webhooks(stack: Stack, holder: Holder) -> None:
    rejected, gone = stack.create("r"), stack.create("g", type="standard")
    holder.onboard(stack.start_url(rejected))
    holder.onboard(stack.start_url(gone))
    stack.sim.reject(rejected, "fraud")
    stack.sim.deauthorize(gone)
    stack.settle()
    assert stack.state(rejected) == "disabled" and stack.state(gone) == "disabled"
    assert stack.engine.get_account(gone).deauthorized
    page = holder.get(stack.start_url(rejected))
    assert page.status_code == 409


def test_account_update_links(stack: Stack, holder: Holder) -> None:
    express = stack.create("x", type="express")
    with pytest.raises(LinkNotAllowed):
        stack.engine.issue_link(express, type="account_update")
    custom = stack.create("c", type="custom")
    holder.onboard(stack.start_url(custom))
    link = stack.engine.issue_link(custom, type="account_update")
    assert link.url.startswith(stack.simulated.url)


def test_duplicated_reordered_split_deliveries_over_http(stack: Stack, holder: Holder) -> None:
    stack.sim.delivery.duplicate_rate = 0.5
    stack.sim.delivery.split_rate = 0.5
    stack.sim.delivery.reorder = True
    accounts = [stack.create(f"s{n}") for n in range(4)]
    for n, acct in enumerate(accounts):
        holder.onboard(stack.start_url(acct), finish=n % 2 == 0)
        stack.clock.advance(2)
    stack.sim.reject(accounts[0])
    stack.settle()
    assert [stack.state(a) for a in accounts] == ["disabled", "returned_incomplete", "verified", "returned_incomplete"]
    outcomes = Counter(a.result for a in stack.sim.outbox.log)
    assert outcomes[200] == len(stack.sim.outbox.log)  # every delivery answered 2xx, duplicates included
    for acct in accounts:
        refs = Counter(t.source_ref for t in stack.engine.history(acct) if t.source_ref)
        assert max(refs.values(), default=1) == 1


def test_injected_faults_never_make_a_second_account(stack: Stack) -> None:
    stack.server.faults.add("status", status=429, times=2, method="POST", path_prefix="/v1/accounts")
    a = stack.create("rate-limited")
    assert stack.gateway.retried == 2
    stack.server.faults.add("status", status=500, times=1, method="POST", path_prefix="/v1/accounts")
    b = stack.create("server-error")  # the SDK retries it with the same idempotency key
    stack.server.faults.add("drop", times=1, method="POST", path_prefix="/v1/accounts")
    c = stack.create("dropped")  # executed, answer lost, retried: Stripe replays the first answer
    assert len({a, b, c}) == 3
    listed = stack.sim.list_accounts(limit=100).accounts
    assert sorted(s.platform_ref or "" for s in listed) == ["dropped", "rate-limited", "server-error"]
    assert stack.server.faults.seen == 4


def test_faults_on_webhook_delivery_are_retried_like_stripe(stack: Stack, holder: Holder) -> None:
    acct = stack.create()
    holder.onboard(stack.start_url(acct))
    stack.store.write = _broken(stack.store.write)  # type: ignore[method-assign]
    stack.sim.reject(acct)
    stack.settle()
    assert stack.state(acct) == "verified"
    assert any(a.error is not None for a in stack.sim.outbox.log)  # 503 from us: Stripe will retry
    stack.store.write = stack.store.write.__wrapped__  # type: ignore[attr-defined,method-assign]
    stack.settle()
    assert stack.state(acct) == "verified", "Stripe retries after a backoff, not at once"
    stack.clock.advance(timedelta(seconds=stack.sim.delivery.retry_base))  # the first retry comes due
    stack.settle()
    assert stack.state(acct) == "disabled"


def _broken(write):  # type: ignore[no-untyped-def]
    from onboarding_fsm.errors import StoreUnavailable

    def failing():  # type: ignore[no-untyped-def]
        raise StoreUnavailable("database restarting")

    failing.__wrapped__ = write  # type: ignore[attr-defined]
    return failing
