"""The simulator over HTTP: Stripe's wire format, the hosted form, webhooks.

* ``/v1/accounts`` (POST create, GET list with ``limit``/``starting_after``/
  ``has_more``), ``/v1/accounts/{id}`` (GET, POST), ``/v1/account_links``
  (POST), ``/v1/balance`` (GET, for the SDK adapter's mode check) —
  form-encoded nested parameters in (``wire``), Stripe's JSON out, Bearer
  keys, ``Request-Id`` on every answer, Stripe's error JSON and status codes;
* ``Idempotency-Key`` on POSTs, through the simulator's one idempotency
  store (``idempotency``); the rate limiter (fault injection, ``faults``)
  runs before it, as at Stripe;
* the hosted onboarding form as real pages at the link URLs (``pages``);
* signed events POSTed to a webhook URL by a delivery thread, retried with
  backoff on any non-2xx answer.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from onboarding_fsm.errors import StripeFailure, StripeIdempotencyConflict, StripeRequestFailed

from .delivery import HttpSink
from .errors import SimulatorError
from .faults import FaultInjector, FaultPlan, error_response
from .idempotency import Answer, fingerprint
from .pages import HostedPages
from .simulator import Simulator
from .wire import WireError, decode

TEST_KEY = "sk_test_onboarding_fsm_simulator"
_LIST_PARAMS = {"limit", "starting_after", "ending_before", "created", "expand"}
_LINK_PARAMS = {"account", "type", "refresh_url", "return_url", "collection_options", "collect", "expand"}
_UPDATE_PARAMS = {
    "business_profile", "business_type", "capabilities", "company", "email", "external_account", "individual",
    "metadata", "representative", "settings", "tos_acceptance", "expand",
}  # fmt: skip


def _stripe_error(exc: StripeFailure) -> JSONResponse:
    kind = "idempotency_error" if isinstance(exc, StripeIdempotencyConflict) else "invalid_request_error"
    return error_response(exc.http_status or 400, str(exc), kind=kind, code=exc.code, param=exc.param)


class SimulatorServer:
    def __init__(
        self,
        sim: Simulator,
        *,
        api_keys: tuple[str, ...] = (TEST_KEY,),
        webhook_url: str | None = None,
        delivery_interval: float = 0.05,
    ) -> None:
        self.sim = sim
        self.api_keys = api_keys
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
            Route("/v1/{rest:path}", self.unknown, methods=["GET", "POST", "DELETE"]),
            Route("/setup/s/{token}", pages.form, methods=["GET", "POST"]),
            Route("/", pages.index, methods=["GET"]),
        ]
        self.app: ASGIApp = FaultInjector(Starlette(routes=routes), self.faults)

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

    def _authorized(self, request: Request) -> bool:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and key in self.api_keys

    async def _api(self, request: Request, handler: Callable[[dict[str, Any]], Any]) -> Response:
        response = await self._answer(request, handler)
        response.headers["Request-Id"] = "req_" + secrets.token_hex(7)
        return response

    async def _answer(self, request: Request, handler: Callable[[dict[str, Any]], Any]) -> Response:
        if not self._authorized(request):
            return error_response(401, "Invalid API Key provided.")
        try:
            raw = (await request.body()).decode("utf-8") if request.method == "POST" else str(request.query_params)
            params = decode(raw)
        except (UnicodeDecodeError, WireError) as exc:
            return error_response(400, str(exc), code="parameter_invalid", param=getattr(exc, "param", None))
        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        print_ = fingerprint(request.method, request.url.path, params)
        if key:
            try:
                replayed = self.sim.idempotency.replay(key, print_, self.sim.now())
            except StripeIdempotencyConflict as exc:
                return _stripe_error(exc)
            if replayed is not None:
                return Response(
                    replayed.body,
                    status_code=replayed.status,
                    media_type="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
        try:
            response: Response = JSONResponse(await run_in_threadpool(handler, params))
        except StripeFailure as exc:
            response = _stripe_error(exc)
        except SimulatorError as exc:
            response = error_response(400, str(exc))
        if key:  # Stripe stores results once execution began
            self.sim.idempotency.remember(
                key, print_, self.sim.now(), Answer(response.status_code, bytes(response.body))
            )
        return response

    # --- API routes --------------------------------------------------------------------

    async def accounts(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._api(request, lambda p: self.sim.api.create_account(p))
        return await self._api(request, self._list)

    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        _known(params, _LIST_PARAMS)
        try:
            limit = int(params.get("limit", 10))
        except ValueError:
            raise StripeRequestFailed(
                "Invalid integer: limit", http_status=400, code="parameter_invalid_integer", param="limit"
            ) from None
        data, has_more = self.sim.api.list_accounts(limit=limit, starting_after=params.get("starting_after") or None)
        return {"object": "list", "data": data, "has_more": has_more, "url": "/v1/accounts"}

    async def account(self, request: Request) -> Response:
        account_id = request.path_params["account_id"]
        if request.method == "POST":

            def update(params: dict[str, Any]) -> dict[str, Any]:
                _known(params, _UPDATE_PARAMS)
                params.pop("expand", None)
                return self.sim.api.update_account(account_id, params)

            return await self._api(request, update)
        return await self._api(request, lambda p: self.sim.api.retrieve_account(account_id))

    async def account_links(self, request: Request) -> Response:
        def create(params: dict[str, Any]) -> dict[str, Any]:
            _known(params, _LINK_PARAMS)
            return self.sim.api.create_account_link(params)

        return await self._api(request, create)

    async def balance(self, request: Request) -> Response:
        return await self._api(
            request, lambda p: {"object": "balance", "livemode": False, "available": [], "pending": []}
        )

    async def unknown(self, request: Request) -> Response:
        if not self._authorized(request):
            return error_response(401, "Invalid API Key provided.")
        return error_response(404, f"Unrecognized request URL ({request.method}: {request.url.path}).")


def _known(params: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise StripeRequestFailed(
            f"Received unknown parameter: {unknown[0]}", http_status=400, code="parameter_unknown", param=unknown[0]
        )


__all__ = ["TEST_KEY", "SimulatorServer"]
