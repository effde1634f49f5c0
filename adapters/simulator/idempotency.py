"""Stripe's idempotency keys (STRIPE_FACTS §6 and recorded shape 3).

One store serves the in-process API and the HTTP server, keyed by platform
and key. A POST with a key runs once; its answer — success or refusal — is
replayed for 24 hours on the simulator's clock (a replay over HTTP carries
``Idempotent-Replayed: true``). The same key with other parameters is an
``idempotency_error``; a key still executing is a 409. Nothing is stored
when parameter validation refused the request (execution never began, so
the corrected request with the same key executes) nor for a 5xx. Keys are
at most 255 characters.

The fingerprint compares parameters as Stripe receives them on the wire
(``True`` is ``"true"``, ``5`` is ``"5"``), so the in-process API and the
HTTP server see the same request the same way.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from onboarding_fsm.errors import StripeIdempotencyConflict

from .errors import invalid, request_id

TTL_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    #: False for a refusal made before execution began (parameter validation)
    keep: bool = True


@dataclass(frozen=True, slots=True)
class _Stored:
    fingerprint: str
    at: int
    answer: Answer


def wire_value(value: Any) -> Any:
    """``value`` as the form encoding delivers it: strings, nested."""
    if isinstance(value, dict):
        return {str(k): wire_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [wire_value(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def fingerprint(method: str, path: str, params: Any) -> str:
    return json.dumps([method, path, wire_value(params)], sort_keys=True, separators=(",", ":"))


class IdempotencyStore:
    def __init__(self) -> None:
        self._items: dict[tuple[str, str], _Stored] = {}
        self._running: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def run(
        self, scope: str, key: str | None, fingerprint: str, now: int, execute: Callable[[], Answer]
    ) -> tuple[Answer, bool]:
        """Execute once per ``(scope, key)``; the answer and whether it is a replay."""
        if not key:
            return execute(), False
        if len(key) > MAX_KEY_LENGTH:
            raise invalid(f"Idempotency keys can be at most {MAX_KEY_LENGTH} characters long.", None, None)
        slot = (scope, key)
        with self._lock:
            stored = self._items.get(slot)
            if stored is not None and now - stored.at < TTL_SECONDS:
                if stored.fingerprint != fingerprint:
                    raise StripeIdempotencyConflict(
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                        http_status=400,
                        request_id=request_id(),
                    )
                return stored.answer, True
            if slot in self._running:
                raise StripeIdempotencyConflict(
                    "There is currently another in-progress request using this Idempotency-Key. "
                    "Please try again later.",
                    http_status=409,
                    code="idempotency_key_in_use",
                    request_id=request_id(),
                )
            self._running.add(slot)
        try:
            answer = execute()
        finally:
            with self._lock:
                self._running.discard(slot)
        if answer.keep and answer.status < 500:
            with self._lock:
                self._items[slot] = _Stored(fingerprint, now, answer)
        return answer, False
