"""The timer use case: claim the next due timer, decide, apply — each in its
own transaction, so any number of processes can sweep at once and each
timer fires at most once (the store's claim is the lock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from . import deadlines
from .audit import Transition
from .ports import WriteTx
from .service import Transactions


@dataclass(frozen=True, slots=True)
class SweepReport:
    transitions: tuple[Transition, ...]
    reminders: int
    skipped: int

    @property
    def timers(self) -> int:
        return len(self.transitions) + self.reminders + self.skipped


class TimerSweep:
    def __init__(self, tx: Transactions) -> None:
        self._tx = tx

    def sweep(self, now: datetime, limit: int | None) -> SweepReport:
        fired: list[Transition] = []
        reminders = skipped = 0
        while limit is None or len(fired) + reminders + skipped < limit:
            decision = self._tx.write(lambda tx: self._fire_next(tx, now))
            if decision is None:
                break
            if isinstance(decision, deadlines.Fire) and decision.change.transition is not None:
                fired.append(decision.change.transition)
                self._tx.observe(decision.change.transition)
            elif isinstance(decision, deadlines.Remind):
                reminders += 1
            else:
                skipped += 1
        return SweepReport(tuple(fired), reminders, skipped)

    def _fire_next(self, tx: WriteTx, now: datetime) -> deadlines.TimerDecision | None:
        claimed = tx.claim_due_timer(now)
        if claimed is None:
            return None
        timer, account = claimed
        if account is None:
            return deadlines.Skip("account gone")
        decision = deadlines.decide(account, timer, now, self._tx.config)
        if isinstance(decision, deadlines.Fire):
            self._tx.save(tx, decision.change)
        elif isinstance(decision, deadlines.Remind):
            tx.emit(account.stripe_account_id, deadlines.REMINDER_KIND, decision.message, now)
        return decision
