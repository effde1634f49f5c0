"""What a platform may change on an account after creating it, as pure rules.

Stripe lets the platform update an account (pre-fill more, request new
capabilities) until, on accounts where *Stripe* collects requirements
(Express, Standard, controller ``requirement_collection=stripe``), the first
Account Link is created: from then on the business type, the company, the
individual and the bank account are the holder's, and Stripe refuses the
platform's changes; the terms of service acceptance is never the platform's
to set there. The engine refuses them first, with a typed error, before
anything is sent (``IdentityLocked``, ``UpdateNotAllowed``).

The audit record names what changed — parameter *names* (``individual.dob.day``),
never values, which may be identity data — and the capabilities requested.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from . import inputs
from .account import Account
from .audit import Cause
from .classify import classify, sync_target
from .errors import IdentityLocked, InvalidInput, UpdateNotAllowed
from .moves import Change, move
from .policy import Policy
from .snapshot import AccountSnapshot
from .states import State, Trigger

#: Stripe's update parameters the engine passes on (``country``, ``controller``
#: and ``type`` cannot change; ``metadata`` carries the engine's reference)
UPDATABLE = frozenset(
    {
        "business_profile",
        "business_type",
        "capabilities",
        "company",
        "default_currency",
        "documents",
        "email",
        "external_account",
        "individual",
        "settings",
        "tos_acceptance",
    }
)
#: what Stripe stops the platform from changing once an Account Link (or
#: Session) exists, where Stripe collects requirements (its update parameters' docs)
LOCKED_AFTER_LINK = frozenset({"business_type", "company", "external_account", "individual"})
#: what only a platform that collects requirements may set, at any time
PLATFORM_COLLECTED_ONLY = frozenset({"tos_acceptance"})


@dataclass(frozen=True, slots=True)
class Update:
    """A checked update: Stripe's parameters (``repr=False``: they may hold
    identity data) and what the audit record may say about them."""

    params: Mapping[str, Any] = field(repr=False)
    #: dotted parameter names set, sorted (never values)
    names: tuple[str, ...]
    #: capabilities newly requested
    capabilities: tuple[str, ...]

    def reason(self, classification: str) -> str:
        parts = [f"set={','.join(self.names)}"] if self.names else []
        if self.capabilities:
            parts.append(f"requested={','.join(self.capabilities)}")
        return f"update {' '.join(parts)}: {classification}"


def _names(params: Mapping[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.extend(_names(value, name + "."))
        else:
            out.append(name)
    return out


def checked(params: Any, capabilities: Iterable[str] = ()) -> Update:
    """``params`` and ``capabilities`` as one update, or ``InvalidInput``."""
    if params is not None and not isinstance(params, Mapping):
        raise InvalidInput("params must be a mapping of Stripe account parameters")
    given = dict(params or {})
    unknown = sorted(set(given) - UPDATABLE)
    if unknown:
        raise InvalidInput(f"cannot update {unknown}: the updatable parameters are {sorted(UPDATABLE)}")
    names = inputs.capability_names(capabilities)
    raw = given.pop("capabilities", None) or {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, Mapping) for v in raw.values()):
        raise InvalidInput("capabilities must be {name: {'requested': True}}; or pass capabilities=[name, ...]")
    requested = dict(raw)
    for name in names:
        requested[name] = {"requested": True}
    wanted = tuple(sorted(n for n, spec in requested.items() if spec.get("requested") in (True, "true")))
    inputs.capability_names(wanted)
    if len(wanted) != len(requested):
        raise InvalidInput("capabilities can only be requested here (requested=True); removing one is not onboarding")
    if not given and not wanted:
        raise InvalidInput("nothing to update: pass params or capabilities")
    sent = {**given, **({"capabilities": {n: {"requested": True} for n in wanted}} if wanted else {})}
    return Update(sent, tuple(sorted(_names(given))), wanted)


def allowed(account: Account, update: Update) -> Update:
    """The update, if Stripe would take it from the platform now; else the typed refusal.

    A link was created if the engine issued one or if the holder submitted
    their details (Stripe's form is the only way there where Stripe collects
    requirements: an adopted account, a link whose commit failed)."""
    if account.detached or account.state is State.DISABLED:
        raise UpdateNotAllowed(
            f"account {account.stripe_account_id} is disabled ({account.reason}): onboarding cannot change it"
        )
    if account.snapshot.platform_collects_requirements:
        return update
    reserved = sorted(n for n in update.params if n in PLATFORM_COLLECTED_ONLY)
    if reserved:
        raise UpdateNotAllowed(
            f"account {account.stripe_account_id}: {', '.join(reserved)} can only be set where the platform "
            "collects requirements (controller.requirement_collection=application); Stripe collects them here"
        )
    if account.link_issued_at is not None or account.snapshot.details_submitted:
        locked = tuple(sorted(n for n in update.params if n in LOCKED_AFTER_LINK))
        if locked:
            raise IdentityLocked(account.stripe_account_id, locked)
    return update


def applied(
    account: Account, update: Update, snapshot: AccountSnapshot, cause: Cause, now: datetime, policy: Policy
) -> Change | None:
    """The account once Stripe took ``update`` and answered ``snapshot``:
    where a sync would take it (new requirements owed after verification:
    ``returned_incomplete``), always recorded. The record says what the
    platform did; the account keeps Stripe's classification as its reason,
    so the next quiet sync stays quiet. None for an account detached
    meanwhile (nothing moves it any more)."""
    if account.detached:
        return None
    result = classify(snapshot, policy, now=now, before=account.snapshot)
    target = sync_target(account.state, result.state, detached=False)
    requested = tuple(dict.fromkeys((*account.requested_capabilities, *update.capabilities)))
    change = move(
        account, Trigger.UPDATE, target, update.reason(result.reason), cause, now,
        snapshot=snapshot, requested_capabilities=requested, inaccessible_since=None, synced_at=now, fetched_at=now,
    )  # fmt: skip
    return replace(change, after=replace(change.after, reason=result.reason), unknown=result.unknown)
