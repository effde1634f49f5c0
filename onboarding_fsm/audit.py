"""The audit trail: transition records chained by hash, per account.

Each record's hash covers its content and the previous record's hash, so
editing, deleting or reordering any row breaks every hash after it;
``verify_chain`` finds the first broken link. The hashed form is a JSON array
in a fixed field order with ISO-8601 UTC times, independent of the database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .snapshot import REQUIREMENT_LISTS, Requirements
from .states import Source, State, Trigger

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class FieldChange:
    """Requirement field names added to or removed from one list."""

    list_name: str
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Cause:
    """Who or what caused a transition."""

    source: Source
    source_ref: str | None = None
    actor: str | None = None
    stripe_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    account_id: str
    seq: int
    from_state: State | None
    to_state: State
    trigger: Trigger
    source: Source
    source_ref: str | None
    actor: str | None
    reason: str
    delta: tuple[FieldChange, ...]
    at: datetime
    stripe_time: datetime | None
    prev_hash: str
    hash: str


def requirement_delta(old: Requirements | None, new: Requirements) -> tuple[FieldChange, ...]:
    changes = []
    for name in (*REQUIREMENT_LISTS, "errors"):
        if name == "errors":
            before = {f"{e.requirement}:{e.code}" for e in old.errors} if old else set()
            after = {f"{e.requirement}:{e.code}" for e in new.errors}
        else:
            before = set(getattr(old, name)) if old else set()
            after = set(getattr(new, name))
        if before != after:
            changes.append(FieldChange(name, tuple(sorted(after - before)), tuple(sorted(before - after))))
    return tuple(changes)


def delta_to_dict(delta: Iterable[FieldChange]) -> dict[str, dict[str, list[str]]]:
    return {c.list_name: {"added": list(c.added), "removed": list(c.removed)} for c in delta}


_LIST_ORDER = {name: i for i, name in enumerate((*REQUIREMENT_LISTS, "errors"))}


def delta_from_dict(data: Mapping[str, Mapping[str, Iterable[str]]]) -> tuple[FieldChange, ...]:
    """Inverse of ``delta_to_dict``, in canonical list order (PostgreSQL's
    JSONB does not keep key order)."""
    changes = [FieldChange(name, tuple(v.get("added", ())), tuple(v.get("removed", ()))) for name, v in data.items()]
    return tuple(sorted(changes, key=lambda c: (_LIST_ORDER.get(c.list_name, len(_LIST_ORDER)), c.list_name)))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="microseconds") if value is not None else None


def _digest(
    account_id: str,
    seq: int,
    from_state: State | None,
    to_state: State,
    trigger: Trigger,
    source: Source,
    source_ref: str | None,
    actor: str | None,
    reason: str,
    delta: tuple[FieldChange, ...],
    at: datetime,
    stripe_time: datetime | None,
    prev_hash: str,
) -> str:
    """SHA-256 over a JSON array in a fixed field order ("v1" names the layout)."""
    body = json.dumps(
        [
            "v1",
            account_id,
            seq,
            from_state.value if from_state else None,
            to_state.value,
            trigger.value,
            source.value,
            source_ref,
            actor,
            reason,
            sorted([c.list_name, list(c.added), list(c.removed)] for c in delta),
            _iso(at),
            _iso(stripe_time),
            prev_hash,
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def digest(record: Transition) -> str:
    return _digest(
        record.account_id,
        record.seq,
        record.from_state,
        record.to_state,
        record.trigger,
        record.source,
        record.source_ref,
        record.actor,
        record.reason,
        record.delta,
        record.at,
        record.stripe_time,
        record.prev_hash,
    )


def seal(
    *,
    account_id: str,
    seq: int,
    prev_hash: str,
    from_state: State | None,
    to_state: State,
    trigger: Trigger,
    cause: Cause,
    reason: str,
    delta: tuple[FieldChange, ...],
    at: datetime,
) -> Transition:
    """A transition record, hashed onto the account's chain."""
    return Transition(
        account_id=account_id,
        seq=seq,
        from_state=from_state,
        to_state=to_state,
        trigger=trigger,
        source=cause.source,
        source_ref=cause.source_ref,
        actor=cause.actor,
        reason=reason,
        delta=delta,
        at=at,
        stripe_time=cause.stripe_time,
        prev_hash=prev_hash,
        hash=_digest(
            account_id,
            seq,
            from_state,
            to_state,
            trigger,
            cause.source,
            cause.source_ref,
            cause.actor,
            reason,
            delta,
            at,
            cause.stripe_time,
            prev_hash,
        ),
    )


@dataclass(frozen=True, slots=True)
class ChainReport:
    account_id: str
    records: int
    ok: bool
    broken_at: int | None = None
    problem: str | None = None


def verify_chain(account_id: str, records: Iterable[Transition], head: str | None = None) -> ChainReport:
    """Recompute one account's chain; ``head`` is the hash the account row holds."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    for record in records:
        count += 1
        if record.seq != expected_seq:
            return ChainReport(account_id, count, False, record.seq, f"sequence gap: expected {expected_seq}")
        if record.prev_hash != prev:
            return ChainReport(account_id, count, False, record.seq, "previous-hash link broken")
        if digest(record) != record.hash:
            return ChainReport(account_id, count, False, record.seq, "record content does not match its hash")
        prev = record.hash
        expected_seq += 1
    if head is not None and head != prev:
        return ChainReport(account_id, count, False, expected_seq, "account head does not match the last record")
    return ChainReport(account_id, count, True)


def outbox_payload(record: Transition, platform_ref: str) -> dict[str, Any]:
    """The message downstream consumers get for every transition."""
    return {
        "type": "onboarding.transition",
        "account": record.account_id,
        "platform_ref": platform_ref,
        "seq": record.seq,
        "from": record.from_state.value if record.from_state else None,
        "to": record.to_state.value,
        "trigger": record.trigger.value,
        "source": record.source.value,
        "source_ref": record.source_ref,
        "reason": record.reason,
        "at": _iso(record.at),
    }
