"""The simulated Stripe's world: accounts, links, time and the events it emits.

One ``SimState`` is shared by the API (``api``, one view per platform),
the holder's hosted form (``hosted``), the operator (``operator``) and the
``Simulator`` facade. It owns the lock, so each of them changes the world
under it; it renders an account after every change and emits
``account.updated`` (and ``capability.updated``) when the rendering
differs, as Stripe does; and it lets time act — verifications complete,
deadlines pass — when asked (``evaluate``), because rendering is a
function of the clock. The one webhook endpoint is the default platform's:
events about other platforms' accounts are recorded, not delivered.
"""

from __future__ import annotations

import copy
import dataclasses
import heapq
import random
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from onboarding_fsm.account import LinkParams, LinkType
from onboarding_fsm.ports import Clock

from . import banks, catalog
from .catalog import Verdict
from .delivery import Attempt, Delivery, Outbox
from .endpoints import WebhookEndpoints
from .errors import FormError, SimulatorError
from .idempotency import IdempotencyStore
from .model import FieldValue, SimAccount
from .payouts import SimPayout
from .platforms import DEFAULT_PLATFORM, Platform, key_for
from .render import render_account, render_capability

API_VERSION = "2026-10-28.endive"
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


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


class SimState:
    def __init__(
        self,
        clock: Clock,
        *,
        webhook_secret: str,
        delivery: Delivery,
        autodeliver: bool,
        link_ttl: int,
        verification_delay: int,
        hosted_base_url: str,
        seed: int,
    ) -> None:
        self.clock = clock
        self.link_ttl = link_ttl
        self.verification_delay = verification_delay
        self.hosted_base_url = hosted_base_url.rstrip("/")
        self.autodeliver = autodeliver
        self.calls: Counter[str] = Counter()
        self.outbox = Outbox(secret=webhook_secret, knobs=delivery)
        self.idempotency = IdempotencyStore()
        self.accounts: dict[str, SimAccount] = {}
        self.links: dict[str, SimLink] = {}
        #: payouts to connected accounts' bank accounts (``payouts``)
        self.payouts: dict[str, SimPayout] = {}
        #: every platform's webhook endpoints (``endpoints``)
        self.endpoints = WebhookEndpoints()
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        self._wakeups: list[tuple[int, str]] = []
        self._delivering = False

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    def new_id(self, prefix: str, length: int = 16) -> str:
        return prefix + "".join(self._rng.choice(_ALNUM) for _ in range(length))

    def platform(self, name: str = DEFAULT_PLATFORM) -> Platform:
        """Platform ``name`` with its well-known test key."""
        return Platform(name, key_for(name))

    def account(self, account_id: str) -> SimAccount:
        """Any platform's account, for Stripe's own actions (the operator)."""
        acct = self.accounts.get(account_id)
        if acct is None:
            raise SimulatorError(f"the simulator has no account {account_id!r}")
        return acct

    def render(self, acct: SimAccount) -> dict[str, Any]:
        """The account as Stripe's API returns it now (a copy the caller may keep)."""
        return copy.deepcopy(render_account(acct, self.now()))

    # --- events -----------------------------------------------------------------

    def emit(self, type_: str, obj: dict[str, Any], account_id: str, previous: dict[str, Any] | None = None) -> None:
        data: dict[str, Any] = {"object": obj}
        if previous is not None:
            data["previous_attributes"] = previous
        event = {
            "id": self.new_id("evt_", 24),
            "object": "event",
            "account": account_id,
            "api_version": API_VERSION,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
        }
        self.outbox.emitted.append(event)
        owner = self.accounts.get(account_id)
        if owner is None or owner.platform == DEFAULT_PLATFORM:
            self.outbox.queue.append(event)

    def publish(self, acct: SimAccount) -> None:
        """Emit ``account.updated`` (and ``capability.updated``) if the
        account, as Stripe would render it now, changed since last time."""
        before = acct.last_rendered
        rendered = self._rerender(acct)
        if before is None or before == rendered or acct.deauthorized or acct.deleted:
            return
        previous = {k: before.get(k) for k in before.keys() | rendered.keys() if rendered.get(k) != before.get(k)}
        self.emit("account.updated", copy.deepcopy(rendered), acct.id, copy.deepcopy(previous))
        old_caps, new_caps = before.get("capabilities", {}), rendered.get("capabilities", {})
        for name, status in new_caps.items():
            if old_caps.get(name) != status:
                capability = render_capability(acct, name, self.now())
                self.emit("capability.updated", capability, acct.id, {"status": old_caps.get(name)})

    def remember(self, acct: SimAccount) -> dict[str, Any]:
        """A new account's first rendering: what later changes are compared to."""
        return copy.deepcopy(self._rerender(acct))

    def _rerender(self, acct: SimAccount) -> dict[str, Any]:
        """Render the account now, keep it as the last rendering, and wake up
        when time alone will change it."""
        now = self.now()
        acct.last_rendered = render_account(acct, now)
        self._schedule(acct, now)
        return acct.last_rendered

    def _schedule(self, acct: SimAccount, now: int) -> None:
        times = [v.verified_at for v in acct.fields.values() if v.verdict is Verdict.PENDING and v.verified_at > now]
        times += [d for d in acct.deadlines.values() if d > now]
        times += [d for d in acct.future.values() if d > now]
        if times:
            heapq.heappush(self._wakeups, (min(times), acct.id))

    def evaluate(self) -> None:
        """Let time act: verifications complete, deadlines pass."""
        now = self.now()
        while self._wakeups and self._wakeups[0][0] <= now:
            _, account_id = heapq.heappop(self._wakeups)
            acct = self.accounts.get(account_id)
            if acct is not None:
                self.publish(acct)

    def deliver(self) -> list[Attempt]:
        """Send queued events (and retries due) to the sink now. Not re-entrant:
        a sink that makes the simulator emit (the engine re-fetching, say)
        leaves those events for the next delivery, as Stripe would."""
        with self.lock:
            self.evaluate()
            if self._delivering:
                return []
            self._delivering = True
            events = self.outbox.expand(lambda: self.new_id("evt_", 24), self.now())
        try:
            return self.outbox.send(events, self.now())
        finally:
            self._delivering = False

    def after_change(self) -> None:
        if self.autodeliver and not self.outbox.knobs.hold:
            self.deliver()

    # --- provided values --------------------------------------------------------

    def apply_values(self, acct: SimAccount, values: Mapping[str, str], now: int) -> None:
        """Values entered by the platform (pre-fill) or the holder, judged by the
        test-mode rules: mismatches ask for a document, OFAC hits put the
        account under review, some URLs pause capabilities; an external
        account replaces the one attached (``banks``; the API checks it first)."""
        try:
            bank = banks.parse(values)
        except banks.BankRefused as exc:
            raise FormError(str(exc)) from None
        values = {name: value for name, value in values.items() if not banks.is_bank_field(name)}
        if bank is not None:
            acct.attach_bank(bank, now)
        for name, value in values.items():
            if name == "business_type":
                if value not in catalog.BUSINESS_TYPES:
                    raise FormError(f"business_type must be one of {catalog.BUSINESS_TYPES}, got {value!r}")
                acct.business_type = value
            outcome = catalog.judge(name, value)
            acct.fields[name] = FieldValue(value, outcome.verdict, outcome.code, self._verified_at(outcome, now))
        for person in ("individual", "representative"):
            self._judge_birth_date(acct, person, values, now)
        for name, field in list(acct.fields.items()):
            if name not in values and not name.startswith(("individual.dob", "representative.dob")):
                continue
            if field.verdict is Verdict.MISMATCH:
                acct.extra_due.add(f"{name.split('.', 1)[0]}.verification.document")
            elif field.verdict is Verdict.OFAC:
                acct.under_review = True
            elif field.verdict is Verdict.PAUSE:
                acct.paused = True

    def _judge_birth_date(self, acct: SimAccount, person: str, values: Mapping[str, str], now: int) -> None:
        """A date of birth is judged whole, once its three parts are known."""
        parts = [values.get(f"{person}.dob.{p}") for p in ("year", "month", "day")]
        stored = [acct.fields.get(f"{person}.dob.{p}") for p in ("year", "month", "day")]
        if not (any(parts) and all(stored)):
            return
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

    def _verified_at(self, outcome: catalog.Outcome, now: int) -> int:
        return now + self.verification_delay if outcome.verdict is Verdict.PENDING else now

    # --- the hosted form's view -------------------------------------------------

    def form_fields(self, link: SimLink, *, country: str | None = None) -> tuple[str, ...]:
        """What the form for ``link`` asks for now (its collection options);
        with ``country``, what it would ask once the holder chose that country
        (nothing changes: ``check_country`` first)."""
        with self.lock:
            acct = self.accounts[link.account_id]
            if country is not None:
                acct = dataclasses.replace(acct, country=country, country_open=False)
            rendered = render_account(acct, self.now())
            req, fut = rendered["requirements"], rendered["future_requirements"]
            key = link.params.fields.value
            # an open country is asked first: the rest of the form depends on it
            fields = ["country"] if acct.country_open else []
            fields += req[key]
            if link.params.future_requirements.value == "include":
                fields += fut[key]
            if link.params.type is LinkType.ACCOUNT_UPDATE:
                fields += [f for f in acct.fields if not f.startswith("tos_acceptance.")]
            return tuple(dict.fromkeys(fields))

    def country_of(self, account_id: str) -> str:
        with self.lock:
            return self.accounts[account_id].country

    def check_country(self, account_id: str, country: str) -> None:
        """``FormError`` unless the holder may choose ``country`` now; changes nothing."""
        with self.lock:
            acct = self.accounts[account_id]
            if not acct.country_open:
                raise FormError("the account's country is fixed: the form does not ask for it")
            if country not in catalog.SUPPORTED_COUNTRIES:
                raise FormError(f"country must be one of {catalog.SUPPORTED_COUNTRIES}, got {country!r}")
            if acct.business_type in catalog.US_ONLY_BUSINESS_TYPES and country != "US":
                raise FormError(f"business_type {acct.business_type} is only available for accounts in the US")

    def choose_country(self, account_id: str, country: str) -> None:
        """The holder picks the country of an account created without one
        (Stripe's hosted form, for an account with a Stripe-hosted dashboard
        created with neither a country nor capabilities): it applies at once
        — the form re-renders for it — and is final."""
        with self.lock:
            self.check_country(account_id, country)
            acct = self.accounts[account_id]
            acct.country, acct.country_open = country, False
            self.publish(acct)
        self.after_change()

    def provided_fields(self, account_id: str) -> tuple[str, ...]:
        with self.lock:
            return tuple(self.accounts[account_id].fields)

    def apply_form(self, account_id: str, values: Mapping[str, str], *, finished: bool) -> None:
        """The holder submits the form (``finished``) or saves it for later."""
        with self.lock:
            acct = self.accounts[account_id]
            self.apply_values(acct, values, self.now())
            if finished:
                acct.details_submitted = True
            self.publish(acct)
        self.after_change()
