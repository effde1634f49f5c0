"""Webhook events: the few fields the engine reads, and what it made of them.

The raw body is parsed with ``json.loads`` once, after the signature check;
no SDK objects are built on this path (``construct_event`` spends ~1.5 ms of
~2 ms per event building them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from . import bounds
from .audit import Transition
from .errors import MalformedEvent, MalformedPayload

ACCOUNT_UPDATED = "account.updated"
CAPABILITY_UPDATED = "capability.updated"
DEAUTHORIZED = "account.application.deauthorized"


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    IGNORED = "ignored"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    created: datetime
    livemode: bool
    account_id: str | None
    object: Mapping[str, Any]
    raw: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class WebhookResult:
    event_id: str
    event_type: str
    account_id: str | None
    outcome: Outcome
    transition: Transition | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class InboxEntry:
    event_id: str
    type: str
    account_id: str | None
    created: datetime
    livemode: bool
    received_at: datetime
    outcome: Outcome
    detail: str | None
    payload: Mapping[str, Any]
    #: the audit record it caused on its account (None: it moved nothing)
    transition_seq: int | None = None


def parse_event(raw_body: bytes) -> Event:
    """The event in ``raw_body``, or ``MalformedEvent`` for anything not shaped
    as Stripe documents it — including what would break later: deep nesting,
    huge or non-finite numbers, unstorable strings, out-of-range times, ids
    longer than their columns (``bounds``)."""
    try:
        data = json.loads(raw_body)
    except RecursionError:  # the C decoder gives up near 1,000 levels
        raise MalformedEvent("body is nested too deeply") from None
    except ValueError as exc:  # not JSON, not UTF-8, or an integer over 4,300 digits
        raise MalformedEvent(f"body is not JSON: {exc.__class__.__name__}") from None
    try:
        return _event(data)
    except MalformedEvent:
        raise
    except MalformedPayload as exc:
        raise MalformedEvent(str(exc)) from None


def _event(data: Any) -> Event:
    if not isinstance(data, dict):
        raise MalformedEvent("event must be a JSON object")
    bounds.check_tree(data)
    if data.get("object", "event") != "event":
        raise MalformedEvent(f"expected an event object, got {data.get('object')!r:.40}")
    event_id = bounds.identifier(data.get("id"), "event.id", bounds.MAX_EVENT_ID)
    event_type = bounds.identifier(data.get("type"), "event.type", bounds.MAX_EVENT_ID)
    created = bounds.unix_time(data.get("created"), "event.created")
    payload = data.get("data")
    if not isinstance(payload, dict) or not isinstance(payload.get("object"), dict):
        raise MalformedEvent("event.data.object must be an object")
    obj: dict[str, Any] = payload["object"]
    account = data.get("account")
    if account is None and event_type == ACCOUNT_UPDATED and isinstance(obj.get("id"), str):
        account = obj["id"]
    if account is None and event_type == CAPABILITY_UPDATED and isinstance(obj.get("account"), str):
        account = obj["account"]
    if account is not None:
        account = bounds.identifier(account, "event.account", bounds.MAX_ACCOUNT_ID)
    livemode = data.get("livemode", False)
    if not isinstance(livemode, bool):
        raise MalformedEvent("event.livemode must be a boolean")
    return Event(
        id=event_id,
        type=event_type,
        created=created,
        livemode=livemode,
        account_id=account,
        object=obj,
        raw=data,
    )
