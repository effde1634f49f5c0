"""What the simulator asks for, and what test-mode values make happen.

Two readable tables stand in for Stripe's requirement engine:

* ``REQUIREMENTS``: fields due, by business type, country and capability,
  in two tiers — ``initial`` (needed before capabilities go active) and
  ``later`` (due once volume thresholds are hit; listed in ``eventually_due``
  from the start, as Stripe does);
* ``TEST_VALUES``: Stripe's documented test-mode values (DESIGN §6 and
  STRIPE_FACTS §5) and the verification outcome each produces.

They are a model, not a copy of Stripe's private rules: field names follow
Stripe's requirement names, the country differences follow its public
requirements pages in spirit (ID numbers in the US and Canada, kana/kanji in
Japan, state/province where addresses have one).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Tier:
    initial: tuple[str, ...] = ()
    later: tuple[str, ...] = ()

    def __add__(self, other: Tier) -> Tier:
        return Tier(_merge(self.initial, other.initial), _merge(self.later, other.later))


def _merge(*groups: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f for group in groups for f in group))


_PERSON = (
    "first_name",
    "last_name",
    "dob.day",
    "dob.month",
    "dob.year",
    "address.line1",
    "address.city",
    "address.postal_code",
    "email",
    "phone",
)


def _person(prefix: str, *extra: str) -> tuple[str, ...]:
    return tuple(f"{prefix}.{f}" for f in (*_PERSON, *extra))


_ORGANISATION = (
    "company.name",
    "company.tax_id",
    "company.address.line1",
    "company.address.city",
    "company.address.postal_code",
    "company.phone",
)
_ORGANISATION_LATER = ("representative.verification.document", "company.verification.document")

#: business type -> fields every country asks
BY_BUSINESS_TYPE: dict[str, Tier] = {
    # an identity document is asked only when keyed identity fails (``extra_due``)
    "individual": Tier(initial=_person("individual")),
    "company": Tier(
        initial=(*_ORGANISATION, "company.owners_provided", *_person("representative", "relationship.title")),
        later=_ORGANISATION_LATER,
    ),
    # no owners to declare; a representative who may act for it
    "non_profit": Tier(
        initial=(*_ORGANISATION, *_person("representative", "relationship.title")), later=_ORGANISATION_LATER
    ),
    # a public body: its registration is public record, so no registry document later
    "government_entity": Tier(
        initial=(*_ORGANISATION, *_person("representative", "relationship.title")),
        later=("representative.verification.document",),
    ),
}
#: business types with a company section (the others are one person)
ORGANISATIONS = ("company", "non_profit", "government_entity")
BUSINESS_TYPES = ("individual", *ORGANISATIONS)
#: Stripe offers ``government_entity`` in the US only
US_ONLY_BUSINESS_TYPES = ("government_entity",)

#: country -> business type -> extra fields
BY_COUNTRY: dict[str, dict[str, Tier]] = {
    "US": {
        "individual": Tier(
            initial=("individual.ssn_last_4", "individual.address.state"), later=("individual.id_number",)
        ),
        "company": Tier(
            initial=("company.address.state", "representative.ssn_last_4", "representative.address.state"),
            later=("representative.id_number",),
        ),
    },
    "CA": {
        "individual": Tier(initial=("individual.id_number", "individual.address.state")),
        "company": Tier(initial=("company.address.state", "representative.id_number")),
    },
    "AU": {
        "individual": Tier(initial=("individual.address.state",)),
        "company": Tier(initial=("company.address.state",)),
    },
    "GB": {
        "individual": Tier(later=("individual.verification.additional_document",)),
        "company": Tier(initial=("company.directors_provided",)),
    },
    "DE": {"individual": Tier(), "company": Tier(initial=("company.directors_provided",))},
    "FR": {"individual": Tier(), "company": Tier(initial=("company.directors_provided",))},
    "JP": {
        "individual": Tier(
            initial=(
                "individual.first_name_kana",
                "individual.last_name_kana",
                "individual.first_name_kanji",
                "individual.last_name_kanji",
                "individual.address_kana.line1",
                "individual.address_kanji.line1",
                "individual.gender",
            )
        ),
        "company": Tier(initial=("company.name_kana", "company.name_kanji", "company.address_kana.line1")),
    },
}

#: capability -> fields it adds (the business profile for card payments, a
#: bank account for moving money out, terms acceptance for both)
BY_CAPABILITY: dict[str, Tier] = {
    "card_payments": Tier(
        initial=("business_profile.mcc", "business_profile.url", "tos_acceptance.date", "tos_acceptance.ip")
    ),
    "transfers": Tier(initial=("external_account", "tos_acceptance.date", "tos_acceptance.ip")),
    "us_bank_account_ach_payments": Tier(initial=("business_profile.mcc", "tos_acceptance.date", "tos_acceptance.ip")),
}

#: original field -> alternative fields that resolve it (Stripe's ``alternatives``)
ALTERNATIVES: dict[str, tuple[str, ...]] = {"business_profile.url": ("business_profile.product_description",)}

SUPPORTED_COUNTRIES = tuple(sorted(BY_COUNTRY))
_CURRENCY = {"US": "usd", "CA": "cad", "AU": "aud", "GB": "gbp", "DE": "eur", "FR": "eur", "JP": "jpy"}


def currency(country: str) -> str:
    """The default currency of an account in ``country``."""
    return _CURRENCY.get(country, "usd")


SUPPORTED_CAPABILITIES = tuple(sorted(BY_CAPABILITY))
#: the simulated platform's country: an account created without one gets it
PLATFORM_COUNTRY = "US"
#: what Stripe requests by itself for an account with a Stripe-hosted dashboard
#: created without capabilities ("based on the platform's configuration settings")
DEFAULT_CAPABILITIES = ("card_payments", "transfers")


def fields_for(country: str, business_type: str, capabilities: tuple[str, ...]) -> Tier:
    """The whole requirement set of an account; ``business_type`` itself is
    due until the holder picks one."""
    kind = "individual" if business_type == "individual" else "company"  # country rules for organisations
    tier = BY_BUSINESS_TYPE[business_type] + BY_COUNTRY[country][kind]
    for capability in capabilities:
        tier = tier + BY_CAPABILITY[capability]
    return tier


def fields_for_capability(country: str, business_type: str, capability: str) -> tuple[str, ...]:
    return fields_for(country, business_type, (capability,)).initial


# --- test-mode values ------------------------------------------------------------


class Verdict(StrEnum):
    MATCH = "match"  # verified at once
    PENDING = "pending"  # pending_verification, then verified after a delay
    MISMATCH = "mismatch"  # error on the field; a document becomes due
    INVALID = "invalid"  # error on the field; provide another value
    OFAC = "ofac"  # account goes under review (disabled_reason=under_review)
    PAUSE = "pause"  # capabilities paused for inactivity


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    code: str | None = None


MATCH = Outcome(Verdict.MATCH)
PENDING = Outcome(Verdict.PENDING)

#: value rules, keyed by field name with the person prefix removed
#: (``individual.`` and ``representative.`` share them); "*" is the default
TEST_VALUES: dict[str, dict[str, Outcome]] = {
    "dob": {
        "1901-01-01": PENDING,
        "1902-01-01": MATCH,
        "1900-01-01": Outcome(Verdict.OFAC),
        "*": Outcome(Verdict.MISMATCH, "verification_failed_keyed_identity"),
    },
    "id_number": {
        "000000000": PENDING,
        "111111111": Outcome(Verdict.MISMATCH, "verification_failed_id_number_match"),
        "222222222": MATCH,
        "*": Outcome(Verdict.MISMATCH, "verification_failed_id_number_match"),
    },
    "ssn_last_4": {"0000": MATCH, "*": Outcome(Verdict.MISMATCH, "verification_failed_id_number_match")},
    "address.line1": {
        "address_full_match": MATCH,
        "address_no_match": Outcome(Verdict.MISMATCH, "verification_failed_address_match"),
        "address_line1_no_match": Outcome(Verdict.MISMATCH, "verification_failed_address_match"),
        "*": MATCH,
    },
    "verification.document": {
        "file_identity_document_success": PENDING,
        "file_identity_document_failure": Outcome(Verdict.INVALID, "verification_document_failed_test_mode"),
        "*": PENDING,
    },
    "tax_id": {
        "000000000": PENDING,
        "000000001": PENDING,
        "111111111": Outcome(Verdict.MISMATCH, "verification_failed_tax_id_match"),
        "111111112": Outcome(Verdict.INVALID, "verification_failed_tax_id_not_issued"),
        "222222222": MATCH,
        "*": PENDING,
    },
    "business_profile.url": {
        "https://accessible.stripe.com": MATCH,
        "https://disallowed.stripe.com": Outcome(Verdict.INVALID, "invalid_url_denylisted"),
        "https://geoblocked.stripe.com": Outcome(Verdict.INVALID, "invalid_url_website_inaccessible_geoblocked"),
        "https://problem.stripe.com": Outcome(Verdict.INVALID, "invalid_url_website_other"),
        "https://missing.stripe.com": Outcome(Verdict.INVALID, "invalid_url_website_incomplete"),
        "https://mismatch.stripe.com": Outcome(Verdict.INVALID, "invalid_url_website_business_information_mismatch"),
        "https://passwordprotected.stripe.com": Outcome(
            Verdict.INVALID, "invalid_url_website_inaccessible_password_protected"
        ),
        "https://underconstruction.stripe.com": Outcome(
            Verdict.INVALID, "invalid_url_website_incomplete_under_construction"
        ),
        "https://inaccessible.stripe.com": Outcome(Verdict.INVALID, "invalid_url_website_inaccessible"),
        "https://inactivity.stripe.com": Outcome(Verdict.PAUSE),
        "*": MATCH,
    },
}

#: the SMS code the hosted form accepts in test mode
TEST_SMS_CODE = "000-000"
#: fields whose entry on the hosted form is confirmed by SMS
PHONE_FIELDS = frozenset({"individual.phone", "representative.phone"})

#: cards that change an account's requirements when charged (STRIPE_FACTS §5)
CARD_NEXT_REQUIREMENTS = "4000000000004202"
CARD_CHARGE_BLOCK = "4000000000004210"
CARD_PAYOUT_BLOCK = "4000000000004236"

ERROR_REASONS = {
    "verification_failed_keyed_identity": "The identity information you entered cannot be verified.",
    "verification_failed_id_number_match": "The ID number provided does not match the other information.",
    "verification_failed_address_match": "The address could not be verified.",
    "verification_document_failed_test_mode": "A test document that always fails was provided.",
    "verification_failed_tax_id_match": "The tax ID does not match the company name.",
    "verification_failed_tax_id_not_issued": "The tax ID was not issued.",
}


def rule_key(field: str) -> str | None:
    """The ``TEST_VALUES`` key a requirement field is judged by."""
    for prefix in ("individual.", "representative.", "company."):
        if field.startswith(prefix):
            rest = field[len(prefix) :]
            if rest.startswith("dob."):
                return "dob"
            if rest in TEST_VALUES:
                return rest
            return None
    return field if field in TEST_VALUES else None


def judge(field: str, value: str) -> Outcome:
    key = rule_key(field)
    if key is None:
        return MATCH
    table = TEST_VALUES[key]
    return table.get(value, table["*"])


def valid_test_data(fields: tuple[str, ...], *, country: str = PLATFORM_COUNTRY) -> dict[str, str]:
    """Values that pass at once for every field in ``fields`` (flat, dotted);
    an open ``country`` is kept as ``country`` (the account's current one)."""
    samples = {
        "dob.day": "1",
        "dob.month": "1",
        "dob.year": "1902",
        "id_number": "222222222",
        "ssn_last_4": "0000",
        "address.line1": "address_full_match",
        "address.city": "South San Francisco",
        "address.postal_code": "94080",
        "address.state": "CA",
        "email": "holder@example.com",
        "phone": "0000000000",
        "first_name": "Jenny",
        "last_name": "Rosen",
        "verification.document": "file_identity_document_success",
        "verification.additional_document": "file_identity_document_success",
        "tax_id": "222222222",
        "relationship.title": "CEO",
        "gender": "female",
    }
    out: dict[str, str] = {}
    for field in fields:
        if field in ("business_profile.url",):
            out[field] = "https://accessible.stripe.com"
        elif field == "business_profile.mcc":
            out[field] = "5734"
        elif field == "business_profile.product_description":
            out[field] = "Handmade goods"
        elif field == "external_account":
            out[field] = "btok_us_verified"
        elif field == "tos_acceptance.date":
            out[field] = "1700000000"
        elif field == "tos_acceptance.ip":
            out[field] = "203.0.113.7"
        elif field.endswith(("_provided",)):
            out[field] = "true"
        elif field == "business_type":
            out[field] = "individual"
        elif field == "country":
            out[field] = country
        else:
            short = (
                field.split(".", 1)[1] if field.startswith(("individual.", "representative.", "company.")) else field
            )
            out[field] = samples.get(short, "Test value")
    return out
