"""The simulator: a local stand-in for Stripe Connect (DESIGN §7).

It is a real ``StripeGateway`` adapter, not a test mock: it keeps accounts,
derives their requirements from country, business type and capabilities
(``catalog``), honours Stripe's test-mode values, mints single-use links that
expire, lets a holder complete or abandon the hosted form (``hosted``),
passes deadlines on its clock, rejects and deauthorizes accounts
(``operator``), pays out to connected accounts' test bank accounts — and
fails as Stripe's test numbers say (``payouts``) — and sends signed events
with optional duplicates, delays and reordering (``delivery``). ``Simulator`` is the one object users hold: the
gateway port, the holder's ``visit``, the operator's actions and the event
knobs, over one shared world (``state``). ``server`` serves it over HTTP.
Accounts belong to the platform that created them: ``as_platform`` acts as
another platform in the same world (the gateway port is in ``gateway``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from onboarding_fsm.ports import Clock
from onboarding_fsm.selfcheck import WANTED
from onboarding_fsm.settings import SIMULATOR_WEBHOOK_SECRET

from . import catalog
from .api import StripeApi
from .delivery import Attempt, Delivery, Outbox, Sink
from .errors import LinkUnusable, SimulatorError
from .gateway import SimulatedGateway
from .hosted import HostedSession
from .idempotency import IdempotencyStore
from .operator import Operator
from .platforms import DEFAULT_PLATFORM, Platform, key_for
from .state import SimState


class Simulator(SimulatedGateway):
    """An in-process Stripe Connect for hosted onboarding, and the gateway
    port as the default platform's key. Thread-safe."""

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
        state = SimState(
            clock,
            webhook_secret=webhook_secret,
            delivery=delivery or Delivery(),
            autodeliver=autodeliver,
            link_ttl=link_ttl,
            verification_delay=verification_delay,
            hosted_base_url=hosted_base_url,
            seed=seed,
        )
        super().__init__(StripeApi(state, Platform(DEFAULT_PLATFORM, key_for(DEFAULT_PLATFORM))), state)
        #: what Stripe does on its own: thresholds, reviews, rejections…
        self.operator = Operator(state, threshold_grace=threshold_grace)

    def as_platform(self, name: str) -> SimulatedGateway:
        """The same world through platform ``name``'s key: it sees only the
        accounts it creates; Stripe's 403 ``account_invalid`` for the others."""
        return SimulatedGateway(self.api_as(name), self._state)

    def api_as(self, name: str, key: str | None = None) -> StripeApi:
        """Stripe's JSON API as platform ``name`` sees it through ``key``
        (its well-known test key by default); the HTTP server's keys map here."""
        return StripeApi(self._state, Platform(name, key or key_for(name)))

    # --- knobs and records ---------------------------------------------------

    @property
    def calls(self) -> Counter[str]:
        """Gateway calls made, by operation."""
        return self._state.calls

    @property
    def outbox(self) -> Outbox:
        return self._state.outbox

    @property
    def idempotency(self) -> IdempotencyStore:
        return self._state.idempotency

    @property
    def delivery(self) -> Delivery:
        return self._state.outbox.knobs

    @property
    def autodeliver(self) -> bool:
        """Deliver events as they happen (in process); the HTTP server turns
        this off and delivers from a thread, as Stripe does, asynchronously."""
        return self._state.autodeliver

    @autodeliver.setter
    def autodeliver(self, value: bool) -> None:
        self._state.autodeliver = value

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event emitted so far, in the order Stripe created them."""
        return list(self._state.outbox.emitted)

    def now(self) -> int:
        """The simulator's clock, as Stripe's unix timestamps."""
        return self._state.now()

    # --- webhooks --------------------------------------------------------------

    def connect(self, sink: Sink) -> None:
        """Deliver signed events to ``sink(raw_body, signature_header)``,
        e.g. ``engine.ingest_webhook``."""
        self._state.outbox.sink = sink

    def deliver(self) -> list[Attempt]:
        """Send queued events (and retries) to the sink now."""
        return self._state.deliver()

    def tick(self) -> list[Attempt]:
        """Apply the passage of time on the simulator's clock and deliver."""
        with self._state.lock:
            self._state.evaluate()
        return self.deliver() if self.autodeliver and not self.delivery.hold else []

    def sign(self, event: Mapping[str, Any], timestamp: int | None = None) -> tuple[bytes, str]:
        """Body and ``Stripe-Signature`` header for ``event`` (to replay it)."""
        return self._state.outbox.sign(dict(event), self.now() if timestamp is None else timestamp)

    # --- Stripe's JSON, for tests and the HTTP server ------------------------------

    def account_json(self, account_id: str) -> dict[str, Any]:
        """The account exactly as Stripe's API would return it (identity data included)."""
        return self.api.retrieve_account(account_id)

    def create_account_json(self, params: Mapping[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /v1/accounts`` with Stripe's parameters (nested dict)."""
        return self.api.create_account(params, idempotency_key=idempotency_key)

    def payout(self, account_id: str, amount: int = 1000, currency: str | None = None) -> dict[str, Any]:
        """``POST /v1/payouts`` for the connected account (the platform's key
        with ``Stripe-Account: account_id``): the payout object, ``paid`` or
        ``failed`` at once as the bank account's test number says, with
        ``payout.*`` events. ``currency`` defaults to the bank account's (else
        the account's default currency). Refused as Stripe refuses while the
        account's payouts are disabled or it has no bank account in the currency."""
        if currency is None:
            currency = self._payout_currency(account_id)
        return self.api.create_payout(account_id, {"amount": amount, "currency": currency})

    def _payout_currency(self, account_id: str) -> str:
        with self._state.lock:
            acct = self._state.accounts.get(account_id)
            if acct is None:
                return catalog.currency(catalog.PLATFORM_COUNTRY)  # Stripe answers for the account itself
            bank = acct.bank.details if acct.bank is not None else None
            return (bank.currency if bank is not None else None) or catalog.currency(acct.country)

    def add_webhook_endpoint(self, url: str, events: Sequence[str] = WANTED, *, connect: bool = True) -> dict[str, Any]:
        """Register a webhook endpoint as the platform would (``POST
        /v1/webhook_endpoints``): by default the Connect endpoint a correct
        set-up has, which ``bootstrap`` registers for the app's webhook URL."""
        return self.api.create_webhook_endpoint({"url": url, "enabled_events": list(events), "connect": connect})

    # --- the holder ------------------------------------------------------------

    def visit(self, url: str) -> HostedSession:
        """Open a link as the holder's browser would. Raises ``LinkUnusable``
        (Stripe redirects to the refresh_url) when it was already visited,
        has expired, or the account can no longer be onboarded."""
        s = self._state
        with s.lock:
            s.evaluate()
            link = s.links.get(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
            if link is None:
                raise SimulatorError("not a link this simulator minted")
            acct = s.accounts[link.account_id]
            if link.used:
                raise LinkUnusable("already visited", link.refresh_url)
            if s.now() >= link.expires_at:
                raise LinkUnusable("expired", link.refresh_url)
            if acct.deauthorized or acct.deleted or acct.rejected:
                raise LinkUnusable("account can no longer be onboarded", link.refresh_url)
            link.used = True
            return HostedSession(s, link)

    # --- the operator (see ``operator``) -------------------------------------------

    def add_future_requirements(self, account_id: str, fields: Sequence[str], deadline: datetime) -> None:
        self.operator.add_future_requirements(account_id, fields, deadline)

    def trigger_next_requirements(self, account_id: str, deadline: datetime | None = None) -> None:
        self.operator.trigger_next_requirements(account_id, deadline)

    def charge(self, account_id: str, card_number: str) -> None:
        self.operator.charge(account_id, card_number)

    def complete_verifications(self, account_id: str | None = None) -> None:
        self.operator.complete_verifications(account_id)

    def reject(self, account_id: str, reason: str = "fraud") -> None:
        self.operator.reject(account_id, reason)

    def review(self, account_id: str, under_review: bool = True) -> None:
        self.operator.review(account_id, under_review)

    def deauthorize(self, account_id: str) -> None:
        self.operator.deauthorize(account_id)

    def delete(self, account_id: str) -> None:
        self.operator.delete(account_id)
