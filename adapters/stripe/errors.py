"""Every SDK exception, in the engine's error tree (retryable vs permanent).

Stripe's request id, HTTP status, code and parameter are kept for support
tickets; nothing from ``stripe`` reaches the core.
"""

from __future__ import annotations

from typing import Any

from onboarding_fsm.errors import (
    StripeAccountInaccessible,
    StripeAuthenticationFailed,
    StripeFailure,
    StripeIdempotencyConflict,
    StripeRateLimited,
    StripeRequestFailed,
    StripeUnavailable,
)


def translate(exc: Exception) -> StripeFailure:
    """An SDK exception in the engine's error tree."""
    import stripe

    if not isinstance(exc, stripe.StripeError):
        return StripeUnavailable(f"Stripe call failed: {exc.__class__.__name__}: {exc}")
    error = getattr(exc, "error", None)
    common: dict[str, Any] = {
        "request_id": exc.request_id,
        "http_status": exc.http_status,
        # the SDK leaves ``code`` unset on some classes (PermissionError); the error body has it
        "code": exc.code or getattr(error, "code", None),
        "param": getattr(error, "param", None) or getattr(exc, "param", None),
    }
    message = exc.user_message or str(exc) or exc.__class__.__name__
    if isinstance(exc, stripe.RateLimitError):
        return StripeRateLimited(message, **common)
    if isinstance(exc, stripe.APIConnectionError):
        return StripeUnavailable(message, **common)
    if isinstance(exc, stripe.IdempotencyError):
        return StripeIdempotencyConflict(message, **common)
    if isinstance(exc, stripe.PermissionError) and common["code"] == "account_invalid":
        return StripeAccountInaccessible(message, **common)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return StripeAuthenticationFailed(message, **common)
    if isinstance(exc, stripe.InvalidRequestError | stripe.CardError):
        return StripeRequestFailed(message, **common)
    status = exc.http_status or 0
    if status == 409 or status >= 500 or isinstance(exc, stripe.APIError):
        return StripeUnavailable(message, **common)
    return StripeRequestFailed(message, **common)
