"""The simulator over HTTP: Stripe's wire format, the hosted form, webhooks.

* ``/v1/accounts`` (POST create, GET list with ``limit``, ``starting_after``,
  ``ending_before``, ``created``), ``/v1/accounts/{id}`` (GET, POST),
  ``/v1/account_links`` (POST), ``/v1/balance`` (GET, for the SDK adapter's
  mode check), ``/v1/webhook_endpoints`` and ``/v1/webhook_endpoints/{id}``
  (GET, POST, DELETE: the self-check's), ``/v1/payouts`` (POST) and
  ``/v1/payouts/{id}`` (GET) on the connected account the ``Stripe-Account``
  header names — form-encoded nested parameters in (``wire``), Stripe's JSON
  out, a new ``Request-Id`` on every answer under ``/v1/`` (``RequestIds``:
  successes, refusals, replays, unknown URLs, injected faults), Stripe's error
  JSON and status codes;
* Bearer keys, each a platform's (``api_keys``: key -> platform name; the
  default platform's ``TEST_KEY`` and another platform's ``OTHER_TEST_KEY``):
  a key sees only its platform's accounts, 403 ``account_invalid`` for the rest;
* ``Idempotency-Key`` on POSTs, through the simulator's one idempotency
  store (``idempotency``); a replay carries ``Idempotent-Replayed: true``;
  the rate limiter (fault injection, ``faults``) runs before it, as at Stripe;
* the hosted onboarding form as real pages at the link URLs (``pages``);
* signed events POSTed to a webhook URL by a delivery thread, retried with
  backoff on any non-2xx answer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onboarding_fsm.errors import StripeFailure

from .api import StripeApi
from .delivery import HttpSink
from .errors import SimulatorError, error_body, failure_body, refused_by_validation, request_id
from .faults import FaultInjector, FaultPlan, error_response
from .idempotency import Answer, fingerprint
from .pages import HostedPages
from .platforms import DEFAULT_PLATFORM, OTHER_PLATFORM, OTHER_TEST_KEY, TEST_KEY
from .simulator import Simulator
from .wire import WireError, decode

#: secret key -> platform: the default platform, and another one to act as
DEFAULT_KEYS: Mapping[str, str] = {TEST_KEY: DEFAULT_PLATFORM, OTHER_TEST_KEY: OTHER_PLATFORM}
Handler = Callable[[StripeApi, dict[str, Any]], dict[str, Any]]


def _failure(exc: StripeFailure) -> Answer:
    body = json.dumps(failure_body(exc)).encode()
    return Answer(exc.http_status or 400, body, keep=not refused_by_validation(exc))


class RequestIds:
    """Raw ASGI middleware: every answer under ``/v1/`` carries a new
    ``Request-Id`` (``errors.request_id``), as Stripe's do — an idempotent
    replay too: it is another request, marked ``Idempotent-Replayed: true``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        header = (b"request-id", request_id().encode())

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [h for h in message.get("headers", ()) if h[0].lower() != b"request-id"]
                message = {**message, "headers": [*kept, header]}
            await send(message)

        await self.app(scope, receive, stamped)


class SimulatorServer:
    def __init__(
        self,
        sim: Simulator,
        *,
        api_keys: Mapping[str, str] = DEFAULT_KEYS,
        webhook_url: str | None = None,
        delivery_interval: float = 0.05,
    ) -> None:
        self.sim = sim
        self.api_keys = dict(api_keys)
        self.faults = FaultPlan()
        self.delivery_interval = delivery_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sink: HttpSink | None = None
        sim.autodeliver = False  # Stripe delivers asynchronously: the delivery thread does
        if webhook_url:
            self.send_webhooks_to(webhook_url)
        pages = HostedPages(sim)
        routes = [
            Route("/v1/accounts", self.accounts, methods=["GET", "POST"]),
            Route("/v1/accounts/{account_id}", self.account, methods=["GET", "POST"]),
            Route("/v1/account_links", self.account_links, methods=["POST"]),
            Route("/v1/balance", self.balance, methods=["GET"]),
            Route("/v1/webhook_endpoints", self.webhook_endpoints, methods=["GET", "POST"]),
            Route("/v1/webhook_endpoints/{endpoint_id}", self.webhook_endpoint, methods=["GET", "POST", "DELETE"]),
            Route("/v1/payouts", self.payouts, methods=["POST"]),
            Route("/v1/payouts/{payout_id}", self.payout, methods=["GET"]),
            Route("/v1/{rest:path}", self.unknown, methods=["GET", "POST", "DELETE"]),
            Route("/setup/s/{token}", pages.form, methods=["GET", "POST"]),
            Route("/", pages.index, methods=["GET"]),
        ]
        self.app: ASGIApp = RequestIds(FaultInjector(Starlette(routes=routes), self.faults))

    # --- webhooks ------------------------------------------------------------------

    def send_webhooks_to(self, url: str) -> None:
        if self.sink is not None:
            self.sink.close()
        self.sink = HttpSink(url)
        self.sim.connect(self.sink)

    def start_delivery(self) -> None:
        """A background thread that delivers (and retries) events."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._deliver_loop, name="simulator-webhooks", daemon=True)
        self._thread.start()

    def _deliver_loop(self) -> None:
        while not self._stop.wait(self.delivery_interval):
            try:
                self.sim.deliver()
            except Exception:  # a broken sink must not kill the thread
                continue

    def stop_delivery(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.sink is not None:
            self.sink.close()

    # --- API plumbing ----------------------------------------------------------------

    def _platform(self, request: Request) -> tuple[str, str] | None:
        """The platform (and key) a request authenticates as."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        name = self.api_keys.get(key) if scheme.lower() == "bearer" else None
        return (name, key) if name is not None else None

    async def _api(self, request: Request, handler: Handler, *, on_behalf_of: str | None = None) -> Response:
        who = self._platform(request)
        if who is None:
            return error_response(401, "Invalid API Key provided.")
        # a request made for a connected account keeps its idempotency keys apart
        scope = who[0] if on_behalf_of is None else f"{who[0]}/{on_behalf_of}"
        try:
            raw = (await request.body()).decode("utf-8") if request.method == "POST" else str(request.query_params)
            params = decode(raw)
        except (UnicodeDecodeError, WireError) as exc:
            return error_response(400, str(exc), code="parameter_invalid", param=getattr(exc, "param", None))
        api = self.sim.api_as(*who)

        def execute() -> Answer:
            try:
                return Answer(200, json.dumps(handler(api, params)).encode())
            except StripeFailure as exc:
                return _failure(exc)
            except SimulatorError as exc:
                return Answer(400, json.dumps(error_body(str(exc))).encode())

        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        print_ = fingerprint(request.method, request.url.path, params)
        try:
            answer, replayed = await run_in_threadpool(
                self.sim.idempotency.run, scope, key, print_, self.sim.now(), execute
            )
        except StripeFailure as exc:  # the key itself: too long, used for another request, in use
            answer, replayed = _failure(exc), False
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return Response(answer.body, status_code=answer.status, media_type="application/json", headers=headers)

    # --- API routes --------------------------------------------------------------------

    async def accounts(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._api(request, lambda api, p: api.create_account(p))
        return await self._api(request, lambda api, p: api.list_accounts(p))

    async def account(self, request: Request) -> Response:
        account_id = request.path_params["account_id"]
        if request.method == "POST":
            return await self._api(request, lambda api, p: api.update_account(account_id, p))
        return await self._api(request, lambda api, p: api.retrieve_account(account_id))

    async def account_links(self, request: Request) -> Response:
        return await self._api(request, lambda api, p: api.create_account_link(p))

    async def balance(self, request: Request) -> Response:
        return await self._api(
            request, lambda api, p: {"object": "balance", "livemode": False, "available": [], "pending": []}
        )

    async def webhook_endpoints(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._api(request, lambda api, p: api.create_webhook_endpoint(p))
        return await self._api(request, lambda api, p: api.list_webhook_endpoints(p))

    async def webhook_endpoint(self, request: Request) -> Response:
        endpoint_id = request.path_params["endpoint_id"]
        if request.method == "POST":
            return await self._api(request, lambda api, p: api.update_webhook_endpoint(endpoint_id, p))
        if request.method == "DELETE":
            return await self._api(request, lambda api, p: api.delete_webhook_endpoint(endpoint_id))
        return await self._api(request, lambda api, p: api.retrieve_webhook_endpoint(endpoint_id))

    async def payouts(self, request: Request) -> Response:
        account = request.headers.get("stripe-account")
        if not account:
            return await self._connected_only(request)
        return await self._api(request, lambda api, p: api.create_payout(account, p), on_behalf_of=account)

    async def payout(self, request: Request) -> Response:
        account, payout_id = request.headers.get("stripe-account"), request.path_params["payout_id"]
        if not account:
            return await self._connected_only(request)
        return await self._api(request, lambda api, p: api.retrieve_payout(account, payout_id))

    async def _connected_only(self, request: Request) -> Response:
        """The simulated platform has no balance of its own: payouts are made
        for a connected account, named by the ``Stripe-Account`` header."""
        if self._platform(request) is None:
            return error_response(401, "Invalid API Key provided.")
        message = "The simulator pays out connected accounts only: name one in the Stripe-Account header."
        return error_response(400, message, param="Stripe-Account")

    async def unknown(self, request: Request) -> Response:
        if self._platform(request) is None:
            return error_response(401, "Invalid API Key provided.")
        return error_response(404, f"Unrecognized request URL ({request.method}: {request.url.path}).")


__all__ = ["DEFAULT_KEYS", "OTHER_TEST_KEY", "TEST_KEY", "SimulatorServer"]
