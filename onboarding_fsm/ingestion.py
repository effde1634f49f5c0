"""The webhook use case: verify, read, decide, record — once per event id.

Forged, stale, future and malformed deliveries raise ``WebhookRejected``
before anything is written. Every other delivery ends in the inbox with its
outcome, in the same transaction as the change it caused; a duplicate rolls
its transaction back and is answered ``duplicate``. A tie on the watermark is
settled by asking Stripe (``webhooks.Refetch``), outside any transaction.
An event that raced our own create raises ``EventAheadOfAccount`` (retryable:
503 over HTTP) with nothing recorded, so Stripe's redelivery is not a
duplicate.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from . import moves, webhooks
from .audit import Transition
from .errors import DuplicateEvent, EventAheadOfAccount, InvalidInput, PermanentError, WebhookRejected
from .events import Event, Outcome, WebhookResult
from .ports import SignatureVerifier, StripeGateway, WriteTx
from .service import Transactions
from .snapshot import AccountSnapshot

log = logging.getLogger("onboarding_fsm")


class WebhookIngestion:
    def __init__(self, tx: Transactions, gateway: StripeGateway, verifier: SignatureVerifier) -> None:
        self._tx = tx
        self._gateway = gateway
        self._verifier = verifier

    def ingest(self, raw_body: bytes, signature_header: str | None) -> WebhookResult:
        if not isinstance(raw_body, bytes | bytearray | memoryview):
            raise InvalidInput("raw_body must be the raw request body as bytes")
        started = time.perf_counter()
        try:
            result = self._ingest(bytes(raw_body), signature_header)
        except WebhookRejected as exc:
            self._tx.webhook_seen("rejected", started)
            log.warning("webhook rejected (400): %s", exc, extra={"outcome": "rejected"})
            raise
        except EventAheadOfAccount as exc:
            self._tx.webhook_seen("retry", started)
            log.info("webhook answered retry (503): %s", exc, extra={"outcome": "retry"})
            raise
        self._tx.observe(result.transition)
        if result.transition is None:  # a transition logs itself, with the event's id
            _log(result)
        self._tx.webhook_seen(result.outcome.value, started)
        return result

    def _ingest(self, body: bytes, signature_header: str | None) -> WebhookResult:
        signed_at = self._verifier.verify(body, signature_header)
        now = self._tx.clock.now()
        webhooks.check_timestamp(signed_at, now, self._tx.config.webhook_tolerance)
        event, payload = webhooks.read(body)
        self._tx.notify("on_webhook_lag", max(0.0, (now - event.created).total_seconds()))
        try:
            result = self._tx.write(lambda tx: self._apply(tx, event, payload, now))
        except DuplicateEvent:
            return _duplicate(event)
        if isinstance(result, webhooks.Refetch):
            return self._refetch(event, now)
        return result

    def _apply(
        self, tx: WriteTx, event: Event, payload: AccountSnapshot | None, now: datetime
    ) -> WebhookResult | webhooks.Refetch:
        account = tx.load(event.account_id) if event.account_id else None
        ref = payload.platform_ref if payload is not None and account is None else None
        creating = ref is not None and tx.intent(ref) is not None
        decision = webhooks.decide(event, payload, account, now, self._tx.config, creating=creating)
        if isinstance(decision, webhooks.Refetch):
            return decision
        if isinstance(decision, webhooks.Retry):
            raise EventAheadOfAccount(f"event {event.id}: {decision.detail}; retry later")
        if isinstance(decision, webhooks.Record):
            tx.record_event(webhooks.inbox_entry(event, now, decision.outcome, decision.detail))
            return _result(event, decision.outcome, None, decision.detail)
        tx.record_event(webhooks.inbox_entry(event, now, Outcome.APPLIED, None, decision.change.transition))
        saved = self._tx.save(tx, decision.change)
        return _result(event, Outcome.APPLIED, saved.transition, None)

    def _refetch(self, event: Event, now: datetime) -> WebhookResult:
        """Stripe's current view of the tied account, applied with the event recorded."""
        account_id = event.account_id or ""
        try:
            snapshot = self._gateway.retrieve_account(account_id)
        except PermanentError as exc:
            return self._record_only(event, now, Outcome.IGNORED, f"re-fetch refused: {exc.__class__.__name__}")
        except Exception as exc:
            self._record_only(event, now, Outcome.FAILED, f"re-fetch failed: {exc.__class__.__name__}")
            raise

        def step(tx: WriteTx) -> WebhookResult:
            fetched_at = self._tx.clock.now()  # after the fetch: the snapshot is this fresh
            account = self._tx.load(tx, account_id)
            cause = webhooks.cause_of(event).answered(snapshot.request_id)
            change = moves.fetched(
                account, snapshot, cause, fetched_at, self._tx.config.policy, returning=False, covers=event.created
            )
            if change is None:  # detached meanwhile: recorded, so a redelivery is a duplicate
                detail = "account is deauthorized or deleted; recorded only"
                tx.record_event(webhooks.inbox_entry(event, fetched_at, Outcome.IGNORED, detail))
                return _result(event, Outcome.IGNORED, None, detail)
            tx.record_event(
                webhooks.inbox_entry(event, fetched_at, Outcome.APPLIED, webhooks.REFETCHED, change.transition)
            )
            saved = self._tx.save(tx, change)
            return _result(event, Outcome.APPLIED, saved.transition, webhooks.REFETCHED)

        try:
            return self._tx.write(step)
        except DuplicateEvent:
            return _duplicate(event)

    def _record_only(self, event: Event, now: datetime, outcome: Outcome, detail: str) -> WebhookResult:
        try:
            self._tx.write(lambda tx: tx.record_event(webhooks.inbox_entry(event, now, outcome, detail)))
        except DuplicateEvent:
            return _duplicate(event)
        return _result(event, outcome, None, detail)


def _log(result: WebhookResult) -> None:
    """An outcome without a transition (duplicate, stale, ignored…): ids as fields, no payload."""
    fields = {"event": result.event_id, "account": result.account_id, "outcome": result.outcome.value}
    detail = f" ({result.detail})" if result.detail else ""
    log.info("webhook %s %s: %s%s", result.event_id, result.event_type, result.outcome.value, detail, extra=fields)


def _result(event: Event, outcome: Outcome, transition: Transition | None, detail: str | None) -> WebhookResult:
    return WebhookResult(event.id, event.type, event.account_id, outcome, transition, detail)


def _duplicate(event: Event) -> WebhookResult:
    return _result(event, Outcome.DUPLICATE, None, "event id already seen")
