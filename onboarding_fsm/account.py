"""Values the engine hands out and persists: accounts, link parameters, links."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .snapshot import AccountSnapshot
from .states import State


class LinkType(StrEnum):
    ACCOUNT_ONBOARDING = "account_onboarding"
    ACCOUNT_UPDATE = "account_update"


class LinkFields(StrEnum):
    CURRENTLY_DUE = "currently_due"
    EVENTUALLY_DUE = "eventually_due"


class FutureRequirements(StrEnum):
    OMIT = "omit"
    INCLUDE = "include"


@dataclass(frozen=True, slots=True)
class LinkParams:
    """What a link asks for; persisted so ``refresh_link`` can mint the same one."""

    type: LinkType = LinkType.ACCOUNT_ONBOARDING
    fields: LinkFields = LinkFields.CURRENTLY_DUE
    future_requirements: FutureRequirements = FutureRequirements.OMIT

    def to_dict(self) -> dict[str, str]:
        return {
            "type": self.type.value,
            "fields": self.fields.value,
            "future_requirements": self.future_requirements.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinkParams:
        return cls(
            type=LinkType(data["type"]),
            fields=LinkFields(data["fields"]),
            future_requirements=FutureRequirements(data["future_requirements"]),
        )


@dataclass(frozen=True, slots=True)
class LinkRequest:
    account_id: str
    params: LinkParams
    refresh_url: str
    return_url: str


@dataclass(frozen=True, slots=True)
class Link:
    """A minted Account Link. The URL is a bearer credential to the holder's
    personal data: it is returned to the caller once and never persisted or
    logged (hence ``repr=False``)."""

    url: str = field(repr=False)
    created_at: datetime
    expires_at: datetime
    params: LinkParams = field(default_factory=LinkParams)
    #: Stripe's ``Request-Id`` of the call that minted it
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewAccount:
    """What ``create_account`` sends to Stripe. ``prefill`` may hold identity
    data; it goes to Stripe and nowhere else (``repr=False``)."""

    platform_ref: str
    #: None: Stripe defaults it to the platform's country and the holder may
    #: choose another in the hosted form (only without capabilities requested)
    country: str | None
    capabilities: tuple[str, ...] = ()
    controller: Mapping[str, Any] | None = None
    type: str | None = None
    business_type: str | None = None
    prefill: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class AccountPage:
    accounts: tuple[AccountSnapshot, ...]
    has_more: bool


def every_account(page_after: Callable[[str | None], AccountPage]) -> Iterator[AccountSnapshot]:
    """Every account of a Stripe listing, following its cursor page by page
    (``page_after(None)`` is the first page)."""
    cursor: str | None = None
    while True:
        page = page_after(cursor)
        yield from page.accounts
        if not page.has_more or not page.accounts:
            return
        cursor = page.accounts[-1].id


@dataclass(frozen=True, slots=True)
class Account:
    """One connected account as the engine knows it."""

    stripe_account_id: str
    platform_ref: str
    state: State
    reason: str
    version: int
    snapshot: AccountSnapshot
    requested_capabilities: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    synced_at: datetime
    #: Stripe time (an event's ``created``) of the newest event applied; older ones are stale
    watermark: datetime | None = None
    #: our time of the newest snapshot we fetched ourselves; never compared
    #: with Stripe times except within the configured clock-skew tolerance
    fetched_at: datetime | None = None
    #: the engine's mode when the account was born (Stripe's Account has no such field)
    livemode: bool = False
    #: when reconciliation first found it inaccessible (403/404); it is detached
    #: only if still so after ``reconcile_confirm_after``; any fetch clears it
    inaccessible_since: datetime | None = None
    #: when it entered its current state (None: before 0.4 recorded it)
    state_since: datetime | None = None
    deauthorized: bool = False
    link: LinkParams | None = None
    link_issued_at: datetime | None = None
    link_expires_at: datetime | None = None
    audit_seq: int = 0
    audit_head: str = ""

    @property
    def detached(self) -> bool:
        """Deauthorized or deleted: disabled for good, later syncs never move it."""
        return self.deauthorized or self.snapshot.deleted


@dataclass(frozen=True, slots=True)
class CreationIntent:
    """Recorded before Stripe is asked to create ``platform_ref``'s account,
    and deleted with the insert of the account: an intent that outlives
    Stripe's idempotency window means "look before creating again"."""

    platform_ref: str
    idempotency_key: str
    requested_at: datetime
