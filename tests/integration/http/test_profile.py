"""The "edit my profile" URL (issue 11, item 5) over real sockets, against
the HTTP simulator: an ``account_update`` link where Stripe allows one, an
onboarding link while something is owed, a refusal that says why otherwise;
authenticated like the start URL (a single-use token, then the session)."""

from __future__ import annotations

from html import unescape

import httpx
import pytest

from onboarding_fsm import State, Trigger
from tests.conftest import PLATFORM_COLLECTED
from tests.integration.http.conftest import Stack
from tests.integration.http.holder import Holder


@pytest.fixture
def db_url(any_db_url: str) -> str:
    return any_db_url


def profile_url(stack: Stack, account_id: str, holder: str = "holder") -> str:
    """What a platform sends its signed-in holder: the profile URL with a start token."""
    return f"{stack.settings.profile_url(account_id)}?token={stack.auth.token_for(account_id, holder)}"


def landed(response: httpx.Response) -> str:
    url = str(response.url)
    assert "/onboarding/done" in url, url
    return url.split("state=")[1].split("&")[0]


def triggers(stack: Stack, account_id: str) -> list[str]:
    return [t.trigger.value for t in stack.engine.history(account_id)]


def test_a_platform_collected_account_edits_its_details_through_an_update_link(stack: Stack, holder: Holder) -> None:
    acct = stack.create("custom", controller=PLATFORM_COLLECTED)
    assert landed(holder.onboard(stack.start_url(acct))) == "verified"
    before = len(stack.engine.history(acct))
    returning = Holder()  # days later, another browser: the platform hands out a profile URL with a token
    try:
        opened = returning.get(profile_url(stack, acct, "alice@example"))
        assert opened.status_code == 303 and opened.headers["cache-control"] == "no-store"
        assert opened.headers["location"].startswith(stack.simulated.url)
        assert stack.engine.get_account(acct).link.type.value == "account_update"  # type: ignore[union-attr]
        action, fields, form = returning.open_form(opened.headers["location"])
        assert "(account_update)" in form.text  # the form lists every field already provided, to edit
        assert {"business_profile.url", "external_account", "individual.first_name"} <= set(fields)
        back = returning.follow(returning.submit(action, {**fields, "business_profile.url": "https://shop.example"}))
        assert landed(back) == "verified"  # the return was authenticated by the session the profile URL set
        assert 'id="continue"' not in back.text and "id='continue'" not in back.text
        assert stack.sim.account_json(acct)["business_profile"]["url"] == "https://shop.example"
        history = stack.engine.history(acct)[before:]
        assert [(t.trigger, t.to_state) for t in history] == [
            (Trigger.ISSUE_LINK, State.LINK_ISSUED),
            (Trigger.RETURN, State.VERIFIED),
        ]
        assert history[0].reason.startswith("link=account_update/")
        assert [t.actor for t in history] == ["holder:alice@example"] * 2
        # the session cookie alone opens it again (no token): a new update link
        again = returning.get(stack.settings.profile_url(acct))
        assert again.status_code == 303 and again.headers["location"].startswith(stack.simulated.url)
    finally:
        returning.client.close()


def test_an_express_account_edits_its_details_in_its_stripe_dashboard(stack: Stack, holder: Holder) -> None:
    acct = stack.create("express", type="express")
    assert landed(holder.onboard(stack.start_url(acct))) == "verified"
    history, links = triggers(stack, acct), stack.sim.calls["create_account_link"]
    refused = holder.get(stack.settings.profile_url(acct))  # the session from onboarding
    assert refused.status_code == 409
    assert "Stripe Dashboard" in unescape(refused.text) and "onboarded" not in refused.text
    assert triggers(stack, acct) == history and stack.sim.calls["create_account_link"] == links
    assert stack.state(acct) == "verified"


def test_an_express_account_still_owing_gets_an_onboarding_link(stack: Stack, holder: Holder) -> None:
    never = stack.create("never-onboarded", type="express")
    opened = holder.get(profile_url(stack, never))
    assert opened.status_code == 303
    assert stack.engine.get_account(never).link.type.value == "account_onboarding"  # type: ignore[union-attr]
    action, fields, form = holder.open_form(opened.headers["location"])
    assert "(account_onboarding)" in form.text
    partial = {k: ("" if k not in ("business_type", "individual.first_name") and not k.startswith("_") else v)
               for k, v in fields.items()}  # fmt: skip
    assert landed(holder.follow(holder.submit(action, partial, finish=False))) == "returned_incomplete"
    saved = holder.get(stack.settings.profile_url(never))  # saved for later: the profile URL continues onboarding
    assert saved.status_code == 303
    action, fields, _ = holder.open_form(saved.headers["location"])
    assert landed(holder.follow(holder.submit(action, fields))) == "verified"
    assert stack.engine.get_account(never).link.type.value == "account_onboarding"  # type: ignore[union-attr]


def test_refusals_are_like_the_start_urls(stack: Stack, holder: Holder) -> None:
    acct = stack.create("custom", controller=PLATFORM_COLLECTED)
    stranger = httpx.Client(follow_redirects=False, timeout=30)
    try:
        assert stranger.get(stack.settings.profile_url(acct)).status_code == 401  # no token, no session
        assert stranger.head(profile_url(stack, acct)).status_code == 405  # a preview bot mints nothing
        used = stack.start_url(acct)
        assert holder.get(used).status_code == 303
        assert stranger.get(used.replace("/start?", "/profile?")).status_code == 401  # the start token was used
        stack.clock.advance(1)  # the token names the last issuance by its time: let the next one differ
        token = profile_url(stack, acct)
        assert holder.get(token).status_code == 303
        assert stranger.get(token).status_code == 401  # and a profile token works once too
        assert triggers(stack, acct) == ["create", "issue_link", "issue_link"]
        stack.sim.reject(acct, "fraud")
        stack.settle()
        assert stack.state(acct) == "disabled"
        before = triggers(stack, acct)
        refused = holder.get(stack.settings.profile_url(acct))
        assert refused.status_code == 409 and "cannot be used" in refused.text
        assert "Dashboard" not in refused.text and triggers(stack, acct) == before
    finally:
        stranger.close()
