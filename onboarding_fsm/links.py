"""Who may get which Account Link, with which parameters.

Pure rules, checked before Stripe is called: the trigger must have an edge
from the account's state; ``account_update`` links only for accounts whose
platform collects requirements and that have no Stripe-hosted dashboard
(Stripe refuses the others); live mode only with HTTPS return URLs. A refresh
mints a link with the last link's parameters.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from . import inputs
from .account import Account, FutureRequirements, LinkFields, LinkParams, LinkRequest, LinkType
from .audit import Cause
from .config import EngineConfig
from .errors import InsecureUrl, LinkNotAllowed, ProfileNotEditable, TriggerNotAllowed
from .machine import allowed
from .moves import Change, move
from .states import State, Trigger


def params(
    config: EngineConfig,
    type: LinkType | str = LinkType.ACCOUNT_ONBOARDING,
    fields: LinkFields | str | None = None,
    future_requirements: FutureRequirements | str | None = None,
) -> LinkParams:
    """The caller's parameters, defaults from the policy and settings."""
    return LinkParams(
        type=inputs.member(LinkType, type, "type"),
        fields=inputs.member(LinkFields, fields or config.policy.collection.link_fields, "fields"),
        future_requirements=inputs.member(
            FutureRequirements, future_requirements or config.future_requirements, "future_requirements"
        ),
    )


#: states in which the holder still owes Stripe something onboarding collects
OWING = frozenset({State.CREATED, State.LINK_ISSUED, State.RETURNED_INCOMPLETE, State.PAST_DUE})


def profile(account: Account, config: EngineConfig) -> LinkParams:
    """The link behind "edit my profile".

    While something is owed, an ``account_onboarding`` link (Stripe's guide
    collects outstanding requirements with it); else an ``account_update``
    link where Stripe allows one (the platform collects requirements, no
    Stripe-hosted dashboard) and the holder submitted their details once;
    else a refusal saying where such a holder edits their details.
    """
    snapshot = account.snapshot
    if account.detached or account.state is State.DISABLED:
        message = f"account {account.stripe_account_id} is disabled: there is no profile to edit"
        raise ProfileNotEditable(message, "disabled")
    if account.state in OWING:
        return params(config)
    if snapshot.platform_collects_requirements and not snapshot.has_stripe_dashboard and snapshot.details_submitted:
        return params(config, LinkType.ACCOUNT_UPDATE)
    if snapshot.has_stripe_dashboard:
        where, there = "dashboard", "in their Stripe Dashboard"
    else:
        where = "embedded"
        there = "through Stripe's embedded account management component (the account has no Stripe-hosted dashboard)"
    raise ProfileNotEditable(
        f"account {account.stripe_account_id}: Stripe collects its requirements, so Stripe allows no "
        f"account_update link for it; its holder edits their details {there}",
        where,
    )


def refresh(account: Account) -> tuple[LinkParams, Trigger]:
    """The refresh_url's link: the last link's parameters; a ``refresh`` while
    the holder is in the flow, a new ``issue_link`` once they have left it."""
    if account.link is None:
        raise LinkNotAllowed(f"no link was ever issued for {account.stripe_account_id}; call issue_link first")
    trigger = Trigger.REFRESH if account.state is State.LINK_ISSUED else Trigger.ISSUE_LINK
    return account.link, trigger


def request(account: Account, link: LinkParams, trigger: Trigger, config: EngineConfig) -> LinkRequest:
    """What to ask Stripe for, or the typed refusal Stripe would give."""
    if not allowed(account.state, trigger):
        raise TriggerNotAllowed(account.stripe_account_id, account.state.value, trigger.value)
    snapshot = account.snapshot
    if link.type is LinkType.ACCOUNT_UPDATE and not (
        snapshot.platform_collects_requirements and not snapshot.has_stripe_dashboard
    ):
        raise LinkNotAllowed(
            "account_update links need an account whose platform collects requirements "
            "and which has no Stripe-hosted dashboard; use account_onboarding"
        )
    wanted = LinkRequest(
        account_id=account.stripe_account_id,
        params=link,
        refresh_url=config.links.refresh_url(account.stripe_account_id),
        return_url=config.links.return_url(account.stripe_account_id),
    )
    if config.livemode and not all(url.startswith("https://") for url in (wanted.refresh_url, wanted.return_url)):
        raise InsecureUrl("live mode needs https refresh and return URLs")
    return wanted


class Unchecked(Enum):
    """No expectation about the account's last link (the usual case)."""

    UNCHECKED = "unchecked"


UNCHECKED = Unchecked.UNCHECKED


def issued(
    account: Account,
    link: LinkParams,
    trigger: Trigger,
    cause: Cause,
    now: datetime,
    expires_at: datetime,
    *,
    last_issued: datetime | Unchecked | None = UNCHECKED,
) -> Change:
    """The account once Stripe minted the link: ``link_issued``, with the
    link's parameters and expiry (never its URL: it is a bearer credential).

    ``last_issued``: the link issuance the caller's authority was granted
    for (a single-use start token names it). If another link was issued
    since, this one is refused: checked in the transaction that records the
    link, so two concurrent uses of one token cannot both succeed."""
    if last_issued is not UNCHECKED and account.link_issued_at != last_issued:
        raise LinkNotAllowed(
            f"account {account.stripe_account_id}: this start was already used (a link was issued since)"
        )
    reason = f"link={link.type.value}/{link.fields.value}/future={link.future_requirements.value}"
    return move(
        account,
        trigger,
        State.LINK_ISSUED,
        reason,
        cause,
        now,
        link=link,
        link_issued_at=now,
        link_expires_at=expires_at,
    )
