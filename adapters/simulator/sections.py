"""The parts of an account that show what was provided, typed as Stripe's API
types them: ``individual`` (a Person object), ``company``,
``business_profile``, ``tos_acceptance``, ``settings`` and
``external_accounts``.

Values arrive as strings (form encoding, the hosted form); Stripe answers
with integers for dates and booleans for flags, and never echoes secrets:
an ID number, SSN digits or a tax ID show only as ``*_provided``
(STRIPE_FACTS, recorded shape 4). Each section lists the fields Stripe's
description declares, ``null`` when not provided, so the engine sees what
Stripe would send and its redaction is exercised by every simulated answer.
"""

from __future__ import annotations

from typing import Any

from . import catalog
from .model import SimAccount

_ADDRESS = ("city", "country", "line1", "line2", "postal_code", "state")
_JAPAN_ADDRESS = (*_ADDRESS, "town")
_JAPAN_NAMES = ("first_name_kana", "first_name_kanji", "last_name_kana", "last_name_kanji")
_PERSON_OPTIONAL = ("gender", "maiden_name", "nationality", "political_exposure")
#: days of payout delay by country (US as recorded; 7 days elsewhere, as recorded for DE)
_PAYOUT_DELAY = {"US": 2}
_DESCRIPTORS = ("statement_descriptor", "statement_descriptor_kana", "statement_descriptor_kanji")
_NO_REQUIREMENTS: dict[str, list[Any]] = {"currently_due": [], "errors": [], "past_due": [], "pending_verification": []}


def provided(acct: SimAccount, prefix: str) -> dict[str, Any]:
    """The provided ``prefix.*`` values, nested (strings, as entered)."""
    out: dict[str, Any] = {}
    for name, value in acct.fields.items():
        if not name.startswith(prefix + "."):
            continue
        node = out
        parts = name[len(prefix) + 1 :].split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[parts[-1]] = value.value
    return out


def _text(values: dict[str, Any], key: str) -> str | None:
    value = values.get(key)
    return value if isinstance(value, str) and value != "" else None


def _int(values: dict[str, Any], key: str) -> int | None:
    value = _text(values, key)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _flag(values: dict[str, Any], key: str) -> bool:
    return _text(values, key) == "true"


def _nested(values: dict[str, Any], key: str) -> dict[str, Any]:
    value = values.get(key)
    return value if isinstance(value, dict) else {}


def _address(values: dict[str, Any], keys: tuple[str, ...] = _ADDRESS) -> dict[str, Any]:
    return {k: _text(values, k) for k in keys}


def _document(values: Any) -> dict[str, Any]:
    """A verification document: the file id uploaded (``front``); the hosted
    form records the upload as the requirement itself (``…verification.document``)."""
    front = values if isinstance(values, str) else _text(values, "front") if isinstance(values, dict) else None
    return {"back": None, "details": None, "details_code": None, "front": front or None}


def business_profile(acct: SimAccount) -> dict[str, Any]:
    v = provided(acct, "business_profile")
    support = _nested(v, "support_address")
    return {
        "annual_revenue": None,
        "estimated_worker_count": _int(v, "estimated_worker_count"),
        "mcc": _text(v, "mcc"),
        "name": _text(v, "name"),
        "product_description": _text(v, "product_description"),
        "support_address": _address(support) if support else None,
        "support_email": _text(v, "support_email"),
        "support_phone": _text(v, "support_phone"),
        "support_url": _text(v, "support_url"),
        "url": _text(v, "url"),
    }


def tos_acceptance(acct: SimAccount) -> dict[str, Any]:
    v = provided(acct, "tos_acceptance")
    out = {"date": _int(v, "date"), "ip": _text(v, "ip"), "user_agent": _text(v, "user_agent")}
    if _text(v, "service_agreement"):
        out["service_agreement"] = _text(v, "service_agreement")
    return out


def person(acct: SimAccount, requirements: dict[str, Any], future: dict[str, Any], now: int) -> dict[str, Any]:
    """``individual``: the Person object behind an individual's account."""
    v = provided(acct, "individual")
    dob = _nested(v, "dob")
    relationship = _nested(v, "relationship")
    out: dict[str, Any] = {
        "id": "person_" + acct.id.removeprefix("acct_"),
        "object": "person",
        "account": acct.id,
        "created": acct.created,
        "address": _address(_nested(v, "address")),
        "dob": {"day": _int(dob, "day"), "month": _int(dob, "month"), "year": _int(dob, "year")},
        "email": _text(v, "email"),
        "first_name": _text(v, "first_name"),
        "future_requirements": _person_requirements(future),
        "id_number_provided": _text(v, "id_number") is not None,
        "last_name": _text(v, "last_name"),
        "metadata": {},
        "phone": _text(v, "phone"),
        "relationship": {
            "director": False,
            "executive": False,
            "owner": False,
            "percent_ownership": None,
            "representative": True,
            "title": _text(relationship, "title"),
        },
        "requirements": _person_requirements(requirements),
        "verification": {
            "additional_document": _document(_nested(v, "verification").get("additional_document")),
            "details": None,
            "details_code": None,
            "document": _document(_nested(v, "verification").get("document")),
            "status": _verification_status(acct, now),
        },
    }
    if acct.country == "US":
        out["ssn_last_4_provided"] = _text(v, "ssn_last_4") is not None
    japan = acct.country == "JP"
    for key in _JAPAN_NAMES:
        if japan or key in v:
            out[key] = _text(v, key)
    for key in ("address_kana", "address_kanji"):
        if japan or key in v:
            out[key] = _address(_nested(v, key), _JAPAN_ADDRESS)
    for key in _PERSON_OPTIONAL:
        if _text(v, key) is not None:
            out[key] = _text(v, key)
    return out


def _person_requirements(account_requirements: dict[str, Any]) -> dict[str, Any]:
    """A person's share of the account's requirements, named relative to the person."""

    def mine(names: list[str]) -> list[str]:
        return [n.removeprefix("individual.") for n in names if n.startswith("individual.")]

    return {
        "alternatives": [],
        "currently_due": mine(account_requirements["currently_due"]),
        "errors": [
            {**e, "requirement": e["requirement"].removeprefix("individual.")}
            for e in account_requirements["errors"]
            if e["requirement"].startswith("individual.")
        ],
        "eventually_due": mine(account_requirements["eventually_due"]),
        "past_due": mine(account_requirements["past_due"]),
        "pending_verification": mine(account_requirements["pending_verification"]),
    }


def _verification_status(acct: SimAccount, now: int) -> str:
    names = [f for f in acct.fields if f.startswith("individual.")]
    if any(acct.pending(f, now) for f in names):
        return "pending"
    if names and not any(acct.failed(f, now) for f in names):
        return "verified"
    return "unverified"


def company(acct: SimAccount) -> dict[str, Any]:
    v = provided(acct, "company")
    out: dict[str, Any] = {
        "address": _address(_nested(v, "address")),
        "directors_provided": _flag(v, "directors_provided"),
        "executives_provided": _flag(v, "executives_provided"),
        "name": _text(v, "name"),
        "owners_provided": _flag(v, "owners_provided"),
        "phone": _text(v, "phone"),
        "tax_id_provided": _text(v, "tax_id") is not None,
        "verification": {"document": _document(_nested(v, "verification").get("document"))},
    }
    if _text(v, "vat_id") is not None:
        out["vat_id_provided"] = True
    japan = acct.country == "JP"
    for key in ("name_kana", "name_kanji"):
        if japan or key in v:
            out[key] = _text(v, key)
    for key in ("address_kana", "address_kanji"):
        if japan or key in v:
            out[key] = _address(_nested(v, key), _JAPAN_ADDRESS)
    return out


def settings(acct: SimAccount) -> dict[str, Any]:
    """Stripe's defaults, with what the platform set (``settings[...]`` on create or update)."""
    v = provided(acct, "settings")
    branding, card, dashboard = _nested(v, "branding"), _nested(v, "card_payments"), _nested(v, "dashboard")
    payments, payouts = _nested(v, "payments"), _nested(v, "payouts")
    decline, schedule = _nested(card, "decline_on"), _nested(payouts, "schedule")
    interval = _text(schedule, "interval") or "daily"
    schedule_out: dict[str, Any] = {
        "delay_days": _int(schedule, "delay_days") or _PAYOUT_DELAY.get(acct.country, 7),
        "interval": interval,
    }
    if interval == "weekly":
        schedule_out["weekly_anchor"] = _text(schedule, "weekly_anchor") or "monday"
    if interval == "monthly":
        schedule_out["monthly_anchor"] = _int(schedule, "monthly_anchor") or 1
    return {
        "branding": {k: _text(branding, k) for k in ("icon", "logo", "primary_color", "secondary_color")},
        "card_payments": {
            "decline_on": {"avs_failure": _flag(decline, "avs_failure"), "cvc_failure": _flag(decline, "cvc_failure")},
            "statement_descriptor_prefix": _text(card, "statement_descriptor_prefix"),
            "statement_descriptor_prefix_kana": _text(card, "statement_descriptor_prefix_kana"),
            "statement_descriptor_prefix_kanji": _text(card, "statement_descriptor_prefix_kanji"),
        },
        "dashboard": {"display_name": _text(dashboard, "display_name"), "timezone": "Etc/UTC"},
        "payments": {k: _text(payments, k) for k in _DESCRIPTORS},
        "payouts": {
            "debit_negative_balances": acct.controller["losses"]["payments"] == "application"
            if "debit_negative_balances" not in payouts
            else _flag(payouts, "debit_negative_balances"),
            "schedule": schedule_out,
            "statement_descriptor": _text(payouts, "statement_descriptor"),
        },
    }


def bank_account(acct: SimAccount) -> dict[str, Any] | None:
    """The external account attached (Stripe's ``bank_account``): ``last4``
    and a fingerprint, never the number; ``errored`` once a payout failed."""
    bank = acct.bank
    if bank is None:
        return None
    details = bank.details
    country = details.country or acct.country  # a token follows the account
    return {
        "id": bank.id,
        "object": "bank_account",
        "account": acct.id,
        "account_holder_name": None,
        "account_holder_type": None,
        "account_type": None,
        "available_payout_methods": ["standard"],
        "bank_name": "STRIPE TEST BANK",
        "country": country,
        "currency": details.currency or catalog.currency(country),
        "default_for_currency": True,
        "fingerprint": details.fingerprint,
        "future_requirements": dict(_NO_REQUIREMENTS),
        "last4": details.last4,
        "metadata": {},
        "requirements": dict(_NO_REQUIREMENTS),
        "routing_number": details.routing_number,
        "status": bank.status,
    }


def external_accounts(acct: SimAccount) -> dict[str, Any]:
    """The bank account the holder (or the platform) attached."""
    bank = bank_account(acct)
    data = [bank] if bank is not None else []
    return {"object": "list", "data": data, "has_more": False, "url": f"/v1/accounts/{acct.id}/external_accounts"}
