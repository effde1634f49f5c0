"""Plain values for the decision table tests: accounts, snapshots, events.

No database, no simulator: an ``Account`` is what the store would hand the
engine, built by hand.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from onboarding_fsm.account import Account, LinkParams
from onboarding_fsm.audit import GENESIS, Cause, seal
from onboarding_fsm.config import EngineConfig
from onboarding_fsm.events import Event
from onboarding_fsm.snapshot import AccountSnapshot, Controller, Requirements
from onboarding_fsm.states import Source, State, Trigger

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CONFIG = EngineConfig()
ID = "acct_1"

#: onboarded, nothing owed, capabilities active
DONE = AccountSnapshot(
    id=ID,
    details_submitted=True,
    charges_enabled=True,
    payouts_enabled=True,
    capabilities=(("card_payments", "active"), ("transfers", "active")),
    controller=Controller(type="application", requirement_collection="stripe", stripe_dashboard="full"),
)
#: never onboarded: the initial fields owed, no deadline
FRESH = AccountSnapshot(
    id=ID,
    capabilities=(("card_payments", "inactive"), ("transfers", "inactive")),
    requirements=Requirements(currently_due=("business_type", "tos_acceptance.date")),
)


def owing(*fields: str, deadline: datetime | None = None, **changes: Any) -> AccountSnapshot:
    """Onboarded, but ``fields`` currently due (with ``deadline``)."""
    return replace(
        DONE,
        requirements=Requirements(currently_due=fields, eventually_due=fields, current_deadline=deadline),
        **changes,
    )


def future(*fields: str, deadline: datetime) -> AccountSnapshot:
    """Nothing owed now; ``fields`` become due at ``deadline``."""
    return replace(DONE, future_requirements=Requirements(currently_due=fields, current_deadline=deadline))


def account(state: State = State.CREATED, snapshot: AccountSnapshot = FRESH, **changes: Any) -> Account:
    """An account as stored, with a one-record audit chain."""
    birth = seal(
        account_id=ID,
        seq=1,
        prev_hash=GENESIS,
        from_state=None,
        to_state=State.CREATED,
        trigger=Trigger.CREATE,
        cause=Cause(Source.API),
        reason="created",
        delta=(),
        at=T0,
    )
    base = Account(
        stripe_account_id=ID,
        platform_ref="seller-1",
        state=state,
        reason="created",
        version=3,
        snapshot=snapshot,
        requested_capabilities=("card_payments", "transfers"),
        created_at=T0,
        updated_at=T0,
        synced_at=T0,
        watermark=T0,
        audit_seq=1,
        audit_head=birth.hash,
    )
    return replace(base, **changes)


def linked(state: State = State.LINK_ISSUED, *, issued: datetime = T0, **changes: Any) -> Account:
    """An account a link was issued for at ``issued``."""
    return account(
        state, link=LinkParams(), link_issued_at=issued, link_expires_at=issued + timedelta(minutes=5), **changes
    )


def event(
    type_: str = "account.updated",
    obj: dict[str, Any] | None = None,
    *,
    created: datetime = T0 + timedelta(seconds=10),
    livemode: bool = False,
    account_id: str | None = ID,
    event_id: str = "evt_1",
) -> Event:
    obj = obj if obj is not None else {"id": ID, "object": "account", "details_submitted": True}
    raw = {"id": event_id, "object": "event", "type": type_, "created": int(created.timestamp()),
           "livemode": livemode, "account": account_id, "data": {"object": obj}}  # fmt: skip
    return Event(event_id, type_, created, livemode, account_id, obj, raw)


def body(**fields: Any) -> bytes:
    """A raw event body (for ``webhooks.read``)."""
    data: dict[str, Any] = {"id": "evt_1", "object": "event", "type": "account.updated", "created": 1,
                            "livemode": False, "data": {"object": {"id": ID, "object": "account"}}}  # fmt: skip
    data.update(fields)
    return json.dumps(data).encode()
