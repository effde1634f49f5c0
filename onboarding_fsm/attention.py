"""Accounts that need attention (``engine.attention``): what an operator or
the platform should look at, in four kinds, most urgent first.

* ``timer_overdue``: an unfired timer due longer ago than
  ``timer_overdue_after`` — no worker is sweeping, or Stripe has not
  answered for that long. One row per account, for its earliest such timer.
* ``stuck``: in a state that waits on the holder or on us (``WAITING``:
  created, link_issued, returned_incomplete, past_due) for longer than
  ``stuck_after``; verified and disabled accounts wait on nobody. Measured
  from ``state_since``; an account without one (written by no engine since
  0.4, and not backfilled by 0005 from its trail) is left out: its time in
  state is unknown, and guessing it from ``updated_at`` would call it stuck
  on the strength of an unrelated write.
* ``future_requirements``: Stripe announced fields (``future_requirements``
  currently_due or eventually_due) that become due at its deadline; the
  soonest deadline first, those with no deadline last. Disabled accounts are
  left out: Stripe disabled them, or they left the platform (a detached
  account is disabled for good and keeps its last snapshot), so nobody can
  collect what was announced, and they would stay listed forever.
* ``eventually_due``: verified under the incremental policy with
  ``eventually_due`` fields left, which a volume threshold will make
  currently due. Under the up-front policy such an account is not verified
  at all, so the kind does not apply (asking for it lists nothing).

The store keeps three columns from every snapshot it writes (``marks``) and
an index per kind, so a page costs an index range scan at 10^5 accounts,
not a read of every snapshot. Reads only; paged by cursor like the audit
queries (``queries``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from . import inputs
from .clock import ensure_utc
from .config import EngineConfig
from .errors import InvalidInput
from .policy import Collection, Policy
from .queries import Page, decode, encode
from .snapshot import AccountSnapshot
from .states import State
from .timers import TimerKind


class AttentionKind(StrEnum):
    """In the order they are listed: the machinery first, then the holders."""

    TIMER_OVERDUE = "timer_overdue"
    STUCK = "stuck"
    FUTURE_REQUIREMENTS = "future_requirements"
    EVENTUALLY_DUE = "eventually_due"


#: states that wait on the holder (or on us) to move on: in one too long, an account is stuck
WAITING: tuple[State, ...] = (State.CREATED, State.LINK_ISSUED, State.RETURNED_INCOMPLETE, State.PAST_DUE)


@dataclass(frozen=True, slots=True)
class Marks:
    """What the store keeps beside each snapshot so the kinds are index scans."""

    #: ``eventually_due`` fields not also ``currently_due``
    eventually_due_left: int = 0
    #: fields ``future_requirements`` lists as currently_due or eventually_due
    future_due: int = 0
    #: ``future_requirements.current_deadline``
    future_deadline: datetime | None = None


def marks(snapshot: AccountSnapshot) -> Marks:
    """The columns for ``snapshot`` (written with every account; 0006 backfills them)."""
    req = snapshot.requirements
    left = len(set(req.eventually_due) - set(req.currently_due))
    future = snapshot.future_requirements
    if future is None:
        return Marks(left)
    return Marks(left, len(set(future.currently_due) | set(future.eventually_due)), future.current_deadline)


@dataclass(frozen=True, slots=True)
class AttentionQuery:
    """The instants a store compares with, all from one ``now``."""

    #: entered a waiting state before this: stuck
    stuck_before: datetime
    #: an unfired timer due before this: overdue
    overdue_before: datetime


@dataclass(frozen=True, slots=True)
class Flagged:
    """One account of one kind as the store finds it, with the facts behind it."""

    kind: AttentionKind
    account_id: str
    platform_ref: str
    state: State
    #: ``state_since`` (stuck, eventually_due), the future deadline, the overdue timer's due time
    at: datetime | None
    #: the store's sort key: a page ``after`` it starts behind this row (opaque to the core)
    key: tuple[datetime, str]
    #: eventually_due fields left, future fields owed, timers overdue
    count: int = 0
    #: the earliest overdue timer's kind, and how often Stripe could not be asked about it
    timer: TimerKind | None = None
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class NeedsAttention:
    kind: AttentionKind
    account_id: str
    platform_ref: str
    state: State
    #: for people: e.g. "eventually_due=3", "in returned_incomplete for 9 days"
    why: str
    #: the time that matters: since when in the state, the future deadline, when the timer was due
    at: datetime | None
    count: int = 0


@dataclass(frozen=True, slots=True)
class AttentionSummary:
    at: datetime
    #: accounts per kind, for the kinds that apply under the policy
    counts: Mapping[AttentionKind, int]
    stuck_after: timedelta
    overdue_after: timedelta

    @property
    def total(self) -> int:
        """Rows listed: an account of two kinds counts twice."""
        return sum(self.counts.values())


#: what callers may name kinds with: members or their values, one or several (None: all)
Kinds = Iterable[AttentionKind | str] | AttentionKind | str | None


class AttentionReads(Protocol):
    """The part of the ``Store`` port this module reads (``ports.Store`` has it)."""

    def needing_attention(
        self, kind: AttentionKind, query: AttentionQuery, *, limit: int = 100, after: tuple[datetime, str] | None = None
    ) -> list[Flagged]: ...

    def count_needing_attention(
        self, kinds: Sequence[AttentionKind], query: AttentionQuery
    ) -> dict[AttentionKind, int]: ...


class Now(Protocol):
    def now(self) -> datetime: ...


# --- the pure rules -------------------------------------------------------------------


def applicable(policy: Policy) -> tuple[AttentionKind, ...]:
    """Every kind, less ``eventually_due`` under the up-front policy."""
    if policy.collection is Collection.UPFRONT:
        return tuple(k for k in AttentionKind if k is not AttentionKind.EVENTUALLY_DUE)
    return tuple(AttentionKind)


def chosen(kinds: Kinds, policy: Policy) -> tuple[AttentionKind, ...]:
    """The kinds asked for, known and in listing order, those the policy rules out dropped."""
    if kinds is None:
        return applicable(policy)
    if isinstance(kinds, str):
        kinds = (kinds,)
    if not isinstance(kinds, Iterable):
        raise InvalidInput(f"kinds must be a list of {[k.value for k in AttentionKind]}")
    wanted = {inputs.member(AttentionKind, k, "kind") for k in kinds}
    if not wanted:
        raise InvalidInput("name at least one kind (or none at all for every kind)")
    return tuple(k for k in applicable(policy) if k in wanted)


def query(now: datetime, config: EngineConfig) -> AttentionQuery:
    return AttentionQuery(stuck_before=now - config.stuck_after, overdue_before=now - config.timer_overdue_after)


def span(length: timedelta) -> str:
    """A length for people, in its largest whole unit: "9 days", "2 h", "35 min"."""
    seconds = max(0, int(length.total_seconds()))
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}s" if unit == "day" and n != 1 else f"{n} {unit}"
    return f"{seconds} s"


def why(flag: Flagged, now: datetime) -> str:
    at = flag.at
    if flag.kind is AttentionKind.TIMER_OVERDUE:
        assert at is not None
        text = f"{flag.timer or 'a'} timer overdue by {span(now - at)}"
        if flag.attempts:
            text += f", Stripe unanswered after {flag.attempts} attempt(s)"
        return text + (f"; {flag.count - 1} more timer(s) overdue" if flag.count > 1 else "")
    if flag.kind is AttentionKind.STUCK:
        assert at is not None
        return f"in {flag.state.value} for {span(now - at)}"
    if flag.kind is AttentionKind.FUTURE_REQUIREMENTS:
        if at is None:
            return f"future_requirements={flag.count}, no deadline"
        when = f"in {span(at - now)}" if at > now else f"passed {span(now - at)} ago"
        return f"future_requirements={flag.count}, deadline {at.isoformat()} ({when})"
    return f"eventually_due={flag.count}" + (f", verified for {span(now - at)}" if at is not None else "")


def item(flag: Flagged, now: datetime) -> NeedsAttention:
    return NeedsAttention(
        kind=flag.kind,
        account_id=flag.account_id,
        platform_ref=flag.platform_ref,
        state=flag.state,
        why=why(flag, now),
        at=flag.at,
        count=flag.count,
    )


_CURSOR = "attention"
_CURSOR_KEY = (str, datetime, str)


def resume(cursor: str | None, kinds: tuple[AttentionKind, ...]) -> tuple[int, tuple[datetime, str] | None]:
    """Where a page starts: the index of its kind in ``kinds`` and the key to start behind."""
    key = decode(_CURSOR, cursor, _CURSOR_KEY)
    if key is None:
        return 0, None
    kind, at, account_id = key
    if kind not in kinds:
        raise InvalidInput("cursor was made for other kinds: ask for the same kinds as the first page")
    assert isinstance(kind, str) and isinstance(at, datetime) and isinstance(account_id, str)
    return kinds.index(AttentionKind(kind)), (at, account_id)


# --- the use case ---------------------------------------------------------------------


class Attention:
    def __init__(self, store: AttentionReads, clock: Now, config: EngineConfig) -> None:
        self._store = store
        self._clock = clock
        self._config = config

    def kinds(self) -> tuple[AttentionKind, ...]:
        """The kinds that apply under the engine's collection policy."""
        return applicable(self._config.policy)

    def accounts(
        self,
        kinds: Kinds = None,
        *,
        limit: int = 100,
        cursor: str | None = None,
        now: datetime | None = None,
    ) -> Page[NeedsAttention]:
        """One page of the accounts that need attention (of ``kinds``; all
        that apply when None), kind by kind in ``AttentionKind`` order; pass
        ``page.cursor`` back, with the same kinds, for the next."""
        wanted = chosen(kinds, self._config.policy)
        size = inputs.page_size(limit)
        at = self._now(now)
        start, after = resume(cursor, wanted)
        q = query(at, self._config)
        found: list[Flagged] = []
        for n, kind in enumerate(wanted[start:]):
            found += self._store.needing_attention(kind, q, limit=size - len(found), after=after if n == 0 else None)
            if len(found) == size:
                break
        last = found[-1] if len(found) == size else None
        next_cursor = encode(_CURSOR, (last.kind.value, *last.key)) if last is not None else None
        return Page(tuple(item(f, at) for f in found), next_cursor)

    def stream(
        self,
        kinds: Kinds = None,
        *,
        batch: int = 500,
        now: datetime | None = None,
    ) -> Iterator[NeedsAttention]:
        """Every account of ``kinds`` that needs attention, one page in memory at a time."""
        at = self._now(now)  # one instant for every page
        cursor: str | None = None
        while True:
            page = self.accounts(kinds, limit=batch, cursor=cursor, now=at)
            yield from page
            if page.cursor is None:
                return
            cursor = page.cursor

    def summary(self, *, now: datetime | None = None) -> AttentionSummary:
        """How many accounts each kind lists now (each count one index scan)."""
        at = self._now(now)
        counts = self._store.count_needing_attention(self.kinds(), query(at, self._config))
        return AttentionSummary(
            at=at,
            counts={k: counts.get(k, 0) for k in self.kinds()},
            stuck_after=self._config.stuck_after,
            overdue_after=self._config.timer_overdue_after,
        )

    def _now(self, now: datetime | None) -> datetime:
        return ensure_utc(now, "now") if now is not None else self._clock.now()
