"""Prometheus metrics for the app: transitions, webhook outcomes, latency and
lag, time in state, Stripe calls, accounts per state, the timer and outbox
backlogs and the last runs (read from the store at scrape time, so they
cover every worker: a deadline timer waiting for Stripe to answer shows in
``onboarding_fsm_timers_retrying`` whichever process swept it). Counters and
histograms are this process's: the worker's (its deadline fetches, reconcile's
Stripe calls, the transitions they cause) are served by the worker itself
when ``worker_metrics_port`` is set (``Metrics.per_process``, ``MetricsServer``),
without the database gauges, which the app exports for every process."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from onboarding_fsm.audit import Transition
from onboarding_fsm.outbox import OutboxBacklog
from onboarding_fsm.runs import RECONCILE, RunOutcome, RunRecord
from onboarding_fsm.states import State
from onboarding_fsm.timers import TimerBacklog

CountByState = Callable[[], dict[State, int]]
Backlog = Callable[[], TimerBacklog]
OutboxReading = Callable[[], OutboxBacklog]
#: the latest recorded run of each kind (``engine.ops.last_runs``)
LastRuns = Callable[[], Mapping[str, RunRecord]]
HOUR, DAY = 3600.0, 86400.0


class Metrics:
    """An engine ``Observer`` that keeps Prometheus counters (this process's);
    ``count_by_state`` None: the database gauges are left out (``per_process``)."""

    def __init__(
        self,
        count_by_state: CountByState | None,
        timer_backlog: Backlog | None = None,
        *,
        outbox_backlog: OutboxReading | None = None,
        runs: LastRuns | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.transitions = Counter(
            "onboarding_fsm_transitions",
            "Transitions committed, by from/to state and trigger",
            ["from_state", "to_state", "trigger"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "onboarding_fsm_webhooks", "Webhook deliveries by outcome", ["outcome"], registry=self.registry
        )
        self.latency = Histogram(
            "onboarding_fsm_webhook_ingestion_seconds",
            "Time to verify, dedupe and apply one delivery",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry,
        )
        self.limited = Counter(
            "onboarding_fsm_links_rate_limited",
            "Start and refresh requests refused by a rate limit, by action and budget (account or holder)",
            ["action", "budget"],
            registry=self.registry,
        )
        if count_by_state is not None:
            self.registry.register(_AccountsByState(count_by_state))
        if timer_backlog is not None:
            self.registry.register(_TimerBacklog(timer_backlog))
        if outbox_backlog is not None:
            self.registry.register(_OutboxBacklog(outbox_backlog))
        self.time_in_state = Histogram(
            "onboarding_fsm_time_in_state_seconds",
            "How long accounts stayed in a state, observed as they leave it for another",
            ["state"],
            buckets=(60, 300, 900, HOUR, 4 * HOUR, 12 * HOUR, DAY, 3 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 90 * DAY),
            registry=self.registry,
        )
        self.webhook_lag = Histogram(
            "onboarding_fsm_webhook_lag_seconds",
            "A delivery's arrival (our clock) minus its event's created (Stripe's)",
            buckets=(1, 2, 5, 10, 30, 60, 300, 900, HOUR, 6 * HOUR, DAY, 3 * DAY),
            registry=self.registry,
        )
        self.stripe_calls = Counter(
            "onboarding_fsm_stripe_calls",
            "Stripe calls by operation and outcome (ok, or the engine error's class name)",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.stripe_latency = Histogram(
            "onboarding_fsm_stripe_call_seconds",
            "Stripe calls' latency as the caller waited (the SDK's retries included)",
            ["operation"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
            registry=self.registry,
        )
        if runs is not None:
            self.registry.register(_LastRuns(runs))

    @classmethod
    def per_process(cls) -> Metrics:
        """Only this process's series (transitions, time in state, webhooks,
        Stripe calls), for the worker's endpoint: the gauges read from the
        database (accounts, timers, outbox, runs) are the app's to export, and
        a second exporter would double them in every sum across targets."""
        return cls(None)

    def on_transition(self, transition: Transition) -> None:
        self.transitions.labels(
            transition.from_state.value if transition.from_state else "none",
            transition.to_state.value,
            transition.trigger.value,
        ).inc()

    def on_webhook(self, outcome: str, seconds: float) -> None:
        self.webhooks.labels(outcome).inc()
        self.latency.observe(seconds)

    def on_state_left(self, state: State, seconds: float) -> None:
        self.time_in_state.labels(state.value).observe(seconds)

    def on_webhook_lag(self, seconds: float) -> None:
        self.webhook_lag.observe(seconds)

    def on_stripe_call(self, operation: str, outcome: str, seconds: float) -> None:
        self.stripe_calls.labels(operation, outcome).inc()
        self.stripe_latency.labels(operation).observe(seconds)


class _AccountsByState(Collector):
    def __init__(self, count_by_state: CountByState) -> None:
        self._count = count_by_state

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("onboarding_fsm_accounts", "Accounts per state", labels=["state"])
        for state, count in self._count().items():
            family.add_metric([state.value], count)
        yield family


class _TimerBacklog(Collector):
    def __init__(self, backlog: Backlog) -> None:
        self._backlog = backlog

    def collect(self) -> Iterable[Metric]:
        now = self._backlog()
        yield GaugeMetricFamily("onboarding_fsm_timers_due", "Timers awake and not yet fired", value=now.due)
        yield GaugeMetricFamily(
            "onboarding_fsm_timers_retrying",
            "Deadline timers waiting to ask Stripe again (it could not be reached)",
            value=now.retrying,
        )
        yield GaugeMetricFamily(
            "onboarding_fsm_timers_overdue",
            "Timers unfired longer than timer_overdue_after_seconds past due: no worker sweeping, or Stripe away",
            value=now.overdue,
        )


class _LastRuns(Collector):
    """The worker's runs as recorded in the database (whether or not it serves
    metrics of its own): when each kind last ran and how it ended, and the
    last reconcile run's drift by kind."""

    def __init__(self, runs: LastRuns) -> None:
        self._runs = runs

    def collect(self) -> Iterable[Metric]:
        last = self._runs()
        when = GaugeMetricFamily(
            "onboarding_fsm_last_run_timestamp_seconds",
            "When the last run of each kind ended (unix time)",
            labels=["kind"],
        )
        ok = GaugeMetricFamily(
            "onboarding_fsm_last_run_ok",
            "1 if the last run of each kind ended ok (not failed, not guarded)",
            labels=["kind"],
        )
        for kind, run in sorted(last.items()):
            when.add_metric([kind], (run.finished_at or run.started_at).timestamp())
            ok.add_metric([kind], 1.0 if run.outcome is RunOutcome.OK else 0.0)
        yield when
        yield ok
        reconciled = last.get(RECONCILE)
        if reconciled is None:
            return
        drift = GaugeMetricFamily(
            "onboarding_fsm_reconcile_drift", "What the last reconcile run repaired, by kind", labels=["kind"]
        )
        for name, count in sorted(reconciled.counts.items()):
            if name.startswith("drift."):
                drift.add_metric([name.removeprefix("drift.")], count)
        yield drift
        yield GaugeMetricFamily(
            "onboarding_fsm_reconcile_errors",
            "Accounts the last reconcile run could not check or repair",
            value=reconciled.counts.get("errors", 0),
        )


class _OutboxBacklog(Collector):
    """The outbox as every deliverer left it (read from the store at scrape
    time): alert on dead letters, and on the oldest pending message's age."""

    def __init__(self, backlog: OutboxReading) -> None:
        self._backlog = backlog

    def collect(self) -> Iterable[Metric]:
        now = self._backlog()
        age = now.oldest_pending_age
        yield GaugeMetricFamily(
            "onboarding_fsm_outbox_pending", "Outbox messages not delivered yet (dead letters apart)", value=now.pending
        )
        yield GaugeMetricFamily(
            "onboarding_fsm_outbox_retrying",
            "Pending outbox messages the handler failed at least once",
            value=now.retrying,
        )
        yield GaugeMetricFamily(
            "onboarding_fsm_outbox_blocked",
            "Pending outbox messages waiting behind a dead letter of their account",
            value=now.blocked,
        )
        yield GaugeMetricFamily(
            "onboarding_fsm_outbox_dead_letters",
            "Outbox messages whose attempts ran out; their account's later messages wait (outbox redrive)",
            value=now.dead,
        )
        yield GaugeMetricFamily(
            "onboarding_fsm_outbox_oldest_pending_age_seconds",
            "How long the oldest pending outbox message has waited (0: none pending)",
            value=age.total_seconds() if age is not None else 0.0,
        )


class MetricsServer:
    """A registry served as Prometheus text on ``host:port`` (any path) from
    prometheus_client's own server, on a daemon thread, for a process with no
    web app: the worker. ``stop`` closes the socket, so a stopped worker's
    port is free at once and its scrapes fail rather than hang."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self._served: tuple[WSGIServer, Thread] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def start(self) -> None:
        """Listen now: a port in use fails here (``OSError``), at start-up."""
        if self._served is None:
            self._served = start_http_server(self.port, self.host, registry=self.registry)

    def stop(self) -> None:
        if self._served is None:
            return
        server, thread = self._served
        self._served = None
        server.shutdown()  # its serve_forever loop ends within half a second
        server.server_close()
        thread.join(timeout=5)
