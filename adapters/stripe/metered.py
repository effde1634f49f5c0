"""Any ``StripeGateway``, metered: each call's operation, outcome and latency.

``bootstrap.build_engine`` wraps whatever gateway it builds or is given (the
SDK adapter, the simulator, a platform's own) and reports to the engine
(``engine.ops.stripe_called``), which tells the observers that have
``on_stripe_call`` — the app's Prometheus metrics. The outcome is ``ok`` or
the engine error's class name (``StripeUnavailable``, ``StripeRateLimited``,
``StripeAccountInaccessible``…): the adapters translate every Stripe error
into that tree, so the label stays a short, known list; anything else is a
bug and counts as ``error``. The latency is the caller's: the SDK's own
retries and the adapter's backoff included, as a holder waits for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from onboarding_fsm.account import AccountPage, Link, LinkRequest, NewAccount
from onboarding_fsm.errors import OnboardingError
from onboarding_fsm.ports import StripeGateway
from onboarding_fsm.selfcheck import WebhookEndpoint
from onboarding_fsm.snapshot import AccountSnapshot

T = TypeVar("T")
#: (operation, outcome, seconds)
Report = Callable[[str, str, float], None]


def _nobody(operation: str, outcome: str, seconds: float) -> None:
    return None


class MeteredGateway:
    def __init__(self, inner: StripeGateway, report: Report | None = None) -> None:
        self.inner = inner
        self._report: Report = report or _nobody

    def report_to(self, report: Report) -> None:
        """Where each call is reported from now on (the engine is built after its gateway)."""
        self._report = report

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        outcome = "ok"
        try:
            return call()
        except OnboardingError as exc:
            outcome = type(exc).__name__
            raise
        except Exception:
            outcome = "error"
            raise
        finally:
            self._report(operation, outcome, time.perf_counter() - started)

    def create_account(self, new: NewAccount, *, idempotency_key: str) -> AccountSnapshot:
        return self._call("create_account", lambda: self.inner.create_account(new, idempotency_key=idempotency_key))

    def retrieve_account(self, account_id: str) -> AccountSnapshot:
        return self._call("retrieve_account", lambda: self.inner.retrieve_account(account_id))

    def update_account(
        self, account_id: str, params: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> AccountSnapshot:
        return self._call(
            "update_account", lambda: self.inner.update_account(account_id, params, idempotency_key=idempotency_key)
        )

    def list_accounts(
        self, *, limit: int = 100, starting_after: str | None = None, created_gte: datetime | None = None
    ) -> AccountPage:
        return self._call(
            "list_accounts",
            lambda: self.inner.list_accounts(limit=limit, starting_after=starting_after, created_gte=created_gte),
        )

    def create_account_link(self, request: LinkRequest) -> Link:
        return self._call("create_account_link", lambda: self.inner.create_account_link(request))

    def list_webhook_endpoints(self) -> list[WebhookEndpoint]:
        return self._call("list_webhook_endpoints", self.inner.list_webhook_endpoints)

    def __getattr__(self, name: str) -> Any:
        """Whatever else the wrapped gateway offers (its own extras, or a port
        method added later): passed through, and metered when it is a method."""
        if name == "inner":  # not set yet (a copy being built): never recurse
            raise AttributeError(name)
        found = getattr(self.inner, name)
        if name.startswith("_") or not callable(found):
            return found
        return lambda *args, **kwargs: self._call(name, lambda: found(*args, **kwargs))
