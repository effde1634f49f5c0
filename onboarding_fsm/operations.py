"""What an operator asks of a running deployment, and the few things done by hand
(``engine.ops``).

* runs: every sweep, reconcile and prune leaves a ``RunRecord`` (``runs``);
  ``record`` keeps one, ``runs`` and ``last_runs`` read them back — from
  the database, so the web app's metrics and ``status`` see the worker's
  runs although they are other processes;
* ``status``: what is waiting (timers due, overdue, retrying), the last run
  of each kind, accounts per state;
* ``reprocess`` / ``reprocess_failed``: webhook events re-done from Stripe's
  answer (``reprocessing``);
* ``stripe_called``: the metering gateway (an adapter, wired by
  ``bootstrap``) reports each Stripe call here, for the observers.

Recording a run is best effort: a run that did its work is not turned into a
failure because its record could not be written (the database went away
between the two, say); the worker's log still has it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from . import inputs
from .errors import InvalidInput
from .ports import Store, StripeGateway
from .reprocessing import Reprocessed, Reprocessing
from .retention import PruneReport
from .runs import PRUNE, RECONCILE, SWEEP, Run, RunOutcome, RunRecord
from .service import Transactions
from .states import State
from .throttle import Throttle
from .timers import TimerBacklog

log = logging.getLogger("onboarding_fsm")

#: the kinds ``status`` and the metrics show the last run of
KINDS: tuple[str, ...] = (SWEEP, RECONCILE, PRUNE)


@dataclass(frozen=True, slots=True)
class Status:
    at: datetime
    timers: TimerBacklog
    #: a timer unfired this long after it was due counts as overdue
    overdue_after: timedelta
    #: the latest run of each kind that ran at all (an idle one included)
    last_runs: Mapping[str, RunRecord]
    accounts: Mapping[State, int]

    @property
    def overdue(self) -> bool:
        return self.timers.overdue > 0


def keep(store: Store, record: RunRecord) -> None:
    """Record a run, best effort (the module's docstring says why)."""
    try:
        store.record_run(record)
    except Exception as exc:
        log.warning("run %s (%s) not recorded: %s: %s", record.run_id, record.kind, type(exc).__name__, exc)


def failure(exc: BaseException) -> str:
    """A run's ``detail`` when an error ended it."""
    return f"{type(exc).__name__}: {exc}"[:500]


class Operations:
    def __init__(self, tx: Transactions, gateway: StripeGateway, throttle: Throttle) -> None:
        self._tx = tx
        self._store = tx.store
        self._reprocessing = Reprocessing(tx, gateway, throttle)

    # --- runs -------------------------------------------------------------------------

    def record(self, run: RunRecord) -> None:
        keep(self._store, run)

    def runs(self, kind: str | None = None, *, limit: int = 20) -> list[RunRecord]:
        """Recorded runs (of ``kind``), the latest first."""
        return self._store.runs(kind, limit=inputs.page_size(limit))

    def last_runs(self, kinds: Sequence[str] = KINDS) -> dict[str, RunRecord]:
        """The latest run of each kind that ran at all."""
        return {kind: found[0] for kind in kinds if (found := self._store.runs(kind, limit=1))}

    def prune(self, before: datetime, run: Run) -> PruneReport:
        """``Store.prune``, recorded as a run with what it deleted."""
        started = self._tx.clock.now()
        try:
            report = self._store.prune(before)
        except Exception as exc:
            self.record(run.record(started, self._tx.clock.now(), {}, RunOutcome.FAILED, failure(exc)))
            raise
        counts = {f.name: v for f in fields(report) if isinstance(v := getattr(report, f.name), int)}
        self.record(run.record(started, self._tx.clock.now(), counts))
        return report

    # --- what a deployment is doing ------------------------------------------------------

    def timer_backlog(self, overdue_after: timedelta | None = None) -> TimerBacklog:
        """Timers awake and unfired, overdue (``config.timer_overdue_after``
        unless told), and waiting for Stripe to answer."""
        now = self._tx.clock.now()
        after = overdue_after if overdue_after is not None else self._tx.config.timer_overdue_after
        return self._store.timer_backlog(now, overdue_before=now - after)

    def status(self, *, overdue_after: timedelta | None = None) -> Status:
        after = overdue_after if overdue_after is not None else self._tx.config.timer_overdue_after
        if after <= timedelta(0):
            raise InvalidInput(f"overdue_after must be positive, got {after}")
        return Status(
            at=self._tx.clock.now(),
            timers=self.timer_backlog(after),
            overdue_after=after,
            last_runs=self.last_runs(),
            accounts=self._store.count_by_state(),
        )

    # --- by hand ----------------------------------------------------------------------

    def reprocess(self, event_id: str, *, operator: str) -> Reprocessed:
        """Re-do one recorded event from Stripe's current answer (``reprocessing``);
        ``EventNotFound`` for an id the inbox does not hold."""
        return self._reprocessing.one(event_id, _actor(operator))

    def reprocess_failed(self, *, operator: str, limit: int = 100) -> list[Reprocessed]:
        """Re-do up to ``limit`` events recorded ``failed``, oldest first."""
        return self._reprocessing.failed(_actor(operator), inputs.page_size(limit))

    # --- observers --------------------------------------------------------------------

    def stripe_called(self, operation: str, outcome: str, seconds: float) -> None:
        """Tell the observers that have ``on_stripe_call`` (metrics) about one Stripe call."""
        self._tx.notify("on_stripe_call", operation, outcome, seconds)


def _actor(operator: str) -> str:
    if not isinstance(operator, str) or not operator.strip():
        raise InvalidInput("name the operator (recorded as the cause's actor)")
    return f"operator:{operator.strip()}"
