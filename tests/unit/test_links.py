"""Who may get which Account Link, with which parameters: ``links`` as tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from onboarding_fsm import links
from onboarding_fsm.account import FutureRequirements, LinkFields, LinkParams, LinkType
from onboarding_fsm.audit import Cause
from onboarding_fsm.config import EngineConfig, LinkUrls
from onboarding_fsm.errors import InsecureUrl, InvalidInput, LinkNotAllowed, TriggerNotAllowed
from onboarding_fsm.policy import Collection, Policy
from onboarding_fsm.snapshot import Controller
from onboarding_fsm.states import Source, State, Trigger

from .values import CONFIG, DONE, FRESH, ID, T0, account, linked

UPFRONT = EngineConfig(policy=Policy(Collection.UPFRONT), future_requirements=FutureRequirements.INCLUDE)


@pytest.mark.parametrize(
    ("config", "given", "expected"),
    [
        (CONFIG, {}, LinkParams(LinkType.ACCOUNT_ONBOARDING, LinkFields.CURRENTLY_DUE, FutureRequirements.OMIT)),
        (UPFRONT, {}, LinkParams(LinkType.ACCOUNT_ONBOARDING, LinkFields.EVENTUALLY_DUE, FutureRequirements.INCLUDE)),
        (UPFRONT, {"fields": "currently_due", "future_requirements": "omit"}, LinkParams()),
        (CONFIG, {"type": "account_update"}, LinkParams(type=LinkType.ACCOUNT_UPDATE)),
    ],
    ids=["incremental defaults", "upfront defaults", "caller overrides", "update"],
)
def test_parameters_default_from_the_policy(config: EngineConfig, given: dict[str, str], expected: LinkParams) -> None:
    assert links.params(config, **given) == expected


@pytest.mark.parametrize("bad", [{"type": "account_mutation"}, {"fields": "all"}, {"future_requirements": "maybe"}])
def test_unknown_parameters_are_invalid_input(bad: dict[str, str]) -> None:
    with pytest.raises(InvalidInput, match=next(iter(bad))):
        links.params(CONFIG, **bad)


def collecting(requirement_collection: str | None, dashboard: str | None, legacy: str | None = None) -> Any:
    controller = Controller(requirement_collection=requirement_collection, stripe_dashboard=dashboard)
    return account(State.VERIFIED, replace(DONE, controller=controller, type=legacy))


# Stripe: account_update only where the platform collects requirements and there is no Stripe dashboard
UPDATE_ELIGIBLE = [
    ("platform collects, no dashboard", collecting("application", "none"), True),
    ("platform collects, express dashboard", collecting("application", "express"), False),
    ("Stripe collects, full dashboard", collecting("stripe", "full"), False),
    ("Stripe collects, no dashboard", collecting("stripe", "none"), False),
    ("legacy custom", collecting(None, None, "custom"), True),
    ("legacy express", collecting(None, None, "express"), False),
    ("legacy standard", collecting(None, None, "standard"), False),
]


@pytest.mark.parametrize(("acct", "eligible"), [r[1:] for r in UPDATE_ELIGIBLE], ids=[r[0] for r in UPDATE_ELIGIBLE])
def test_account_update_links(acct: Any, eligible: bool) -> None:
    update = LinkParams(type=LinkType.ACCOUNT_UPDATE)
    if eligible:
        assert links.request(acct, update, Trigger.ISSUE_LINK, CONFIG).params == update
    else:
        with pytest.raises(LinkNotAllowed):
            links.request(acct, update, Trigger.ISSUE_LINK, CONFIG)
    assert links.request(acct, LinkParams(), Trigger.ISSUE_LINK, CONFIG).params == LinkParams()  # onboarding: always


@pytest.mark.parametrize(
    ("state", "trigger", "allowed"),
    [
        (State.CREATED, Trigger.ISSUE_LINK, True),
        (State.PAST_DUE, Trigger.ISSUE_LINK, True),
        (State.DISABLED, Trigger.ISSUE_LINK, False),
        (State.LINK_ISSUED, Trigger.REFRESH, True),
        (State.VERIFIED, Trigger.REFRESH, False),
    ],
)
def test_the_trigger_must_have_an_edge(state: State, trigger: Trigger, allowed: bool) -> None:
    acct = account(state)
    if allowed:
        assert links.request(acct, LinkParams(), trigger, CONFIG).account_id == ID
    else:
        with pytest.raises(TriggerNotAllowed):
            links.request(acct, LinkParams(), trigger, CONFIG)


def test_the_request_carries_the_return_urls() -> None:
    config = EngineConfig(links=LinkUrls("https://p.example/r/{account}", "https://p.example/b/{account}"))
    wanted = links.request(account(), LinkParams(), Trigger.ISSUE_LINK, config)
    assert (wanted.refresh_url, wanted.return_url) == (f"https://p.example/r/{ID}", f"https://p.example/b/{ID}")


def test_live_mode_needs_https() -> None:
    with pytest.raises(InsecureUrl):
        links.request(account(), LinkParams(), Trigger.ISSUE_LINK, replace(CONFIG, livemode=True))
    https = EngineConfig(
        livemode=True, links=LinkUrls("https://p.example/r/{account}", "https://p.example/b/{account}")
    )
    assert links.request(account(), LinkParams(), Trigger.ISSUE_LINK, https)


@pytest.mark.parametrize(
    ("acct", "trigger"),
    [
        (linked(), Trigger.REFRESH),
        (linked(State.RETURNED_INCOMPLETE), Trigger.ISSUE_LINK),
        (linked(State.VERIFIED), Trigger.ISSUE_LINK),
    ],
    ids=["holder in the flow", "holder left", "verified since"],
)
def test_a_refresh_reuses_the_last_parameters(acct: Any, trigger: Trigger) -> None:
    acct = replace(acct, link=LinkParams(fields=LinkFields.EVENTUALLY_DUE))
    assert links.refresh(acct) == (LinkParams(fields=LinkFields.EVENTUALLY_DUE), trigger)


def test_no_refresh_before_a_first_link() -> None:
    with pytest.raises(LinkNotAllowed):
        links.refresh(account())


def test_an_issued_link_records_its_parameters_and_expiry() -> None:
    params = LinkParams(fields=LinkFields.EVENTUALLY_DUE, future_requirements=FutureRequirements.INCLUDE)
    now, expires = T0 + timedelta(hours=1), T0 + timedelta(hours=1, minutes=5)
    before = account(State.CREATED, FRESH)
    change = links.issued(before, params, Trigger.ISSUE_LINK, Cause(Source.API, actor="ops"), now, expires)
    after = change.after
    assert (after.state, after.link, after.link_issued_at, after.link_expires_at) == (
        State.LINK_ISSUED,
        params,
        now,
        expires,
    )
    assert after.reason == "link=account_onboarding/eventually_due/future=include"
    t = change.transition
    assert t is not None and (t.from_state, t.to_state, t.actor, t.at) == (State.CREATED, State.LINK_ISSUED, "ops", now)
    assert (t.seq, t.prev_hash, after.audit_head) == (2, before.audit_head, t.hash)


def test_a_once_only_link_is_refused_if_another_was_issued_since() -> None:
    """A start token names the link issuance it was granted for; two uses of it
    racing each other: the second finds the first's link and is refused."""
    cause = Cause(Source.API)
    fresh = account(State.CREATED)
    first = links.issued(
        fresh, LinkParams(), Trigger.ISSUE_LINK, cause, T0, T0 + timedelta(minutes=5), last_issued=None
    )
    racing = first.after  # the second use's transaction sees the first one's link
    with pytest.raises(LinkNotAllowed, match="already used"):
        links.issued(racing, LinkParams(), Trigger.ISSUE_LINK, cause, T0, T0 + timedelta(minutes=5), last_issued=None)
    again = links.issued(racing, LinkParams(), Trigger.ISSUE_LINK, cause, T0, T0, last_issued=T0)  # the new token
    assert again.after.link_issued_at == T0
    unchecked = links.issued(racing, LinkParams(), Trigger.ISSUE_LINK, cause, T0, T0)  # the platform's own API call
    assert unchecked.after.state is State.LINK_ISSUED
