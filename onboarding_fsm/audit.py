"""The audit trail: transition records chained by hash, per account.

Each record's hash covers its content and the previous record's hash, so
editing, deleting or reordering any row breaks every hash after it;
``verify_chain`` finds the first broken link. The hashed form is a JSON array
in a fixed field order with ISO-8601 UTC times, independent of the database
(``canonical``; the README documents it so anyone can recompute it).

Layouts: ``v1`` records (written before 0.4) stay as they were hashed; ``v2``
adds Stripe's request id and the run id. With an ``AuditKey`` the digest is HMAC-SHA256
instead of SHA-256, so write access to the database alone cannot re-hash a
chain; the record names the key (``key_id``), never the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from .errors import InvalidInput
from .snapshot import REQUIREMENT_LISTS, Requirements
from .states import Source, State, Trigger

GENESIS = "0" * 64
#: the hashed layout new records are written in
LAYOUT = 2


@dataclass(frozen=True, slots=True)
class AuditKey:
    """The secret for keyed hashes. ``key_id`` names it in records and exports
    (derived from the key by HMAC, so it reveals nothing about it)."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise InvalidInput("an audit key needs at least 16 bytes")

    @property
    def key_id(self) -> str:
        return hmac.new(self.secret, b"onboarding-fsm audit key id", hashlib.sha256).hexdigest()[:16]

    def mac(self, body: bytes) -> str:
        return hmac.new(self.secret, body, hashlib.sha256).hexdigest()


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
    #: Stripe's ``Request-Id`` of the API call whose answer caused it
    request_id: str | None = None
    #: the sweep or reconcile run it happened in (``runs.new_run_id``)
    run_id: str | None = None

    def answered(self, request_id: str | None) -> Cause:
        """This cause, with the request id of the Stripe answer it acted on."""
        return replace(self, request_id=request_id) if request_id else self


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
    request_id: str | None = None
    run_id: str | None = None
    #: the hashed layout (1: before request ids; 2: current)
    layout: int = LAYOUT
    #: the ``AuditKey`` its hash is keyed with; None for plain SHA-256
    key_id: str | None = None
    #: the checkpoint that sealed it (None until sealed); not hashed
    checkpoint: int | None = field(default=None, compare=False)


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


def canonical(record: Transition) -> bytes:
    """The bytes a record's hash covers: a compact JSON array in a fixed
    field order (``"v1"``/``"v2"`` first), times as ISO-8601 UTC with
    microseconds, the requirement delta as sorted ``[list, added, removed]``."""
    head: list[Any] = [
        f"v{record.layout}",
        record.account_id,
        record.seq,
        record.from_state.value if record.from_state else None,
        record.to_state.value,
        record.trigger.value,
        record.source.value,
        record.source_ref,
        record.actor,
    ]
    if record.layout >= 2:
        head.extend((record.request_id, record.run_id))
    body = [
        *head,
        record.reason,
        sorted([c.list_name, list(c.added), list(c.removed)] for c in record.delta),
        _iso(record.at),
        _iso(record.stripe_time),
        record.prev_hash,
    ]
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


class KeyMissing(InvalidInput):
    """A keyed record cannot be checked without its key."""


def digest(record: Transition, key: AuditKey | None = None) -> str:
    """The record's hash: SHA-256 of ``canonical``, or HMAC-SHA256 under the
    key it names (``KeyMissing`` when that key is not given)."""
    if record.key_id is None:
        return hashlib.sha256(canonical(record)).hexdigest()
    if key is None or key.key_id != record.key_id:
        raise KeyMissing(f"record {record.account_id}#{record.seq} is keyed with {record.key_id}")
    return key.mac(canonical(record))


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
    """A transition record, hashed onto the account's chain (unkeyed; the
    service layer re-signs it with the configured key when it saves)."""
    record = Transition(
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
        hash="",
        request_id=cause.request_id,
        run_id=cause.run_id,
    )
    return replace(record, hash=digest(record))


def sign(record: Transition, key: AuditKey | None, *, prev_hash: str | None = None) -> Transition:
    """``record`` hashed under ``key`` (and linked to ``prev_hash`` when its
    predecessor was re-signed too); unchanged without a key."""
    if key is None and prev_hash is None:
        return record
    linked = replace(record, prev_hash=prev_hash if prev_hash is not None else record.prev_hash)
    keyed = replace(linked, key_id=key.key_id if key is not None else None)
    return replace(keyed, hash=digest(keyed, key))


@dataclass(frozen=True, slots=True)
class ChainReport:
    account_id: str
    records: int
    ok: bool
    broken_at: int | None = None
    problem: str | None = None


class ChainCheck:
    """One account's chain checked record by record: what ``verify_chain``
    does over a list, and an export verifier does as the file streams."""

    def __init__(
        self,
        account_id: str,
        key: AuditKey | None = None,
        *,
        start: tuple[int, str] = (1, GENESIS),
        skip_keyed: bool = False,
    ) -> None:
        self.account_id = account_id
        self.key = key
        self.expected_seq, self.prev = start
        self.skip_keyed = skip_keyed
        self.count = 0
        self.keyed = False
        self.broken: ChainReport | None = None

    def add(self, record: Transition) -> ChainReport | None:
        """The first problem of the chain so far (None while it holds)."""
        if self.broken is not None:
            return self.broken
        self.count += 1
        problem = None
        if record.seq != self.expected_seq:
            problem = f"sequence gap: expected {self.expected_seq}"
        elif record.prev_hash != self.prev:
            problem = "previous-hash link broken"
        elif not (self.skip_keyed and self.key is None and record.key_id is not None):
            problem = _content_problem(record, self.key, self.keyed)
        if problem is not None:
            self.broken = ChainReport(self.account_id, self.count, False, record.seq, problem)
            return self.broken
        self.keyed = self.keyed or record.key_id is not None
        self.prev = record.hash
        self.expected_seq += 1
        return None

    def end(self, head: str | None = None) -> ChainReport:
        if self.broken is not None:
            return self.broken
        if head is not None and head != self.prev:
            msg = "account head does not match the last record"
            return ChainReport(self.account_id, self.count, False, self.expected_seq, msg)
        return ChainReport(self.account_id, self.count, True)


def verify_chain(
    account_id: str,
    records: Iterable[Transition],
    head: str | None = None,
    key: AuditKey | None = None,
    *,
    start: tuple[int, str] = (1, GENESIS),
    skip_keyed: bool = False,
) -> ChainReport:
    """Recompute one account's chain; ``head`` is the hash the account row
    holds. With ``key``, every record must be keyed with it or be older
    than the key (a chain cannot fall back to plain hashes once keyed).
    ``start`` is the first seq and its previous hash (a partial export
    starts mid-chain). ``skip_keyed``: without the key, check only the links
    of keyed records (their content cannot be checked)."""
    check = ChainCheck(account_id, key, start=start, skip_keyed=skip_keyed)
    for record in records:
        if check.add(record) is not None:
            break
    return check.end(head)


def _content_problem(record: Transition, key: AuditKey | None, keyed_before: bool) -> str | None:
    if record.key_id is None and key is not None and keyed_before:
        return "unkeyed record after keyed ones (re-hashed without the key?)"
    try:
        if digest(record, key) != record.hash:
            return "record content does not match its hash"
    except KeyMissing:
        return f"keyed with {record.key_id}, which is not the key given"
    return None


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
        "hash": record.hash,
    }
