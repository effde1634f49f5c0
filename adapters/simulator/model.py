"""A simulated connected account, and how it renders in Stripe's wire format.

Rendering is a pure function of the account and the simulator's clock, so
deadlines pass and pending verifications complete simply because time moved
— exactly what the engine must notice (by webhook, or by its own check).
Rendered accounts carry identity data (``individual``, ``company``,
``external_accounts``…) as Stripe's do, so the engine's redaction is
exercised by every test that uses the simulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import catalog
from .catalog import ALTERNATIVES, Verdict


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Stripe's nested parameters as dotted requirement names with string values."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif value is not None:
            out[name] = str(value)
    return out


@dataclass
class FieldValue:
    value: str
    verdict: Verdict
    code: str | None
    #: for PENDING: the simulator time (unix) at which verification completes
    verified_at: int


@dataclass
class SimAccount:
    id: str
    created: int
    country: str
    business_type: str | None
    legacy_type: str | None
    controller: dict[str, Any]
    capabilities: tuple[str, ...]
    metadata: dict[str, str]
    email: str | None = None
    fields: dict[str, FieldValue] = field(default_factory=dict)
    #: fields a failed verification asked for (e.g. an identity document)
    extra_due: set[str] = field(default_factory=set)
    #: field -> deadline (unix) for requirements that became due with a deadline
    deadlines: dict[str, int] = field(default_factory=dict)
    #: field -> the date it moves from future_requirements into requirements
    future: dict[str, int] = field(default_factory=dict)
    details_submitted: bool = False
    linked: bool = False
    rejected: str | None = None
    under_review: bool = False
    paused: bool = False
    block: str | None = None  # "charges" | "payouts" while past due after a test card
    deauthorized: bool = False
    deleted: bool = False
    last_rendered: dict[str, Any] | None = None

    # --- requirement arithmetic ------------------------------------------------

    @property
    def requirement_collection(self) -> str:
        return str(self.controller.get("requirement_collection", "stripe"))

    @property
    def dashboard(self) -> str:
        return str(self.controller.get("stripe_dashboard", {}).get("type", "full"))

    def tier(self) -> catalog.Tier:
        tier = catalog.fields_for(self.country, self.business_type or "individual", self.capabilities)
        if self.business_type is None:
            tier = catalog.Tier(initial=("business_type",)) + tier
        return tier

    def _person_document(self, name: str) -> str | None:
        for prefix in ("individual.", "representative."):
            if name.startswith(prefix):
                return prefix + "verification.document"
        return None

    def verified(self, name: str, now: int) -> bool:
        """Provided and accepted (a pending verification counts as provided)."""
        value = self.fields.get(name)
        if value is None:
            return False
        if value.verdict is Verdict.MISMATCH:
            document = self._person_document(name)
            doc = self.fields.get(document) if document else None
            return doc is not None and doc.verdict in (Verdict.MATCH, Verdict.PENDING) and doc.verified_at <= now
        return value.verdict is not Verdict.INVALID

    def satisfied(self, name: str, now: int) -> bool:
        return self.verified(name, now) or any(self.verified(alt, now) for alt in ALTERNATIVES.get(name, ()))

    def failed(self, name: str, now: int) -> bool:
        value = self.fields.get(name)
        return value is not None and not self.verified(name, now)

    def pending(self, name: str, now: int) -> bool:
        value = self.fields.get(name)
        return value is not None and value.verdict is Verdict.PENDING and value.verified_at > now

    def matured_future(self, now: int) -> dict[str, int]:
        return {f: due for f, due in self.future.items() if due <= now}

    def current_set(self, now: int) -> list[str]:
        tier = self.tier()
        names = list(tier.initial) + sorted(self.extra_due) + sorted(self.deadlines)
        names += sorted(self.matured_future(now))
        # a value that failed verification must be provided again, whatever its tier
        names += sorted(f for f in self.fields if self.failed(f, now))
        return list(dict.fromkeys(names))

    def later_set(self, now: int) -> list[str]:
        current = set(self.current_set(now))
        return [f for f in self.tier().later if f not in current]

    def deadline_of(self, name: str, now: int) -> int | None:
        if name in self.deadlines:
            return self.deadlines[name]
        return self.matured_future(now).get(name)

    # --- wire format ------------------------------------------------------------

    def render(self, now: int) -> dict[str, Any]:
        if self.deleted:
            return {"id": self.id, "object": "account", "deleted": True}
        currently_due = [f for f in self.current_set(now) if not self.satisfied(f, now)]
        eventually_due = currently_due + [f for f in self.later_set(now) if not self.satisfied(f, now)]
        deadlines = {f: d for f in currently_due if (d := self.deadline_of(f, now)) is not None}
        past_due = sorted(f for f, d in deadlines.items() if d <= now)
        pending = sorted(f for f in self.fields if self.pending(f, now))
        errors = [
            {
                "code": self.fields[f].code or "invalid_value_other",
                "reason": catalog.ERROR_REASONS.get(self.fields[f].code or "", "The value provided is invalid."),
                "requirement": f,
            }
            for f in currently_due
            if self.failed(f, now)
        ]
        alternatives = [
            {"alternative_fields_due": list(alts), "original_fields_due": [orig]}
            for orig, alts in ALTERNATIVES.items()
            if orig in eventually_due
        ]
        onboarding_gap = [f for f in currently_due if f not in deadlines]
        capabilities = {
            cap: self._capability_status(cap, currently_due, onboarding_gap, past_due, now) for cap in self.capabilities
        }
        charges = capabilities.get("card_payments") == "active"
        money_out = capabilities.get("transfers", capabilities.get("card_payments"))
        payouts = money_out == "active" and not past_due
        if self.rejected:
            disabled_reason: str | None = f"rejected.{self.rejected}"
        elif self.under_review:
            disabled_reason = "under_review"
        elif past_due:
            disabled_reason = "requirements.past_due"
        elif not self.capabilities:
            disabled_reason = "action_required.requested_capabilities"
        elif self.details_submitted and not onboarding_gap and any(f in self.tier().initial for f in pending):
            disabled_reason = "requirements.pending_verification"
        else:
            disabled_reason = None
        future_due = sorted(f for f, due in self.future.items() if due > now and not self.satisfied(f, now))
        future_deadline = min((self.future[f] for f in future_due), default=None)
        out: dict[str, Any] = {
            "id": self.id,
            "object": "account",
            "business_profile": self._section("business_profile"),
            "business_type": self.business_type,
            "capabilities": capabilities,
            "charges_enabled": bool(charges),
            "controller": {
                "fees": {"payer": self.controller.get("fees", {}).get("payer", "account")},
                "is_controller": True,
                "losses": {"payments": self.controller.get("losses", {}).get("payments", "stripe")},
                "requirement_collection": self.requirement_collection,
                "stripe_dashboard": {"type": self.dashboard},
                "type": "application",
            },
            "country": self.country,
            "created": self.created,
            "default_currency": _CURRENCY.get(self.country, "usd"),
            "details_submitted": self.details_submitted,
            "email": self.email,
            "external_accounts": self._external_accounts(),
            "future_requirements": {
                "alternatives": [],
                "current_deadline": future_deadline,
                "currently_due": future_due,
                "disabled_reason": None,
                "errors": [],
                "eventually_due": future_due,
                "past_due": [],
                "pending_verification": [],
            },
            "livemode": False,
            "metadata": dict(self.metadata),
            "payouts_enabled": bool(payouts),
            "requirements": {
                "alternatives": alternatives,
                "current_deadline": min(deadlines.values(), default=None),
                "currently_due": currently_due,
                "disabled_reason": disabled_reason,
                "errors": errors,
                "eventually_due": eventually_due,
                "past_due": past_due,
                "pending_verification": pending,
            },
            "settings": {"payouts": {"schedule": {"interval": "daily"}}},
            "tos_acceptance": self._section("tos_acceptance"),
            "type": self.legacy_type or "none",
        }
        for section in ("individual", "company", "representative"):
            if any(f.startswith(section + ".") for f in self.fields):
                out[section] = self._section(section)
        return out

    def _capability_status(
        self, capability: str, currently_due: list[str], gap: list[str], past_due: list[str], now: int
    ) -> str:
        if self.rejected or self.under_review or self.paused:
            return "inactive"
        needed = set(catalog.fields_for_capability(self.country, self.business_type or "individual", capability))
        # a missed deadline stops payouts first; charges only after a charge block
        if past_due and (capability != "card_payments" or self.block == "charges"):
            return "inactive"
        if any(f in gap for f in needed | self.extra_due):
            return "inactive"
        if not self.details_submitted:
            return "inactive"
        if any(self.pending(f, now) for f in needed | self.extra_due):
            return "pending"
        return "active"

    def _section(self, prefix: str) -> dict[str, Any]:
        """Unflatten the provided ``prefix.*`` fields (identity data, on purpose)."""
        out: dict[str, Any] = {}
        for name, value in self.fields.items():
            if not name.startswith(prefix + "."):
                continue
            node = out
            parts = name[len(prefix) + 1 :].split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value.value
        return out

    def _external_accounts(self) -> dict[str, Any]:
        value = self.fields.get("external_account")
        data = []
        if value is not None:
            data.append(
                {
                    "id": "ba_" + self.id[5:],
                    "object": "bank_account",
                    "account_holder_name": "Jenny Rosen",
                    "last4": "6789",
                    "routing_number": "110000000",
                    "country": self.country,
                }
            )
        return {"object": "list", "data": data, "has_more": False}


_CURRENCY = {"US": "usd", "CA": "cad", "AU": "aud", "GB": "gbp", "DE": "eur", "FR": "eur", "JP": "jpy"}
