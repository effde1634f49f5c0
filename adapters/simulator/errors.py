"""The simulator's errors: misuse of its holder and operator APIs, and the
Stripe-shaped refusals its API raises (``onboarding_fsm.errors.Stripe*``, as
every gateway raises them)."""

from __future__ import annotations

import secrets

from onboarding_fsm.errors import StripeRequestFailed


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


def request_id() -> str:
    """A Stripe-shaped request id (``req_…``), as every answer carries."""
    return "req_" + secrets.token_hex(7)


def invalid(message: str, param: str | None = None, code: str = "parameter_invalid") -> StripeRequestFailed:
    """Stripe's 400 ``invalid_request_error``."""
    return StripeRequestFailed(message, http_status=400, code=code, param=param, request_id=request_id())
