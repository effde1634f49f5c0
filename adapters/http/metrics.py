"""Prometheus metrics for the app: transitions, webhook outcomes and latency,
accounts per state and the timer backlog (read from the store at scrape time,
so they cover every worker: a deadline timer waiting for Stripe to answer
shows in ``onboarding_fsm_timers_retrying`` whichever process swept it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from onboarding_fsm.audit import Transition
from onboarding_fsm.states import State
from onboarding_fsm.timers import TimerBacklog

CountByState = Callable[[], dict[State, int]]
Backlog = Callable[[], TimerBacklog]


class Metrics:
    """An engine ``Observer`` that keeps Prometheus counters (this process's)."""

    def __init__(self, count_by_state: CountByState, timer_backlog: Backlog | None = None) -> None:
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
        self.registry.register(_AccountsByState(count_by_state))
        if timer_backlog is not None:
            self.registry.register(_TimerBacklog(timer_backlog))

    def on_transition(self, transition: Transition) -> None:
        self.transitions.labels(
            transition.from_state.value if transition.from_state else "none",
            transition.to_state.value,
            transition.trigger.value,
        ).inc()

    def on_webhook(self, outcome: str, seconds: float) -> None:
        self.webhooks.labels(outcome).inc()
        self.latency.observe(seconds)


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
