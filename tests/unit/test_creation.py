"""An account's birth, adoption, and the one way accounts change (``moves``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from onboarding_fsm import creation, moves
from onboarding_fsm.account import NewAccount
from onboarding_fsm.audit import GENESIS, Cause, verify_chain
from onboarding_fsm.errors import InvalidInput, TriggerNotAllowed
from onboarding_fsm.snapshot import Requirements
from onboarding_fsm.states import Source, State, Trigger
from onboarding_fsm.timers import TimerKind

from .values import CONFIG, DONE, FRESH, ID, T0, account, owing

NEW = NewAccount("seller-1", "US", ("card_payments", "transfers"))
API = Cause(Source.API, actor="ops")


def test_the_idempotency_key_is_stable_and_says_nothing_of_the_reference() -> None:
    key = creation.idempotency_key("seller-1")
    assert key == creation.idempotency_key("seller-1") != creation.idempotency_key("seller-2")
    assert key.startswith("onboarding-fsm-create-") and "seller" not in key and len(key) <= 255


def test_a_fresh_account_is_born_created_and_stays_there() -> None:
    born = creation.birth(NEW, FRESH, API, T0, CONFIG)
    assert born.then is None and born.final is born.account
    a = born.account
    assert (a.state, a.version, a.audit_seq, a.platform_ref) == (State.CREATED, 1, 1, "seller-1")
    # Stripe's create answer may be a replay of an older one: no fetch time, no Stripe event time yet
    assert (a.fetched_at, a.watermark, a.livemode) == (None, None, CONFIG.livemode)
    assert (
        a.reason
        == "currently_due=2;details_not_submitted;capability.card_payments=inactive;capability.transfers=inactive"
    )
    r = born.record
    assert (r.seq, r.prev_hash, r.from_state, r.to_state, r.trigger, r.actor) == (
        1,
        GENESIS,
        None,
        State.CREATED,
        Trigger.CREATE,
        "ops",
    )
    assert r.delta[0].list_name == "currently_due" and r.delta[0].added == ("business_type", "tos_acceptance.date")
    assert born.records == (r,) and verify_chain(ID, born.records, a.audit_head).ok


def test_a_decisive_first_answer_follows_the_birth_in_the_same_write() -> None:
    rejected = replace(FRESH, requirements=Requirements(disabled_reason="rejected.fraud"))
    born = creation.birth(NEW, rejected, API, T0, CONFIG)
    assert born.account.reason == "created"
    assert born.then is not None and born.final.state is State.DISABLED and born.final.version == 2
    assert [t.to_state for t in born.records] == [State.CREATED, State.DISABLED]
    assert verify_chain(ID, born.records, born.final.audit_head).ok


def test_a_birth_with_a_deadline_brings_its_timers() -> None:
    due = T0 + timedelta(days=3)
    born = creation.birth(NEW, replace(owing("x", deadline=due), details_submitted=False), API, T0, CONFIG)
    assert TimerKind.DEADLINE in {t.kind for t in born.timers}


def test_adoption_needs_our_reference() -> None:
    tagged = replace(DONE, platform_ref="seller-9", country="GB")
    assert creation.adoption(tagged) == NewAccount("seller-9", "GB", ("card_payments", "transfers"))
    with pytest.raises(InvalidInput):
        creation.adoption(DONE)


def test_a_move_refused_by_the_machine_changes_nothing() -> None:
    acct = account(State.DISABLED)
    with pytest.raises(TriggerNotAllowed):
        moves.move(acct, Trigger.ABANDON, State.RETURNED_INCOMPLETE, "x", API, T0)


def test_a_quiet_sync_has_no_record_but_a_new_version() -> None:
    acct = account(State.VERIFIED, DONE, reason="requirements_met")
    change = moves.classified(acct, DONE, Trigger.SYNC, API, T0, CONFIG.policy)
    assert change.transition is None and change.after.version == acct.version + 1
    assert change.after.audit_head == acct.audit_head


@pytest.mark.parametrize(
    ("stored", "covers", "expected"),
    [
        (T0 - timedelta(hours=1), None, T0 - timedelta(hours=1)),  # a fetch is not a Stripe time
        (T0 - timedelta(hours=1), T0 - timedelta(seconds=3), T0 - timedelta(seconds=3)),  # it answered an event
        (T0 + timedelta(minutes=5), T0, T0 + timedelta(minutes=5)),  # never lowered
    ],
    ids=["fetch keeps it", "raised to the event it answered", "never lowered"],
)
def test_a_fetched_snapshot_applies_and_stamps_our_fetch_time(stored: object, covers: Any, expected: object) -> None:
    now = T0.replace(microsecond=654321)
    change = moves.fetched(
        account(State.RETURNED_INCOMPLETE, watermark=stored), DONE, API, now, CONFIG.policy, returning=False,
        covers=covers,
    )  # fmt: skip
    assert change is not None and change.after.watermark == expected
    assert change.after.synced_at == now and change.after.fetched_at == now
    assert change.after.state is State.VERIFIED


def test_a_return_is_its_own_trigger_only_from_the_flow() -> None:
    linked = account(State.LINK_ISSUED)
    returned = moves.fetched(linked, FRESH, API, T0, CONFIG.policy, returning=True)
    assert returned is not None and returned.transition is not None
    assert (returned.transition.trigger, returned.after.state) == (Trigger.RETURN, State.RETURNED_INCOMPLETE)
    synced = moves.fetched(account(State.VERIFIED, DONE), DONE, API, T0, CONFIG.policy, returning=True)
    assert synced is not None and synced.after.state is State.VERIFIED


def test_nothing_moves_a_detached_account_but_it_can_be_detached_once() -> None:
    gone = account(State.DISABLED, deauthorized=True)
    assert moves.fetched(gone, DONE, API, T0, CONFIG.policy, returning=False) is None
    assert moves.detach(gone, "lost", API, T0) is None
    change = moves.detach(account(State.VERIFIED, DONE), "not found at Stripe", API, T0)
    assert change is not None and (change.after.state, change.after.deauthorized) == (State.DISABLED, True)
