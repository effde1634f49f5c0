"""The simulator over HTTP: Stripe's wire format, the hosted form, webhooks.

* ``/v1/accounts`` (POST create, GET list with ``limit``/``starting_after``/
  ``has_more``), ``/v1/accounts/{id}`` (GET, POST), ``/v1/account_links``
  (POST), ``/v1/balance`` (GET, for the SDK adapter's mode check) —
  form-encoded nested parameters in, Stripe's JSON out, Bearer keys,
  ``Request-Id`` on every answer, Stripe's error JSON and status codes;
* ``Idempotency-Key`` on POSTs: the same key with the same parameters replays
  the first answer, with other parameters it is an ``idempotency_error``;
  the rate limiter (fault injection) runs before it, as at Stripe;
* fault injection for tests: the next N matching requests answer 429 or 500,
  are slowed, or are executed and then have their connection dropped before
  the answer is sent (the case idempotency keys exist for);
* the hosted onboarding form as real pages at the link URLs: a visited or
  expired link redirects to the refresh URL; Finish and Save for later
  redirect to the return URL;
* signed events POSTed to a webhook URL by a delivery thread, retried with
  backoff on any non-2xx answer.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onboarding_fsm.errors import StripeFailure, StripeIdempotencyConflict, StripeRequestFailed

from . import catalog
from .core import Simulator
from .delivery import HttpSink
from .hosted import FormError, HostedSession, LinkUnusable, SimulatorError
from .wire import WireError, decode

TEST_KEY = "sk_test_onboarding_fsm_simulator"
_LINK_PARAMS = {"account", "type", "refresh_url", "return_url", "collection_options", "collect", "expand"}
_UPDATE_PARAMS = {
    "business_profile", "business_type", "capabilities", "company", "email", "external_account", "individual",
    "metadata", "representative", "settings", "tos_acceptance", "expand",
}  # fmt: skip


def _error(
    status: int, message: str, *, kind: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"error": {"type": kind, "message": message}}
    if code:
        body["error"]["code"] = code
    if param:
        body["error"]["param"] = param
    return JSONResponse(body, status_code=status)


def _stripe_error(exc: StripeFailure) -> JSONResponse:
    status = exc.http_status or 400
    kind = "idempotency_error" if isinstance(exc, StripeIdempotencyConflict) else "invalid_request_error"
    return _error(status, str(exc), kind=kind, code=exc.code, param=exc.param)


# --- fault injection -------------------------------------------------------------------


@dataclass
class Fault:
    kind: str  # "status" | "delay" | "drop"
    times: int = 1
    status: int = 500
    seconds: float = 0.0
    method: str | None = None
    path_prefix: str = "/v1/"


@dataclass
class FaultPlan:
    """The next matching requests misbehave; thread-safe, consumed in order."""

    faults: list[Fault] = field(default_factory=list)
    seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        kind: str,
        *,
        times: int = 1,
        status: int = 500,
        seconds: float = 0.0,
        method: str | None = None,
        path_prefix: str = "/v1/",
    ) -> None:
        with self._lock:
            self.faults.append(Fault(kind, times, status, seconds, method, path_prefix))

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and path.startswith(fault.path_prefix) and fault.method in (None, method):
                    fault.times -= 1
                    self.seen += 1
                    return fault
            return None


class FaultInjector:
    """Raw ASGI middleware: it must be able to drop a connection after the
    request was executed, which a response object cannot express."""

    def __init__(self, app: ASGIApp, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fault = self.plan.take(scope["method"], scope["path"])
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.kind == "delay":
            import anyio

            await anyio.sleep(fault.seconds)
            await self.app(scope, receive, send)
        elif fault.kind == "status":
            kind = "api_error" if fault.status >= 500 else "invalid_request_error"
            code = "rate_limit" if fault.status == 429 else None
            response = _error(fault.status, f"injected {fault.status}", kind=kind, code=code)
            response.headers["Request-Id"] = "req_" + secrets.token_hex(7)
            await response(scope, receive, send)
        elif fault.kind == "drop":

            async def swallow(message: Message) -> None:
                return None  # the work is done, the answer never leaves

            await self.app(scope, receive, swallow)
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100000")]})
            raise ConnectionAbortedError("injected: connection dropped after the request was executed")
        else:
            raise ValueError(f"unknown fault kind {fault.kind!r}")


# --- the server ---------------------------------------------------------------------------


@dataclass
class _Stored:
    fingerprint: tuple[str, str, str]
    at: int
    status: int
    body: bytes


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
        self._idempotency: dict[str, _Stored] = {}
        self._sessions: dict[str, HostedSession] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sink: HttpSink | None = None
        sim.autodeliver = False  # Stripe delivers asynchronously: the delivery thread does
        if webhook_url:
            self.send_webhooks_to(webhook_url)
        routes = [
            Route("/v1/accounts", self.accounts, methods=["GET", "POST"]),
            Route("/v1/accounts/{account_id}", self.account, methods=["GET", "POST"]),
            Route("/v1/account_links", self.account_links, methods=["POST"]),
            Route("/v1/balance", self.balance, methods=["GET"]),
            Route("/v1/{rest:path}", self.unknown, methods=["GET", "POST", "DELETE"]),
            Route("/setup/s/{token}", self.hosted_form, methods=["GET", "POST"]),
            Route("/", self.index, methods=["GET"]),
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
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        return scheme.lower() == "bearer" and key in self.api_keys

    async def _api(self, request: Request, handler: Callable[[dict[str, Any]], Any]) -> Response:
        request_id = "req_" + secrets.token_hex(7)
        response = await self._api_inner(request, handler)
        response.headers["Request-Id"] = request_id
        return response

    async def _api_inner(self, request: Request, handler: Callable[[dict[str, Any]], Any]) -> Response:
        if not self._authorized(request):
            return _error(401, "Invalid API Key provided.")
        try:
            raw = (await request.body()).decode("utf-8") if request.method == "POST" else str(request.query_params)
            params = decode(raw)
        except (UnicodeDecodeError, WireError) as exc:
            return _error(400, str(exc), code="parameter_invalid", param=getattr(exc, "param", None))
        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        fingerprint = (request.method, request.url.path, json.dumps(params, sort_keys=True))
        if key:
            with self._lock:
                stored = self._idempotency.get(key)
            if stored is not None and self.sim._now() - stored.at < 24 * 3600:
                if stored.fingerprint != fingerprint:
                    return _error(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with.",
                        kind="idempotency_error",
                        code="idempotency_key_in_use",
                    )
                return Response(
                    stored.body,
                    status_code=stored.status,
                    media_type="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
        try:
            from starlette.concurrency import run_in_threadpool

            body = await run_in_threadpool(handler, params)
            response: Response = JSONResponse(body)
        except StripeFailure as exc:
            response = _stripe_error(exc)
        except (SimulatorError, FormError) as exc:
            response = _error(400, str(exc))
        if key and response.status_code < 500:  # Stripe stores results once execution began
            with self._lock:
                self._idempotency[key] = _Stored(
                    fingerprint, self.sim._now(), response.status_code, bytes(response.body)
                )
        return response

    # --- API routes --------------------------------------------------------------------

    async def accounts(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._api(request, lambda p: self.sim.create_account_json(p))
        return await self._api(request, self._list)

    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - {"limit", "starting_after", "ending_before", "created", "expand"})
        if unknown:
            raise _unknown(unknown[0])
        try:
            limit = int(params.get("limit", 10))
        except ValueError:
            raise _invalid_param("limit", "Invalid integer") from None
        data, has_more = self.sim.list_accounts_json(limit=limit, starting_after=params.get("starting_after") or None)
        return {"object": "list", "data": data, "has_more": has_more, "url": "/v1/accounts"}

    async def account(self, request: Request) -> Response:
        account_id = request.path_params["account_id"]
        if request.method == "POST":

            def update(params: dict[str, Any]) -> dict[str, Any]:
                unknown = sorted(set(params) - _UPDATE_PARAMS)
                if unknown:
                    raise _unknown(unknown[0])
                params.pop("expand", None)
                return self.sim.update_account_json(account_id, params)

            return await self._api(request, update)
        return await self._api(request, lambda p: self.sim.account_json(account_id))

    async def account_links(self, request: Request) -> Response:
        def create(params: dict[str, Any]) -> dict[str, Any]:
            unknown = sorted(set(params) - _LINK_PARAMS)
            if unknown:
                raise _unknown(unknown[0])
            return self.sim.create_account_link_json(params)

        return await self._api(request, create)

    async def balance(self, request: Request) -> Response:
        return await self._api(
            request, lambda p: {"object": "balance", "livemode": False, "available": [], "pending": []}
        )

    async def unknown(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(401, "Invalid API Key provided.")
        return _error(404, f"Unrecognized request URL ({request.method}: {request.url.path}).")

    # --- the hosted form ------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return HTMLResponse("<h1>onboarding-fsm Stripe simulator</h1><p>API at <code>/v1</code>.</p>")

    async def hosted_form(self, request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        token = request.path_params["token"]
        if request.method == "GET":
            try:
                session = await run_in_threadpool(self.sim.visit, str(request.url))
            except LinkUnusable as exc:
                return RedirectResponse(exc.refresh_url, status_code=303)
            except SimulatorError:
                return HTMLResponse("<h1>Unknown link</h1>", status_code=404)
            session_id = secrets.token_urlsafe(16)
            with self._lock:
                self._sessions[session_id] = session
            return HTMLResponse(self._render(token, session_id, session, None, {}))
        form = await request.form()
        values = {k: str(v) for k, v in form.items()}
        session_id = values.pop("_session", "")
        with self._lock:
            found = self._sessions.get(session_id)
        if found is None:
            return HTMLResponse("<h1>This onboarding session has ended</h1>", status_code=410)
        session = found
        action = values.pop("_action", "finish")
        sms = values.pop("_sms_code", "")
        entered = {k: v for k, v in values.items() if v.strip()}
        try:
            if entered:
                session.submit(entered)
            if sms:
                session.confirm_sms(sms)
            target = await run_in_threadpool(session.finish if action == "finish" else session.save_for_later)
        except FormError as exc:
            return HTMLResponse(self._render(token, session_id, session, str(exc), values), status_code=400)
        return RedirectResponse(target, status_code=303)

    def _render(
        self, token: str, session_id: str, session: HostedSession, error: str | None, values: Mapping[str, str]
    ) -> str:
        due = session.asked  # everything the form asks, with what was entered so far
        samples = catalog.valid_test_data(due)
        rows = "".join(
            f'<label>{html.escape(name)}<input name="{html.escape(name)}" '
            f'value="{html.escape(values.get(name, samples.get(name, "")))}"></label>'
            for name in due
        )
        sms = (
            '<label>SMS code (test mode: 000-000)<input name="_sms_code" value=""></label>'
            if any(f in catalog.PHONE_FIELDS for f in due)
            else ""
        )
        problem = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
        return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Onboarding (simulated Stripe)</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}label{{display:block;margin:.4em 0}}
input{{display:block;width:100%}}.error{{color:#b00}}</style></head>
<body><h1>Verify your account</h1>
<p>Simulated Stripe-hosted onboarding for <code>{html.escape(session.account_id)}</code>
({html.escape(session.link_type)}). Values are Stripe test-mode data; change them to try other outcomes
(ID number <code>111111111</code> mismatches, date of birth year <code>1900</code> triggers a review).</p>
{problem}
<form method="post" action="/setup/s/{html.escape(token)}">
<input type="hidden" name="_session" value="{html.escape(session_id)}">
{rows}{sms}
<button type="submit" name="_action" value="finish" id="finish">Finish</button>
<button type="submit" name="_action" value="save" id="save">Save for later</button>
</form></body></html>"""


def _unknown(name: str) -> StripeFailure:
    return StripeRequestFailed(
        f"Received unknown parameter: {name}", http_status=400, code="parameter_unknown", param=name
    )


def _invalid_param(name: str, message: str) -> StripeFailure:
    return StripeRequestFailed(f"{message}: {name}", http_status=400, code="parameter_invalid_integer", param=name)


__all__ = ["TEST_KEY", "Fault", "FaultPlan", "SimulatorServer"]
