"""Delivering the outbox: every message to the platform's handler, at least
once, in order per account, with retries, backoff and dead letters.

The outbox is written in the same transaction as what it announces (a
transition, a reminder, a new audit checkpoint head), so nothing is lost
between the two; this use case hands it on. Each pass leases a batch of
messages (``Store.claim_outbox``), calls the handler outside any database
transaction, and records the outcome per message:

* the handler returned: the message is published (``published_at``);
* it raised: one failure more, its type and a short message kept as
  ``last_error`` (never the payload), and the message waits
  ``EngineConfig.outbox_retry_after`` (base * 2^(failures - 1), at most cap);
* at ``outbox_max_attempts`` failures it is a dead letter (``dead_at``):
  no deliverer touches it again until an operator re-drives it.

**In order per account.** Only the oldest undelivered message of an account
(its head) is ever handed over; the next one waits until the head is
published. Messages of other accounts do not wait for it. A dead letter
stays the head of its account: the account's later messages wait behind it
until it is re-driven and delivered. That is deliberate. A consumer of
onboarding transitions keeps a state per account; handing it ``verified``
after a lost ``restricted`` would leave it believing something Stripe never
said, silently. Stopping the line for one account is visible (the
``blocked`` count, ``onboarding_fsm_outbox_dead_letters``), costs nothing to
the other accounts, and is undone by one command once the consumer is
fixed: ``onboarding-fsm outbox redrive``. Audit checkpoint announcements
(account ``""``) are one more such line.

**Several deliverers.** A claimed message is leased (``outbox_lease``): no
other deliverer is given it before the lease ends (``FOR UPDATE SKIP LOCKED``
on PostgreSQL, SQLite's single writer), and since only heads are claimed,
no two deliverers ever hold messages of the same account at once. A
deliverer that stops while its handler runs leaves the message to be
handed over again when the lease ends, not counted as a failure. A handler
that outlives its lease may meet a second delivery of the same message:
at-least-once, so consumers dedupe (a transition on ``account`` and ``seq``,
a reminder on ``account`` and ``reminder_at``, a checkpoint on ``seq``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .config import EngineConfig
from .errors import InvalidInput
from .outbox import DeadLetter, DeliveryReport, Handler, OutboxBacklog, OutboxMessage, failed, redrive_ids
from .ports import Clock, Store

log = logging.getLogger("onboarding_fsm")

#: messages leased per claim: small, so a slow handler rarely outlives the lease of the batch's last
CLAIM_BATCH = 50


class OutboxDelivery:
    """``engine.outbox``: deliver, and what operators need around it."""

    def __init__(self, store: Store, clock: Clock, config: EngineConfig) -> None:
        self._store = store
        self._clock = clock
        self._config = config

    def deliver(self, handler: Handler, *, limit: int = 100) -> DeliveryReport:
        """Hand at most ``limit`` messages to ``handler``, oldest first, each
        account's in order; return what became of them. Stops early when no
        message is due (one backing off waits for a later pass)."""
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}")
        report = DeliveryReport()
        while report.handed < limit:
            now = self._clock.now()
            wanted = min(CLAIM_BATCH, limit - report.handed)
            claimed = self._store.claim_outbox(now, lease_until=now + self._config.outbox_lease, limit=wanted)
            if not claimed:
                break
            for message in claimed:
                report += self._hand(handler, message)
        return report

    def _hand(self, handler: Handler, message: OutboxMessage) -> DeliveryReport:
        if self._clock.now() >= message.leased_until:
            # the batch outlived this message's lease: another deliverer may hold it now
            log.warning("outbox message %d: lease ran out before its turn; left to the next claim", message.id)
            return DeliveryReport()
        try:
            handler(dict(message.payload))
        except Exception as exc:  # the platform's code: whatever it raised, record it and try later
            failure = failed(message, exc, self._clock.now(), self._config)
            fields = {"account": message.account_id or None, "outbox": message.id}
            if not self._store.fail_outbox(message, failure):
                # its lease ran out while the handler ran: another deliverer holds it now
                log.warning("outbox message %d: failed after its lease ran out; left to its holder", message.id,
                            extra=fields)  # fmt: skip
                return DeliveryReport()
            if failure.dead_at is not None:
                log.error(
                    "outbox message %d (%s of %s) dead after %d attempt(s): %s; its account's later messages "
                    "wait until it is re-driven",
                    message.id, message.kind, message.account_id or "-", failure.attempts, failure.last_error,
                    extra=fields,
                )  # fmt: skip
                return DeliveryReport(dead=1)
            log.warning(
                "outbox message %d (%s of %s) attempt %d failed: %s; next at %s",
                message.id, message.kind, message.account_id or "-", failure.attempts, failure.last_error,
                failure.retry_at.isoformat() if failure.retry_at else "-",
                extra=fields,
            )  # fmt: skip
            return DeliveryReport(retried=1)
        if not self._store.finish_outbox(message, self._clock.now()):
            return DeliveryReport()  # published meanwhile by a deliverer that claimed it after our lease ran out
        return DeliveryReport(delivered=1)

    def backlog(self) -> OutboxBacklog:
        """Pending, due, leased, retrying, blocked and dead messages, and the oldest pending one's age."""
        return self._store.outbox_backlog(self._clock.now())

    def dead(self, *, limit: int = 100, after: int = 0) -> list[DeadLetter]:
        """Dead letters in id order, after the id ``after`` (keyset paging)."""
        if limit < 1 or after < 0:
            raise InvalidInput(f"limit must be at least 1 and after at least 0, got {limit} and {after}")
        return self._store.dead_letters(limit=limit, after=after)

    def redrive(
        self, ids: Iterable[int] | None = None, *, every: bool = False, operator: str | None = None
    ) -> list[int]:
        """Put dead letters back to pending with their attempts reset, due at
        once: those named by ``ids``, or ``every`` one. An id that is not a
        dead letter refuses the whole request (``InvalidInput``), changing
        nothing. Returns the ids re-driven; logged with ``operator``."""
        wanted = redrive_ids(ids, every)
        done = self._store.redrive_outbox(wanted)
        if done:
            log.warning(
                "outbox: %d dead letter(s) re-driven by %s: %s",
                len(done), operator or "an unnamed caller", ", ".join(map(str, done)),
            )  # fmt: skip
        return done


__all__ = ["DeadLetter", "DeliveryReport", "Handler", "OutboxBacklog", "OutboxDelivery", "OutboxMessage"]
