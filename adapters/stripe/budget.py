"""How long one Stripe call may take, retries and backoff included.

A black-holed Stripe used to hold a request for minutes: the SDK's own
retries times our 429/5xx retries, each waiting a full timeout. Every call
now has one budget. One SDK call (its own attempts included) may use at most
half of it — each attempt's timeout is its share of that half — and a retry
of ours starts only if its backoff ends within the first half, so the retry
too ends within the budget. A caller (a holder's start, a webhook's
re-fetch, a timer) waits at most the budget and gets ``StripeUnavailable`` —
retryable — instead of a hung worker thread. (A socket that trickles bytes
slower than the read timeout is not bounded by this: ``requests`` times each
read, not the response.)
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
        """One HTTP attempt's timeout: the configured one, or its share of half
        the budget when the SDK's own retries would otherwise outlast that."""
        return min(timeout, self.total / (2 * (sdk_retries + 1)))

    def delay(self, attempt: int, elapsed: float) -> float | None:
        """The backoff before retry ``attempt + 1`` (0-based), or None when no
        retry is left or the retry could not end within the budget."""
        if attempt >= self.retries:
            return None
        wait = min(self.backoff_base * 2**attempt, self.backoff_cap)
        return wait if elapsed + wait <= self.total / 2 else None
