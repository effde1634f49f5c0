"""The machine definition: one table, one shared ``transitions.Machine``.

Accounts are never registered as models (``add_model`` is quadratic and a
machine per account costs 0.1–1 ms and KBs each). Instead ``fire`` runs the
named event of the one shared machine on a throw-away cursor holding the
loaded account's state: ~20 µs, constant memory. Triggers whose destination
is decided by ``classify`` (``return``, ``sync``) have one edge per possible
destination, and every edge is guarded by a condition on the requested
target, so the table states exactly which moves exist and the diagram shows
them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import Any

from transitions import EventData, Machine, MachineError

from .errors import TriggerNotAllowed
from .states import State, Trigger

S = State
_ANY = tuple(State)
_CLASSIFIED = (S.RETURNED_INCOMPLETE, S.VERIFIED, S.PAST_DUE, S.DISABLED)

#: (trigger, sources, destinations) — DESIGN §2, the single source of truth
EDGES: tuple[tuple[Trigger, tuple[State, ...], tuple[State, ...]], ...] = (
    (
        Trigger.ISSUE_LINK,
        (S.CREATED, S.RETURNED_INCOMPLETE, S.PAST_DUE, S.VERIFIED, S.LINK_ISSUED),
        (S.LINK_ISSUED,),
    ),
    (Trigger.REFRESH, (S.LINK_ISSUED,), (S.LINK_ISSUED,)),
    (Trigger.RETURN, (S.LINK_ISSUED,), _CLASSIFIED),
    # before the holder is back, "still owes something" holds the account where
    # it is (classify.sync_target); decisive classifications apply at once
    (Trigger.SYNC, (S.CREATED,), (S.CREATED, S.VERIFIED, S.PAST_DUE, S.DISABLED)),
    (Trigger.SYNC, (S.LINK_ISSUED,), (S.LINK_ISSUED, S.VERIFIED, S.PAST_DUE, S.DISABLED)),
    (Trigger.SYNC, _CLASSIFIED, _CLASSIFIED),
    # the platform's own change, applied as Stripe answers it (a sync's rules,
    # always recorded); the engine asks for none on a disabled account, but one
    # disabled while Stripe was being asked still gets its record
    (Trigger.UPDATE, (S.CREATED,), (S.CREATED, S.VERIFIED, S.PAST_DUE, S.DISABLED)),
    (Trigger.UPDATE, (S.LINK_ISSUED,), (S.LINK_ISSUED, S.VERIFIED, S.PAST_DUE, S.DISABLED)),
    (Trigger.UPDATE, _CLASSIFIED, _CLASSIFIED),
    (Trigger.DEADLINE, (S.CREATED, S.LINK_ISSUED, S.RETURNED_INCOMPLETE, S.VERIFIED), (S.PAST_DUE,)),
    (Trigger.ABANDON, (S.LINK_ISSUED,), (S.RETURNED_INCOMPLETE, S.VERIFIED, S.PAST_DUE)),
    (Trigger.DEAUTHORIZE, _ANY, (S.DISABLED,)),
    (Trigger.RESTORE, (S.DISABLED,), (S.RETURNED_INCOMPLETE, S.VERIFIED, S.PAST_DUE, S.DISABLED)),
)
INITIAL = S.CREATED


def _target_is(dest: State) -> Callable[[EventData], bool]:
    def condition(event: EventData) -> bool:
        return bool(event.kwargs.get("target") == dest.value)

    condition.__name__ = f"target_is_{dest.value}"
    return condition


def definition(*, guarded: bool = True) -> dict[str, Any]:
    """Keyword arguments for a ``transitions`` machine built from ``EDGES``."""
    transitions: list[dict[str, Any]] = []
    for trigger, sources, dests in EDGES:
        for dest in dests:
            edge: dict[str, Any] = {
                "trigger": trigger.value,
                "source": [s.value for s in sources],
                "dest": dest.value,
            }
            if guarded:
                edge["conditions"] = [_target_is(dest)]
            transitions.append(edge)
    return {
        "states": [s.value for s in State],
        "transitions": transitions,
        "initial": INITIAL.value,
        "auto_transitions": False,
    }


@cache
def shared_machine() -> Machine:
    """Built on first use, never at import time.

    ``transitions`` logs every callback at INFO; the engine writes one line
    per transition itself, so the library's chatter is raised to WARNING.
    """
    logging.getLogger("transitions").setLevel(logging.WARNING)
    return Machine(model=None, send_event=True, **definition())


class _Cursor:
    """The only "model" the machine ever sees: one attribute, no registration."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


def fire(account_id: str, state: State, trigger: Trigger, target: State) -> State:
    """Move ``state`` by ``trigger`` to ``target`` or raise ``TriggerNotAllowed``.

    Nothing is mutated on refusal: the cursor is discarded either way.
    """
    machine = shared_machine()
    event = machine.events.get(trigger.value)
    if event is None:
        raise TriggerNotAllowed(account_id, state.value, trigger.value, target.value)
    cursor = _Cursor(state.value)
    try:
        moved = event.trigger(cursor, target=target.value)
    except MachineError:
        raise TriggerNotAllowed(account_id, state.value, trigger.value, target.value) from None
    if not moved or cursor.state != target.value:
        raise TriggerNotAllowed(account_id, state.value, trigger.value, target.value)
    return State(cursor.state)


def allowed(state: State, trigger: Trigger) -> bool:
    return any(trigger is t and state in sources for t, sources, _ in EDGES)
