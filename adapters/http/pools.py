"""Separate thread capacity for requests that wait on Stripe, webhooks and probes.

Engine calls are synchronous and run in worker threads. With one shared pool,
45 holders opening start URLs while Stripe hangs took every thread: health
checks went unanswered and valid webhooks waited 23 s. Each kind of request
now draws from its own limiter, so a slow Stripe can only fill the
Stripe-bound one; webhooks and ``/healthz`` keep their own threads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")

#: holders' start/refresh/return: each may wait on Stripe for a whole call budget
STRIPE_BOUND = 16
#: webhook ingestion: the database, and rarely one Stripe re-fetch
WEBHOOKS = 16
#: /healthz
PROBES = 4


@dataclass
class Pools:
    stripe_bound: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(STRIPE_BOUND))
    webhooks: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(WEBHOOKS))
    probes: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(PROBES))
    #: /metrics counts rows: a slow scrape must not delay /healthz
    scrapes: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(2))

    @staticmethod
    async def run(limiter: anyio.CapacityLimiter, fn: Callable[..., T], *args: object) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)
