"""Rows back into domain values, whichever driver (or SQLAlchemy) read them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from onboarding_fsm.account import Account, CreationIntent, LinkParams
from onboarding_fsm.audit import Transition, delta_from_dict
from onboarding_fsm.checkpoints import Checkpoint
from onboarding_fsm.events import InboxEntry, Outcome
from onboarding_fsm.snapshot import parse_account
from onboarding_fsm.states import Source, State, Trigger
from onboarding_fsm.timers import ClaimedTimer, Timer, TimerKind

from .timeconv import read_dt, read_json

#: a row by column name: SQLAlchemy's ``RowMapping``, or a dict from the driver's cursor
Row = Any


def _dt(value: Any) -> datetime:
    result = read_dt(value)
    assert result is not None
    return result


def account(m: Row) -> Account:
    link = read_json(m["link_params"])
    return Account(
        stripe_account_id=m["stripe_account_id"],
        platform_ref=m["platform_ref"],
        state=State(m["state"]),
        reason=m["reason"],
        version=m["version"],
        snapshot=parse_account(read_json(m["snapshot"])),
        requested_capabilities=tuple(read_json(m["requested_capabilities"])),
        created_at=_dt(m["created_at"]),
        updated_at=_dt(m["updated_at"]),
        synced_at=_dt(m["synced_at"]),
        watermark=read_dt(m["watermark"]),
        fetched_at=read_dt(m["fetched_at"]),
        inaccessible_since=read_dt(m["inaccessible_since"]),
        state_since=read_dt(m["state_since"]),
        livemode=bool(m["livemode"]),
        deauthorized=bool(m["deauthorized"]),
        link=LinkParams.from_dict(link) if link else None,
        link_issued_at=read_dt(m["link_issued_at"]),
        link_expires_at=read_dt(m["link_expires_at"]),
        audit_seq=m["audit_seq"],
        audit_head=m["audit_head"],
    )


def transition(m: Row, *, unsealed: bool = False) -> Transition:
    """``unsealed``: as no checkpoint sealed it (an export's view of one sealed
    after the checkpoint it reads up to)."""
    return Transition(
        account_id=m["account_id"],
        seq=m["seq"],
        from_state=State(m["from_state"]) if m["from_state"] else None,
        to_state=State(m["to_state"]),
        trigger=Trigger(m["trigger"]),
        source=Source(m["source"]),
        source_ref=m["source_ref"],
        actor=m["actor"],
        reason=m["reason"],
        delta=delta_from_dict(read_json(m["delta"])),
        at=_dt(m["at"]),
        stripe_time=read_dt(m["stripe_time"]),
        prev_hash=m["prev_hash"],
        hash=m["hash"],
        request_id=m["request_id"],
        run_id=m["run_id"],
        layout=int(m["layout"]),
        key_id=m["key_id"],
        checkpoint=None if unsealed else m["checkpoint"],
    )


def inbox_entry(m: Row) -> InboxEntry:
    return InboxEntry(
        event_id=m["event_id"],
        type=m["type"],
        account_id=m["account_id"],
        created=_dt(m["created"]),
        livemode=bool(m["livemode"]),
        received_at=_dt(m["received_at"]),
        outcome=Outcome(m["outcome"]),
        detail=m["detail"],
        payload=read_json(m["payload"]),
        transition_seq=m["transition_seq"],
    )


def checkpoint(m: Row) -> Checkpoint:
    return Checkpoint(
        seq=int(m["seq"]),
        at=_dt(m["at"]),
        records=int(m["records"]),
        covered=m["covered"],
        prev_hash=m["prev_hash"],
        hash=m["hash"],
        key_id=m["key_id"],
    )


def claimed(m: Row, account: Account | None) -> ClaimedTimer:
    return ClaimedTimer(timer(m), account, int(m["attempts"]))


def timer(m: Row) -> Timer:
    return Timer(due_at=_dt(m["due_at"]), account_id=m["account_id"], kind=TimerKind(m["kind"]))


def intent(row: Any) -> CreationIntent:
    return CreationIntent(platform_ref=row[0], idempotency_key=row[1], requested_at=_dt(row[2]))
