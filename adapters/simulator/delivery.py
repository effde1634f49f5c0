"""Webhook delivery the way Stripe does it: signed, at least once, in no
guaranteed order, retried with backoff until the endpoint answers 2xx.

Knobs make the bad days reproducible: ``duplicate_rate`` re-sends an event,
``split_rate`` sends a second Event object (new id) for the same change,
``hold`` keeps events until ``deliver()`` is called, ``reorder`` shuffles
each batch. A seeded RNG makes every run repeatable.

A failed delivery is retried as Stripe does in live mode: with exponential
backoff (``retry_base * 2**(attempts-1)`` seconds, at most ``retry_cap``)
for ``retry_for`` seconds (three days) after the first attempt, then given up
(``dead``). Every time is the simulator's clock, so a test moves a
``FakeClock`` and ``tick()`` (or the HTTP server's delivery thread) sends
the retries that became due; nothing waits on wall time.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.stripe_wire.signing import sign

Sink = Callable[[bytes, str], Any]


@dataclass
class Delivery:
    duplicate_rate: float = 0.0
    split_rate: float = 0.0
    hold: bool = False
    reorder: bool = False
    seed: int = 0
    #: the first retry waits this long, each next one twice as long ...
    retry_base: float = 1.0
    #: ... but never longer than this (Stripe's Dashboard shows hourly retries late on)
    retry_cap: float = 3600.0
    #: Stripe retries a live-mode event for up to three days (STRIPE_FACTS §3.3)
    retry_for: float = 3 * 86400.0
    #: None: as many attempts as fit in ``retry_for``
    max_attempts: int | None = None


@dataclass
class Attempt:
    event: dict[str, Any]
    result: Any = None
    error: Exception | None = None


@dataclass
class _Retry:
    event: dict[str, Any]
    attempts: int
    not_before: float
    #: the first attempt's time: the retry window runs from it
    first: float


@dataclass
class Outbox:
    """Events waiting for delivery, and the record of what was delivered."""

    secret: str
    knobs: Delivery = field(default_factory=Delivery)
    sink: Sink | None = None
    queue: list[dict[str, Any]] = field(default_factory=list)
    retry: list[_Retry] = field(default_factory=list)
    log: list[Attempt] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    emitted: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.knobs.seed)
        self._attempts: dict[int, tuple[int, float | None]] = {}

    def sign(self, event: dict[str, Any], timestamp: int) -> tuple[bytes, str]:
        body = json.dumps(event, separators=(",", ":")).encode("utf-8")
        return body, sign(body, self.secret, timestamp)

    def expand(self, new_id: Callable[[], str], now: float) -> list[dict[str, Any]]:
        """Take the queue and the retries now due; apply duplicate/split/reorder knobs."""
        due = [r for r in self.retry if r.not_before <= now]
        self.retry = [r for r in self.retry if r.not_before > now]
        batch = [(e, 0, None) for e in self.queue] + [(r.event, r.attempts, r.first) for r in due]
        self.queue = []
        out: list[tuple[dict[str, Any], int, float | None]] = []
        for event, attempts, first in batch:
            out.append((event, attempts, first))
            if attempts == 0 and self._rng.random() < self.knobs.duplicate_rate:
                out.append((event, attempts, first))
            if attempts == 0 and self._rng.random() < self.knobs.split_rate:
                out.append(({**event, "id": new_id()}, attempts, first))
        if self.knobs.reorder:
            self._rng.shuffle(out)
        self._attempts = {id(e): (a, f) for e, a, f in out}
        return [e for e, _, _ in out]

    def send(self, events: list[dict[str, Any]], timestamp: int) -> list[Attempt]:
        sent = []
        for event in events:
            attempt = Attempt(event)
            if self.sink is None:
                self.queue.append(event)
                continue
            body, header = self.sign(event, timestamp)  # a retry is signed anew, as Stripe does
            try:
                attempt.result = self.sink(body, header)
            except Exception as exc:  # any non-2xx: Stripe retries
                attempt.error = exc
                self._failed(event, timestamp)
            self.log.append(attempt)
            sent.append(attempt)
        return sent

    def _failed(self, event: dict[str, Any], now: int) -> None:
        """Schedule the next attempt, or give up once the window (or ``max_attempts``) is spent."""
        done, first = self._attempts.get(id(event), (0, None))
        tries, first = done + 1, now if first is None else first
        wait = min(self.knobs.retry_base * 2 ** min(tries - 1, 60), self.knobs.retry_cap)
        out_of_time = now + wait > first + self.knobs.retry_for
        if out_of_time or (self.knobs.max_attempts is not None and tries >= self.knobs.max_attempts):
            self.dead.append(event)
        else:
            self.retry.append(_Retry(event, tries, now + wait, first))

    @property
    def pending(self) -> int:
        return len(self.queue) + len(self.retry)


class HttpSink:
    """POST each delivery to a URL, as Stripe does; any non-2xx raises (and is retried)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        import httpx

        self.url = url
        self._client = httpx.Client(timeout=timeout)

    def __call__(self, body: bytes, header: str) -> int:
        response = self._client.post(
            self.url,
            content=body,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": header,
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            },
        )
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(response.status_code, response.text[:200])
        return response.status_code

    def close(self) -> None:
        self._client.close()


class DeliveryFailed(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"endpoint answered {status}: {body}")
        self.status = status
