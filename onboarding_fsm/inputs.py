"""What callers pass the engine, checked before anything is called or written.

Bad input gets an ``InvalidInput`` naming the argument and changes nothing:
these checks run before the first Stripe call and the first transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any, TypeVar

from .account import NewAccount
from .errors import InvalidInput

_ACCOUNT_ID = re.compile(r"^acct_[A-Za-z0-9]{1,64}$")
_PLATFORM_REF = re.compile(r"^[\x21-\x7e]{1,200}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CAPABILITY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
BUSINESS_TYPES = frozenset({"individual", "company", "non_profit", "government_entity"})
ACCOUNT_TYPES = frozenset({"custom", "express", "standard"})
MAX_PAGE = 10_000

E = TypeVar("E", bound=Enum)


def account_id(value: Any) -> str:
    if not isinstance(value, str) or not _ACCOUNT_ID.match(value):
        raise InvalidInput(f"not a Stripe account id: {value!r}")
    return value


def member(kind: type[E], value: Any, name: str) -> E:
    """``value`` as a member of the enum ``kind`` (members and their values accepted)."""
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(f"{name} must be one of {[m.value for m in kind]}, got {value!r}") from None


def page_size(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    return limit


def capability_names(capabilities: Any) -> tuple[str, ...]:
    """Capability names such as ``card_payments``, once each, or ``InvalidInput``."""
    names = tuple(capabilities) if isinstance(capabilities, Iterable) and not isinstance(capabilities, str) else None
    if names is None or not all(isinstance(c, str) and _CAPABILITY.match(c) for c in names):
        raise InvalidInput("capabilities must be a list of capability names such as 'card_payments'")
    return tuple(dict.fromkeys(names))


def new_account(
    platform_ref: Any,
    country: Any,
    capabilities: Any,
    prefill: Any,
    controller: Any,
    account_type: Any,
    business_type: Any,
) -> NewAccount:
    """The account a platform asks for, or ``InvalidInput`` for the first bad argument."""
    if not isinstance(platform_ref, str) or not _PLATFORM_REF.match(platform_ref):
        raise InvalidInput("platform_ref must be 1-200 printable ASCII characters without spaces")
    if country is not None and (not isinstance(country, str) or not _COUNTRY.match(country)):
        raise InvalidInput(f"country must be an ISO 3166-1 alpha-2 code such as 'US', got {country!r}")
    names = capability_names(capabilities)
    if country is None and names:
        raise InvalidInput(
            "pass country when requesting capabilities: Stripe would fix the country to the platform's and "
            "the holder could not choose it; to let the holder choose, create an account with a Stripe-hosted "
            "dashboard without both (Stripe then requests its capabilities itself)"
        )
    if controller is not None and account_type is not None:
        raise InvalidInput("pass controller properties or the legacy type, not both")
    if controller is not None and not isinstance(controller, Mapping):
        raise InvalidInput("controller must be a mapping of controller properties")
    if account_type is not None and account_type not in ACCOUNT_TYPES:
        raise InvalidInput(f"type must be one of {sorted(ACCOUNT_TYPES)}")
    if business_type is not None and business_type not in BUSINESS_TYPES:
        raise InvalidInput(f"business_type must be one of {sorted(BUSINESS_TYPES)}")
    dashboard = controller.get("stripe_dashboard") if isinstance(controller, Mapping) else None
    no_dashboard = account_type == "custom" or (isinstance(dashboard, Mapping) and dashboard.get("type") == "none")
    if no_dashboard and not names:
        raise InvalidInput(
            "an account without a Stripe-hosted dashboard (custom, or controller.stripe_dashboard.type=none) "
            "needs its capabilities requested at creation: Stripe requires them"
        )
    if prefill is not None and not isinstance(prefill, Mapping):
        raise InvalidInput("prefill must be a mapping of Stripe account parameters")
    if prefill and "metadata" in prefill:
        raise InvalidInput("prefill must not set metadata: the engine owns it")
    return NewAccount(
        platform_ref=platform_ref,
        country=country,
        capabilities=names,
        controller=dict(controller) if controller is not None else None,
        type=account_type,
        business_type=business_type,
        prefill=dict(prefill or {}),
    )
