"""The timer use case: claim the next due timer, decide, apply — each in its
own transaction, so any number of processes can sweep at once and each
timer fires at most once (the store's claim is the lock).

A deadline timer is decided on Stripe's answer, not on the stored snapshot
(``deadlines.needs_fresh``), and Stripe is never called inside a database
transaction. So it takes three steps: lease the timer (commit), fetch the
account at the pace every worker shares (``Throttle``), then apply the
fetched snapshot and the deadline decision in one transaction that also
marks the timer fired. If Stripe cannot be asked, the timer wakes again
after a backoff and the attempt is counted (``EngineStats.timer_retries``,
the store's ``timer_backlog``): no guess is ever made. A sweep that dies
while holding a lease leaves the timer to wake when the lease runs out.
Every sweep is recorded as a run with its counts (``operations.keep``; an
idle sweep under one row per source, ``runs``), an interrupted one as failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from . import deadlines, moves
from .audit import Transition
from .operations import failure, keep
from .ports import StripeGateway, WriteTx
from .runs import Run, RunOutcome
from .service import Transactions
from .throttle import Throttle
from .timers import ClaimedTimer, Timer

log = logging.getLogger("onboarding_fsm")


@dataclass(frozen=True, slots=True)
class SweepReport:
    transitions: tuple[Transition, ...]
    reminders: int
    skipped: int
    #: deadline timers Stripe could not be asked about; they wake again later
    retried: int = 0
    #: the run's id, carried by every transition it caused
    run_id: str | None = None

    @property
    def timers(self) -> int:
        return len(self.transitions) + self.reminders + self.skipped + self.retried

    @property
    def counts(self) -> dict[str, int]:
        """As its run is recorded."""
        return {
            "transitions": len(self.transitions),
            "reminders": self.reminders,
            "skipped": self.skipped,
            "retried": self.retried,
        }


@dataclass(frozen=True, slots=True)
class _Outcome:
    transitions: tuple[Transition, ...] = ()
    reminded: bool = False
    retried: bool = False


class TimerSweep:
    def __init__(self, tx: Transactions, gateway: StripeGateway, throttle: Throttle) -> None:
        self._tx = tx
        self._gateway = gateway
        self._throttle = throttle

    def sweep(self, due_by: datetime, limit: int | None, run: Run) -> SweepReport:
        """Fire timers due by ``due_by``. Every stamp (lease, audit record,
        fired time) is the clock's time when it is written, never earlier
        than ``due_by`` (an operator may sweep "as of" a later instant)."""
        started = self._tx.clock.now()
        fired: list[Transition] = []
        reminders = skipped = retried = 0
        try:
            while limit is None or len(fired) + reminders + skipped + retried < limit:
                step = self._tx.write(lambda tx: self._claim(tx, due_by, run))
                if step is None:
                    break
                outcome = self._fresh(step, due_by, run) if isinstance(step, ClaimedTimer) else step
                self._tx.observe(*outcome.transitions)
                fired.extend(outcome.transitions)
                reminders += outcome.reminded
                retried += outcome.retried
                skipped += not (outcome.transitions or outcome.reminded or outcome.retried)
        except Exception as exc:
            counts = SweepReport(tuple(fired), reminders, skipped, retried).counts
            keep(self._tx.store, run.record(started, self._tx.clock.now(), counts, RunOutcome.FAILED, failure(exc)))
            raise
        report = SweepReport(tuple(fired), reminders, skipped, retried, run.id)
        keep(self._tx.store, run.record(started, self._tx.clock.now(), report.counts))
        return report

    def _at(self, due_by: datetime) -> datetime:
        return max(due_by, self._tx.clock.now())

    def _claim(self, tx: WriteTx, due_by: datetime, run: Run) -> ClaimedTimer | _Outcome | None:
        """Lease the next due timer; decide it at once unless it needs Stripe."""
        now = self._at(due_by)
        claimed = tx.claim_due_timer(due_by, lease_until=now + self._tx.config.timer_lease)
        if claimed is None:
            return None
        if claimed.account is not None and deadlines.needs_fresh(claimed.timer):
            return claimed  # committed: the lease holds it while Stripe is asked
        tx.finish_timer(claimed.timer, now)
        if claimed.account is None:
            return _Outcome()
        cause = deadlines.cause_of(claimed.timer, run)
        return self._apply(tx, deadlines.decide(claimed.account, claimed.timer, now, self._tx.config, cause), now)

    def _fresh(self, claimed: ClaimedTimer, due_by: datetime, run: Run) -> _Outcome:
        timer = claimed.timer
        try:
            self._throttle.wait()
            snapshot = self._gateway.retrieve_account(timer.account_id)
        except Exception as exc:  # the outside world: whatever went wrong, no guess, try later
            wake = self._at(due_by) + self._tx.config.timer_retry_after(claimed.attempts)
            self._tx.write(lambda tx: tx.retry_timer(timer, wake))
            self._tx.stats.timer_retries += 1
            log.warning(
                "timer %s of %s: Stripe not asked (%s); attempt %d, next at %s",
                timer.kind.value,
                timer.account_id,
                exc,
                claimed.attempts + 1,
                wake.isoformat(),
                extra={"account": timer.account_id, "run": run.id, "timer": timer.kind.value},
            )
            return _Outcome(retried=True)

        def step(tx: WriteTx) -> _Outcome:
            now = self._at(due_by)  # after Stripe answered: the snapshot is this fresh
            account = tx.load(timer.account_id)
            if not tx.finish_timer(timer, now) or account is None:
                return _Outcome()  # fired by a sweep whose lease ran out first, or re-derived away
            cause = deadlines.cause_of(timer, run).answered(snapshot.request_id)
            sync = moves.fetched(account, snapshot, cause, now, self._tx.config.policy, returning=False)
            if sync is not None:
                sync = self._tx.save(tx, sync)
                account = sync.after
            outcome = self._apply(tx, deadlines.decide(account, timer, now, self._tx.config, cause), now)
            synced = (sync.transition,) if sync is not None and sync.transition is not None else ()
            return _Outcome(synced + outcome.transitions, outcome.reminded)

        return self._tx.write(step)

    def _apply(self, tx: WriteTx, decision: deadlines.TimerDecision, now: datetime) -> _Outcome:
        if isinstance(decision, deadlines.Fire):
            saved = self._tx.save(tx, decision.change)
            return _Outcome((saved.transition,) if saved.transition is not None else ())
        if isinstance(decision, deadlines.Remind):
            tx.emit(decision.message["account"], deadlines.REMINDER_KIND, decision.message, now)
            return _Outcome(reminded=True)
        return _Outcome()


__all__ = ["SweepReport", "Timer", "TimerSweep"]
