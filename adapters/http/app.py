"""The platform's endpoints, as one ASGI app (mount it in Starlette/FastAPI).

* ``POST {webhook_path}``: the raw body goes to ``engine.ingest_webhook``;
  200 for everything recorded (duplicates included), 400 with a reason for
  bad signatures or bodies (never 5xx for bad input), 503 when the engine
  says "try again" (Stripe retries);
* ``GET {start_path}`` / ``{profile_path}`` / ``{refresh_path}`` /
  ``{return_path}``: behind the authentication hook; start, profile and
  refresh mint a link and redirect to it (rate-limited per account and per
  holder, shared by every web worker through the database:
  ``engine.limits``), return fetches the account and redirects to the
  platform's page with its state (and, while something is owed, the URL
  that continues: ``landing``);
* ``/healthz`` and ``/metrics`` (Prometheus);
* ``GET {audit_path}…``: the read-only audit page (``audit_page``), behind
  its own auditor authentication (``audit_auth``; not mounted in live mode
  unless configured).
Engine calls are synchronous and run in the thread pool.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from onboarding_fsm.account import Link
from onboarding_fsm.engine import Engine
from onboarding_fsm.errors import (
    AccountNotFound,
    InvalidInput,
    LinkNotAllowed,
    OnboardingError,
    ProfileNotEditable,
    RetryableError,
    SettingsError,
    TriggerNotAllowed,
    WebhookRejected,
)
from onboarding_fsm.limits import Limit
from onboarding_fsm.links import UNCHECKED
from onboarding_fsm.settings import Settings

from .audit_auth import AuditorAuth, auditor_from_settings
from .audit_page import audit_routes
from .auth import Authenticator, SignedTokenAuth, compatible, from_settings, link_marker_of
from .bodies import capped_body
from .landing import DONE_PATH, done_page, landing_url, page
from .metrics import Metrics
from .pools import Pools

#: what ``create_app`` returns: an ASGI app to serve or mount
App = Starlette
MAX_WEBHOOK_BYTES = 1 << 20
#: why there is no profile link (``ProfileNotEditable.where``), in the holder's words
NOT_EDITABLE = {
    "disabled": (
        "Your details cannot be edited here",
        "This account cannot be used right now, so there are no details to edit.",
    ),
    "dashboard": (
        "Edit your details in your Stripe Dashboard",
        "Stripe keeps this account's details: sign in to your Stripe Dashboard to edit them.",
    ),
    "embedded": (
        "Your details are managed by Stripe",
        "Stripe keeps this account's details; the platform's account settings page lets you edit them.",
    ),
}
#: a holder's request, once authenticated: (request, account id, holder) -> response
Act = Callable[[Request, str, str], Response]
#: an engine call that mints a holder's link: issue_link or issue_profile_link
Issue = Callable[..., Link]


def _failure(exc: Exception) -> Response:
    if isinstance(exc, AccountNotFound):
        return page("Unknown account", "There is no onboarding for this account.", 404)
    if isinstance(exc, TriggerNotAllowed | LinkNotAllowed):
        return page("Onboarding is not available", "This account cannot be onboarded right now.", 409)
    if isinstance(exc, InvalidInput):
        return page("Bad request", str(exc), 400)
    if isinstance(exc, RetryableError):
        return page("Try again shortly", "Stripe or our database is busy; please retry in a moment.", 503)
    return page("Something went wrong", "Onboarding could not continue.", 502)


def create_app(
    engine: Engine,
    settings: Settings | None = None,
    *,
    authenticator: Authenticator | None = None,
    metrics: Metrics | None = None,
    auditor: AuditorAuth | None = None,
) -> Starlette:
    """The platform's endpoints over ``engine``.

    ``settings`` must be the settings the engine was built from (default:
    ``Settings()``, what ``build_engine()`` uses without arguments): the app
    routes the refresh and return URLs the engine puts into links. Other
    settings are refused rather than silently serving other paths. Pass
    ``metrics`` when the engine was built with it as an observer; otherwise
    the app makes its own and subscribes it to the engine.
    """
    settings = settings or Settings()
    if settings.engine_config() != engine.config:
        raise SettingsError("create_app needs the settings the engine was built from (its engine_config differs)")
    auth = compatible(authenticator or from_settings(settings, link_marker=link_marker_of(engine)))
    audit = audit_routes(engine, settings, auditor if auditor is not None else auditor_from_settings(settings))
    if metrics is None:
        metrics = Metrics(
            engine.count_by_state,
            engine.timer_backlog,
            outbox_backlog=engine.outbox.backlog,
            runs=engine.ops.last_runs,
        )
        engine.subscribe(metrics)
    # a start or refresh URL opened in a loop must not mint links forever, however many workers serve it
    window = timedelta(seconds=settings.refresh_window_seconds)
    per_account, per_holder = Limit(settings.refresh_limit, window), Limit(settings.holder_limit, window)
    pools = Pools()
    return_page = settings.return_page_url or settings.public_base_url + DONE_PATH

    async def webhook(request: Request) -> Response:
        body = await capped_body(request, MAX_WEBHOOK_BYTES)  # streamed: never read past the cap
        if isinstance(body, Response):
            return body
        try:
            result = await pools.run(
                pools.webhooks, engine.ingest_webhook, body, request.headers.get("stripe-signature")
            )
        except WebhookRejected as exc:
            return JSONResponse({"error": str(exc), "kind": type(exc).__name__}, status_code=400)
        except RetryableError as exc:
            return JSONResponse({"error": "temporarily unavailable", "kind": type(exc).__name__}, status_code=503)
        except OnboardingError as exc:
            return JSONResponse({"error": str(exc), "kind": type(exc).__name__}, status_code=400)
        answer: dict[str, Any] = {"id": result.event_id, "outcome": result.outcome.value}
        if result.transition is not None:
            answer["transition"] = {"from": result.transition.from_state, "to": result.transition.to_state}
        return JSONResponse(answer)

    def _authenticated(request: Request, act: Act) -> Response:
        account_id = request.path_params["account"]
        try:
            holder = auth.authenticate(request, account_id)
            if holder is None:
                return page("Sign in to continue", "We could not confirm it is you; sign in and start again.", 401)
            return act(request, account_id, holder)
        except OnboardingError as exc:
            return _failure(exc)

    async def guarded(request: Request, act: Act) -> Response:
        """Authenticate, then run ``act(account, holder)`` (engine calls) in the
        Stripe-bound threads: a hanging Stripe fills those, not the others."""
        if request.method != "GET":  # HEAD from preview bots must not mint links
            return page("Method not allowed", "Open this page in a browser.", 405)
        return await pools.run(pools.stripe_bound, _authenticated, request, act)

    def too_many(action: str, account_id: str, holder: str) -> Response | None:
        """A 429 (with Retry-After) when the account's or the holder's budget for ``action`` is spent."""
        admission = engine.limits.admit(action, account_id, holder, per_account=per_account, per_holder=per_holder)
        if admission.allowed:
            return None
        metrics.limited.labels(action, admission.refused_by).inc()
        refusal = page("Too many attempts", "Please wait a few minutes before trying again.", 429)
        refusal.headers["Retry-After"] = str(max(1, math.ceil(admission.retry_after.total_seconds())))
        return refusal

    def to_link(url: str) -> Response:
        response = RedirectResponse(url, status_code=303)
        response.headers["Cache-Control"] = "no-store"
        return response

    def holder_link(request: Request, account_id: str, holder: str, issue: Issue) -> Response:
        """Start and profile alike: one budget ("start": a holder-opened URL that
        mints a link, whichever page it is), a single-use start token, then the session."""
        if (refused := too_many("start", account_id, holder)) is not None:
            return refused
        # a start token is single-use: the link is recorded only if none was issued since the token's
        last_issued = auth.started_from(request, account_id) if isinstance(auth, SignedTokenAuth) else UNCHECKED
        response = to_link(issue(account_id, actor=holder, last_issued=last_issued).url)
        auth.remember(response, account_id, holder)
        return response

    def start_link(request: Request, account_id: str, holder: str) -> Response:
        return holder_link(request, account_id, holder, engine.issue_link)

    def profile_link(request: Request, account_id: str, holder: str) -> Response:
        try:
            return holder_link(request, account_id, holder, engine.issue_profile_link)
        except ProfileNotEditable as exc:  # anything else (a start token used twice at once): the usual refusal
            return page(*NOT_EDITABLE[exc.where], 409)

    def refreshed_link(request: Request, account_id: str, holder: str) -> Response:
        if (refused := too_many("refresh", account_id, holder)) is not None:
            return refused
        return to_link(engine.refresh_link(account_id, actor=holder).url)

    def returned(request: Request, account_id: str, holder: str) -> Response:
        account = engine.handle_return(account_id, actor=holder)
        return RedirectResponse(landing_url(return_page, settings, account_id, account.state.value), status_code=303)

    async def start(request: Request) -> Response:
        return await guarded(request, start_link)

    async def profile(request: Request) -> Response:
        return await guarded(request, profile_link)

    async def refresh(request: Request) -> Response:
        return await guarded(request, refreshed_link)

    async def back(request: Request) -> Response:
        return await guarded(request, returned)

    async def done(request: Request) -> Response:
        query = request.query_params
        return done_page(settings, query.get("account", ""), query.get("state", ""))

    async def healthz(request: Request) -> Response:
        try:
            await pools.run(pools.probes, engine.ping)
        except Exception:
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(request: Request) -> Response:
        payload = await pools.run(pools.scrapes, generate_latest, metrics.registry)
        return Response(payload, media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route(settings.webhook_path, webhook, methods=["POST"]),
            Route(settings.start_path, start, methods=["GET", "HEAD"]),
            Route(settings.profile_path, profile, methods=["GET", "HEAD"]),
            Route(settings.refresh_path, refresh, methods=["GET", "HEAD"]),
            Route(settings.return_path, back, methods=["GET", "HEAD"]),
            Route(DONE_PATH, done, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            *audit,
        ]
    )
    app.state.engine = engine
    app.state.auth = auth
    app.state.metrics = metrics
    return app
