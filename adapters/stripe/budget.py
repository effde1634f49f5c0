"""How long one Stripe call may take, retries and backoff included.

A black-holed Stripe used to hold a request for minutes: the SDK's own
retries times our 429/5xx retries, each waiting a full timeout. Every call
now has one budget: each attempt's timeout is a share of it, and a retry is
only started if its backoff still fits. A caller (a holder's start, a
webhook's re-fetch, a timer) therefore waits at most about the budget, and
gets ``StripeUnavailable`` — retryable — instead of a hung worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryBudget:
    #: seconds for the whole call
    total: float
    #: retries of 429/5xx after the SDK's own network retries
    retries: int = 4
    backoff_base: float = 0.5
    backoff_cap: float = 8.0

    def attempt_timeout(self, timeout: float, sdk_retries: int) -> float:
        """One HTTP attempt's timeout: the configured one, or the budget's share
        when the SDK's own retries would otherwise outlast it."""
        return min(timeout, self.total / (sdk_retries + 1))

    def delay(self, attempt: int, elapsed: float) -> float | None:
        """The backoff before retry ``attempt + 1`` (0-based), or None when no
        retry is left or its wait alone would overrun the budget."""
        if attempt >= self.retries:
            return None
        wait = min(self.backoff_base * 2**attempt, self.backoff_cap)
        return wait if elapsed + wait < self.total else None
