"""How an account enters the engine: its birth record, and adopting orphans.

A creation intent is recorded before Stripe is asked. Stripe answers a
retried create with the same account only for 24 hours (the idempotency
window); a retry with an older intent first looks for the account Stripe may
have made (our platform reference is in its metadata), so a crash between
Stripe's answer and our commit never makes a second account.

Every chain starts with a ``create`` record in ``created``, so the audit
trail covers the account's whole life. If Stripe's first answer is already
decisive (rejected at once, say), a ``sync`` follows in the same
transaction: the birth record says what the platform did, the sync what
Stripe said.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .account import Account, CreationIntent, NewAccount
from .audit import GENESIS, Cause, Transition, requirement_delta, seal
from .classify import classify, sync_target
from .config import EngineConfig
from .deadlines import derive_timers
from .errors import InvalidInput
from .moves import Change, classified
from .snapshot import PLATFORM_REF_KEY, AccountSnapshot
from .states import State, Trigger
from .timers import Timer

#: Stripe keeps an idempotency key's answer for 24 hours; an intent older than
#: this may have been forgotten, so Stripe is searched before creating again
SEARCH_AFTER = timedelta(hours=23)
#: how much earlier than our intent Stripe's ``created`` may read (clock skew)
SEARCH_SLACK = timedelta(minutes=10)


def intent(platform_ref: str, now: datetime) -> CreationIntent:
    return CreationIntent(platform_ref, idempotency_key(platform_ref), now)


def must_search(prior: CreationIntent | None, now: datetime) -> bool:
    """An earlier attempt may have created the account, and Stripe may no
    longer answer its key with it: look before creating."""
    return prior is not None and now - prior.requested_at >= SEARCH_AFTER


def search_from(prior: CreationIntent) -> datetime:
    return prior.requested_at - SEARCH_SLACK


def ours(snapshots: Iterable[AccountSnapshot], platform_ref: str) -> AccountSnapshot | None:
    """The account Stripe holds for ``platform_ref`` (our metadata), if any."""
    return next((s for s in snapshots if s.platform_ref == platform_ref and not s.deleted), None)


def idempotency_key(platform_ref: str) -> str:
    """The Stripe idempotency key for creating ``platform_ref``'s account:
    a retry after a crash between Stripe's answer and our commit gets the
    same account back instead of a second one."""
    return "onboarding-fsm-create-" + hashlib.sha256(platform_ref.encode("utf-8")).hexdigest()[:48]


@dataclass(frozen=True, slots=True)
class Birth:
    account: Account
    record: Transition
    timers: tuple[Timer, ...]
    #: Stripe's first answer moved it at once (e.g. rejected)
    then: Change | None = None
    #: Stripe enum values ``classify`` did not know (to be logged)
    unknown: tuple[str, ...] = ()

    @property
    def final(self) -> Account:
        return self.then.after if self.then is not None else self.account

    @property
    def records(self) -> tuple[Transition, ...]:
        if self.then is not None and self.then.transition is not None:
            return (self.record, self.then.transition)
        return (self.record,)


def birth(new: NewAccount, snapshot: AccountSnapshot, cause: Cause, now: datetime, config: EngineConfig) -> Birth:
    """The new account row, its birth record and timers, and the sync that
    follows when Stripe already said something decisive."""
    result = classify(snapshot, config.policy, now=now)
    held = sync_target(State.CREATED, result.state, detached=False) is State.CREATED
    reason = result.reason if held else "created"
    record = seal(
        account_id=snapshot.id,
        seq=1,
        prev_hash=GENESIS,
        from_state=None,
        to_state=State.CREATED,
        trigger=Trigger.CREATE,
        cause=cause,
        reason=reason,
        delta=requirement_delta(None, snapshot.requirements),
        at=now,
    )
    account = Account(
        stripe_account_id=snapshot.id,
        platform_ref=new.platform_ref,
        state=State.CREATED,
        reason=reason,
        version=1,
        snapshot=snapshot,
        requested_capabilities=new.capabilities,
        created_at=now,
        updated_at=now,
        synced_at=now,
        state_since=now,
        # not stamped as a fetch: the answer may be an idempotent replay of an
        # older one, and an event Stripe sent meanwhile must not look stale
        fetched_at=None,
        livemode=config.livemode,
        audit_seq=1,
        audit_head=record.hash,
    )
    timers = derive_timers(account, config)
    then = classified(account, snapshot, Trigger.SYNC, cause, now, config.policy)
    return Birth(account, record, timers, then if then.transition is not None else None, result.unknown)


def adoption(snapshot: AccountSnapshot) -> NewAccount:
    """What the platform must have asked for, for a Stripe account tagged
    with our reference that has no local row (our commit never happened)."""
    if not snapshot.platform_ref:
        raise InvalidInput(f"{snapshot.id} carries no {PLATFORM_REF_KEY} metadata; it is not ours to adopt")
    return NewAccount(
        platform_ref=snapshot.platform_ref,
        country=snapshot.country or "",
        capabilities=tuple(name for name, _ in snapshot.capabilities),
    )
