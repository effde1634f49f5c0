"""The simulator's errors: misuse of its holder and operator APIs, and the
Stripe-shaped refusals its API raises (``onboarding_fsm.errors.Stripe*``, as
every gateway raises them), with the error body Stripe sends for each."""

from __future__ import annotations

import secrets
import string
from typing import Any

from onboarding_fsm.errors import (
    StripeAccountInaccessible,
    StripeAuthenticationFailed,
    StripeFailure,
    StripeIdempotencyConflict,
    StripeRequestFailed,
)


class SimulatorError(Exception):
    """Misuse of the simulator's holder or operator API (not a Stripe error)."""


class LinkUnusable(SimulatorError):
    """Stripe would redirect the holder to the link's ``refresh_url``."""

    def __init__(self, why: str, refresh_url: str) -> None:
        super().__init__(f"link unusable ({why}); Stripe redirects to the refresh_url")
        self.why = why
        self.refresh_url = refresh_url


class FormError(SimulatorError):
    """The hosted form refuses the input (missing fields, wrong SMS code)."""


_REQUEST_ID_ALPHABET = string.ascii_letters + string.digits


def request_id() -> str:
    """A new Stripe-shaped request id: ``req_`` and 14 random letters and
    digits, unique per request, as Stripe's ``Request-Id`` header carries.
    The one source of request ids: the HTTP server's header, the in-process
    gateway's answers and every refusal's ``request_id`` come from here."""
    return "req_" + "".join(secrets.choice(_REQUEST_ID_ALPHABET) for _ in range(14))


def invalid(message: str, param: str | None = None, code: str | None = "parameter_invalid") -> StripeRequestFailed:
    """Stripe's 400 ``invalid_request_error``."""
    return StripeRequestFailed(message, http_status=400, code=code, param=param, request_id=request_id())


def refused_by_validation(exc: StripeFailure) -> bool:
    """Refused while checking parameters, before execution began: Stripe
    stores no idempotent answer for it (STRIPE_FACTS, recorded shape 3)."""
    code = exc.code or ""
    return exc.http_status == 400 and (code.startswith("parameter_") or code == "url_invalid")


def error_body(
    message: str, *, kind: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """Stripe's error JSON (``{"error": {...}}``)."""
    error: dict[str, Any] = {"message": message, "type": kind}
    if code:
        error["code"] = code
        error["doc_url"] = "https://stripe.com/docs/error-codes/" + code.replace("_", "-")
    if param:
        error["param"] = param
    return {"error": error}


def failure_body(exc: StripeFailure) -> dict[str, Any]:
    """The error JSON Stripe sends for ``exc``."""
    status = exc.http_status or 400
    if isinstance(exc, StripeIdempotencyConflict):
        kind = "idempotency_error"
    else:
        kind = "api_error" if status >= 500 else "invalid_request_error"
    return error_body(str(exc), kind=kind, code=exc.code, param=exc.param)


def failure_from(status: int, body: dict[str, Any]) -> StripeFailure:
    """The exception for a stored error answer (an idempotent replay in process)."""
    error = body.get("error") or {}
    args: dict[str, Any] = {"http_status": status, "code": error.get("code"), "param": error.get("param")}
    message = str(error.get("message", ""))
    if error.get("type") == "idempotency_error":
        return StripeIdempotencyConflict(message, **args, request_id=request_id())
    if status == 403 and error.get("code") == "account_invalid":
        return StripeAccountInaccessible(message, **args, request_id=request_id())
    if status in (401, 403):
        return StripeAuthenticationFailed(message, **args, request_id=request_id())
    return StripeRequestFailed(message, **args, request_id=request_id())
