"""Due timers: the moments a scheduler must look at an account again.

They are re-derived from the account after every change (``deadlines``) and
stored as rows keyed by (account, kind, due time), so a sweep fires each at
most once, late but once after downtime, and any number of workers can share
the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .account import Account


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


@dataclass(frozen=True, slots=True)
class ClaimedTimer:
    """A due timer a sweep holds, with its account as stored (None if the
    account is gone) and how many times Stripe could not be asked about it."""

    timer: Timer
    account: Account | None
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class TimerBacklog:
    """For metrics: timers awake and not yet fired, and those Stripe could not
    be asked about at least once (backing off)."""

    due: int
    retrying: int
    #: unfired although due longer ago than the overdue threshold: no worker is
    #: sweeping, or Stripe has not answered for that long
    overdue: int = 0
