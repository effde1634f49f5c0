"""Webhook delivery the way Stripe does it: signed, at least once, in no
guaranteed order, retried until the endpoint answers.

Knobs make the bad days reproducible: ``duplicate_rate`` re-sends an event,
``split_rate`` sends a second Event object (new id) for the same change,
``hold`` keeps events until ``deliver()`` is called, ``reorder`` shuffles
each batch. A seeded RNG makes every run repeatable.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.signature import sign

Sink = Callable[[bytes, str], Any]


@dataclass
class Delivery:
    duplicate_rate: float = 0.0
    split_rate: float = 0.0
    hold: bool = False
    reorder: bool = False
    seed: int = 0
    max_attempts: int = 16


@dataclass
class Attempt:
    event: dict[str, Any]
    result: Any = None
    error: Exception | None = None


@dataclass
class Outbox:
    """Events waiting for delivery, and the record of what was delivered."""

    secret: str
    knobs: Delivery = field(default_factory=Delivery)
    sink: Sink | None = None
    queue: list[dict[str, Any]] = field(default_factory=list)
    retry: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    log: list[Attempt] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    emitted: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.knobs.seed)
        self._busy = False

    def sign(self, event: dict[str, Any], timestamp: int) -> tuple[bytes, str]:
        body = json.dumps(event, separators=(",", ":")).encode("utf-8")
        return body, sign(body, self.secret, timestamp)

    def expand(self, new_id: Callable[[], str]) -> list[dict[str, Any]]:
        """Take the queue, apply duplicate/split/reorder knobs."""
        batch: list[tuple[dict[str, Any], int]] = [(e, 0) for e in self.queue] + self.retry
        self.queue, self.retry = [], []
        out: list[tuple[dict[str, Any], int]] = []
        for event, attempts in batch:
            out.append((event, attempts))
            if attempts == 0 and self._rng.random() < self.knobs.duplicate_rate:
                out.append((event, attempts))
            if attempts == 0 and self._rng.random() < self.knobs.split_rate:
                out.append(({**event, "id": new_id()}, attempts))
        if self.knobs.reorder:
            self._rng.shuffle(out)
        self._attempts = {id(e): a for e, a in out}
        return [e for e, _ in out]

    def send(self, events: list[dict[str, Any]], timestamp: int) -> list[Attempt]:
        sent = []
        for event in events:
            attempt = Attempt(event)
            if self.sink is None:
                self.queue.append(event)
                continue
            body, header = self.sign(event, timestamp)
            try:
                attempt.result = self.sink(body, header)
            except Exception as exc:  # any non-2xx: Stripe retries
                attempt.error = exc
                tries = self._attempts.get(id(event), 0) + 1
                if tries >= self.knobs.max_attempts:
                    self.dead.append(event)
                else:
                    self.retry.append((event, tries))
            self.log.append(attempt)
            sent.append(attempt)
        return sent
