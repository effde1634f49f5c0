"""The ``StripeGateway`` port on the official SDK (stripe >= 16, ``StripeClient``).

* ``base_addresses`` from settings, so the same code talks to Stripe, the
  simulator's HTTP server, or any Stripe-compatible server;
* ``max_network_retries`` set explicitly (the client defaults to none): the
  SDK then retries connection errors, 409s and 5xx with its own backoff,
  keeping the idempotency key of the first attempt;
* the engine's idempotency keys passed through on creates;
* 429 (which the SDK never retries by itself) and 5xx that outlive the SDK's
  retries are retried here with bounded exponential backoff and jitter;
* every SDK exception becomes the engine's error tree (retryable vs
  permanent) with Stripe's request id kept; Account objects become snapshots
  at the boundary — nothing from ``stripe`` reaches the core;
* every answer's ``Request-Id`` (the SDK keeps the response on the returned
  object as ``last_response``) goes on the snapshot or link it became, for the
  audit trail; a listing's goes on every account of its page, since that
  answer is what a sync acts on;
* webhook endpoints listed for the self-check (``onboarding_fsm.selfcheck``).

``stripe`` is imported when the gateway is built, never at import time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from adapters.stripe_wire import params as stripe_params
from onboarding_fsm.account import AccountPage, Link, LinkRequest, NewAccount
from onboarding_fsm.bounds import identifier
from onboarding_fsm.clock import from_unix
from onboarding_fsm.errors import MalformedPayload, SettingsError
from onboarding_fsm.selfcheck import WebhookEndpoint, parse_webhook_endpoint
from onboarding_fsm.snapshot import AccountSnapshot, parse_account

from .budget import RetryBudget
from .errors import translate

T = TypeVar("T")

#: the longest ``Request-Id`` kept (Stripe's are ``req_`` and 14 characters)
MAX_REQUEST_ID = 255


def request_id_of(obj: Any) -> str | None:
    """The ``Request-Id`` header of the answer ``obj`` came from, when it is
    a sane id (short printable ASCII); None when the server sent none."""
    response = getattr(obj, "last_response", None)
    value = getattr(response, "request_id", None)
    try:
        return identifier(value, "Request-Id", MAX_REQUEST_ID)
    except MalformedPayload:
        return None


class StripeSdkGateway:
    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        max_network_retries: int = 2,
        timeout: float = 30.0,
        call_budget: float = 30.0,
        rate_limit_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        import stripe

        self.budget = RetryBudget(call_budget, rate_limit_retries, backoff_base, backoff_cap)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(timeout=self.budget.attempt_timeout(timeout, max_network_retries)),
        )
        self._sleep = sleep
        self._monotonic = monotonic
        self.retried = 0

    def _call(self, fn: Callable[[], T]) -> T:
        """Run one SDK call; back off and retry what the SDK leaves to us,
        within the call's budget."""
        started = self._monotonic()
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                failure = translate(exc)
                delay = self.budget.delay(attempt, self._monotonic() - started) if failure.retryable else None
                if delay is None:
                    raise failure from exc
                self.retried += 1
                attempt += 1
                self._sleep(delay * random.uniform(0.5, 1.0))

    @staticmethod
    def _snapshot(obj: Any, request_id: str | None = None) -> AccountSnapshot:
        """``obj`` as a snapshot, tagged with the request id of the answer it
        came in (its own, unless it is an item of a listing)."""
        snapshot = parse_account(obj.to_dict())
        return replace(snapshot, request_id=request_id or request_id_of(obj))

    # --- the port ------------------------------------------------------------------

    def create_account(self, new: NewAccount, *, idempotency_key: str) -> AccountSnapshot:
        params = stripe_params.account_create(new)
        options = {"idempotency_key": idempotency_key}
        return self._snapshot(self._call(lambda: self._client.v1.accounts.create(params, options)))  # type: ignore[arg-type]

    def retrieve_account(self, account_id: str) -> AccountSnapshot:
        return self._snapshot(self._call(lambda: self._client.v1.accounts.retrieve(account_id)))

    def update_account(
        self, account_id: str, params: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> AccountSnapshot:
        options = {"idempotency_key": idempotency_key} if idempotency_key else None
        return self._snapshot(
            self._call(lambda: self._client.v1.accounts.update(account_id, dict(params), options))  # type: ignore[arg-type]
        )

    def list_accounts(
        self, *, limit: int = 100, starting_after: str | None = None, created_gte: datetime | None = None
    ) -> AccountPage:
        params = stripe_params.account_list(limit, starting_after, created_gte)
        page = self._call(lambda: self._client.v1.accounts.list(params))  # type: ignore[arg-type]
        listing = request_id_of(page)
        return AccountPage(tuple(self._snapshot(a, listing) for a in page.data), bool(page.has_more))

    def create_account_link(self, request: LinkRequest) -> Link:
        params = stripe_params.account_link(request)
        link = self._call(lambda: self._client.v1.account_links.create(params))  # type: ignore[arg-type]
        return Link(
            url=link.url,
            created_at=from_unix(link.created),
            expires_at=from_unix(link.expires_at),
            params=request.params,
            request_id=request_id_of(link),
        )

    def list_webhook_endpoints(self) -> list[WebhookEndpoint]:
        """Every page of ``GET /v1/webhook_endpoints`` (an account has a
        handful of endpoints: one page, as a rule)."""

        def page_after(after: str | None) -> Any:
            params = {"limit": 100, **({"starting_after": after} if after else {})}
            return self._call(lambda: self._client.v1.webhook_endpoints.list(params))  # type: ignore[arg-type]

        endpoints: list[WebhookEndpoint] = []
        after: str | None = None
        while True:
            page = page_after(after)
            endpoints += [parse_webhook_endpoint(e.to_dict()) for e in page.data]
            if not page.has_more or not page.data:
                return endpoints
            after = endpoints[-1].id

    # --- start-up check ---------------------------------------------------------

    def check_mode(self, livemode: bool) -> None:
        """Refuse to run when the key's mode is not the configured one
        (Stripe reports the mode on the balance object)."""
        balance = self._call(lambda: self._client.v1.balance.retrieve())
        if bool(balance.livemode) != livemode:
            raise SettingsError(
                f"the Stripe key is a {'live' if balance.livemode else 'test'} mode key but livemode={livemode}"
            )
