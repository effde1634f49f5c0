"""Parsing Stripe accounts into frozen snapshots, and back to the stored form."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onboarding_fsm.errors import MalformedPayload
from onboarding_fsm.snapshot import (
    PLATFORM_REF_KEY,
    AccountSnapshot,
    Alternative,
    Controller,
    RequirementError,
    Requirements,
    parse_account,
    snapshot_to_dict,
)

FULL = {
    "id": "acct_1",
    "object": "account",
    "business_type": "individual",
    "capabilities": {"transfers": "pending", "card_payments": "active"},
    "charges_enabled": True,
    "controller": {"type": "application", "requirement_collection": "application", "stripe_dashboard": {"type": "none"}},
    "country": "US",
    "created": 1767225600,
    "details_submitted": True,
    "future_requirements": {"currently_due": ["individual.id_number"], "current_deadline": 1767312000},
    "livemode": False,
    "metadata": {PLATFORM_REF_KEY: "seller-1", "other": "x"},
    "payouts_enabled": False,
    "requirements": {
        "alternatives": [{"alternative_fields_due": ["business_profile.product_description"], "original_fields_due": ["business_profile.url"]}],
        "current_deadline": 1767225600,
        "currently_due": ["business_profile.url"],
        "disabled_reason": None,
        "errors": [{"code": "invalid_url_denylisted", "reason": "denylisted", "requirement": "business_profile.url"}],
        "eventually_due": ["business_profile.url"],
        "past_due": [],
        "pending_verification": [],
    },
    "individual": {"first_name": "Jenny", "ssn_last_4": "0000"},
    "type": "custom",
}  # fmt: skip


def test_parse_full_account() -> None:
    snap = parse_account(FULL)
    assert snap.capabilities == (("card_payments", "active"), ("transfers", "pending"))
    assert snap.controller == Controller("application", "application", "none")
    assert snap.platform_ref == "seller-1"
    assert snap.requirements.current_deadline == datetime(2026, 1, 1, tzinfo=UTC)
    assert snap.requirements.errors == (RequirementError("invalid_url_denylisted", "business_profile.url"),)
    assert snap.requirements.alternatives == (
        Alternative(("business_profile.product_description",), ("business_profile.url",)),
    )
    assert snap.future_requirements is not None
    assert snap.future_requirements.currently_due == ("individual.id_number",)
    assert snap.platform_collects_requirements and not snap.has_stripe_dashboard


def test_identity_data_does_not_survive_parsing() -> None:
    stored = snapshot_to_dict(parse_account(FULL))
    assert "individual" not in stored
    assert "Jenny" not in repr(stored)
    assert stored["metadata"] == {PLATFORM_REF_KEY: "seller-1"}


@pytest.mark.parametrize(
    ("legacy_type", "collects", "dashboard"),
    [("custom", True, False), ("express", False, True), ("standard", False, True), (None, False, True)],
)
def test_legacy_type_without_controller(legacy_type: str | None, collects: bool, dashboard: bool) -> None:
    snap = parse_account({"id": "acct_1", "type": legacy_type})
    assert (snap.platform_collects_requirements, snap.has_stripe_dashboard) == (collects, dashboard)


@pytest.mark.parametrize(
    "bad",
    [
        {"object": "account"},
        {"id": 12},
        {"id": "acct_1", "object": "capability"},
        {"id": "acct_1", "requirements": {"currently_due": "individual.dob.day"}},
        {"id": "acct_1", "requirements": {"current_deadline": "tomorrow"}},
        {"id": "acct_1", "requirements": {"current_deadline": True}},
        {"id": "acct_1", "charges_enabled": "yes"},
        {"id": "acct_1", "capabilities": {"card_payments": 1}},
        {"id": "acct_1", "requirements": []},
        "acct_1",
    ],
)
def test_malformed_accounts_raise_a_typed_error(bad: object) -> None:
    with pytest.raises(MalformedPayload):
        parse_account(bad)


def test_deleted_account() -> None:
    snap = parse_account({"id": "acct_1", "object": "account", "deleted": True})
    assert snap.deleted


fields = st.lists(st.sampled_from(["a.b", "c", "individual.dob.day", "external_account"]), max_size=3, unique=True).map(
    tuple
)
moments = st.one_of(st.none(), st.integers(0, 2**32).map(lambda s: datetime.fromtimestamp(s, UTC)))
requirements = st.builds(
    Requirements,
    currently_due=fields,
    eventually_due=fields,
    past_due=fields,
    pending_verification=fields,
    errors=st.lists(st.builds(RequirementError, st.text(min_size=1, max_size=5), st.text(max_size=5)), max_size=2).map(tuple),
    alternatives=st.one_of(st.none(), st.lists(st.builds(Alternative, fields, fields), max_size=2).map(tuple)),
    current_deadline=moments,
    disabled_reason=st.one_of(st.none(), st.text(max_size=10)),
)  # fmt: skip


@given(
    snap=st.builds(
        AccountSnapshot,
        id=st.just("acct_9"),
        livemode=st.booleans(),
        country=st.one_of(st.none(), st.sampled_from(["US", "JP"])),
        controller=st.builds(Controller, st.none(), st.sampled_from([None, "stripe", "application"]), st.none()),
        capabilities=st.dictionaries(st.sampled_from(["card_payments", "transfers"]), st.sampled_from(["active", "x"])).map(lambda d: tuple(sorted(d.items()))),
        requirements=requirements,
        future_requirements=st.one_of(st.none(), requirements),
        platform_ref=st.one_of(st.none(), st.text(min_size=1, max_size=8)),
        created=moments,
    )
)  # fmt: skip
def test_stored_form_round_trips(snap: AccountSnapshot) -> None:
    assert parse_account(snapshot_to_dict(snap)) == snap
