"""Which timers an account has, and what a due timer does: ``deadlines`` as tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from onboarding_fsm import deadlines
from onboarding_fsm.config import EngineConfig
from onboarding_fsm.deadlines import Fire, Remind, Skip
from onboarding_fsm.moves import Change
from onboarding_fsm.snapshot import Requirements
from onboarding_fsm.states import Source, State, Trigger
from onboarding_fsm.timers import Timer, TimerKind

from .values import CONFIG, DONE, ID, T0, account, future, linked, owing

DUE = T0 + timedelta(days=14)
DAY, WEEK = timedelta(days=1), timedelta(days=7)
ABANDON_AT = T0 + CONFIG.abandon_after


def timers(*pairs: tuple[Any, TimerKind]) -> tuple[Timer, ...]:
    return tuple(sorted(Timer(at, ID, kind) for at, kind in pairs))


DEADLINE_TIMERS = timers((DUE, TimerKind.DEADLINE), (DUE - WEEK, TimerKind.REMINDER), (DUE - DAY, TimerKind.REMINDER))

# the account -> the timers it must have
DERIVED = [
    ("nothing owed", account(State.VERIFIED, DONE), ()),
    ("owed without a deadline", account(State.RETURNED_INCOMPLETE, owing("x")), ()),
    ("owed with a deadline", account(State.RETURNED_INCOMPLETE, owing("x", deadline=DUE)), DEADLINE_TIMERS),
    ("a deadline, nothing currently due", account(State.VERIFIED, owing(deadline=DUE)), ()),
    ("future requirements", account(State.VERIFIED, future("x", deadline=DUE)),
     timers((DUE, TimerKind.FUTURE_DEADLINE), (DUE - WEEK, TimerKind.REMINDER), (DUE - DAY, TimerKind.REMINDER))),
    ("already past due: no deadline timers", account(State.PAST_DUE, owing("x", deadline=DUE)), ()),
    ("disabled: none at all", linked(State.DISABLED), ()),
    ("deauthorized: none at all", account(State.RETURNED_INCOMPLETE, owing("x", deadline=DUE), deauthorized=True), ()),
    ("in the flow", linked(), timers((ABANDON_AT, TimerKind.ABANDON))),
    ("in the flow with a deadline", linked(snapshot=owing("x", deadline=DUE)), DEADLINE_TIMERS + timers((ABANDON_AT, TimerKind.ABANDON))),
]  # fmt: skip


@pytest.mark.parametrize(("acct", "expected"), [r[1:] for r in DERIVED], ids=[r[0] for r in DERIVED])
def test_derived_timers(acct: Any, expected: tuple[Timer, ...]) -> None:
    assert deadlines.derive_timers(acct, CONFIG) == tuple(sorted(expected))


def test_reminder_offsets_and_abandonment_come_from_the_config() -> None:
    config = EngineConfig(reminder_offsets=(timedelta(hours=2),), abandon_after=timedelta(hours=1))
    acct = linked(snapshot=owing("x", deadline=DUE))
    assert deadlines.derive_timers(acct, config) == timers(
        (DUE, TimerKind.DEADLINE),
        (DUE - timedelta(hours=2), TimerKind.REMINDER),
        (T0 + timedelta(hours=1), TimerKind.ABANDON),
    )


def test_timers_are_rederived_only_when_they_change() -> None:
    before = account(State.RETURNED_INCOMPLETE, owing("x", deadline=DUE))
    assert deadlines.rederived(Change(before, replace(before, reason="other"), None), CONFIG) is None
    fixed = replace(before, state=State.VERIFIED, snapshot=DONE)
    assert deadlines.rederived(Change(before, fixed, None), CONFIG) == ()


def fire_at(acct: Any, timer: Timer, now: Any) -> deadlines.TimerDecision:
    return deadlines.decide(acct, timer, now, CONFIG)


# (account, timer, now) -> the transition it fires, or why it is skipped
DECISIONS = [
    ("deadline passed with fields due", account(State.RETURNED_INCOMPLETE, owing("x", deadline=DUE)), TimerKind.DEADLINE, DUE, State.PAST_DUE),
    ("deadline passed while verified", account(State.VERIFIED, owing("x", deadline=DUE)), TimerKind.DEADLINE, DUE + DAY, State.PAST_DUE),
    # a future deadline moves nothing by itself: the fetched snapshot (already applied) is Stripe's answer
    ("future deadline passed", account(State.VERIFIED, future("x", deadline=DUE)), TimerKind.FUTURE_DEADLINE, DUE, "Stripe's fetched answer"),
    ("deadline, but the fields were provided", account(State.VERIFIED, DONE), TimerKind.DEADLINE, DUE, "no longer applies"),
    ("deadline, moved later", account(State.RETURNED_INCOMPLETE, owing("x", deadline=DUE + WEEK)), TimerKind.DEADLINE, DUE, "no longer applies"),
    ("deadline, already disabled", account(State.DISABLED, owing("x", deadline=DUE)), TimerKind.DEADLINE, DUE, "no longer applies"),
    ("abandoned in the flow", linked(), TimerKind.ABANDON, ABANDON_AT, State.RETURNED_INCOMPLETE),
    # an optional link ignored by an account owing nothing demotes nothing
    ("abandoned with nothing owed", linked(snapshot=DONE), TimerKind.ABANDON, ABANDON_AT, State.VERIFIED),
    # a past-due account that ignored its link stays past due (Stripe says so, or its deadline passed)
    ("abandoned, Stripe says past due", linked(snapshot=replace(DONE, requirements=Requirements(currently_due=("x",), past_due=("x",)))),
     TimerKind.ABANDON, ABANDON_AT, State.PAST_DUE),
    ("abandoned, our deadline passed before the link", linked(snapshot=owing("x", deadline=T0)), TimerKind.ABANDON, ABANDON_AT, State.PAST_DUE),
    # the deadline passed after the link: the stored snapshot may be stale, the deadline timer asks Stripe
    ("abandoned, deadline passed since", linked(snapshot=owing("x", deadline=T0 + DAY / 2)), TimerKind.ABANDON, ABANDON_AT, State.RETURNED_INCOMPLETE),
    ("abandon, but the holder came back", linked(State.VERIFIED, snapshot=DONE), TimerKind.ABANDON, ABANDON_AT, "already returned"),
    ("abandon, but a newer link was issued", linked(issued=T0 + DAY), TimerKind.ABANDON, ABANDON_AT, "re-issued"),
]  # fmt: skip


@pytest.mark.parametrize(("acct", "kind", "now", "expected"), [r[1:] for r in DECISIONS], ids=[r[0] for r in DECISIONS])
def test_what_a_due_timer_does(acct: Any, kind: TimerKind, now: Any, expected: State | str) -> None:
    due = now if kind is not TimerKind.ABANDON else ABANDON_AT
    decision = fire_at(acct, Timer(due, ID, kind), now)
    if not isinstance(expected, State):  # State is a str too: test it first
        assert isinstance(decision, Skip) and expected in decision.why
        return
    assert isinstance(decision, Fire)
    t = decision.change.transition
    assert t is not None and decision.change.after.state is expected
    assert (t.source, t.actor, t.source_ref) == (Source.SCHEDULER, "scheduler", f"timer:{kind.value}@{due.isoformat()}")
    assert t.trigger is (Trigger.ABANDON if kind is TimerKind.ABANDON else Trigger.DEADLINE)


def test_the_deadline_reason_names_the_deadline_and_the_fields() -> None:
    decision = fire_at(account(State.VERIFIED, owing("x", "y", deadline=DUE)), Timer(DUE, ID, TimerKind.DEADLINE), DUE)
    assert isinstance(decision, Fire)
    assert decision.change.after.reason == f"deadline_passed={DUE.isoformat()};currently_due=2"


def test_a_reminder_changes_nothing_and_says_what_is_due_when() -> None:
    acct = account(
        State.RETURNED_INCOMPLETE,
        replace(owing("x", deadline=DUE), future_requirements=future("y", deadline=DUE + WEEK).future_requirements),
    )
    decision = fire_at(acct, Timer(DUE - DAY, ID, TimerKind.REMINDER), DUE - DAY)
    assert isinstance(decision, Remind)
    assert decision.message == {
        "type": "onboarding.deadline_approaching",
        "account": ID,
        "platform_ref": "seller-1",
        "state": "returned_incomplete",
        "reminder_at": (DUE - DAY).isoformat(),
        "deadlines": {
            "requirements": {"deadline": DUE.isoformat(), "currently_due": ["x"]},
            "future_requirements": {"deadline": (DUE + WEEK).isoformat(), "currently_due": ["y"]},
        },
    }


def test_missed_deadline() -> None:
    snapshot = owing("x", deadline=DUE)
    assert deadlines.missed_deadline(snapshot, DUE - timedelta(seconds=1)) is None
    assert deadlines.missed_deadline(snapshot, DUE) == f"deadline_passed={DUE.isoformat()};currently_due=1"
    assert deadlines.missed_deadline(DONE, DUE + WEEK) is None
