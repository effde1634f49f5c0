"""classify() over every disabled_reason, open enums, missing keys and the hold rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onboarding_fsm.classify import classify, sync_target
from onboarding_fsm.policy import Collection, Policy
from onboarding_fsm.snapshot import AccountSnapshot, RequirementError, Requirements, parse_account
from onboarding_fsm.states import State

INCREMENTAL = Policy(Collection.INCREMENTAL)
UPFRONT = Policy(Collection.UPFRONT)

DONE = AccountSnapshot(
    id="acct_1",
    details_submitted=True,
    charges_enabled=True,
    payouts_enabled=True,
    capabilities=(("card_payments", "active"), ("transfers", "active")),
)


def with_req(**fields: object) -> AccountSnapshot:
    return replace(DONE, requirements=Requirements(**fields))  # type: ignore[arg-type]


# every value Stripe documents today, and where it must land
DISABLED_REASONS = {
    "action_required.requested_capabilities": State.RETURNED_INCOMPLETE,
    "listed": State.DISABLED,
    "other": State.DISABLED,
    "platform_paused": State.DISABLED,
    "rejected.fraud": State.DISABLED,
    "rejected.incomplete_verification": State.DISABLED,
    "rejected.listed": State.DISABLED,
    "rejected.other": State.DISABLED,
    "rejected.platform_fraud": State.DISABLED,
    "rejected.platform_other": State.DISABLED,
    "rejected.platform_terms_of_service": State.DISABLED,
    "rejected.terms_of_service": State.DISABLED,
    "requirements.past_due": State.PAST_DUE,
    "requirements.pending_verification": State.RETURNED_INCOMPLETE,
    "under_review": State.DISABLED,
}


def test_the_table_covers_all_fifteen_documented_values() -> None:
    assert len(DISABLED_REASONS) == 15


@pytest.mark.parametrize(("reason", "expected"), sorted(DISABLED_REASONS.items()))
@pytest.mark.parametrize("policy", [INCREMENTAL, UPFRONT], ids=["incremental", "upfront"])
def test_every_disabled_reason(reason: str, expected: State, policy: Policy) -> None:
    result = classify(with_req(disabled_reason=reason), policy)
    assert result.state is expected
    assert reason in result.reason
    assert result.unknown == ()


@pytest.mark.parametrize("reason", ["rejected.new_kind", "rejected."])
def test_unknown_rejection_is_disabled_and_reported(reason: str) -> None:
    result = classify(with_req(disabled_reason=reason), INCREMENTAL)
    assert result.state is State.DISABLED
    assert result.unknown == (f"disabled_reason={reason}",)


@pytest.mark.parametrize("reason", ["something_new", "requirements.new_kind", "action_required.other", ""])
def test_unknown_disabled_reason_is_never_verified(reason: str) -> None:
    result = classify(with_req(disabled_reason=reason), INCREMENTAL)
    assert result.state is State.RETURNED_INCOMPLETE
    assert result.unknown == (f"disabled_reason={reason}",)


def test_unknown_capability_status_is_never_verified() -> None:
    snap = replace(DONE, capabilities=(("card_payments", "active"), ("transfers", "paused_new")))
    result = classify(snap, INCREMENTAL)
    assert result.state is State.RETURNED_INCOMPLETE
    assert result.unknown == ("capability.transfers=paused_new",)


def test_nothing_owed_is_verified() -> None:
    result = classify(DONE, INCREMENTAL)
    assert (result.state, result.reason) == (State.VERIFIED, "requirements_met")


def test_incremental_ignores_eventually_due_upfront_does_not() -> None:
    snap = with_req(eventually_due=("individual.id_number",))
    assert classify(snap, INCREMENTAL).state is State.VERIFIED
    upfront = classify(snap, UPFRONT)
    assert upfront.state is State.RETURNED_INCOMPLETE
    assert "eventually_due=1" in upfront.reason


@pytest.mark.parametrize(
    ("requirements", "cause"),
    [
        ({"currently_due": ("individual.dob.day",)}, "currently_due=1"),
        ({"errors": (RequirementError("verification_failed_keyed_identity", "individual.dob.day"),)}, "errors=1"),
        ({"pending_verification": ("individual.id_number",)}, "pending_verification=1"),
    ],
)
def test_anything_owed_is_incomplete(requirements: dict[str, object], cause: str) -> None:
    result = classify(with_req(**requirements), INCREMENTAL)
    assert result.state is State.RETURNED_INCOMPLETE
    assert cause in result.reason


def test_details_not_submitted_is_incomplete() -> None:
    result = classify(replace(DONE, details_submitted=False), INCREMENTAL)
    assert result.state is State.RETURNED_INCOMPLETE
    assert "details_not_submitted" in result.reason


@pytest.mark.parametrize("status", ["inactive", "pending"])
def test_required_capability_not_active_is_incomplete(status: str) -> None:
    snap = replace(DONE, capabilities=(("card_payments", status), ("transfers", "active")))
    result = classify(snap, INCREMENTAL)
    assert result.state is State.RETURNED_INCOMPLETE
    assert f"capability.card_payments={status}" in result.reason


def test_policy_decides_which_capabilities_matter() -> None:
    snap = replace(DONE, capabilities=(("card_payments", "inactive"), ("transfers", "active")))
    assert classify(snap, Policy(required_capabilities=frozenset({"transfers"}))).state is State.VERIFIED
    missing = classify(DONE, Policy(required_capabilities=frozenset({"us_bank_account_ach_payments"})))
    assert missing.state is State.RETURNED_INCOMPLETE
    assert "capability.us_bank_account_ach_payments=missing" in missing.reason


def test_past_due_fields_beat_incomplete_and_disabled_beats_past_due() -> None:
    assert classify(with_req(past_due=("x",), currently_due=("x",)), INCREMENTAL).state is State.PAST_DUE
    both = with_req(past_due=("x",), currently_due=("x",), disabled_reason="rejected.fraud")
    assert classify(both, INCREMENTAL).state is State.DISABLED


def test_deleted_account_is_disabled() -> None:
    result = classify(replace(DONE, deleted=True), INCREMENTAL)
    assert (result.state, result.reason) == (State.DISABLED, "deleted")


def test_future_requirements_never_change_the_state() -> None:
    future = Requirements(currently_due=("individual.id_number",), past_due=("x",), disabled_reason="rejected.fraud")
    assert classify(replace(DONE, future_requirements=future), UPFRONT).state is State.VERIFIED


MINIMAL = {
    "id": "acct_1",
    "object": "account",
    "details_submitted": True,
    "capabilities": {"card_payments": "active"},
    "requirements": {"currently_due": [], "eventually_due": [], "past_due": [], "pending_verification": [],
                     "errors": [], "current_deadline": None, "disabled_reason": None},
}  # fmt: skip


def test_old_api_versions_without_alternatives_or_future_requirements() -> None:
    snap = parse_account(MINIMAL)
    assert snap.future_requirements is None
    assert snap.requirements.alternatives is None
    assert classify(snap, UPFRONT).state is State.VERIFIED


@pytest.mark.parametrize("key", ["currently_due", "eventually_due", "past_due", "pending_verification", "errors"])
def test_missing_requirement_lists_read_as_empty(key: str) -> None:
    raw = {**MINIMAL, "requirements": {k: v for k, v in MINIMAL["requirements"].items() if k != key}}  # type: ignore[attr-defined]
    assert classify(parse_account(raw), INCREMENTAL).state is State.VERIFIED


def test_account_without_requirements_hash_at_all() -> None:
    raw = {k: v for k, v in MINIMAL.items() if k != "requirements"}
    assert classify(parse_account(raw), INCREMENTAL).state is State.VERIFIED


# --- the hold rule ----------------------------------------------------------------


@pytest.mark.parametrize("current", list(State))
@pytest.mark.parametrize("classified", [State.RETURNED_INCOMPLETE, State.VERIFIED, State.PAST_DUE, State.DISABLED])
def test_sync_target(current: State, classified: State) -> None:
    held = classified is State.RETURNED_INCOMPLETE and current in (State.CREATED, State.LINK_ISSUED)
    assert sync_target(current, classified, detached=False) is (current if held else classified)
    assert sync_target(current, classified, detached=True) is State.DISABLED


# --- properties -------------------------------------------------------------------

names = st.sampled_from(["individual.dob.day", "external_account", "business_profile.url", "company.tax_id"])
field_lists = st.lists(names, max_size=3, unique=True).map(tuple)


@given(
    currently_due=field_lists,
    eventually_due=field_lists,
    pending=field_lists,
    disabled_reason=st.one_of(st.none(), st.sampled_from(sorted(DISABLED_REASONS)), st.text(max_size=12)),
    details=st.booleans(),
    caps=st.lists(st.tuples(st.sampled_from(["card_payments", "transfers"]), st.sampled_from(["active", "inactive", "pending", "weird"])), max_size=2),
)  # fmt: skip
def test_verified_only_when_nothing_at_all_is_owed(
    currently_due: tuple[str, ...],
    eventually_due: tuple[str, ...],
    pending: tuple[str, ...],
    disabled_reason: str | None,
    details: bool,
    caps: list[tuple[str, str]],
) -> None:
    snap = AccountSnapshot(
        id="acct_1",
        details_submitted=details,
        capabilities=tuple(sorted(dict(caps).items())),
        requirements=Requirements(
            currently_due=currently_due,
            eventually_due=eventually_due,
            pending_verification=pending,
            disabled_reason=disabled_reason,
        ),
    )
    for policy in (INCREMENTAL, UPFRONT):
        result = classify(snap, policy)
        owed = currently_due or pending or disabled_reason is not None or not details
        owed = owed or any(status != "active" for _, status in snap.capabilities)
        owed = owed or (policy is UPFRONT and bool(set(eventually_due) - set(currently_due)))
        assert (result.state is State.VERIFIED) == (not owed)


# --- rule 2: Stripe's "past_due" on an account that never onboarded --------------

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
INITIAL = ("business_type", "external_account", "tos_acceptance.date")
#: a fresh Express/Custom account as Stripe answers the create (facts, recorded shape 1)
NEVER_ONBOARDED = AccountSnapshot(
    id="acct_1",
    capabilities=(("card_payments", "inactive"), ("transfers", "inactive")),
    requirements=Requirements(
        currently_due=INITIAL,
        eventually_due=INITIAL,
        past_due=INITIAL,
        disabled_reason="requirements.past_due",
    ),
)


@pytest.mark.parametrize("policy", [INCREMENTAL, UPFRONT], ids=["incremental", "upfront"])
@pytest.mark.parametrize(
    ("snapshot", "before", "expected"),
    [
        (NEVER_ONBOARDED, None, State.RETURNED_INCOMPLETE),
        # "Save for later": some initial fields given, the rest still listed past due
        (replace(NEVER_ONBOARDED, requirements=replace(NEVER_ONBOARDED.requirements, past_due=INITIAL[1:])), None,
         State.RETURNED_INCOMPLETE),
        # a deadline that is still ahead does not make it past due either
        (replace(NEVER_ONBOARDED, requirements=replace(NEVER_ONBOARDED.requirements,
                                                       current_deadline=NOW + timedelta(days=1))), None,
         State.RETURNED_INCOMPLETE),
        # onboarded before: Stripe's past_due is a missed deadline
        (replace(NEVER_ONBOARDED, details_submitted=True), None, State.PAST_DUE),
        # a deadline in this snapshot has passed
        (replace(NEVER_ONBOARDED, requirements=replace(NEVER_ONBOARDED.requirements,
                                                       current_deadline=NOW - timedelta(seconds=1))), None,
         State.PAST_DUE),
        # we saw the deadline (in the stored snapshot) and it has passed; Stripe now reports none
        (NEVER_ONBOARDED, replace(NEVER_ONBOARDED, requirements=Requirements(current_deadline=NOW)), State.PAST_DUE),
        # the deadline we saw is still ahead
        (NEVER_ONBOARDED, replace(NEVER_ONBOARDED, requirements=Requirements(current_deadline=NOW + timedelta(1))),
         State.RETURNED_INCOMPLETE),
    ],
    ids=["fresh", "saved-for-later", "deadline-ahead", "onboarded-before", "deadline-passed", "deadline-seen",
         "seen-deadline-ahead"],
)  # fmt: skip
def test_past_due_means_a_missed_deadline_only(
    snapshot: AccountSnapshot, before: AccountSnapshot | None, expected: State, policy: Policy
) -> None:
    assert classify(snapshot, policy, now=NOW, before=before).state is expected


def test_never_onboarded_reason_names_what_is_owed() -> None:
    reason = classify(NEVER_ONBOARDED, INCREMENTAL, now=NOW).reason
    assert "currently_due=3" in reason and "disabled_reason=requirements.past_due" in reason
    assert "details_not_submitted" in reason
