"""Stripe's parameter checks on the account endpoints, before anything runs.

A request refused here never began executing, so no idempotent answer is
stored for it (``errors.refused_by_validation``). The parameter names are
those of Stripe's OpenAPI description (API 2024-04-10); legacy ``type``
maps to controller properties as Stripe maps it (STRIPE_FACTS, recorded
shape 5), and the controller combinations Stripe refuses are refused.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from onboarding_fsm.account import LinkParams

from . import banks, catalog
from .errors import invalid

T = TypeVar("T")

#: legacy ``type`` -> the controller properties Stripe gives such an account
LEGACY_TYPES: dict[str, dict[str, Any]] = {
    "express": {
        "fees": {"payer": "application_express"},
        "losses": {"payments": "application"},
        "requirement_collection": "stripe",
        "stripe_dashboard": {"type": "express"},
    },
    "standard": {
        "fees": {"payer": "account"},
        "losses": {"payments": "stripe"},
        "requirement_collection": "stripe",
        "stripe_dashboard": {"type": "full"},
    },
    "custom": {
        "fees": {"payer": "application"},
        "losses": {"payments": "application"},
        "requirement_collection": "application",
        "stripe_dashboard": {"type": "none"},
    },
}
CREATE_PARAMS = frozenset({
    "account_token", "bank_account", "business_profile", "business_type", "capabilities", "company", "controller",
    "country", "default_currency", "documents", "email", "expand", "external_account", "individual", "metadata",
    "settings", "tos_acceptance", "type",
})  # fmt: skip
UPDATE_PARAMS = frozenset({
    "account_token", "business_profile", "business_type", "capabilities", "company", "default_currency",
    "documents", "email", "expand", "external_account", "individual", "metadata", "settings", "tos_acceptance",
})  # fmt: skip
LINK_PARAMS = frozenset({"account", "collect", "collection_options", "expand", "refresh_url", "return_url", "type"})
LIST_PARAMS = frozenset({"created", "ending_before", "expand", "limit", "starting_after"})
#: what pre-fills the account's requirements (on create and update)
PREFILL = ("business_profile", "individual", "company", "external_account", "tos_acceptance", "settings")
_INTEGERS = ("tos_acceptance.date", "individual.dob.day", "individual.dob.month", "individual.dob.year")
_RANGE = ("gt", "gte", "lt", "lte")


def known(params: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise invalid(f"Received unknown parameter: {unknown[0]}", unknown[0], "parameter_unknown")


def integers(values: Mapping[str, str]) -> None:
    """Dates are integers at Stripe (a dotted requirement name -> value)."""
    for name in _INTEGERS:
        value = values.get(name)
        if value is not None and not _is_int(value):
            param = name.split(".")[0] + "".join(f"[{p}]" for p in name.split(".")[1:])
            raise invalid(f"Invalid integer: {value}", param, "parameter_invalid_integer")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())


def controller(params: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The legacy type (if given) and the controller properties of a new account."""
    legacy = params.get("type")
    raw = params.get("controller")
    if legacy is not None and raw is not None:
        raise invalid("You may not provide both type and controller", "type")
    if legacy is not None:
        if legacy not in LEGACY_TYPES:
            raise invalid(f"Invalid type: must be one of {', '.join(sorted(LEGACY_TYPES))}", "type")
        return str(legacy), copy.deepcopy(LEGACY_TYPES[legacy])
    return None, _controller(raw or {})


def _controller(raw: Mapping[str, Any]) -> dict[str, Any]:
    allowed = {"fees", "losses", "requirement_collection", "stripe_dashboard"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        name = f"controller[{unknown[0]}]"
        raise invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")
    out = {
        "fees": {"payer": (raw.get("fees") or {}).get("payer", "account")},
        "losses": {"payments": (raw.get("losses") or {}).get("payments", "stripe")},
        "requirement_collection": raw.get("requirement_collection", "stripe"),
        "stripe_dashboard": {"type": (raw.get("stripe_dashboard") or {}).get("type", "full")},
    }
    _one_of(out["fees"]["payer"], ("account", "application"), "controller[fees][payer]")
    _one_of(out["losses"]["payments"], ("application", "stripe"), "controller[losses][payments]")
    _one_of(out["requirement_collection"], ("application", "stripe"), "controller[requirement_collection]")
    _one_of(out["stripe_dashboard"]["type"], ("express", "full", "none"), "controller[stripe_dashboard][type]")
    if out["losses"]["payments"] == "application" and out["fees"]["payer"] != "application":
        raise invalid(
            "The platform can be liable for negative balances (losses[payments]=application) only when it also "
            "pays Stripe's fees (fees[payer]=application).",
            "controller[losses][payments]",
        )
    if out["requirement_collection"] == "application" and out["stripe_dashboard"]["type"] != "none":
        raise invalid(
            "Accounts where the platform collects requirements cannot have a Stripe-hosted dashboard",
            "controller[stripe_dashboard][type]",
        )
    return out


def _one_of(value: Any, allowed: tuple[str, ...], param: str) -> None:
    if value not in allowed:
        raise invalid(f"Invalid {param}: must be one of {', '.join(allowed)}", param)


def capabilities(params: Mapping[str, Any]) -> list[str]:
    """The capabilities requested (``capabilities[name][requested]=true``)."""
    requested = []
    for name, spec in (params.get("capabilities") or {}).items():
        if name not in catalog.SUPPORTED_CAPABILITIES:
            raise invalid(f"Invalid capability: {name}", f"capabilities[{name}]", "parameter_unknown")
        if not isinstance(spec, Mapping):
            raise invalid("capabilities need requested=true", f"capabilities[{name}][requested]")
        if str(spec.get("requested")).lower() == "true":
            requested.append(str(name))
    return requested


def capabilities_required(controller: Mapping[str, Any], requested: Sequence[str]) -> None:
    """``capabilities`` is "Required when controller.stripe_dashboard.type is
    none, which includes Custom accounts" (OpenAPI, ``POST /v1/accounts``):
    Stripe requests capabilities itself only for accounts with a dashboard."""
    if not requested and controller["stripe_dashboard"]["type"] == "none":
        raise invalid("Missing required param: capabilities.", "capabilities", "parameter_missing")


def business_type(value: Any, country: str) -> str | None:
    if value is None:
        return None
    if value not in catalog.BUSINESS_TYPES:
        raise invalid(f"Invalid business_type: must be one of {', '.join(catalog.BUSINESS_TYPES)}", "business_type")
    if value in catalog.US_ONLY_BUSINESS_TYPES and country != "US":
        raise invalid(f"business_type {value} is only available for accounts in the US", "business_type")
    return str(value)


def country(params: Mapping[str, Any]) -> str:
    """The country given, else the platform's (the holder may then choose another)."""
    value = params.get("country") or catalog.PLATFORM_COUNTRY
    if value not in catalog.SUPPORTED_COUNTRIES:
        raise invalid(f"Country {value!r} is not supported by the simulator", "country")
    return str(value)


def external_account(values: Mapping[str, str]) -> None:
    """An external account Stripe would not take (``banks``), refused before anything runs."""
    try:
        banks.parse(values)
    except banks.BankRefused as exc:
        raise invalid(str(exc), exc.param, exc.code) from None


def link_params(params: Mapping[str, Any]) -> LinkParams:
    known(params, LINK_PARAMS)
    if not params.get("account"):
        raise invalid("Missing required param: account.", "account", "parameter_missing")
    link_type = params.get("type")
    if link_type is None:
        raise invalid("Missing required param: type.", "type", "parameter_missing")
    if link_type not in ("account_onboarding", "account_update"):
        raise invalid("Invalid type: must be one of account_onboarding, account_update", "type")
    options = params.get("collection_options") or {}
    fields = options.get("fields", params.get("collect", "currently_due"))
    future = options.get("future_requirements", "omit")
    if fields not in ("currently_due", "eventually_due"):
        raise invalid("Invalid collection_options[fields]", "collection_options[fields]")
    if future not in ("omit", "include"):
        raise invalid("Invalid collection_options[future_requirements]", "collection_options[future_requirements]")
    for key in ("refresh_url", "return_url"):
        parts = urlsplit(str(params.get(key) or ""))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise invalid(f"Not a valid URL: {key}", key, "url_invalid")
    return LinkParams.from_dict({"type": link_type, "fields": fields, "future_requirements": future})


@dataclass(frozen=True, slots=True)
class ListQuery:
    """``GET /v1/accounts``: a page of ``limit`` after or before a cursor, within ``created``."""

    limit: int = 10
    starting_after: str | None = None
    ending_before: str | None = None
    created: tuple[tuple[str, int], ...] = ()

    def admits(self, created: int) -> bool:
        tests = {"gt": created.__gt__, "gte": created.__ge__, "lt": created.__lt__, "lte": created.__le__}
        return all(tests[op](bound) for op, bound in self.created)

    def page(self, ordered: Sequence[T], ids: Sequence[str], noun: str) -> tuple[list[T], bool]:
        """This query's page of ``ordered`` (newest first, ids in step) and
        whether more follow; Stripe's 404-shaped refusal for a cursor it does
        not hold (``No such <noun>``)."""
        cursor = self.starting_after or self.ending_before
        if cursor is not None and cursor not in ids:
            param = "starting_after" if self.starting_after else "ending_before"
            raise invalid(f"No such {noun}: '{cursor}'", param, "resource_missing")
        if self.ending_before is not None:
            newer = list(ordered[: ids.index(self.ending_before)])
            return newer[-self.limit :], len(newer) > self.limit
        rest = list(ordered[ids.index(cursor) + 1 :] if cursor is not None else ordered)
        return rest[: self.limit], len(rest) > self.limit


def list_query(params: Mapping[str, Any]) -> ListQuery:
    known(params, LIST_PARAMS)
    limit = integer(params.get("limit", 10), "limit")
    if not 1 <= limit <= 100:
        raise invalid("This value must be greater than or equal to 1 and less than or equal to 100.", "limit")
    after, before = params.get("starting_after") or None, params.get("ending_before") or None
    if after and before:
        raise invalid("You may only specify one of these parameters: ending_before, starting_after.", "ending_before")
    created = params.get("created")
    if created is None or created == "":
        bounds: tuple[tuple[str, int], ...] = ()
    elif isinstance(created, Mapping):
        unknown = sorted(set(created) - set(_RANGE))
        if unknown:
            name = f"created[{unknown[0]}]"
            raise invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")
        bounds = tuple((op, integer(created[op], f"created[{op}]")) for op in _RANGE if op in created)
    else:
        bounds = (("gte", integer(created, "created")), ("lte", integer(created, "created")))
    return ListQuery(limit, after and str(after), before and str(before), bounds)


def integer(value: Any, param: str) -> int:
    if isinstance(value, bool) or not _is_int(value):
        raise invalid(f"Invalid integer: {value}", param, "parameter_invalid_integer")
    return int(value)
