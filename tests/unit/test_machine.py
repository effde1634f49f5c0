"""The machine allows exactly DESIGN §2's edges and refuses the rest, changing nothing."""

from __future__ import annotations

import itertools

import pytest

from onboarding_fsm.errors import TriggerNotAllowed
from onboarding_fsm.machine import allowed, fire, shared_machine
from onboarding_fsm.states import State, Trigger

S = State
DECISIVE = {S.VERIFIED, S.PAST_DUE, S.DISABLED}
CLASSIFIED = {S.RETURNED_INCOMPLETE, *DECISIVE}

# written out from DESIGN §2 independently of machine.EDGES
EXPECTED: dict[Trigger, dict[State, set[State]]] = {
    Trigger.ISSUE_LINK: {s: {S.LINK_ISSUED} for s in (S.CREATED, S.RETURNED_INCOMPLETE, S.PAST_DUE, S.VERIFIED, S.LINK_ISSUED)},
    Trigger.REFRESH: {S.LINK_ISSUED: {S.LINK_ISSUED}},
    Trigger.RETURN: {S.LINK_ISSUED: CLASSIFIED},
    Trigger.SYNC: {
        S.CREATED: {S.CREATED, *DECISIVE},
        S.LINK_ISSUED: {S.LINK_ISSUED, *DECISIVE},
        **dict.fromkeys(CLASSIFIED, CLASSIFIED),
    },
    Trigger.DEADLINE: {s: {S.PAST_DUE} for s in (S.CREATED, S.LINK_ISSUED, S.RETURNED_INCOMPLETE, S.VERIFIED)},
    Trigger.ABANDON: {S.LINK_ISSUED: {S.RETURNED_INCOMPLETE, S.VERIFIED, S.PAST_DUE}},
    Trigger.DEAUTHORIZE: {s: {S.DISABLED} for s in State},
    # issue 9: a detached account Stripe shows the platform again goes where its snapshot classifies
    Trigger.RESTORE: {S.DISABLED: CLASSIFIED},
    # issue 11: the platform's update, applied as Stripe answers it (a sync's edges)
    Trigger.UPDATE: {
        S.CREATED: {S.CREATED, *DECISIVE},
        S.LINK_ISSUED: {S.LINK_ISSUED, *DECISIVE},
        **dict.fromkeys(CLASSIFIED, CLASSIFIED),
    },
}  # fmt: skip

CASES = list(itertools.product(EXPECTED, State, State))


@pytest.mark.parametrize(("trigger", "source", "target"), CASES)
def test_exactly_the_designed_edges(trigger: Trigger, source: State, target: State) -> None:
    expected = target in EXPECTED[trigger].get(source, set())
    if expected:
        assert fire("acct_1", source, trigger, target) is target
    else:
        with pytest.raises(TriggerNotAllowed) as info:
            fire("acct_1", source, trigger, target)
        assert (info.value.state, info.value.trigger) == (source.value, trigger.value)


@pytest.mark.parametrize(("trigger", "source"), list(itertools.product(EXPECTED, State)))
def test_allowed_agrees_with_the_table(trigger: Trigger, source: State) -> None:
    assert allowed(source, trigger) is (source in EXPECTED[trigger])


def test_create_is_not_an_edge() -> None:
    with pytest.raises(TriggerNotAllowed):
        fire("acct_1", State.CREATED, Trigger.CREATE, State.CREATED)


def test_one_shared_machine_without_models_or_auto_transitions() -> None:
    machine = shared_machine()
    assert machine is shared_machine()
    assert machine.models == []
    assert set(machine.events) == {t.value for t in EXPECTED}
    fire("acct_1", State.CREATED, Trigger.ISSUE_LINK, State.LINK_ISSUED)
    assert machine.models == []
