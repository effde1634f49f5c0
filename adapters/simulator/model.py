"""A simulated connected account: what was provided, and the requirement
arithmetic over it (what is due, verified, pending, failed — at a time).

An account created with neither a country nor capabilities keeps its
country open until the holder chooses one (``country_open``); the external
account is a ``banks.SimBank`` whose ``errored`` status (a failed payout)
makes ``external_account`` owed again. Every answer is a function of the
account and the simulator's clock, so deadlines pass and pending
verifications complete simply because time moved — exactly what the engine
must notice (by webhook, or by its own check).
``render`` turns an account into Stripe's JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import banks, catalog
from .banks import BankDetails, SimBank
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
    #: the platform that created it (only that platform's key can see it)
    platform: str = "platform"
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
    #: created with neither a country nor capabilities: the holder may still
    #: choose the country in the hosted form (``country`` is the platform's until then)
    country_open: bool = False
    #: the external account payouts go to (``banks``)
    bank: SimBank | None = None
    #: external accounts attached so far (each gets a new id)
    banks_attached: int = 0

    def attach_bank(self, details: BankDetails, now: int) -> SimBank:
        """A new external account replaces the old one (and its error)."""
        self.banks_attached += 1
        self.bank = SimBank(banks.new_id(self.id, self.banks_attached), details, now)
        self.fields[banks.FIELD] = FieldValue(self.bank.id, Verdict.MATCH, None, now)
        return self.bank

    @property
    def bank_errored(self) -> bool:
        """A payout to the external account failed: Stripe asks for another one."""
        return self.bank is not None and self.bank.errored

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
        if value is None or (name == banks.FIELD and self.bank_errored):
            return False
        if value.verdict is Verdict.MISMATCH:
            document = self._person_document(name)
            doc = self.fields.get(document) if document else None
            return doc is not None and doc.verdict in (Verdict.MATCH, Verdict.PENDING) and doc.verified_at <= now
        return value.verdict is not Verdict.INVALID

    def satisfied(self, name: str, now: int) -> bool:
        return self.verified(name, now) or any(self.verified(alt, now) for alt in ALTERNATIVES.get(name, ()))

    def failed(self, name: str, now: int) -> bool:
        """Provided and refused by verification (an errored bank account is
        owed again, not in error: Stripe lists no requirement error for it)."""
        value = self.fields.get(name)
        return value is not None and not (name == banks.FIELD and self.bank_errored) and not self.verified(name, now)

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
        if self.bank_errored:
            names.append(banks.FIELD)  # a payout failed: bank details are owed again
        return list(dict.fromkeys(names))

    def later_set(self, now: int) -> list[str]:
        current = set(self.current_set(now))
        return [f for f in self.tier().later if f not in current]

    def deadline_of(self, name: str, now: int) -> int | None:
        if name in self.deadlines:
            return self.deadlines[name]
        return self.matured_future(now).get(name)
