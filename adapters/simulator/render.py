"""A simulated account as Stripe's API renders it (the ``account`` object of
Stripe's OpenAPI description), and its capabilities as ``capability`` objects.

What Stripe does here, and the simulator with it (STRIPE_FACTS, recorded
shapes): an account that never submitted its details lists its initial
fields in ``past_due`` as well as ``currently_due``, with
``disabled_reason="requirements.past_due"`` and no ``current_deadline`` —
"not onboarded yet", not "a deadline was missed"; after a "Save for later"
the leftovers stay there. A missed deadline lists its fields the same way,
and stops payouts (charges too after a charge block). A payout that failed
(``payouts``) errors the bank account: ``external_account`` is currently due
again, with no deadline and no requirement error, and payouts stop until it
is replaced. Accounts carry no
``livemode`` (events do). The typed sections (person, company, settings…)
are in ``sections``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import catalog, sections
from .catalog import ALTERNATIVES
from .model import SimAccount


@dataclass(frozen=True, slots=True)
class Due:
    """The requirement lists of an account at one time."""

    currently_due: list[str]
    eventually_due: list[str]
    #: fields whose deadline passed (what disables capabilities)
    missed: list[str]
    #: what Stripe lists as past due: missed, and the initial fields of an account never onboarded
    past_due: list[str]
    #: currently due without a deadline (the onboarding gap)
    gap: list[str]
    deadlines: dict[str, int]
    pending: list[str]


def due(acct: SimAccount, now: int) -> Due:
    currently_due = [f for f in acct.current_set(now) if not acct.satisfied(f, now)]
    eventually_due = currently_due + [f for f in acct.later_set(now) if not acct.satisfied(f, now)]
    deadlines = {f: d for f in currently_due if (d := acct.deadline_of(f, now)) is not None}
    missed = [f for f in currently_due if f in deadlines and deadlines[f] <= now]
    gap = [f for f in currently_due if f not in deadlines]
    past_due = [f for f in currently_due if f in missed or (f in gap and not acct.details_submitted)]
    pending = sorted(f for f in acct.fields if acct.pending(f, now))
    return Due(currently_due, eventually_due, missed, past_due, gap, deadlines, pending)


def render_account(acct: SimAccount, now: int) -> dict[str, Any]:
    if acct.deleted:
        return {"id": acct.id, "object": "account", "deleted": True}
    d = due(acct, now)
    capabilities = {cap: capability_status(acct, cap, d, now) for cap in acct.capabilities}
    charges = capabilities.get("card_payments") == "active"
    money_out = capabilities.get("transfers", capabilities.get("card_payments"))
    # a failed payout stops payouts until the bank details are replaced (``banks``)
    payouts = money_out == "active" and not d.missed and not acct.bank_errored
    requirements = {
        "alternatives": [
            {"alternative_fields_due": list(alts), "original_fields_due": [orig]}
            for orig, alts in ALTERNATIVES.items()
            if orig in d.eventually_due
        ],
        "current_deadline": min(d.deadlines.values(), default=None),
        "currently_due": d.currently_due,
        "disabled_reason": _disabled_reason(acct, d),
        "errors": _errors(acct, d.currently_due, now),
        "eventually_due": d.eventually_due,
        "past_due": d.past_due,
        "pending_verification": d.pending,
    }
    future_due = sorted(f for f, at in acct.future.items() if at > now and not acct.satisfied(f, now))
    future = {
        "alternatives": [],
        "current_deadline": min((acct.future[f] for f in future_due), default=None),
        "currently_due": future_due,
        "disabled_reason": None,
        "errors": [],
        "eventually_due": future_due,
        "past_due": [],
        "pending_verification": [],
    }
    out: dict[str, Any] = {
        "id": acct.id,
        "object": "account",
        "business_profile": sections.business_profile(acct),
        "business_type": acct.business_type,
        "capabilities": capabilities,
        "charges_enabled": bool(charges),
        "controller": controller(acct),
        "country": acct.country,
        "created": acct.created,
        "default_currency": catalog.currency(acct.country),
        "details_submitted": acct.details_submitted,
        "email": acct.email,
        "external_accounts": sections.external_accounts(acct),
        "future_requirements": future,
        "metadata": dict(acct.metadata),
        "payouts_enabled": bool(payouts),
        "requirements": requirements,
        "settings": sections.settings(acct),
        "tos_acceptance": sections.tos_acceptance(acct),
        "type": acct.legacy_type or "none",
    }
    if acct.business_type in catalog.ORGANISATIONS or sections.provided(acct, "company"):
        out["company"] = sections.company(acct)
    if acct.business_type == "individual" or sections.provided(acct, "individual"):
        out["individual"] = sections.person(acct, requirements, future, now)
    return out


def controller(acct: SimAccount) -> dict[str, Any]:
    """The calling platform controls every account it created (``is_controller``)."""
    return {
        "fees": {"payer": acct.controller["fees"]["payer"]},
        "is_controller": True,
        "losses": {"payments": acct.controller["losses"]["payments"]},
        "requirement_collection": acct.requirement_collection,
        "stripe_dashboard": {"type": acct.dashboard},
        "type": "application",
    }


def capability_status(acct: SimAccount, capability: str, d: Due, now: int) -> str:
    if acct.rejected or acct.under_review or acct.paused:
        return "inactive"
    needed = set(catalog.fields_for_capability(acct.country, acct.business_type or "individual", capability))
    # a missed deadline stops payouts first; charges only after a charge block
    if d.missed and (capability != "card_payments" or acct.block == "charges"):
        return "inactive"
    if any(f in d.gap for f in needed | acct.extra_due):
        return "inactive"
    if not acct.details_submitted:
        return "inactive"
    if any(acct.pending(f, now) for f in needed | acct.extra_due):
        return "pending"
    return "active"


def render_capability(acct: SimAccount, capability: str, now: int) -> dict[str, Any]:
    """``GET /v1/accounts/{id}/capabilities/{name}``, as ``capability.updated`` carries it."""
    d = due(acct, now)
    status = capability_status(acct, capability, d, now)
    needed = set(catalog.fields_for(acct.country, acct.business_type or "individual", (capability,)).initial)
    needed |= acct.extra_due | set(acct.deadlines)
    current = [f for f in d.currently_due if f in needed]
    if status == "active":
        reason = None
    elif acct.rejected:
        reason = f"rejected.{acct.rejected}"
    elif acct.under_review:
        reason = "under_review"
    elif acct.paused:
        reason = "paused.inactivity"
    elif status == "pending":
        reason = "requirements.pending_verification"
    else:
        reason = "requirements.past_due" if any(f in d.past_due for f in current) else "requirements.fields_needed"
    listed = {
        "currently_due": current,
        "errors": [e for e in _errors(acct, d.currently_due, now) if e["requirement"] in needed],
        "eventually_due": [f for f in d.eventually_due if f in needed or f in current],
        "past_due": [f for f in d.past_due if f in needed],
        "pending_verification": [f for f in d.pending if f in needed],
    }
    return {
        "id": capability,
        "object": "capability",
        "account": acct.id,
        "future_requirements": {
            "alternatives": [],
            "current_deadline": None,
            "currently_due": [],
            "disabled_reason": None,
            "errors": [],
            "eventually_due": [],
            "past_due": [],
            "pending_verification": [],
        },
        "requested": True,
        "requested_at": acct.created,
        "requirements": {
            "alternatives": [],
            "current_deadline": min((d.deadlines[f] for f in current if f in d.deadlines), default=None),
            "disabled_reason": reason,
            **listed,
        },
        "status": status,
    }


def _disabled_reason(acct: SimAccount, d: Due) -> str | None:
    if acct.rejected:
        return f"rejected.{acct.rejected}"
    if acct.under_review:
        return "under_review"
    if d.missed:
        return "requirements.past_due"
    if not acct.capabilities:
        return "action_required.requested_capabilities"
    if d.past_due:
        return "requirements.past_due"  # never onboarded: Stripe says so, with no deadline
    if acct.details_submitted and not d.gap and any(f in acct.tier().initial for f in d.pending):
        return "requirements.pending_verification"
    return None


def _errors(acct: SimAccount, currently_due: list[str], now: int) -> list[dict[str, str]]:
    return [
        {
            "code": acct.fields[f].code or "invalid_value_other",
            "reason": catalog.ERROR_REASONS.get(acct.fields[f].code or "", "The value provided is invalid."),
            "requirement": f,
        }
        for f in currently_due
        if acct.failed(f, now)
    ]
