"""What one verified event does to an account: ``webhooks.decide`` as a table,
plus the timestamp window and the reader. No database, no simulator."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from onboarding_fsm import webhooks
from onboarding_fsm.config import EngineConfig
from onboarding_fsm.errors import MalformedEvent, TimestampOutOfTolerance
from onboarding_fsm.events import Outcome
from onboarding_fsm.snapshot import AccountSnapshot, Requirements, parse_account
from onboarding_fsm.states import Source, State, Trigger
from onboarding_fsm.webhooks import Apply, Record, Refetch

from .values import CONFIG, DONE, ID, T0, account, body, event, linked

LATER = T0 + timedelta(seconds=10)
NOW = T0 + timedelta(seconds=20)
REJECTED = {"id": ID, "object": "account", "details_submitted": True, "requirements": {"disabled_reason": "rejected.fraud"}}  # fmt: skip
DEAUTH = {"id": "ca_1", "object": "application"}


def decide(ev: Any, acct: Any, config: EngineConfig = CONFIG) -> webhooks.WebhookDecision:
    payload = parse_account(ev.object) if ev.type == "account.updated" else None
    return webhooks.decide(ev, payload, acct, NOW, config)


# (what arrives, the account as stored) -> (outcome recorded, detail contains)
RECORDED = [
    ("payout type", event("payout.paid", {"id": "po_1", "object": "payout"}), account(), Outcome.IGNORED, "not used"),
    ("unknown account", event(), None, Outcome.IGNORED, "unknown account"),
    ("other mode", event(livemode=True), account(), Outcome.IGNORED, "livemode=True"),
    ("deauthorized twice", event("account.application.deauthorized", DEAUTH), account(State.DISABLED, deauthorized=True), Outcome.IGNORED, "already deauthorized"),
    ("after deauthorization", event(obj=REJECTED), account(State.DISABLED, deauthorized=True), Outcome.IGNORED, "recorded only"),
    ("deleted account", event(obj=REJECTED), account(State.DISABLED, snapshot=replace(DONE, deleted=True)), Outcome.IGNORED, "recorded only"),
    ("object of another account", event(obj={**REJECTED, "id": "acct_2"}), account(), Outcome.IGNORED, "not event.account"),
    ("older than the watermark", event(obj=REJECTED, created=T0 - timedelta(seconds=1)), account(), Outcome.STALE, "older than"),
]  # fmt: skip


@pytest.mark.parametrize(("ev", "acct", "outcome", "detail"), [r[1:] for r in RECORDED], ids=[r[0] for r in RECORDED])
def test_events_that_are_only_recorded(ev: Any, acct: Any, outcome: Outcome, detail: str) -> None:
    decision = decide(ev, acct)
    assert isinstance(decision, Record)
    assert decision.outcome is outcome and detail in decision.detail


# (the account as stored, what the event says) -> where the account goes
APPLIED = [
    ("created, rejected", account(), REJECTED, State.DISABLED),
    ("created, still owing: held", account(), {"id": ID, "requirements": {"currently_due": ["x"]}}, State.CREATED),
    ("in the flow, still owing: held", linked(), {"id": ID, "requirements": {"currently_due": ["x"]}}, State.LINK_ISSUED),
    ("in the flow, done", linked(), {"id": ID, "details_submitted": True}, State.VERIFIED),
    ("verified, owing again", account(State.VERIFIED, DONE), {"id": ID, "details_submitted": True, "requirements": {"currently_due": ["x"]}}, State.RETURNED_INCOMPLETE),
    ("verified, past due", account(State.VERIFIED, DONE), {"id": ID, "details_submitted": True, "requirements": {"currently_due": ["x"], "past_due": ["x"]}}, State.PAST_DUE),
    ("review lifted", account(State.DISABLED, replace(DONE, requirements=Requirements(disabled_reason="under_review"))), {"id": ID, "details_submitted": True}, State.VERIFIED),
]  # fmt: skip


@pytest.mark.parametrize(("acct", "obj", "target"), [r[1:] for r in APPLIED], ids=[r[0] for r in APPLIED])
def test_account_updated_syncs(acct: Any, obj: dict[str, Any], target: State) -> None:
    decision = decide(event(obj={"object": "account", **obj}), acct)
    assert isinstance(decision, Apply)
    change = decision.change
    assert change.after.state is target
    assert (change.after.watermark, change.after.synced_at, change.after.version) == (LATER, NOW, acct.version + 1)
    if change.transition is not None:
        t = change.transition
        assert (t.trigger, t.source, t.source_ref, t.actor, t.stripe_time) == (
            Trigger.SYNC,
            Source.WEBHOOK,
            "evt_1",
            "stripe",
            LATER,
        )
        assert (t.seq, t.prev_hash) == (acct.audit_seq + 1, acct.audit_head)


def test_an_event_that_changes_nothing_worth_recording_still_moves_the_watermark() -> None:
    acct = account(State.VERIFIED, parse_account({"id": ID, "details_submitted": True}), reason="requirements_met")
    decision = decide(event(obj={"id": ID, "object": "account", "details_submitted": True}), acct)
    assert isinstance(decision, Apply)
    assert decision.change.transition is None
    assert decision.change.after.watermark == LATER


def test_deauthorization_disables_for_good() -> None:
    decision = decide(event("account.application.deauthorized", DEAUTH), account(State.VERIFIED, DONE))
    assert isinstance(decision, Apply)
    after = decision.change.after
    assert (after.state, after.deauthorized, after.reason) == (State.DISABLED, True, "deauthorized")
    assert decision.change.transition is not None and decision.change.transition.trigger is Trigger.DEAUTHORIZE


def test_a_tie_with_other_content_asks_stripe_and_a_tie_with_the_same_content_applies() -> None:
    acct = account(State.VERIFIED, parse_account({"id": ID, "details_submitted": True}), watermark=LATER)
    assert isinstance(decide(event(obj=REJECTED, created=LATER), acct), Refetch)
    same = decide(event(obj={"id": ID, "object": "account", "details_submitted": True}, created=LATER), acct)
    assert isinstance(same, Apply)


def test_capability_updated_changes_one_status_of_the_stored_snapshot() -> None:
    cap = {"id": "card_payments", "object": "capability", "account": ID, "status": "pending"}
    decision = decide(event("capability.updated", cap), account(State.VERIFIED, DONE))
    assert isinstance(decision, Apply)
    after = decision.change.after
    assert after.snapshot.capability("card_payments") == "pending"
    assert after.snapshot.capability("transfers") == "active"
    assert after.state is State.RETURNED_INCOMPLETE


def test_unknown_stripe_values_are_reported_and_never_verify() -> None:
    obj = {"id": ID, "object": "account", "details_submitted": True, "requirements": {"disabled_reason": "brand_new"}}
    decision = decide(event(obj=obj), linked())
    assert isinstance(decision, Apply)
    assert decision.change.unknown == ("disabled_reason=brand_new",)
    assert decision.change.after.state is State.LINK_ISSUED  # held, not verified


@pytest.mark.parametrize(("offset", "error"), [(-301, "old"), (301, "future"), (-300, None), (300, None), (0, None)])
def test_the_signature_timestamp_window_is_symmetric(offset: int, error: str | None) -> None:
    signed_at = int(T0.timestamp()) + offset
    if error is None:
        webhooks.check_timestamp(signed_at, T0, timedelta(seconds=300))
    else:
        with pytest.raises(TimestampOutOfTolerance, match=error):
            webhooks.check_timestamp(signed_at, T0, timedelta(seconds=300))


def test_read_gives_the_event_and_its_snapshot() -> None:
    ev, snapshot = webhooks.read(body())
    assert (ev.id, ev.type, ev.account_id) == ("evt_1", "account.updated", ID)
    assert snapshot == AccountSnapshot(id=ID)


@pytest.mark.parametrize(
    "raw",
    [
        body(data={"object": {"id": ID, "requirements": {"currently_due": "x"}}}),
        body(type="capability.updated", data={"object": {"id": 5, "object": "capability"}}),
        body(created="yesterday"),
        b"[]",
    ],
    ids=["bad requirements", "bad capability", "bad created", "not an object"],
)
def test_read_refuses_malformed_events(raw: bytes) -> None:
    with pytest.raises(MalformedEvent):
        webhooks.read(raw)


def test_the_inbox_entry_keeps_no_identity_data() -> None:
    obj = {"id": ID, "object": "account", "individual": {"first_name": "Zebediah"}, "details_submitted": True}
    entry = webhooks.inbox_entry(event(obj=obj), NOW, Outcome.APPLIED, None)
    assert "Zebediah" not in repr(entry.payload)
    assert entry.payload["data"]["object"]["details_submitted"] is True
    assert (entry.received_at, entry.created, entry.outcome) == (NOW, LATER, Outcome.APPLIED)


def test_an_unknown_account_is_retried_only_while_we_are_creating_its_reference() -> None:
    obj = {"id": "acct_new", "object": "account", "metadata": {"onboarding_fsm_ref": "seller-new"}}
    e = event(obj=obj, account_id="acct_new")
    ours = parse_account(obj)
    assert isinstance(webhooks.decide(e, ours, None, NOW, CONFIG, creating=True), webhooks.Retry)
    # no create of ours is open: another environment, a restored database, an orphan for reconcile
    idle = webhooks.decide(e, ours, None, NOW, CONFIG)
    assert isinstance(idle, Record) and idle.outcome is Outcome.IGNORED
    untagged = replace(ours, platform_ref=None)
    assert isinstance(webhooks.decide(e, untagged, None, NOW, CONFIG, creating=True), Record)
    # a live event on a test engine is never retried
    live = event(obj=obj, account_id="acct_new", livemode=True)
    assert isinstance(webhooks.decide(live, ours, None, NOW, CONFIG, creating=True), Record)


# our fetch at T0 (our clock) against events stamped by Stripe's clock, tolerance 5 s
FETCHED = account(State.RETURNED_INCOMPLETE, fetched_at=T0, watermark=None)
SKEW = [
    ("clearly after our fetch", T0 + timedelta(seconds=6), REJECTED, Apply),
    ("within tolerance, says something else", T0 + timedelta(seconds=3), REJECTED, Refetch),
    ("within tolerance, before our fetch, says something else", T0 - timedelta(seconds=4), REJECTED, Refetch),
    ("clearly before our fetch", T0 - timedelta(seconds=7), REJECTED, Record),
]


@pytest.mark.parametrize(("created", "obj", "expected"), [r[1:] for r in SKEW], ids=[r[0] for r in SKEW])
def test_events_near_our_own_fetch_are_settled_by_asking_stripe(created: Any, obj: Any, expected: type) -> None:
    decision = decide(event(obj=obj, created=created), FETCHED)
    assert isinstance(decision, expected)
    if isinstance(decision, Record):
        assert decision.outcome is Outcome.STALE


def test_an_event_near_our_fetch_that_agrees_with_it_applies_without_asking_stripe() -> None:
    same = {"id": ID, "object": "account", "details_submitted": True}
    stored = replace(FETCHED, snapshot=parse_account(same))
    decision = decide(event(obj=same, created=T0 + timedelta(seconds=2)), stored)
    assert isinstance(decision, Apply) and decision.change.after.snapshot == stored.snapshot
