"""The one way an account changes, as a value: ``Change``.

Every decision module (webhooks, deadlines, links, creation) ends in
``move``: the shared machine checks the edge, the audit record is sealed onto
the account's hash chain, the version is bumped. Nothing here writes, logs or
reads a clock; the service layer saves the ``Change`` in one transaction and
reports it after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from .account import Account
from .audit import Cause, Transition, requirement_delta, seal
from .classify import classify, sync_target
from .machine import fire
from .policy import Policy
from .snapshot import AccountSnapshot
from .states import State, Trigger


@dataclass(frozen=True, slots=True)
class Change:
    """An account before and after one trigger, with the audit record to write.

    ``transition`` is None for a quiet sync (same state, same reason, no
    requirement delta): the row still changes (snapshot, watermark, version)
    but there is nothing worth an audit record.
    """

    before: Account
    after: Account
    transition: Transition | None
    #: Stripe enum values ``classify`` did not know (to be logged)
    unknown: tuple[str, ...] = ()


def move(
    account: Account,
    trigger: Trigger,
    target: State,
    reason: str,
    cause: Cause,
    now: datetime,
    **changes: Any,
) -> Change:
    """Validate the edge, seal the audit record (unless nothing worth
    recording changed), bump the version. ``changes`` are further fields of
    the new ``Account`` (snapshot, link, watermark…)."""
    fire(account.stripe_account_id, account.state, trigger, target)
    snapshot: AccountSnapshot = changes.get("snapshot", account.snapshot)
    delta = requirement_delta(account.snapshot.requirements, snapshot.requirements)
    quiet = trigger is Trigger.SYNC and target is account.state and reason == account.reason and not delta
    transition = None
    if not quiet:
        transition = seal(
            account_id=account.stripe_account_id,
            seq=account.audit_seq + 1,
            prev_hash=account.audit_head,
            from_state=account.state,
            to_state=target,
            trigger=trigger,
            cause=cause,
            reason=reason,
            delta=delta,
            at=now,
        )
        changes.update(audit_seq=transition.seq, audit_head=transition.hash)
    if target is not account.state:
        changes.setdefault("state_since", now)
    after = replace(account, state=target, reason=reason, version=account.version + 1, updated_at=now, **changes)
    return Change(account, after, transition)


def classified(
    account: Account,
    snapshot: AccountSnapshot,
    trigger: Trigger,
    cause: Cause,
    now: datetime,
    policy: Policy,
    **changes: Any,
) -> Change:
    """Move to where ``snapshot`` classifies (``return``) or may take the account (``sync``)."""
    result = classify(snapshot, policy, now=now, before=account.snapshot)
    changes.setdefault("inaccessible_since", None)  # Stripe answered about it: accessible
    target = (
        result.state
        if trigger is Trigger.RETURN
        else sync_target(account.state, result.state, detached=account.detached)
    )
    change = move(account, trigger, target, result.reason, cause, now, snapshot=snapshot, **changes)
    return replace(change, unknown=result.unknown)


def fetched(
    account: Account,
    snapshot: AccountSnapshot,
    cause: Cause,
    now: datetime,
    policy: Policy,
    *,
    returning: bool,
    covers: datetime | None = None,
) -> Change | None:
    """Apply a snapshot fetched from Stripe just now.

    It is the freshest state there is, so it applies whatever the watermark
    says. It stamps ``fetched_at`` (our clock) and leaves the watermark — a
    Stripe time — alone, unless the fetch answered an event (``covers``, its
    ``created``): that event and older ones are then accounted for. Events
    are compared with ``fetched_at`` only within the clock-skew tolerance
    (``webhooks.decide``). None for a detached account, which no sync moves
    any more.
    """
    if account.detached:
        return None
    trigger = Trigger.RETURN if returning and account.state is State.LINK_ISSUED else Trigger.SYNC
    watermark = account.watermark
    if covers is not None and (watermark is None or covers > watermark):
        watermark = covers
    return classified(
        account, snapshot, trigger, cause, now, policy, watermark=watermark, synced_at=now, fetched_at=now
    )


def inaccessible(account: Account, now: datetime) -> Change | None:
    """Remember the first time reconciliation could not see the account (no
    state change, no audit record: one 403 is not yet a fact); None if known."""
    if account.detached or account.inaccessible_since is not None:
        return None
    after = replace(account, inaccessible_since=now, version=account.version + 1, updated_at=now)
    return Change(account, after, None)


def restore(account: Account, snapshot: AccountSnapshot, cause: Cause, now: datetime, policy: Policy) -> Change | None:
    """A detached account Stripe shows this platform again: back to where the
    snapshot classifies, through an audited ``restore``. None if not detached
    or deleted at Stripe."""
    if not account.detached or snapshot.deleted:
        return None
    result = classify(snapshot, policy, now=now, before=account.snapshot)
    change = move(
        account, Trigger.RESTORE, result.state, f"restored: {result.reason}", cause, now,
        snapshot=snapshot, deauthorized=False, inaccessible_since=None, synced_at=now, fetched_at=now,
    )  # fmt: skip
    return replace(change, unknown=result.unknown)


def detach(account: Account, reason: str, cause: Cause, now: datetime) -> Change | None:
    """Disable for good: deauthorized, or lost without a webhook saying so."""
    if account.detached:
        return None
    return move(account, Trigger.DEAUTHORIZE, State.DISABLED, reason, cause, now, deauthorized=True)
