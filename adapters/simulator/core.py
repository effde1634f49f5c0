"""The simulator: a local stand-in for Stripe Connect (DESIGN §7).

It is a real ``StripeGateway`` adapter, not a test mock: it keeps accounts,
derives their requirements from country, business type and capabilities
(``catalog``), honours Stripe's test-mode values, mints single-use links that
expire, lets a holder complete or abandon the hosted form, passes deadlines
on its clock, rejects and deauthorizes accounts, and sends signed events
with optional duplicates, delays and reordering. Platform developers can
use it in their own tests; ``adapters.simulator.server`` serves it over HTTP.
"""

from __future__ import annotations

import copy
import heapq
import random
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from adapters import stripe_params
from onboarding_fsm.account import AccountPage, Link, LinkParams, LinkRequest, LinkType, NewAccount
from onboarding_fsm.clock import from_unix
from onboarding_fsm.errors import (
    StripeAuthenticationFailed,
    StripeIdempotencyConflict,
    StripeRequestFailed,
)
from onboarding_fsm.ports import Clock
from onboarding_fsm.settings import SIMULATOR_WEBHOOK_SECRET
from onboarding_fsm.snapshot import AccountSnapshot, parse_account

from . import catalog
from .catalog import Verdict
from .delivery import Attempt, Delivery, Outbox, Sink
from .hosted import FormError, HostedSession, LinkUnusable, SimulatorError, flatten
from .model import FieldValue, SimAccount

API_VERSION = "2026-10-28.endive"
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_LEGACY_TYPES = {
    "custom": {"requirement_collection": "application", "stripe_dashboard": {"type": "none"}},
    "express": {"requirement_collection": "stripe", "stripe_dashboard": {"type": "express"}},
    "standard": {"requirement_collection": "stripe", "stripe_dashboard": {"type": "full"}},
}
_IDENTITY_PREFIXES = ("individual.", "company.", "representative.")
_IDEMPOTENCY_TTL = 24 * 3600


@dataclass
class SimLink:
    token: str
    account_id: str
    params: LinkParams
    refresh_url: str
    return_url: str
    created: int
    expires_at: int
    used: bool = False


def _invalid(message: str, param: str | None = None, code: str = "parameter_invalid") -> StripeRequestFailed:
    return StripeRequestFailed(message, http_status=400, code=code, param=param, request_id=_request_id())


def _request_id() -> str:
    return "req_" + secrets.token_hex(7)


class Simulator:
    """An in-process Stripe Connect for hosted onboarding. Thread-safe."""

    def __init__(
        self,
        clock: Clock,
        *,
        webhook_secret: str = SIMULATOR_WEBHOOK_SECRET,
        delivery: Delivery | None = None,
        autodeliver: bool = True,
        link_ttl: int = 300,
        verification_delay: int = 0,
        threshold_grace: timedelta = timedelta(days=14),
        hosted_base_url: str = "https://connect.simulator.invalid",
        seed: int = 0,
    ) -> None:
        self.clock = clock
        self.link_ttl = link_ttl
        self.verification_delay = verification_delay
        self.threshold_grace = threshold_grace
        self.hosted_base_url = hosted_base_url.rstrip("/")
        self.autodeliver = autodeliver
        self.calls: Counter[str] = Counter()
        self.outbox = Outbox(secret=webhook_secret, knobs=delivery or Delivery())
        self._rng = random.Random(seed)
        self._accounts: dict[str, SimAccount] = {}
        self._links: dict[str, SimLink] = {}
        self._idempotency: dict[str, tuple[int, dict[str, Any], dict[str, Any]]] = {}
        self._wakeups: list[tuple[int, str]] = []
        self._lock = threading.RLock()

    # ------------------------------------------------------------ plumbing

    def _now(self) -> int:
        return int(self.clock.now().timestamp())

    def _id(self, prefix: str, length: int = 16) -> str:
        return prefix + "".join(self._rng.choice(_ALNUM) for _ in range(length))

    def connect(self, sink: Sink) -> None:
        """Deliver signed events to ``sink(raw_body, signature_header)``,
        e.g. ``engine.ingest_webhook``."""
        self.outbox.sink = sink

    @property
    def delivery(self) -> Delivery:
        return self.outbox.knobs

    def deliver(self) -> list[Attempt]:
        """Send queued events (and retries) to the sink now."""
        with self._lock:
            self._evaluate()
            if self.outbox._busy:
                return []
            self.outbox._busy = True
            events = self.outbox.expand(lambda: self._id("evt_", 24), self._now())
        try:
            return self.outbox.send(events, self._now())
        finally:
            self.outbox._busy = False

    def _after_change(self) -> None:
        if self.autodeliver and not self.outbox.knobs.hold:
            self.deliver()

    def sign(self, event: Mapping[str, Any], timestamp: int | None = None) -> tuple[bytes, str]:
        """Body and ``Stripe-Signature`` header for ``event`` (to replay it)."""
        return self.outbox.sign(dict(event), self._now() if timestamp is None else timestamp)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event emitted so far, in the order Stripe created them."""
        return list(self.outbox.emitted)

    def _emit(self, type_: str, obj: dict[str, Any], account_id: str, previous: dict[str, Any] | None = None) -> None:
        data: dict[str, Any] = {"object": obj}
        if previous is not None:
            data["previous_attributes"] = previous
        event = {
            "id": self._id("evt_", 24),
            "object": "event",
            "account": account_id,
            "api_version": API_VERSION,
            "created": self._now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
        }
        self.outbox.emitted.append(event)
        self.outbox.queue.append(event)

    def _publish(self, acct: SimAccount) -> None:
        """Emit ``account.updated`` (and ``capability.updated``) if the
        account, as Stripe would render it now, changed since last time."""
        now = self._now()
        rendered = acct.render(now)
        before = acct.last_rendered
        acct.last_rendered = rendered
        self._schedule(acct, now)
        if before is None or before == rendered or acct.deauthorized or acct.deleted:
            return
        previous = {k: before.get(k) for k in before.keys() | rendered.keys() if rendered.get(k) != before.get(k)}
        self._emit("account.updated", copy.deepcopy(rendered), acct.id, copy.deepcopy(previous))
        old_caps, new_caps = before.get("capabilities", {}), rendered.get("capabilities", {})
        for name, status in new_caps.items():
            if old_caps.get(name) != status:
                self._emit(
                    "capability.updated",
                    {
                        "id": name,
                        "object": "capability",
                        "account": acct.id,
                        "requested": True,
                        "status": status,
                    },
                    acct.id,
                    {"status": old_caps.get(name)},
                )

    def _schedule(self, acct: SimAccount, now: int) -> None:
        times = [v.verified_at for v in acct.fields.values() if v.verdict is Verdict.PENDING and v.verified_at > now]
        times += [d for d in acct.deadlines.values() if d > now]
        times += [d for d in acct.future.values() if d > now]
        if times:
            heapq.heappush(self._wakeups, (min(times), acct.id))

    def _evaluate(self) -> None:
        """Let time act: verifications complete, deadlines pass."""
        now = self._now()
        while self._wakeups and self._wakeups[0][0] <= now:
            _, account_id = heapq.heappop(self._wakeups)
            acct = self._accounts.get(account_id)
            if acct is not None:
                self._publish(acct)

    def tick(self) -> list[Attempt]:
        """Apply the passage of time on the simulator's clock and deliver."""
        with self._lock:
            self._evaluate()
        return self.deliver() if self.autodeliver and not self.outbox.knobs.hold else []

    def _get(self, account_id: str, *, for_platform: bool = True) -> SimAccount:
        acct = self._accounts.get(account_id)
        if acct is None:
            raise StripeRequestFailed(
                f"No such account: '{account_id}'",
                http_status=404,
                code="resource_missing",
                param="account",
                request_id=_request_id(),
            )
        if acct.deauthorized and for_platform:
            raise StripeAuthenticationFailed(
                f"The provided key does not have access to account '{account_id}' (or that account does not exist).",
                http_status=403,
                code="account_invalid",
                request_id=_request_id(),
            )
        return acct

    def _snapshot(self, acct: SimAccount) -> AccountSnapshot:
        return parse_account(acct.render(self._now()))

    def account_json(self, account_id: str) -> dict[str, Any]:
        """The account exactly as Stripe's API would return it (identity data included)."""
        with self._lock:
            self._evaluate()
            return copy.deepcopy(self._get(account_id).render(self._now()))

    # ------------------------------------------------------- StripeGateway

    def create_account(self, new: NewAccount, *, idempotency_key: str) -> AccountSnapshot:
        return parse_account(
            self.create_account_json(stripe_params.account_create(new), idempotency_key=idempotency_key)
        )

    def create_account_json(self, params: Mapping[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/accounts`` with Stripe's parameters (nested dict)."""
        with self._lock:
            self.calls["create_account"] += 1
            now = self._now()
            if idempotency_key:
                stored = self._idempotency.get(idempotency_key)
                if stored is not None and now - stored[0] < _IDEMPOTENCY_TTL:
                    if stored[1] != dict(params):
                        raise StripeIdempotencyConflict(
                            "Keys for idempotent requests can only be used with the same parameters "
                            "they were first used with.",
                            http_status=400,
                            code="idempotency_key_in_use",
                            request_id=_request_id(),
                        )
                    return copy.deepcopy(stored[2])
            acct = self._build_account(params, now)
            self._accounts[acct.id] = acct
            rendered = acct.render(now)
            acct.last_rendered = rendered
            self._schedule(acct, now)
            if idempotency_key:
                self._idempotency[idempotency_key] = (now, copy.deepcopy(dict(params)), copy.deepcopy(rendered))
            return copy.deepcopy(rendered)

    def _build_account(self, params: Mapping[str, Any], now: int) -> SimAccount:
        allowed = {
            "country", "type", "controller", "capabilities", "business_type", "metadata", "email",
            "business_profile", "individual", "company", "representative", "external_account",
            "tos_acceptance", "settings", "default_currency",
        }  # fmt: skip
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise _invalid(f"Received unknown parameter: {unknown[0]}", unknown[0], "parameter_unknown")
        country = params.get("country") or "US"
        if country not in catalog.SUPPORTED_COUNTRIES:
            raise _invalid(f"Country {country!r} is not supported by the simulator", "country", "country_unsupported")
        legacy = params.get("type")
        controller_in = params.get("controller")
        if legacy is not None and controller_in is not None:
            raise _invalid("You may not provide both type and controller", "type")
        if legacy is not None:
            if legacy not in _LEGACY_TYPES:
                raise _invalid(f"Invalid type: must be one of {sorted(_LEGACY_TYPES)}", "type")
            controller: dict[str, Any] = copy.deepcopy(_LEGACY_TYPES[legacy])
        else:
            controller = _controller(controller_in or {})
        capabilities = []
        for name, spec in (params.get("capabilities") or {}).items():
            if name not in catalog.SUPPORTED_CAPABILITIES:
                raise _invalid(f"Invalid capability: {name}", f"capabilities[{name}]", "parameter_unknown")
            if not isinstance(spec, Mapping) or str(spec.get("requested")).lower() != "true":
                raise _invalid("capabilities need requested=true", f"capabilities[{name}][requested]")
            capabilities.append(name)
        business_type = params.get("business_type")
        if business_type is not None and business_type not in ("individual", "company"):
            raise _invalid(f"Invalid business_type: {business_type}", "business_type")
        metadata = {str(k): str(v) for k, v in (params.get("metadata") or {}).items()}
        acct = SimAccount(
            id=self._id("acct_"),
            created=now,
            country=country,
            business_type=business_type,
            legacy_type=legacy,
            controller=controller,
            capabilities=tuple(capabilities),
            metadata=metadata,
            email=params.get("email"),
        )
        prefill = {
            k: v
            for k, v in params.items()
            if k
            in ("business_profile", "individual", "company", "representative", "external_account", "tos_acceptance")
        }
        self._apply_values(acct, flatten(prefill), now)
        return acct

    def retrieve_account(self, account_id: str) -> AccountSnapshot:
        with self._lock:
            self.calls["retrieve_account"] += 1
            self._evaluate()
            return self._snapshot(self._get(account_id))

    def update_account(
        self, account_id: str, params: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> AccountSnapshot:
        return parse_account(self.update_account_json(account_id, params))

    def update_account_json(self, account_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v1/accounts/{id}``."""
        with self._lock:
            self.calls["update_account"] += 1
            self._evaluate()
            acct = self._get(account_id)
            now = self._now()
            values = flatten({k: v for k, v in params.items() if k not in ("metadata", "capabilities")})
            if acct.linked and acct.requirement_collection == "stripe":
                locked = sorted(f for f in values if f.startswith(_IDENTITY_PREFIXES))
                if locked:
                    raise _invalid(
                        "This account's identity information can no longer be changed by the platform "
                        "(an Account Link was created); the holder must update it.",
                        locked[0],
                    )
            for name, spec in (params.get("capabilities") or {}).items():
                if name not in catalog.SUPPORTED_CAPABILITIES:
                    raise _invalid(f"Invalid capability: {name}", f"capabilities[{name}]", "parameter_unknown")
                if str(spec.get("requested")).lower() == "true" and name not in acct.capabilities:
                    acct.capabilities = (*acct.capabilities, name)
            for key, value in (params.get("metadata") or {}).items():
                if value in ("", None):
                    acct.metadata.pop(str(key), None)
                else:
                    acct.metadata[str(key)] = str(value)
            self._apply_values(acct, values, now)
            self._publish(acct)
            rendered = copy.deepcopy(acct.render(now))
        self._after_change()
        return rendered

    def list_accounts(self, *, limit: int = 100, starting_after: str | None = None) -> AccountPage:
        data, has_more = self.list_accounts_json(limit=limit, starting_after=starting_after)
        return AccountPage(tuple(parse_account(a) for a in data), has_more)

    def list_accounts_json(
        self, *, limit: int = 10, starting_after: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """``GET /v1/accounts``: newest first, cursor pagination."""
        with self._lock:
            self.calls["list_accounts"] += 1
            if not 1 <= limit <= 100:
                raise _invalid("limit must be between 1 and 100", "limit")
            self._evaluate()
            ordered = sorted(
                (a for a in self._accounts.values() if not a.deleted and not a.deauthorized),
                key=lambda a: (a.created, a.id),
                reverse=True,
            )
            if starting_after is not None:
                ids = [a.id for a in ordered]
                if starting_after not in ids:
                    raise _invalid(f"No such account: '{starting_after}'", "starting_after", "resource_missing")
                ordered = ordered[ids.index(starting_after) + 1 :]
            now = self._now()
            return [copy.deepcopy(a.render(now)) for a in ordered[:limit]], len(ordered) > limit

    def create_account_link(self, request: LinkRequest) -> Link:
        data = self.create_account_link_json(stripe_params.account_link(request))
        return Link(
            url=data["url"],
            created_at=from_unix(data["created"]),
            expires_at=from_unix(data["expires_at"]),
            params=request.params,
        )

    def create_account_link_json(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v1/account_links``."""
        with self._lock:
            self.calls["create_account_link"] += 1
            self._evaluate()
            account_id = params.get("account")
            if not account_id:
                raise _invalid("Missing required param: account.", "account", "parameter_missing")
            acct = self._get(str(account_id))
            link_type = params.get("type")
            if link_type not in ("account_onboarding", "account_update"):
                raise _invalid("Invalid type: must be one of account_onboarding, account_update", "type")
            options = params.get("collection_options") or {}
            fields = options.get("fields", "currently_due")
            future = options.get("future_requirements", "omit")
            if fields not in ("currently_due", "eventually_due"):
                raise _invalid("Invalid collection_options[fields]", "collection_options[fields]")
            if future not in ("omit", "include"):
                raise _invalid(
                    "Invalid collection_options[future_requirements]", "collection_options[future_requirements]"
                )
            for key in ("refresh_url", "return_url"):
                url = params.get(key)
                parts = urlsplit(str(url or ""))
                if parts.scheme not in ("http", "https") or not parts.netloc:
                    raise _invalid(f"Not a valid URL: {key}", key, "url_invalid")
            if link_type == "account_update" and not (
                acct.requirement_collection == "application" and acct.dashboard == "none"
            ):
                raise _invalid(
                    "You cannot create `account_update` type Account Links for accounts where Stripe collects "
                    "requirements or that have access to a Stripe-hosted dashboard.",
                    "type",
                )
            if acct.rejected:
                raise _invalid("This account has been rejected and cannot be onboarded.", "account", "account_invalid")
            now = self._now()
            link = SimLink(
                token=secrets.token_urlsafe(24),
                account_id=acct.id,
                params=LinkParams.from_dict({"type": link_type, "fields": fields, "future_requirements": future}),
                refresh_url=str(params["refresh_url"]),
                return_url=str(params["return_url"]),
                created=now,
                expires_at=now + self.link_ttl,
            )
            self._links[link.token] = link
            acct.linked = True
            return {
                "object": "account_link",
                "created": link.created,
                "expires_at": link.expires_at,
                "url": f"{self.hosted_base_url}/setup/s/{link.token}",
            }

    # ------------------------------------------------------------ the holder

    def visit(self, url: str) -> HostedSession:
        """Open a link as the holder's browser would. Raises ``LinkUnusable``
        (Stripe redirects to the refresh_url) when it was already visited,
        has expired, or the account can no longer be onboarded."""
        with self._lock:
            self._evaluate()
            token = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
            link = self._links.get(token)
            if link is None:
                raise SimulatorError("not a link this simulator minted")
            acct = self._accounts[link.account_id]
            if link.used:
                raise LinkUnusable("already visited", link.refresh_url)
            if self._now() >= link.expires_at:
                raise LinkUnusable("expired", link.refresh_url)
            if acct.deauthorized or acct.deleted or acct.rejected:
                raise LinkUnusable("account can no longer be onboarded", link.refresh_url)
            link.used = True
            return HostedSession(self, link)

    def _form_fields(self, link: SimLink) -> tuple[str, ...]:
        with self._lock:
            acct = self._accounts[link.account_id]
            rendered = acct.render(self._now())
            req, fut = rendered["requirements"], rendered["future_requirements"]
            key = link.params.fields.value
            fields = list(req[key])
            if link.params.future_requirements.value == "include":
                fields += fut[key]
            if link.params.type is LinkType.ACCOUNT_UPDATE:
                fields += [f for f in acct.fields if not f.startswith("tos_acceptance.")]
            return tuple(dict.fromkeys(fields))

    def _provided_fields(self, account_id: str) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._accounts[account_id].fields)

    def _apply_form(self, account_id: str, values: Mapping[str, str], *, finished: bool) -> None:
        with self._lock:
            acct = self._accounts[account_id]
            self._apply_values(acct, values, self._now())
            if finished:
                acct.details_submitted = True
            self._publish(acct)
        self._after_change()

    def _apply_values(self, acct: SimAccount, values: Mapping[str, str], now: int) -> None:
        for name, value in values.items():
            if name == "business_type":
                if value not in ("individual", "company"):
                    raise FormError(f"business_type must be individual or company, got {value!r}")
                acct.business_type = value
            outcome = catalog.judge(name, value)
            acct.fields[name] = FieldValue(value, outcome.verdict, outcome.code, self._verified_at(outcome, now))
        for person in ("individual", "representative"):
            parts = [values.get(f"{person}.dob.{p}") for p in ("year", "month", "day")]
            stored = [acct.fields.get(f"{person}.dob.{p}") for p in ("year", "month", "day")]
            if any(parts) and all(stored):
                try:
                    year, month, day = (int(s.value) for s in stored if s is not None)
                    outcome = catalog.judge(f"{person}.dob", f"{year:04d}-{month:02d}-{day:02d}")
                except ValueError:
                    outcome = catalog.Outcome(Verdict.INVALID, "invalid_value_other")
                for p in ("year", "month", "day"):
                    field = acct.fields[f"{person}.dob.{p}"]
                    acct.fields[f"{person}.dob.{p}"] = FieldValue(
                        field.value, outcome.verdict, outcome.code, self._verified_at(outcome, now)
                    )
        for name, field in list(acct.fields.items()):
            if name not in values and not name.startswith(("individual.dob", "representative.dob")):
                continue
            if field.verdict is Verdict.MISMATCH:
                prefix = name.split(".", 1)[0]
                acct.extra_due.add(f"{prefix}.verification.document")
            elif field.verdict is Verdict.OFAC:
                acct.under_review = True
            elif field.verdict is Verdict.PAUSE:
                acct.paused = True

    def _verified_at(self, outcome: catalog.Outcome, now: int) -> int:
        return now + self.verification_delay if outcome.verdict is Verdict.PENDING else now

    # --------------------------------------------------------- the operator

    def _operate(self, account_id: str, change: Callable[[SimAccount, int], None]) -> None:
        with self._lock:
            self._evaluate()
            acct = self._get(account_id, for_platform=False)
            change(acct, self._now())
            self._publish(acct)
        self._after_change()

    def add_future_requirements(self, account_id: str, fields: Sequence[str], deadline: datetime) -> None:
        """Stripe announces fields that become due at ``deadline`` (e.g. a
        regulation change); until then they sit in ``future_requirements``."""
        due = int(deadline.timestamp())

        def change(acct: SimAccount, now: int) -> None:
            if due <= now:
                raise SimulatorError("a future requirement's deadline must be in the future")
            for name in fields:
                acct.future[name] = due

        self._operate(account_id, change)

    def trigger_next_requirements(self, account_id: str, deadline: datetime | None = None) -> None:
        """Volume thresholds hit: ``later`` fields become currently due with a deadline."""

        def change(acct: SimAccount, now: int) -> None:
            due = int(deadline.timestamp()) if deadline else now + int(self.threshold_grace.total_seconds())
            self._promote(acct, due, now)

        self._operate(account_id, change)

    def _promote(self, acct: SimAccount, due: int, now: int) -> None:
        for name in acct.later_set(now):
            if not acct.satisfied(name, now):
                acct.deadlines[name] = due

    def charge(self, account_id: str, card_number: str) -> None:
        """A Connect charge with one of Stripe's requirement-trigger cards."""

        def change(acct: SimAccount, now: int) -> None:
            if not acct.details_submitted or not any(not acct.satisfied(f, now) for f in acct.later_set(now)):
                return  # no effect until onboarded with something eventually due (Stripe's rule)
            if card_number == catalog.CARD_NEXT_REQUIREMENTS:
                self._promote(acct, now + int(self.threshold_grace.total_seconds()), now)
            elif card_number in (catalog.CARD_CHARGE_BLOCK, catalog.CARD_PAYOUT_BLOCK):
                self._promote(acct, now, now)
                acct.block = "charges" if card_number == catalog.CARD_CHARGE_BLOCK else "payouts"

        self._operate(account_id, change)

    def complete_verifications(self, account_id: str | None = None) -> None:
        """Finish pending verifications now instead of after ``verification_delay``."""
        with self._lock:
            now = self._now()
            targets = [self._accounts[account_id]] if account_id else list(self._accounts.values())
            for acct in targets:
                for field in acct.fields.values():
                    if field.verdict is Verdict.PENDING and field.verified_at > now:
                        field.verified_at = now
                self._publish(acct)
        self._after_change()

    def reject(self, account_id: str, reason: str = "fraud") -> None:
        """Stripe rejects the account (``rejected.<reason>``)."""
        if reason not in ("fraud", "terms_of_service", "listed", "other", "incomplete_verification"):
            raise SimulatorError(f"unknown rejection reason {reason!r}")
        self._operate(account_id, lambda acct, now: setattr(acct, "rejected", reason))

    def review(self, account_id: str, under_review: bool = True) -> None:
        """Put the account under review, or lift the review."""
        self._operate(account_id, lambda acct, now: setattr(acct, "under_review", under_review))

    def deauthorize(self, account_id: str) -> None:
        """The account disconnects from the platform."""
        with self._lock:
            acct = self._get(account_id)
            acct.deauthorized = True
            self._emit(
                "account.application.deauthorized",
                {"id": "ca_simulatorplatform", "object": "application", "name": "onboarding-fsm simulator"},
                acct.id,
            )
        self._after_change()

    def delete(self, account_id: str) -> None:
        """Delete the account (test mode allows it at any time); no event."""
        with self._lock:
            self._get(account_id).deleted = True


def _controller(raw: Mapping[str, Any]) -> dict[str, Any]:
    allowed = {"fees", "losses", "requirement_collection", "stripe_dashboard"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _invalid(
            f"Received unknown parameter: controller[{unknown[0]}]", f"controller[{unknown[0]}]", "parameter_unknown"
        )
    out = {
        "requirement_collection": raw.get("requirement_collection", "stripe"),
        "stripe_dashboard": {"type": (raw.get("stripe_dashboard") or {}).get("type", "full")},
        "fees": {"payer": (raw.get("fees") or {}).get("payer", "account")},
        "losses": {"payments": (raw.get("losses") or {}).get("payments", "stripe")},
    }
    if out["requirement_collection"] not in ("application", "stripe"):
        raise _invalid("Invalid controller[requirement_collection]", "controller[requirement_collection]")
    if out["stripe_dashboard"]["type"] not in ("express", "full", "none"):
        raise _invalid("Invalid controller[stripe_dashboard][type]", "controller[stripe_dashboard][type]")
    if out["requirement_collection"] == "application" and out["stripe_dashboard"]["type"] != "none":
        raise _invalid(
            "Accounts where the platform collects requirements cannot have a Stripe-hosted dashboard",
            "controller[stripe_dashboard][type]",
        )
    return out


__all__ = ["FormError", "HostedSession", "LinkUnusable", "SimLink", "Simulator", "SimulatorError"]
