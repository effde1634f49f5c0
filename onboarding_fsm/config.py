"""What the engine itself needs to decide, and nothing else.

``Settings`` holds the whole application's configuration (HTTP, auth, the
worker, storage); the engine sees only this frozen value, derived from it by
``Settings.engine_config()``. Keeping the two apart means a decision can be
table-tested with a hand-built config, and an adapter cannot reach the HTTP
or worker settings through the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from .account import FutureRequirements
from .audit import AuditKey
from .errors import InvalidInput
from .policy import Policy

ACCOUNT_PLACEHOLDER = "{account}"

#: Stripe's documented per-platform read pace, by mode (requests per second)
STRIPE_RATE = {True: 100.0, False: 25.0}


@dataclass(frozen=True, slots=True)
class Pace:
    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not self.rate > 0 or self.burst < 1:
            raise InvalidInput(f"a pace needs rate > 0 and burst >= 1, got {self.rate}/s burst {self.burst}")

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=1 / self.rate)

    @classmethod
    def for_stripe(cls, livemode: bool, rate: float | None = None) -> Pace:
        """Stripe's pace for the mode unless ``rate`` overrides it; a burst of a fifth of a second's worth."""
        chosen = rate if rate is not None else STRIPE_RATE[livemode]
        return cls(chosen, max(1, int(chosen / 5)))


@dataclass(frozen=True, slots=True)
class LinkUrls:
    """Where Stripe sends the holder back: ``{account}`` is replaced by the account id."""

    refresh: str = "http://127.0.0.1:8000/onboarding/{account}/refresh"
    return_: str = "http://127.0.0.1:8000/onboarding/{account}/return"

    def __post_init__(self) -> None:
        for url in (self.refresh, self.return_):
            if ACCOUNT_PLACEHOLDER not in url:
                raise InvalidInput(f"link URL template needs {ACCOUNT_PLACEHOLDER}: {url!r}")

    def refresh_url(self, account_id: str) -> str:
        return self.refresh.replace(ACCOUNT_PLACEHOLDER, account_id)

    def return_url(self, account_id: str) -> str:
        return self.return_.replace(ACCOUNT_PLACEHOLDER, account_id)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    policy: Policy = field(default_factory=Policy)
    #: the mode of the Stripe key: events of the other mode are recorded, never applied
    livemode: bool = False
    #: how far a signature's timestamp may be from our clock, either way
    webhook_tolerance: timedelta = timedelta(seconds=300)
    #: a holder who has not come back by then has left the flow
    abandon_after: timedelta = timedelta(hours=24)
    #: reminders before each deadline, longest first
    reminder_offsets: tuple[timedelta, ...] = (timedelta(days=7), timedelta(days=1))
    #: ``collection_options[future_requirements]`` when a caller does not say
    future_requirements: FutureRequirements = FutureRequirements.OMIT
    links: LinkUrls = field(default_factory=LinkUrls)
    #: attempts after an optimistic-version conflict before giving up
    max_conflict_retries: int = 5
    #: requests per second for bulk Stripe reads (timers, reconcile), shared by
    #: every worker on the database; None: Stripe's pace for the mode
    stripe_rate_limit: float | None = None
    #: how long a sweep may hold a deadline timer while it asks Stripe
    timer_lease: timedelta = timedelta(seconds=60)
    #: Stripe unreachable when a deadline fires: try again after base * 2^attempts, at most cap
    timer_retry_base: timedelta = timedelta(seconds=30)
    timer_retry_cap: timedelta = timedelta(hours=1)
    #: unfired this long after it was due: overdue (``status``, metrics), a worker down or Stripe away
    timer_overdue_after: timedelta = timedelta(minutes=5)
    #: in a state that waits on the holder (or on us) this long: the account needs attention
    stuck_after: timedelta = timedelta(days=7)
    #: how far our clock and Stripe's may differ: an event this close to our
    #: own fetch is neither newer nor older, so Stripe is asked again
    clock_skew_tolerance: timedelta = timedelta(seconds=5)
    #: reconcile detaches nothing when this share of the checked accounts is
    #: inaccessible (another platform's key, not a mass departure)
    reconcile_inaccessible_share: float = 0.5
    #: an account reconcile cannot see is detached only if a run this much
    #: later still cannot (one 403/404 is not proof: Stripe hiccups, keys rotate)
    reconcile_confirm_after: timedelta = timedelta(hours=6)
    #: published outbox messages and inbox payloads older than this are pruned
    #: (``Engine.prune``); inbox rows and the audit trail are kept
    retention: timedelta = timedelta(days=90)
    #: keys audit hashes (HMAC-SHA256), so database write access alone cannot re-hash a chain
    audit_key: AuditKey | None = None
    #: outbox delivery (``delivery``): a deliverer's hold on a message while its handler runs
    outbox_lease: timedelta = timedelta(seconds=60)
    #: a handler that raised: try again after base * 2^(failures - 1), at most cap ...
    outbox_retry_base: timedelta = timedelta(seconds=5)
    outbox_retry_cap: timedelta = timedelta(hours=1)
    #: ... and dead-letter the message at this many failures
    outbox_max_attempts: int = 10

    @property
    def stripe_pace(self) -> Pace:
        return Pace.for_stripe(self.livemode, self.stripe_rate_limit)

    def timer_retry_after(self, attempts: int) -> timedelta:
        """Exponential backoff for a deadline timer Stripe could not be asked about."""
        return backoff(self.timer_retry_base, self.timer_retry_cap, attempts)

    def outbox_retry_after(self, failures: int) -> timedelta:
        """Exponential backoff for an outbox message after its handler's ``failures``-th failure."""
        return backoff(self.outbox_retry_base, self.outbox_retry_cap, failures - 1)


def backoff(base: timedelta, cap: timedelta, attempts: int) -> timedelta:
    """``base * 2^attempts``, at most ``cap`` (the exponent stops at 30, so a
    long outage never overflows ``timedelta``)."""
    delay: timedelta = base * (2 ** min(max(attempts, 0), 30))
    return min(cap, delay)
