"""What one verified webhook event does to the account it names.

``decide`` is a pure function of the event, the snapshot it carries, the
account as stored and the config. It answers:

* ``Apply``: move the account (a ``sync`` or ``deauthorize``) and record the
  event as ``applied``, in one transaction;
* ``Record``: only record the event (``ignored`` or ``stale``), with why;
* ``Refetch``: the event's snapshot ties the account's watermark (Stripe's
  ``created`` is whole seconds) but says something else: ask Stripe which
  is current rather than let delivery order decide.

Watermarks compare Stripe times with Stripe times: an event older than the
newest event applied is stale, whatever order deliveries arrive in. A
snapshot we fetched ourselves carries our clock's time, which may be a few
seconds off Stripe's: an event within ``clock_skew_tolerance`` of it is
neither newer nor older, so Stripe is asked again (``Refetch``) when the
two disagree; only an event clearly older than the fetch is stale.

An event for an account we do not know, whose metadata carries a platform
reference we are creating right now (an open creation intent), raced our own
create: ``Retry``, recorded nowhere, so Stripe's redelivery applies it once
the account exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from .account import Account
from .audit import Cause, Transition
from .config import EngineConfig
from .errors import MalformedEvent, MalformedPayload, TimestampOutOfTolerance
from .events import ACCOUNT_UPDATED, CAPABILITY_UPDATED, DEAUTHORIZED, Event, InboxEntry, Outcome, parse_event
from .moves import Change, classified, move
from .redact import strip_event
from .snapshot import AccountSnapshot, parse_account
from .states import Source, State, Trigger

USED = (ACCOUNT_UPDATED, CAPABILITY_UPDATED, DEAUTHORIZED)
REFETCHED = "snapshot tied the watermark; re-fetched"


@dataclass(frozen=True, slots=True)
class Apply:
    change: Change


@dataclass(frozen=True, slots=True)
class Record:
    outcome: Outcome
    detail: str


@dataclass(frozen=True, slots=True)
class Refetch:
    """Ask Stripe for the account; apply its answer with the event recorded."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Record nothing and answer "retry": the account is ours but its create
    has not committed yet; Stripe's redelivery will find it."""

    detail: str


WebhookDecision = Apply | Record | Refetch | Retry


def check_timestamp(signed_at: int, now: datetime, tolerance: timedelta) -> None:
    """Refuse a signature timestamp too far in the past (a replay) or in the
    future (the SDK's own check lets those through)."""
    skew = now.timestamp() - signed_at
    limit = tolerance.total_seconds()
    if skew > limit:
        raise TimestampOutOfTolerance(f"signature timestamp is {skew:.0f} s old (tolerance {limit:.0f} s)")
    if skew < -limit:
        raise TimestampOutOfTolerance(f"signature timestamp is {-skew:.0f} s in the future (tolerance {limit:.0f} s)")


def read(body: bytes) -> tuple[Event, AccountSnapshot | None]:
    """The event, and the account snapshot an ``account.updated`` carries;
    ``MalformedEvent`` for anything not shaped as Stripe documents it."""
    event = parse_event(body)
    try:
        snapshot = parse_account(event.object) if event.type == ACCOUNT_UPDATED else None
        if event.type == CAPABILITY_UPDATED:
            capability_status(event.object)
    except MalformedPayload as exc:
        raise MalformedEvent(f"event {event.id}: {exc}") from None
    return event, snapshot


def cause_of(event: Event) -> Cause:
    return Cause(Source.WEBHOOK, event.id, "stripe", event.created)


def decide(
    event: Event,
    payload: AccountSnapshot | None,
    account: Account | None,
    now: datetime,
    config: EngineConfig,
    *,
    creating: bool = False,
) -> WebhookDecision:
    """``creating``: a creation intent is open for the platform reference in
    the payload's metadata (our create of it has not committed). Only then is
    an unknown account answered "retry": anything else (another environment,
    a restored database, an orphan for reconcile to adopt) would make Stripe
    retry for days."""
    if event.type not in USED:
        return Record(Outcome.IGNORED, f"event type {event.type} is not used by onboarding")
    if event.livemode != config.livemode:
        return Record(Outcome.IGNORED, f"livemode={event.livemode} event on a livemode={config.livemode} engine")
    if account is None:
        if creating and payload is not None and payload.platform_ref:
            return Retry(f"account {event.account_id} of {payload.platform_ref!r} is not committed yet")
        return Record(Outcome.IGNORED, f"unknown account {event.account_id}")
    if event.type == DEAUTHORIZED:
        if account.deauthorized:
            return Record(Outcome.IGNORED, "account already deauthorized")
        return Apply(
            move(account, Trigger.DEAUTHORIZE, State.DISABLED, "deauthorized", cause_of(event), now, deauthorized=True)
        )
    if account.detached:
        return Record(Outcome.IGNORED, "account is deauthorized or deleted; recorded only")
    if payload is not None and payload.id != account.stripe_account_id:
        return Record(Outcome.IGNORED, f"data.object is {payload.id}, not event.account")
    snapshot = payload if payload is not None else with_capability(account.snapshot, event.object)
    watermark = account.watermark
    if watermark is not None and event.created < watermark:
        return Record(Outcome.STALE, f"snapshot from {event.created.isoformat()} is older than {watermark.isoformat()}")
    if watermark is not None and event.created == watermark and snapshot != account.snapshot:
        return Refetch()
    fetched = account.fetched_at
    if fetched is not None and event.created <= fetched + config.clock_skew_tolerance:
        # our fetch and this event are two clocks apart: only a clear gap decides
        if event.created + timedelta(seconds=1) <= fetched - config.clock_skew_tolerance:
            return Record(Outcome.STALE, f"snapshot from {event.created.isoformat()} is older than our fetch")
        if snapshot != account.snapshot:
            return Refetch()
    change = classified(
        account, snapshot, Trigger.SYNC, cause_of(event), now, config.policy, watermark=event.created, synced_at=now
    )
    return Apply(change)


def inbox_entry(
    event: Event, now: datetime, outcome: Outcome, detail: str | None, caused: Transition | None = None
) -> InboxEntry:
    """The inbox row: the event with identity data stripped (an allow-list),
    and the audit record it caused (for the inbox cross-check)."""
    return InboxEntry(
        event_id=event.id,
        type=event.type,
        account_id=event.account_id,
        created=event.created,
        livemode=event.livemode,
        received_at=now,
        outcome=outcome,
        detail=detail,
        payload=strip_event(event.raw),
        transition_seq=caused.seq if caused is not None else None,
    )


def capability_status(capability: Mapping[str, Any]) -> tuple[str, str]:
    name, status = capability.get("id"), capability.get("status")
    if (
        capability.get("object", "capability") != "capability"
        or not isinstance(name, str)
        or not isinstance(status, str)
    ):
        raise MalformedPayload("capability.updated needs data.object with string id and status")
    return name, status


def with_capability(snapshot: AccountSnapshot, capability: Mapping[str, Any]) -> AccountSnapshot:
    """The stored snapshot with one capability's status replaced."""
    name, status = capability_status(capability)
    merged = dict(snapshot.capabilities)
    merged[name] = status
    return replace(snapshot, capabilities=tuple(sorted(merged.items())))
