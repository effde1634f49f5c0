"""Due timers: the moments a scheduler must look at an account again.

They are re-derived from the account after every change and stored as rows
keyed by (account, kind, due time), so a sweep fires each at most once, late
but once after downtime, and any number of workers can share the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from .account import Account
from .snapshot import AccountSnapshot
from .states import State


class TimerKind(StrEnum):
    #: ``requirements.current_deadline`` with ``currently_due`` non-empty
    DEADLINE = "deadline"
    #: ``future_requirements.current_deadline``: future fields become current
    FUTURE_DEADLINE = "future_deadline"
    #: no return from the hosted flow within the configured time
    ABANDON = "abandon"
    #: ahead of a deadline; changes no state, tells downstream consumers
    REMINDER = "reminder"


@dataclass(frozen=True, slots=True, order=True)
class Timer:
    due_at: datetime
    account_id: str
    kind: TimerKind


def _deadlines(snapshot: AccountSnapshot) -> list[tuple[TimerKind, datetime]]:
    out = []
    req = snapshot.requirements
    if req.current_deadline is not None and req.currently_due:
        out.append((TimerKind.DEADLINE, req.current_deadline))
    fut = snapshot.future_requirements
    if fut is not None and fut.current_deadline is not None and fut.currently_due:
        out.append((TimerKind.FUTURE_DEADLINE, fut.current_deadline))
    return out


def derive_timers(
    account: Account, *, abandon_after: timedelta, reminder_offsets: Sequence[timedelta] = ()
) -> tuple[Timer, ...]:
    if account.detached or account.state is State.DISABLED:
        return ()
    timers: set[Timer] = set()
    if account.state is not State.PAST_DUE:
        for kind, due in _deadlines(account.snapshot):
            timers.add(Timer(due, account.stripe_account_id, kind))
            for offset in reminder_offsets:
                timers.add(Timer(due - offset, account.stripe_account_id, TimerKind.REMINDER))
    if account.state is State.LINK_ISSUED and account.link_issued_at is not None:
        timers.add(Timer(account.link_issued_at + abandon_after, account.stripe_account_id, TimerKind.ABANDON))
    return tuple(sorted(timers))


def missed_deadline(snapshot: AccountSnapshot, now: datetime) -> str | None:
    """Why the ``deadline`` trigger applies at ``now``, or ``None`` if it does not."""
    for kind, due in _deadlines(snapshot):
        if due <= now:
            fields = (
                snapshot.requirements.currently_due
                if kind is TimerKind.DEADLINE
                else snapshot.future_requirements.currently_due  # type: ignore[union-attr]
            )
            return f"{kind.value}_passed={due.isoformat()};currently_due={len(fields)}"
    return None
