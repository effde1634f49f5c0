"""The ``StripeGateway`` port over the simulated API, as one platform's key.

``Simulator`` is this for the default platform; ``Simulator.as_platform``
gives the same world through another platform's key (which Stripe answers
with 403 ``account_invalid`` for every account it did not create).
Parameters are built exactly as the SDK adapter builds them
(``adapters.stripe_wire.params``), so both gateways send the same requests.
Each answer carries a new request id, as Stripe's ``Request-Id`` header
would (``errors.request_id``); a listing's id goes on every account of the
page, since that answer is what a sync acts on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from adapters.stripe_wire import params as stripe_params
from onboarding_fsm.account import AccountPage, Link, LinkRequest, NewAccount
from onboarding_fsm.clock import from_unix
from onboarding_fsm.selfcheck import WebhookEndpoint, parse_webhook_endpoint
from onboarding_fsm.snapshot import AccountSnapshot, parse_account

from .api import StripeApi
from .errors import request_id
from .state import SimState


def _answered(raw: Mapping[str, Any], req_id: str) -> AccountSnapshot:
    return replace(parse_account(raw), request_id=req_id)


class SimulatedGateway:
    def __init__(self, api: StripeApi, state: SimState) -> None:
        #: Stripe's JSON API as this platform's key sees it (what the HTTP server serves)
        self.api = api
        self._state = state

    @property
    def platform_key(self) -> str:
        """The secret key this view acts with (what the HTTP server accepts for it)."""
        return self.api.platform.key

    def create_account(self, new: NewAccount, *, idempotency_key: str) -> AccountSnapshot:
        return _answered(
            self.api.create_account(stripe_params.account_create(new), idempotency_key=idempotency_key), request_id()
        )

    def retrieve_account(self, account_id: str) -> AccountSnapshot:
        with self._state.lock:
            self._state.calls["retrieve_account"] += 1
        return _answered(self.api.retrieve_account(account_id), request_id())

    def update_account(
        self, account_id: str, params: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> AccountSnapshot:
        return _answered(self.api.update_account(account_id, params, idempotency_key=idempotency_key), request_id())

    def list_accounts(
        self, *, limit: int = 100, starting_after: str | None = None, created_gte: datetime | None = None
    ) -> AccountPage:
        """Newest first; ``created_gte`` is Stripe's ``created[gte]`` (as the SDK adapter sends it)."""
        params = stripe_params.account_list(limit, starting_after, created_gte)
        page, listing = self.api.list_accounts(params), request_id()
        return AccountPage(tuple(_answered(a, listing) for a in page["data"]), bool(page["has_more"]))

    def create_account_link(self, request: LinkRequest) -> Link:
        data = self.api.create_account_link(stripe_params.account_link(request))
        return Link(
            url=data["url"],
            created_at=from_unix(data["created"]),
            expires_at=from_unix(data["expires_at"]),
            params=request.params,
            request_id=request_id(),
        )

    def list_webhook_endpoints(self) -> list[WebhookEndpoint]:
        """Every page of ``GET /v1/webhook_endpoints``, as the SDK adapter asks."""
        endpoints: list[WebhookEndpoint] = []
        after: str | None = None
        while True:
            page = self.api.list_webhook_endpoints({"limit": 100, **({"starting_after": after} if after else {})})
            endpoints += [parse_webhook_endpoint(e) for e in page["data"]]
            if not page["has_more"] or not page["data"]:
                return endpoints
            after = endpoints[-1].id
