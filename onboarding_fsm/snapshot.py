"""Our own frozen view of a Stripe Account, and the one parser that builds it.

Every way an account reaches the engine (an ``account.updated`` payload, a
retrieve through the SDK, the simulator) goes through ``parse_account`` so the
rules for missing keys and open enums live in one place. Old API versions
omit ``alternatives`` and ``future_requirements``; the parser keeps that
distinction (``future_requirements is None``) rather than inventing an empty
hash. Only field *names* survive: identity data never enters these types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import bounds
from .errors import MalformedPayload

#: metadata key under which the engine tags accounts with the platform reference
PLATFORM_REF_KEY = "onboarding_fsm_ref"

REQUIREMENT_LISTS = ("currently_due", "eventually_due", "past_due", "pending_verification")


@dataclass(frozen=True, slots=True)
class RequirementError:
    """Stripe's ``code`` and the ``requirement`` it concerns. Stripe's ``reason``
    is free text that can quote what the holder typed (an address, a name),
    so it is never kept: the code says the same to a machine."""

    code: str
    requirement: str


@dataclass(frozen=True, slots=True)
class Alternative:
    alternative_fields_due: tuple[str, ...]
    original_fields_due: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Requirements:
    currently_due: tuple[str, ...] = ()
    eventually_due: tuple[str, ...] = ()
    past_due: tuple[str, ...] = ()
    pending_verification: tuple[str, ...] = ()
    errors: tuple[RequirementError, ...] = ()
    alternatives: tuple[Alternative, ...] | None = None
    current_deadline: datetime | None = None
    disabled_reason: str | None = None

    @property
    def is_empty(self) -> bool:
        return not (
            self.currently_due or self.eventually_due or self.past_due or self.pending_verification or self.errors
        )


@dataclass(frozen=True, slots=True)
class Controller:
    type: str | None = None
    requirement_collection: str | None = None
    stripe_dashboard: str | None = None


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    id: str
    livemode: bool = False
    country: str | None = None
    type: str | None = None
    business_type: str | None = None
    controller: Controller = field(default_factory=Controller)
    capabilities: tuple[tuple[str, str], ...] = ()
    charges_enabled: bool = False
    payouts_enabled: bool = False
    details_submitted: bool = False
    requirements: Requirements = field(default_factory=Requirements)
    future_requirements: Requirements | None = None
    deleted: bool = False
    platform_ref: str | None = None
    created: datetime | None = None
    #: Stripe's ``Request-Id`` of the call that answered it (for the audit
    #: trail's cause); not part of what Stripe says about the account
    request_id: str | None = field(default=None, compare=False)

    def capability(self, name: str) -> str | None:
        for key, status in self.capabilities:
            if key == name:
                return status
        return None

    @property
    def platform_collects_requirements(self) -> bool:
        """Custom-like accounts: the platform, not Stripe, owns requirement collection."""
        if self.controller.requirement_collection is not None:
            return self.controller.requirement_collection == "application"
        return self.type == "custom"

    @property
    def has_stripe_dashboard(self) -> bool:
        if self.controller.stripe_dashboard is not None:
            return self.controller.stripe_dashboard != "none"
        return self.type != "custom"


# --- parsing ---------------------------------------------------------------


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MalformedPayload(f"{where} must be a list of strings")
    return tuple(value)


def _opt_str(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise MalformedPayload(f"{where} must be a string or null")


def _bool(value: Any, where: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise MalformedPayload(f"{where} must be a boolean")


def _timestamp(value: Any, where: str) -> datetime | None:
    """A bounded unix time: one past ``datetime``'s range would be an OverflowError."""
    return None if value is None else bounds.unix_time(value, where)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MalformedPayload(f"{where} must be an object")
    return value


def parse_requirements(raw: Any, where: str = "requirements") -> Requirements:
    data = _mapping(raw, where)
    errors = []
    raw_errors = data.get("errors") or []
    if not isinstance(raw_errors, list):
        raise MalformedPayload(f"{where}.errors must be a list")
    for item in raw_errors:
        entry = _mapping(item, f"{where}.errors[]")
        code = _opt_str(entry.get("code"), f"{where}.errors[].code") or "unknown"
        requirement = _opt_str(entry.get("requirement"), f"{where}.errors[].requirement") or ""
        errors.append(RequirementError(code=code, requirement=requirement))
    alternatives: tuple[Alternative, ...] | None = None
    if "alternatives" in data and data["alternatives"] is not None:
        if not isinstance(data["alternatives"], list):
            raise MalformedPayload(f"{where}.alternatives must be a list")
        alternatives = tuple(
            Alternative(
                alternative_fields_due=_str_list(
                    _mapping(alt, f"{where}.alternatives[]").get("alternative_fields_due"), f"{where}.alternatives[]"
                ),
                original_fields_due=_str_list(
                    _mapping(alt, f"{where}.alternatives[]").get("original_fields_due"), f"{where}.alternatives[]"
                ),
            )
            for alt in data["alternatives"]
        )
    return Requirements(
        currently_due=_str_list(data.get("currently_due"), f"{where}.currently_due"),
        eventually_due=_str_list(data.get("eventually_due"), f"{where}.eventually_due"),
        past_due=_str_list(data.get("past_due"), f"{where}.past_due"),
        pending_verification=_str_list(data.get("pending_verification"), f"{where}.pending_verification"),
        errors=tuple(errors),
        alternatives=alternatives,
        current_deadline=_timestamp(data.get("current_deadline"), f"{where}.current_deadline"),
        disabled_reason=_opt_str(data.get("disabled_reason"), f"{where}.disabled_reason"),
    )


def parse_account(raw: Any) -> AccountSnapshot:
    """Build a snapshot from an Account in Stripe's JSON shape (or our stored subset)."""
    data = _mapping(raw, "account")
    account_id = bounds.identifier(data.get("id"), "account.id", bounds.MAX_ACCOUNT_ID)
    obj = data.get("object", "account")
    if obj != "account":
        raise MalformedPayload(f"expected an account object, got {obj!r}")
    controller = _mapping(data.get("controller"), "account.controller")
    dashboard = _mapping(controller.get("stripe_dashboard"), "account.controller.stripe_dashboard")
    capabilities = _mapping(data.get("capabilities"), "account.capabilities")
    caps: list[tuple[str, str]] = []
    for name, status in capabilities.items():
        if not isinstance(status, str):
            raise MalformedPayload(f"account.capabilities.{name} must be a string")
        caps.append((str(name), status))
    metadata = _mapping(data.get("metadata"), "account.metadata")
    future_raw = data.get("future_requirements")
    platform_ref = bounds.short_text(
        metadata.get(PLATFORM_REF_KEY), f"account.metadata.{PLATFORM_REF_KEY}", bounds.MAX_PLATFORM_REF
    )
    return AccountSnapshot(
        id=account_id,
        livemode=_bool(data.get("livemode"), "account.livemode"),
        country=bounds.short_text(data.get("country"), "account.country", 2),  # ISO 3166-1 alpha-2
        type=bounds.short_text(data.get("type"), "account.type", bounds.MAX_ENUM),
        business_type=bounds.short_text(data.get("business_type"), "account.business_type", bounds.MAX_ENUM),
        controller=Controller(
            type=bounds.short_text(controller.get("type"), "account.controller.type", bounds.MAX_ENUM),
            requirement_collection=bounds.short_text(
                controller.get("requirement_collection"), "account.controller.requirement_collection", bounds.MAX_ENUM
            ),
            stripe_dashboard=bounds.short_text(
                dashboard.get("type"), "account.controller.stripe_dashboard.type", bounds.MAX_ENUM
            ),
        ),
        capabilities=tuple(sorted(caps)),
        charges_enabled=_bool(data.get("charges_enabled"), "account.charges_enabled"),
        payouts_enabled=_bool(data.get("payouts_enabled"), "account.payouts_enabled"),
        details_submitted=_bool(data.get("details_submitted"), "account.details_submitted"),
        requirements=parse_requirements(data.get("requirements")),
        future_requirements=None if future_raw is None else parse_requirements(future_raw, "future_requirements"),
        deleted=_bool(data.get("deleted"), "account.deleted"),
        platform_ref=platform_ref,
        created=_timestamp(data.get("created"), "account.created"),
    )


# --- rendering (the stored form is the same shape the parser reads) ----------


def _requirements_dict(req: Requirements) -> dict[str, Any]:
    out: dict[str, Any] = {
        "currently_due": list(req.currently_due),
        "eventually_due": list(req.eventually_due),
        "past_due": list(req.past_due),
        "pending_verification": list(req.pending_verification),
        "errors": [{"code": e.code, "requirement": e.requirement} for e in req.errors],
        "current_deadline": int(req.current_deadline.timestamp()) if req.current_deadline else None,
        "disabled_reason": req.disabled_reason,
    }
    if req.alternatives is not None:
        out["alternatives"] = [
            {
                "alternative_fields_due": list(a.alternative_fields_due),
                "original_fields_due": list(a.original_fields_due),
            }
            for a in req.alternatives
        ]
    return out


def snapshot_to_dict(snap: AccountSnapshot) -> dict[str, Any]:
    """Stripe-shaped dict holding only what the snapshot holds (no identity data)."""
    out: dict[str, Any] = {
        "id": snap.id,
        "object": "account",
        "livemode": snap.livemode,
        "country": snap.country,
        "type": snap.type,
        "business_type": snap.business_type,
        "controller": {
            "type": snap.controller.type,
            "requirement_collection": snap.controller.requirement_collection,
            "stripe_dashboard": {"type": snap.controller.stripe_dashboard},
        },
        "capabilities": dict(snap.capabilities),
        "charges_enabled": snap.charges_enabled,
        "payouts_enabled": snap.payouts_enabled,
        "details_submitted": snap.details_submitted,
        "requirements": _requirements_dict(snap.requirements),
        "future_requirements": None
        if snap.future_requirements is None
        else _requirements_dict(snap.future_requirements),
        "deleted": snap.deleted,
        "metadata": {PLATFORM_REF_KEY: snap.platform_ref} if snap.platform_ref is not None else {},
        "created": int(snap.created.timestamp()) if snap.created else None,
    }
    return out
