"""Only allow-listed fields of an event survive into the inbox."""

from __future__ import annotations

import json

from onboarding_fsm.redact import strip_event
from onboarding_fsm.snapshot import PLATFORM_REF_KEY

IDENTITY = ["Jenny", "Rosen", "222222222", "1902", "address_full_match", "holder@example.com", "6789", "203.0.113.7"]


def event() -> dict[str, object]:
    return {
        "id": "evt_1",
        "object": "event",
        "type": "account.updated",
        "created": 1,
        "livemode": False,
        "account": "acct_1",
        "request": {"id": "req_1", "idempotency_key": "secret-ish"},
        "data": {
            "object": {
                "id": "acct_1",
                "object": "account",
                "email": "holder@example.com",
                "individual": {"first_name": "Jenny", "last_name": "Rosen", "id_number": "222222222",
                               "dob": {"year": 1902}, "address": {"line1": "address_full_match"}},
                "company": {"tax_id": "222222222"},
                "external_accounts": {"data": [{"last4": "6789"}]},
                "tos_acceptance": {"ip": "203.0.113.7"},
                "business_profile": {"support_phone": "0000000000"},
                "metadata": {PLATFORM_REF_KEY: "seller-1", "note": "Jenny Rosen"},
                "requirements": {"currently_due": ["individual.id_number"]},
                "a_field_stripe_adds_next_year": {"first_name": "Jenny"},
            },
            "previous_attributes": {"individual": {"first_name": "Jen"}, "requirements": {"currently_due": []}},
        },
    }  # fmt: skip


def test_identity_data_is_stripped() -> None:
    stored = json.dumps(strip_event(event()))
    for value in IDENTITY:
        assert value not in stored


def test_what_onboarding_needs_is_kept() -> None:
    stored = strip_event(event())
    obj = stored["data"]["object"]
    assert obj["requirements"] == {"currently_due": ["individual.id_number"]}
    assert obj["metadata"] == {PLATFORM_REF_KEY: "seller-1"}
    assert stored["data"]["changed"] == ["individual", "requirements"]
    assert stored["request"] == {"id": "req_1"}
    assert (stored["id"], stored["type"], stored["account"]) == ("evt_1", "account.updated", "acct_1")
