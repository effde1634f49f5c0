"""``onboarding-fsm worker``: the timer sweep and reconciliation, pumped by APScheduler.

APScheduler only pumps. Its job store is in memory and private to this
process — it is never shared between processes (APScheduler 3 cannot
coordinate that safely). Exactly-once firing comes from the database: due
timers are rows claimed with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) or under
SQLite's single writer, so any number of workers can run at once, and a
worker that was down fires what it missed, late but once, when it is back.

Jobs: ``sweep`` on a short interval, ``wake`` re-armed at the earliest due
time after every sweep (so a deadline does not wait for the next interval),
``reconcile`` on its own interval, ``checkpoint`` (sealing new audit records into
the checkpoint chain) every minute, ``prune`` (retention) once a day, and ``outbox`` (delivering the
outbox to the configured handler, ``onboarding_fsm.delivery``) every second when a handler is configured.
All coalesce, run one instance at a time, and have an explicit misfire grace. SIGTERM/SIGINT shut the scheduler
down cleanly, letting a running job finish its current transaction. With an ``exporter`` (``worker_metrics_port``)
``run`` also serves this process's Prometheus series while it runs, and stops serving them as it stops.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, timedelta
from types import FrameType
from typing import Any, Protocol

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from onboarding_fsm.checkpoints import Checkpoint
from onboarding_fsm.delivery import DeliveryReport, Handler
from onboarding_fsm.engine import Engine, PruneReport, SweepReport
from onboarding_fsm.reconcile import ReconcileReport, reconcile

log = logging.getLogger("onboarding_fsm.worker")


@dataclass(frozen=True)
class WorkerConfig:
    sweep_interval: timedelta = timedelta(seconds=5)
    #: None: never (the backend cannot be reconciled against)
    reconcile_interval: timedelta | None = timedelta(hours=1)
    reconcile_stale_after: timedelta = timedelta(hours=24)
    misfire_grace: timedelta = timedelta(seconds=60)
    sweep_batch: int = 1000
    #: retention (``Engine.prune``): daily is plenty for a cut-off counted in days; None: never
    prune_interval: timedelta | None = timedelta(days=1)
    #: the first prune, this long after start: not in the way of the first sweep
    prune_delay: timedelta = timedelta(minutes=1)
    #: seal new audit records into the checkpoint chain this often (the window
    #: in which a truncated chain shows only in the cross-checks); None: never
    checkpoint_interval: timedelta | None = timedelta(seconds=60)
    #: deliver the outbox this often (when the worker has a handler); None: never
    outbox_interval: timedelta | None = timedelta(seconds=1)
    #: handler calls per ``engine.outbox.deliver`` call; the job repeats them until a short one
    outbox_batch: int = 500

    def __post_init__(self) -> None:
        if self.reconcile_interval is not None and self.reconcile_interval <= timedelta(0):
            raise ValueError("reconcile_interval must be positive (or None: no reconciliation)")
        if self.prune_interval is not None and self.prune_interval <= timedelta(0):
            raise ValueError("prune_interval must be positive (or None: no pruning)")
        if self.checkpoint_interval is not None and self.checkpoint_interval <= timedelta(0):
            raise ValueError("checkpoint_interval must be positive (or None: no checkpoints)")
        if self.outbox_interval is not None and self.outbox_interval <= timedelta(0):
            raise ValueError("outbox_interval must be positive (or None: no outbox delivery)")
        if self.outbox_batch < 1:
            raise ValueError("outbox_batch must be at least 1")


class Exporter(Protocol):
    """This process's metrics, served while ``run`` runs (``adapters.http.metrics.MetricsServer``)."""

    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Worker:
    def __init__(
        self,
        engine: Engine,
        config: WorkerConfig | None = None,
        *,
        scheduler: type[BaseScheduler] = BlockingScheduler,
        outbox_handler: Handler | None = None,
        exporter: Exporter | None = None,
    ) -> None:
        """``scheduler``: ``BlockingScheduler`` takes over the thread (the
        ``worker`` command); ``BackgroundScheduler`` runs beside it (tests,
        embedding in another process). ``outbox_handler``: the platform's
        consumer of the outbox (``bootstrap.build_outbox_handler``); None: no
        ``outbox`` job. ``exporter``: this process's metrics, served by ``run``."""
        self.engine = engine
        self.config = config or WorkerConfig()
        self.outbox_handler = outbox_handler
        self.exporter = exporter
        #: this process's job store: never shared with another process
        self.jobstore = MemoryJobStore()
        self.scheduler = scheduler(
            jobstores={"default": self.jobstore},
            # three: a slow outbox handler or a long reconcile never holds up the sweep
            executors={"default": ThreadPoolExecutor(max_workers=3)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(self.config.misfire_grace.total_seconds()),
            },
            timezone=UTC,
        )
        self._sweeping = threading.Lock()
        self._stopping = threading.Event()

    # --- jobs ---------------------------------------------------------------------

    def sweep(self) -> SweepReport | None:
        """Fire what is due, in batches, until nothing is; then arm the wake-up."""
        if not self._sweeping.acquire(blocking=False):
            return None  # the interval job and the wake-up met: one is enough
        try:
            started = time.monotonic()
            total = SweepReport((), 0, 0)
            runs: list[str] = []
            while not self._stopping.is_set():
                report = self.engine.sweep(limit=self.config.sweep_batch)
                runs += [report.run_id] if report.run_id else []
                total = SweepReport(
                    total.transitions + report.transitions,
                    total.reminders + report.reminders,
                    total.skipped + report.skipped,
                    total.retried + report.retried,
                )
                if report.timers < self.config.sweep_batch:
                    break
            kinds: dict[str, int] = {}
            for t in total.transitions:
                kinds[t.trigger.value] = kinds.get(t.trigger.value, 0) + 1
            log.info(
                "sweep fired %d transition(s) %s, %d reminder(s), %d obsolete timer(s), "
                "%d waiting for Stripe in %.3f s",
                len(total.transitions),
                kinds or "",
                total.reminders,
                total.skipped,
                total.retried,
                time.monotonic() - started,
                extra={"run": " ".join(runs) or None},
            )
            self._arm_wake()
            return total
        finally:
            self._sweeping.release()

    def _arm_wake(self) -> None:
        due = self.engine.next_due()
        if due is None or not self.scheduler.running:
            return
        now = self.engine.now()
        sweep_job = self.scheduler.get_job("sweep")
        next_sweep = sweep_job.next_run_time if sweep_job is not None else None
        if next_sweep is None or next_sweep <= now:  # this very run, or not yet rescheduled
            next_sweep = now + self.config.sweep_interval
        if due >= next_sweep:
            return  # the interval gets there first
        when = max(due, now)
        self.scheduler.add_job(self.sweep, DateTrigger(run_date=when), id="wake", replace_existing=True)
        log.debug("next timer due %s; wake armed", due.isoformat())

    def reconcile(self) -> ReconcileReport:
        started = time.monotonic()
        report = reconcile(self.engine, stale_after=self.config.reconcile_stale_after)
        log.info(
            "reconcile listed %d, re-fetched %d, drift %d (%d adopted), %d error(s) in %.1f s",
            report.listed,
            report.refetched,
            len(report.drift),
            len(report.adopted),
            len(report.errors),
            time.monotonic() - started,
            extra={"run": report.run_id},
        )
        for drift in report.drift:
            log.info(
                "drift %s (%s): %s -> %s by %s: %s",
                drift.account_id,
                drift.platform_ref,
                drift.from_state,
                drift.to_state.value,
                drift.how,
                drift.reason,
                extra={"account": drift.account_id, "run": report.run_id},
            )
        return report

    def prune(self) -> PruneReport:
        """Retention: old published outbox messages and inbox payloads go; audit records stay."""
        report = self.engine.prune()
        log.info(
            "prune before %s: %d outbox message(s) deleted, %d inbox payload(s) emptied, %d idle rate limit(s) gone",
            report.before.isoformat(),
            report.outbox_deleted,
            report.inbox_emptied,
            report.limits_deleted,
        )
        return report

    def checkpoint(self) -> list[Checkpoint]:
        """Seal the audit records written since the last checkpoint."""
        made = self.engine.audit.checkpoint()
        if made:
            head = made[-1]
            log.info(
                "audit checkpoint %d: %d record(s) sealed, head %s", head.seq, sum(c.records for c in made), head.hash
            )
        return made

    def deliver(self) -> DeliveryReport | None:
        """Hand the outbox to the handler, in batches, until a batch is short
        (nothing more due now); None without a handler."""
        if self.outbox_handler is None:
            return None
        started = time.monotonic()
        total = DeliveryReport()
        while not self._stopping.is_set():
            report = self.engine.outbox.deliver(self.outbox_handler, limit=self.config.outbox_batch)
            total += report
            if report.handed < self.config.outbox_batch:
                break
        if total.handed:
            log.info(
                "outbox: %d delivered, %d to retry, %d dead-lettered in %.3f s",
                total.delivered, total.retried, total.dead, time.monotonic() - started,
            )  # fmt: skip
        return total

    # --- lifecycle -------------------------------------------------------------------

    def configure(self) -> None:
        now = self.engine.now()
        self.scheduler.add_job(
            self.sweep,
            IntervalTrigger(seconds=self.config.sweep_interval.total_seconds()),
            id="sweep",
            next_run_time=now,
        )
        if self.config.reconcile_interval is not None:
            self.scheduler.add_job(
                self.reconcile,
                IntervalTrigger(seconds=self.config.reconcile_interval.total_seconds()),
                id="reconcile",
                next_run_time=now + timedelta(seconds=1),
            )
        if self.config.checkpoint_interval is not None:
            self.scheduler.add_job(
                self.checkpoint,
                IntervalTrigger(seconds=self.config.checkpoint_interval.total_seconds()),
                id="checkpoint",
                next_run_time=now + timedelta(seconds=2),
            )
        if self.config.prune_interval is not None:
            self.scheduler.add_job(
                self.prune,
                IntervalTrigger(seconds=self.config.prune_interval.total_seconds()),
                id="prune",
                next_run_time=now + self.config.prune_delay,
            )
        if self.outbox_handler is not None and self.config.outbox_interval is not None:
            self.scheduler.add_job(
                self.deliver,
                IntervalTrigger(seconds=self.config.outbox_interval.total_seconds()),
                id="outbox",
                next_run_time=now + timedelta(seconds=3),
            )

    def stop(self, *_: Any) -> None:
        if self._stopping.is_set():
            return
        log.info("stopping: finishing the running job, then exiting")
        self._stopping.set()
        if self.scheduler.running:
            # jobs run on the executor's threads: waiting lets the running one
            # finish its transaction (the sweep checks _stopping between batches)
            self.scheduler.shutdown(wait=True)

    def run(self) -> None:
        """Run until SIGTERM/SIGINT."""
        self.configure()
        if self.exporter is not None:
            self.exporter.start()  # a port in use stops the worker here, before it sweeps
            log.info("metrics served on %s", self.exporter.url)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        log.info(
            "worker started: sweep every %s, reconcile every %s, outbox every %s",
            self.config.sweep_interval,
            self.config.reconcile_interval or "never",
            (self.outbox_handler and self.config.outbox_interval) or "never (no outbox_handler)",
        )
        try:
            self.scheduler.start()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.exporter is not None:
                self.exporter.stop()
            log.info("worker stopped")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop()

    def run_until_idle(self) -> SweepReport:
        """One sweep until nothing is due, then a checkpoint, then the outbox
        delivered (its announcement too) as far as it is due (cron-friendly and for tests)."""
        report = self.sweep()
        assert report is not None
        if self.config.checkpoint_interval is not None:
            self.checkpoint()
        if self.config.outbox_interval is not None:
            self.deliver()
        return report
