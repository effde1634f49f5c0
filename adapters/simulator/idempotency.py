"""Stripe's idempotency keys: the first answer to a key is replayed for 24 hours.

One store serves the in-process API and the HTTP server: a request carries
a key and a fingerprint (method, path, parameters); the same key with the
same fingerprint gets the stored answer back, with another fingerprint an
``idempotency_error``. Stripe stores an answer once execution began, errors
included, but not 5xx answers (the request may be retried).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from onboarding_fsm.errors import StripeIdempotencyConflict

from .errors import request_id

TTL_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class _Stored:
    fingerprint: str
    at: int
    answer: Answer


def fingerprint(method: str, path: str, params: Any) -> str:
    return json.dumps([method, path, params], sort_keys=True, separators=(",", ":"), default=str)


class IdempotencyStore:
    def __init__(self) -> None:
        self._items: dict[str, _Stored] = {}
        self._lock = threading.Lock()

    def replay(self, key: str, fingerprint: str, now: int) -> Answer | None:
        """The stored answer for ``key``, None if there is none (or it expired);
        ``StripeIdempotencyConflict`` if the key was used for another request."""
        with self._lock:
            stored = self._items.get(key)
        if stored is None or now - stored.at >= TTL_SECONDS:
            return None
        if stored.fingerprint != fingerprint:
            raise StripeIdempotencyConflict(
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                http_status=400,
                code="idempotency_key_in_use",
                request_id=request_id(),
            )
        return stored.answer

    def remember(self, key: str, fingerprint: str, now: int, answer: Answer) -> None:
        if answer.status >= 500:
            return
        with self._lock:
            self._items[key] = _Stored(fingerprint, now, answer)
