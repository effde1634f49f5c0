"""The simulated Stripe API, in Stripe's JSON shapes.

``/v1/accounts`` (create, list, retrieve, update) and ``/v1/account_links``:
Stripe's parameters in (nested dicts, as the HTTP server decodes them), the
account as Stripe renders it out (identity data included, as Stripe's is),
Stripe's refusals as ``StripeRequestFailed`` with the offending parameter.
The HTTP server and the in-process gateway both call these.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from onboarding_fsm.account import LinkParams

from . import catalog
from .errors import invalid
from .idempotency import Answer, fingerprint
from .model import SimAccount, flatten
from .state import SimLink, SimState

LEGACY_TYPES = {
    "custom": {"requirement_collection": "application", "stripe_dashboard": {"type": "none"}},
    "express": {"requirement_collection": "stripe", "stripe_dashboard": {"type": "express"}},
    "standard": {"requirement_collection": "stripe", "stripe_dashboard": {"type": "full"}},
}
_IDENTITY_PREFIXES = ("individual.", "company.", "representative.")
_CREATE_PARAMS = {
    "country", "type", "controller", "capabilities", "business_type", "metadata", "email", "business_profile",
    "individual", "company", "representative", "external_account", "tos_acceptance", "settings", "default_currency",
}  # fmt: skip
_PREFILL = ("business_profile", "individual", "company", "representative", "external_account", "tos_acceptance")


class StripeApi:
    def __init__(self, state: SimState) -> None:
        self._state = state

    def create_account(self, params: Mapping[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/accounts``; a repeated idempotency key replays the first answer."""
        s = self._state
        with s.lock:
            s.calls["create_account"] += 1
            now = s.now()
            print_ = fingerprint("POST", "/v1/accounts", params)
            if idempotency_key:
                replayed = s.idempotency.replay(idempotency_key, print_, now)
                if replayed is not None:
                    stored: dict[str, Any] = json.loads(replayed.body)
                    return stored
            acct = self._build_account(params, now)
            s.accounts[acct.id] = acct
            rendered = s.remember(acct)
            if idempotency_key:
                s.idempotency.remember(idempotency_key, print_, now, Answer(200, json.dumps(rendered).encode()))
            return rendered

    def _build_account(self, params: Mapping[str, Any], now: int) -> SimAccount:
        unknown = sorted(set(params) - _CREATE_PARAMS)
        if unknown:
            raise invalid(f"Received unknown parameter: {unknown[0]}", unknown[0], "parameter_unknown")
        country = params.get("country") or "US"
        if country not in catalog.SUPPORTED_COUNTRIES:
            raise invalid(f"Country {country!r} is not supported by the simulator", "country", "country_unsupported")
        legacy = params.get("type")
        controller_in = params.get("controller")
        if legacy is not None and controller_in is not None:
            raise invalid("You may not provide both type and controller", "type")
        if legacy is not None:
            if legacy not in LEGACY_TYPES:
                raise invalid(f"Invalid type: must be one of {sorted(LEGACY_TYPES)}", "type")
            controller: dict[str, Any] = copy.deepcopy(LEGACY_TYPES[legacy])
        else:
            controller = _controller(controller_in or {})
        capabilities = []
        for name, spec in (params.get("capabilities") or {}).items():
            if name not in catalog.SUPPORTED_CAPABILITIES:
                raise invalid(f"Invalid capability: {name}", f"capabilities[{name}]", "parameter_unknown")
            if not isinstance(spec, Mapping) or str(spec.get("requested")).lower() != "true":
                raise invalid("capabilities need requested=true", f"capabilities[{name}][requested]")
            capabilities.append(name)
        business_type = params.get("business_type")
        if business_type is not None and business_type not in ("individual", "company"):
            raise invalid(f"Invalid business_type: {business_type}", "business_type")
        acct = SimAccount(
            id=self._state.new_id("acct_"),
            created=now,
            country=country,
            business_type=business_type,
            legacy_type=legacy,
            controller=controller,
            capabilities=tuple(capabilities),
            metadata={str(k): str(v) for k, v in (params.get("metadata") or {}).items()},
            email=params.get("email"),
        )
        self._state.apply_values(acct, flatten({k: v for k, v in params.items() if k in _PREFILL}), now)
        return acct

    def retrieve_account(self, account_id: str) -> dict[str, Any]:
        """``GET /v1/accounts/{id}``."""
        s = self._state
        with s.lock:
            s.evaluate()
            return s.render(s.get(account_id))

    def update_account(self, account_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v1/accounts/{id}``: identity fields lock once a link was
        created for an account where Stripe collects requirements."""
        s = self._state
        with s.lock:
            s.calls["update_account"] += 1
            s.evaluate()
            acct = s.get(account_id)
            values = flatten({k: v for k, v in params.items() if k not in ("metadata", "capabilities")})
            if acct.linked and acct.requirement_collection == "stripe":
                locked = sorted(f for f in values if f.startswith(_IDENTITY_PREFIXES))
                if locked:
                    raise invalid(
                        "This account's identity information can no longer be changed by the platform "
                        "(an Account Link was created); the holder must update it.",
                        locked[0],
                    )
            for name, spec in (params.get("capabilities") or {}).items():
                if name not in catalog.SUPPORTED_CAPABILITIES:
                    raise invalid(f"Invalid capability: {name}", f"capabilities[{name}]", "parameter_unknown")
                if str(spec.get("requested")).lower() == "true" and name not in acct.capabilities:
                    acct.capabilities = (*acct.capabilities, name)
            for key, value in (params.get("metadata") or {}).items():
                if value in ("", None):
                    acct.metadata.pop(str(key), None)
                else:
                    acct.metadata[str(key)] = str(value)
            s.apply_values(acct, values, s.now())
            s.publish(acct)
            rendered = s.render(acct)
        s.after_change()
        return rendered

    def list_accounts(self, *, limit: int = 10, starting_after: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/accounts``: newest first, cursor pagination."""
        s = self._state
        with s.lock:
            s.calls["list_accounts"] += 1
            if not 1 <= limit <= 100:
                raise invalid("limit must be between 1 and 100", "limit")
            s.evaluate()
            ordered = sorted(
                (a for a in s.accounts.values() if not a.deleted and not a.deauthorized),
                key=lambda a: (a.created, a.id),
                reverse=True,
            )
            if starting_after is not None:
                ids = [a.id for a in ordered]
                if starting_after not in ids:
                    raise invalid(f"No such account: '{starting_after}'", "starting_after", "resource_missing")
                ordered = ordered[ids.index(starting_after) + 1 :]
            return [s.render(a) for a in ordered[:limit]], len(ordered) > limit

    def create_account_link(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v1/account_links``."""
        s = self._state
        with s.lock:
            s.calls["create_account_link"] += 1
            s.evaluate()
            account_id = params.get("account")
            if not account_id:
                raise invalid("Missing required param: account.", "account", "parameter_missing")
            acct = s.get(str(account_id))
            link_params = _link_params(params)
            if link_params.type.value == "account_update" and not (
                acct.requirement_collection == "application" and acct.dashboard == "none"
            ):
                raise invalid(
                    "You cannot create `account_update` type Account Links for accounts where Stripe collects "
                    "requirements or that have access to a Stripe-hosted dashboard.",
                    "type",
                )
            if acct.rejected:
                raise invalid("This account has been rejected and cannot be onboarded.", "account", "account_invalid")
            now = s.now()
            link = SimLink(
                token=secrets.token_urlsafe(24),
                account_id=acct.id,
                params=link_params,
                refresh_url=str(params["refresh_url"]),
                return_url=str(params["return_url"]),
                created=now,
                expires_at=now + s.link_ttl,
            )
            s.links[link.token] = link
            acct.linked = True
            return {
                "object": "account_link",
                "created": link.created,
                "expires_at": link.expires_at,
                "url": f"{s.hosted_base_url}/setup/s/{link.token}",
            }


def _link_params(params: Mapping[str, Any]) -> LinkParams:
    link_type = params.get("type")
    if link_type not in ("account_onboarding", "account_update"):
        raise invalid("Invalid type: must be one of account_onboarding, account_update", "type")
    options = params.get("collection_options") or {}
    fields = options.get("fields", "currently_due")
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


def _controller(raw: Mapping[str, Any]) -> dict[str, Any]:
    allowed = {"fees", "losses", "requirement_collection", "stripe_dashboard"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise invalid(
            f"Received unknown parameter: controller[{unknown[0]}]", f"controller[{unknown[0]}]", "parameter_unknown"
        )
    out = {
        "requirement_collection": raw.get("requirement_collection", "stripe"),
        "stripe_dashboard": {"type": (raw.get("stripe_dashboard") or {}).get("type", "full")},
        "fees": {"payer": (raw.get("fees") or {}).get("payer", "account")},
        "losses": {"payments": (raw.get("losses") or {}).get("payments", "stripe")},
    }
    if out["requirement_collection"] not in ("application", "stripe"):
        raise invalid("Invalid controller[requirement_collection]", "controller[requirement_collection]")
    if out["stripe_dashboard"]["type"] not in ("express", "full", "none"):
        raise invalid("Invalid controller[stripe_dashboard][type]", "controller[stripe_dashboard][type]")
    if out["requirement_collection"] == "application" and out["stripe_dashboard"]["type"] != "none":
        raise invalid(
            "Accounts where the platform collects requirements cannot have a Stripe-hosted dashboard",
            "controller[stripe_dashboard][type]",
        )
    return out
