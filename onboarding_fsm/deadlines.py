"""Deadlines: which timers an account has, and what a due timer does.

Both are pure. ``derive_timers`` is re-run after every change, so timers
follow the account (a new deadline replaces the old one, a fixed account
has none). ``decide`` looks at one due timer and the account and answers
with a ``Fire`` (a transition), a ``Remind`` (an outbox message, no state
change) or a ``Skip`` (the timer no longer applies).

Deadline timers (``needs_fresh``) are decided on a snapshot fetched from
Stripe when they fire, never on the stored one: the holder may have finished
while the webhooks were held, and a stale snapshot must never move an
account to ``past_due``. The sweep applies the fetched snapshot first (a
``sync``) and only then asks ``decide``. Reminders and abandonment need no
Stripe call: a reminder changes no state, and abandonment goes to what the
stored snapshot classifies to, never below ``returned_incomplete``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .account import Account
from .audit import Cause
from .classify import classify
from .config import EngineConfig
from .machine import allowed
from .moves import Change, move
from .runs import Run
from .snapshot import AccountSnapshot, Requirements
from .states import Source, State, Trigger
from .timers import Timer, TimerKind

REMINDER_KIND = "deadline_approaching"


@dataclass(frozen=True, slots=True)
class Fire:
    change: Change


@dataclass(frozen=True, slots=True)
class Remind:
    """An outbox message of kind ``REMINDER_KIND``; the account does not change."""

    message: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Skip:
    why: str


TimerDecision = Fire | Remind | Skip


def _deadlines(snapshot: AccountSnapshot) -> list[tuple[TimerKind, datetime, Requirements]]:
    out = []
    req = snapshot.requirements
    if req.current_deadline is not None and req.currently_due:
        out.append((TimerKind.DEADLINE, req.current_deadline, req))
    fut = snapshot.future_requirements
    if fut is not None and fut.current_deadline is not None and fut.currently_due:
        out.append((TimerKind.FUTURE_DEADLINE, fut.current_deadline, fut))
    return out


def derive_timers(account: Account, config: EngineConfig) -> tuple[Timer, ...]:
    """Every timer the account should have now (fired ones are the store's business)."""
    if account.detached or account.state is State.DISABLED:
        return ()
    timers: set[Timer] = set()
    if account.state is not State.PAST_DUE:
        for kind, due, _ in _deadlines(account.snapshot):
            timers.add(Timer(due, account.stripe_account_id, kind))
            for offset in config.reminder_offsets:
                timers.add(Timer(due - offset, account.stripe_account_id, TimerKind.REMINDER))
    if account.state is State.LINK_ISSUED and account.link_issued_at is not None:
        timers.add(Timer(account.link_issued_at + config.abandon_after, account.stripe_account_id, TimerKind.ABANDON))
    return tuple(sorted(timers))


def rederived(change: Change, config: EngineConfig) -> tuple[Timer, ...] | None:
    """The account's timers after ``change``, or None when they did not change
    (the store then leaves the timer rows alone)."""
    old = derive_timers(change.before, config)
    new = derive_timers(change.after, config)
    return None if old == new else new


def missed_deadline(snapshot: AccountSnapshot, now: datetime) -> str | None:
    """Why the ``deadline`` trigger applies at ``now``, or None if it does not:
    ``requirements.current_deadline`` passed with ``currently_due`` non-empty.
    (A passed ``future_requirements`` deadline moves nothing by itself: the
    fetched snapshot says what Stripe made of it.)"""
    req = snapshot.requirements
    if req.current_deadline is not None and req.current_deadline <= now and req.currently_due:
        return f"deadline_passed={req.current_deadline.isoformat()};currently_due={len(req.currently_due)}"
    return None


def needs_fresh(timer: Timer) -> bool:
    """Decided only on a snapshot fetched from Stripe when it fires."""
    return timer.kind in (TimerKind.DEADLINE, TimerKind.FUTURE_DEADLINE)


def cause_of(timer: Timer, run: Run | None = None) -> Cause:
    """The timer fired in ``run`` (a scheduler's sweep unless an operator's)."""
    ref = f"timer:{timer.kind.value}@{timer.due_at.isoformat()}"
    return run.cause(ref) if run is not None else Cause(Source.SCHEDULER, ref, "scheduler")


def decide(
    account: Account, timer: Timer, now: datetime, config: EngineConfig, cause: Cause | None = None
) -> TimerDecision:
    """What the due ``timer`` does to ``account`` at ``now``; for a deadline
    timer ``account`` must carry the snapshot just fetched from Stripe."""
    cause = cause or cause_of(timer)
    if timer.kind is TimerKind.REMINDER:
        return Remind(reminder(account, timer))
    if timer.kind is TimerKind.ABANDON:
        issued = account.link_issued_at
        if account.state is State.LINK_ISSUED and issued is not None and issued + config.abandon_after <= now:
            target, what = abandoned_to(account, issued, config)
            reason = f"abandoned: no return within {int(config.abandon_after.total_seconds())} s; {what}"
            return Fire(move(account, Trigger.ABANDON, target, reason, cause, now))
        return Skip("link already returned or re-issued")
    if timer.kind is TimerKind.FUTURE_DEADLINE:
        return Skip("future requirements deadline: Stripe's fetched answer applied")
    missed = missed_deadline(account.snapshot, now)
    if missed is not None and allowed(account.state, Trigger.DEADLINE):
        return Fire(move(account, Trigger.DEADLINE, State.PAST_DUE, missed, cause, now))
    return Skip("deadline no longer applies")


def abandoned_to(account: Account, issued: datetime, config: EngineConfig) -> tuple[State, str]:
    """Where a holder who never came back leaves the account: where the stored
    snapshot put it when the link was issued. An optional ``account_update``
    link ignored by a verified account demotes nothing; a past-due account
    that ignored its link is still past due (its deadline timer has fired
    already). A deadline that passed only *after* the link is not decided
    here on the stored snapshot: its own timer asks Stripe."""
    result = classify(account.snapshot, config.policy, now=issued)
    missed = missed_deadline(account.snapshot, issued)
    if result.state is State.PAST_DUE or missed is not None:
        return State.PAST_DUE, result.reason if result.state is State.PAST_DUE else str(missed)
    if result.state is State.VERIFIED:
        return State.VERIFIED, result.reason
    return State.RETURNED_INCOMPLETE, result.reason


def reminder(account: Account, timer: Timer) -> dict[str, Any]:
    """The ``deadline_approaching`` message downstream consumers get."""
    deadlines: dict[str, Any] = {}
    sections = (
        ("requirements", account.snapshot.requirements),
        ("future_requirements", account.snapshot.future_requirements),
    )
    for key, requirements in sections:
        if requirements is not None and requirements.current_deadline is not None:
            deadlines[key] = {
                "deadline": requirements.current_deadline.isoformat(),
                "currently_due": list(requirements.currently_due),
            }
    return {
        "type": "onboarding.deadline_approaching",
        "account": account.stripe_account_id,
        "platform_ref": account.platform_ref,
        "state": account.state.value,
        "reminder_at": timer.due_at.isoformat(),
        "deadlines": deadlines,
    }
