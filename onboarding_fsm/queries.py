"""What auditors ask the store, as values: filters, pages and cursors.

Every query is paged by a keyset cursor, never by offset, so a page costs
the same at the end of 10^6 records as at the start, and streaming a whole
range holds one page in memory. Cursors are opaque text for callers (a CLI
or web page hands them back); inside they are the last row's sort key.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from .clock import ensure_utc
from .errors import InvalidInput
from .events import Outcome
from .states import Source, State, Trigger

T = TypeVar("T")


class Order(StrEnum):
    """``time``: by when it happened (then account, seq); ``chain``: account by
    account in chain order, what an export needs to be verified as it streams."""

    TIME = "time"
    CHAIN = "chain"


@dataclass(frozen=True, slots=True)
class TransitionQuery:
    """Transitions across accounts. Every field narrows; None means any.
    ``since`` is inclusive, ``until`` exclusive."""

    since: datetime | None = None
    until: datetime | None = None
    account_id: str | None = None
    from_state: State | None = None
    to_state: State | None = None
    trigger: Trigger | None = None
    source: Source | None = None
    actor: str | None = None
    order: Order = Order.TIME

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, ensure_utc(value, name))
        if self.since is not None and self.until is not None and self.until < self.since:
            raise InvalidInput("until must not be before since")

    @property
    def whole(self) -> bool:
        """No filter: every record of every chain (an export that verifies completely)."""
        return all(getattr(self, f) is None for f in _FILTERS)


_FILTERS = ("since", "until", "account_id", "from_state", "to_state", "trigger", "source", "actor")


@dataclass(frozen=True, slots=True)
class InboxQuery:
    """Recorded webhook events, newest first."""

    account_id: str | None = None
    type: str | None = None
    outcome: Outcome | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, ensure_utc(value, name))


@dataclass(frozen=True, slots=True)
class StateAt:
    """Where an account stood at an instant: the last record at or before it."""

    account_id: str
    state: State
    since: datetime
    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page and the cursor for the next (None: this was the last)."""

    items: tuple[T, ...]
    cursor: str | None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


#: a sort key inside a cursor: strings, ints and times only
Key = tuple[str | int | datetime, ...]


def encode(kind: str, key: Sequence[str | int | datetime]) -> str:
    parts = [k.isoformat() if isinstance(k, datetime) else k for k in key]
    return base64.urlsafe_b64encode(json.dumps([kind, *parts]).encode()).decode().rstrip("=")


def decode(kind: str, cursor: str | None, shape: Sequence[type]) -> tuple[str | int | datetime, ...] | None:
    """The key in ``cursor``; ``InvalidInput`` for one that is not ours or
    was made for another query kind (bad input changes nothing)."""
    if cursor is None:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this engine made") from None
    if not isinstance(raw, list) or len(raw) != len(shape) + 1 or raw[0] != kind:
        raise InvalidInput(f"cursor is not a {kind} cursor")
    out: list[str | int | datetime] = []
    for value, wanted in zip(raw[1:], shape, strict=True):
        if wanted is datetime and isinstance(value, str):
            try:
                out.append(ensure_utc(datetime.fromisoformat(value), "cursor"))
            except ValueError:
                raise InvalidInput("cursor is damaged") from None
        elif isinstance(value, str | int) and isinstance(value, wanted) and not isinstance(value, bool):
            out.append(value)
        else:
            raise InvalidInput("cursor is damaged")
    return tuple(out)
