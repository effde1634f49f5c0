"""What every use case shares: one transaction per decision, the retry
policy, and telling observers what was committed.

A use case hands ``write`` a step — load, decide (one pure call), ``save`` —
and gets the step's result once it is committed. An optimistic-version
conflict runs the whole step again on fresh data, up to the configured
bound; nothing else is retried here (a duplicate event, a refused trigger,
a database outage are the caller's to answer). ``observe`` logs and reports
transitions only after their commit, with how long the account had been in
the state it left (from the saved change's ``before.state_since``: the
record itself carries no such field, its hashed layout stays as it is).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TypeVar

from .account import Account
from .audit import Transition, sign
from .config import EngineConfig
from .deadlines import rederived
from .errors import AccountNotFound, ConcurrencyConflict
from .moves import Change
from .ports import Clock, Observer, Store, WriteTx
from .states import Source

log = logging.getLogger("onboarding_fsm")
T = TypeVar("T")


@dataclass
class EngineStats:
    """Counters a worker or /metrics can report."""

    conflicts_retried: int = 0
    conflicts_exhausted: int = 0
    #: deadline timers put back because Stripe could not be asked
    timer_retries: int = 0


class Transactions:
    def __init__(self, store: Store, clock: Clock, config: EngineConfig, observers: Iterable[Observer] = ()) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.stats = EngineStats()
        self._observers = list(observers)
        #: per thread, saved transitions not yet observed -> seconds in the state they left
        self._left = threading.local()

    def subscribe(self, observer: Observer) -> None:
        self._observers.append(observer)

    def write(self, step: Callable[[WriteTx], T]) -> T:
        """Run ``step`` in one transaction; on an optimistic-version conflict
        run it again on fresh data, up to the configured bound."""
        tries = self.config.max_conflict_retries + 1
        for n in range(tries):
            try:
                with self.store.write() as tx:
                    return step(tx)
            except ConcurrencyConflict:
                if n == tries - 1:
                    self.stats.conflicts_exhausted += 1
                    raise
                self.stats.conflicts_retried += 1
        raise AssertionError("unreachable")

    @staticmethod
    def load(tx: WriteTx, account_id: str) -> Account:
        account = tx.load(account_id)
        if account is None:
            raise AccountNotFound(account_id)
        return account

    def save(self, tx: WriteTx, change: Change) -> Change:
        """The changed account with its audit and outbox rows and re-derived
        timers; returns it as saved (its record signed with the audit key)."""
        warn_unknown(change.after.stripe_account_id, change.unknown)
        change = self.signed(change)
        tx.save(
            change.after,
            expected_version=change.before.version,
            transition=change.transition,
            timers=rederived(change, self.config),
        )
        self._remember_left(change)
        return change

    def _remember_left(self, change: Change) -> None:
        record, since = change.transition, change.before.state_since
        if record is None or record.from_state in (None, record.to_state) or since is None:
            return
        pending = self._pending_left()
        if len(pending) >= 64:  # saves whose transaction rolled back are never observed
            pending.clear()
        pending[record] = max(0.0, (record.at - since).total_seconds())

    def _pending_left(self) -> dict[Transition, float]:
        pending: dict[Transition, float] | None = getattr(self._left, "pending", None)
        if pending is None:
            pending = self._left.pending = {}
        return pending

    def signed(self, change: Change, prev_hash: str | None = None) -> Change:
        """``change`` with its record hashed under the configured audit key
        (decisions are pure and keyless; the key lives only here)."""
        if change.transition is None or (self.config.audit_key is None and prev_hash is None):
            return change
        record = sign(change.transition, self.config.audit_key, prev_hash=prev_hash)
        return replace(change, transition=record, after=replace(change.after, audit_head=record.hash))

    def observe(self, *transitions: Transition | None) -> None:
        """Log and report transitions that were committed."""
        for transition in transitions:
            if transition is None:
                continue
            log.info(
                "account %s %s -> %s by %s (%s %s): %s",
                transition.account_id,
                transition.from_state.value if transition.from_state else "-",
                transition.to_state.value,
                transition.trigger.value,
                transition.source.value,
                transition.source_ref or "-",
                transition.reason,
                extra=log_fields(transition),
            )
            for observer in self._observers:
                observer.on_transition(transition)
            left = self._pending_left().pop(transition, None)
            if left is not None:
                self.notify("on_state_left", transition.from_state, left)

    def notify(self, method: str, *args: object) -> None:
        """Call an optional observer method (``ports.DetailedObserver``) on
        the observers that have it."""
        for observer in self._observers:
            handler = getattr(observer, method, None)
            if handler is not None:
                handler(*args)

    def webhook_seen(self, outcome: str, started: float) -> None:
        seconds = time.perf_counter() - started
        for observer in self._observers:
            observer.on_webhook(outcome, seconds)


def warn_unknown(account_id: str, unknown: tuple[str, ...]) -> None:
    if unknown:
        log.warning(
            "account %s: unknown Stripe values %s; classified conservatively",
            account_id,
            unknown,
            extra={"account": account_id},
        )


def log_fields(transition: Transition) -> dict[str, str | None]:
    """A transition's ids as log fields (``extra=``; JSON logs keep them as fields)."""
    return {
        "account": transition.account_id,
        "event": transition.source_ref if transition.source is Source.WEBHOOK else None,
        "run": transition.run_id,
        "request": transition.request_id,
        "trigger": transition.trigger.value,
        "source": transition.source.value,
        "to_state": transition.to_state.value,
    }
