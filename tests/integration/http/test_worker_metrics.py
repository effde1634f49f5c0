"""The worker's own metrics endpoint (``worker_metrics_port``): its deadline
fetches, reconcile's Stripe calls and the transitions they fire are exported by
the worker — the app's /metrics never sees them — and only those per-process
series: the database gauges are the app's, a second copy would double sums."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from onboarding_fsm import Settings, State
from onboarding_fsm.bootstrap import build_engine, build_store, build_worker
from tests.integration.http.conftest import Stack
from tests.integration.http.holder import Holder
from tests.integration.http.test_serve import free_port
from tests.procio import Lines

ROOT = Path(__file__).resolve().parents[3]
Labels = tuple[tuple[str, str], ...]
#: read from the database at scrape time: the app exports them for every process
DATABASE_GAUGES = {
    "onboarding_fsm_accounts",
    "onboarding_fsm_timers_due",
    "onboarding_fsm_timers_retrying",
    "onboarding_fsm_timers_overdue",
    "onboarding_fsm_outbox_pending",
    "onboarding_fsm_outbox_dead_letters",
    "onboarding_fsm_last_run_timestamp_seconds",
    "onboarding_fsm_last_run_ok",
}
CALLS = "onboarding_fsm_stripe_calls_total"
PAST_DUE = "onboarding_fsm_transitions_total", (("from_state", "verified"), ("to_state", "past_due"))


def scrape(url: str) -> tuple[set[str], dict[tuple[str, Labels], float]]:
    """The families named, and every sample by name and sorted labels."""
    families = list(text_string_to_metric_families(httpx.get(url, timeout=5).text))
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }
    return {family.name for family in families}, samples


def past_due(samples: dict[tuple[str, Labels], float]) -> float:
    """Transitions verified -> past_due, whatever their trigger."""
    name, wanted = PAST_DUE
    return sum(v for (n, labels), v in samples.items() if n == name and set(wanted) <= set(labels))


def test_the_worker_exports_its_stripe_calls_and_transitions_and_no_database_gauges(
    stack: Stack, holder: Holder
) -> None:
    acct = stack.create("seller-1")
    holder.onboard(stack.start_url(acct))
    stack.sim.add_future_requirements(acct, ["individual.id_number"], stack.clock.now() + timedelta(days=30))
    stack.settle()
    assert stack.state(acct) == State.VERIFIED.value
    stack.clock.advance(timedelta(days=30, seconds=1))  # the future deadline is due: the worker asks Stripe
    port = free_port()
    settings = Settings(
        database_url=stack.settings.database_url,
        public_base_url=stack.settings.public_base_url,
        worker_metrics_port=port,
    )
    # the worker's own process: its own engine and connections, on the same database and Stripe
    engine = build_engine(settings, clock=stack.clock, gateway=stack.gateway, store=build_store(settings))
    worker = build_worker(settings, engine)
    assert worker.exporter is not None and worker.exporter.url == f"http://127.0.0.1:{port}/metrics"
    worker.exporter.start()
    try:
        [fired] = worker.run_until_idle().transitions
        assert (fired.from_state, fired.to_state) == (State.VERIFIED, State.PAST_DUE)
        families, m = scrape(worker.exporter.url)
        assert m[(CALLS, (("operation", "retrieve_account"), ("outcome", "ok")))] == 1  # the deadline's fetch
        assert past_due(m) == 1
        assert m[("onboarding_fsm_time_in_state_seconds_count", (("state", "verified"),))] == 1
        assert m[("onboarding_fsm_stripe_call_seconds_count", (("operation", "retrieve_account"),))] == 1
        assert not families & DATABASE_GAUGES

        worker.reconcile()  # reconcile's Stripe calls are the worker's too
        _, m = scrape(worker.exporter.url)
        assert m[(CALLS, (("operation", "list_accounts"), ("outcome", "ok")))] >= 1

        # the app's /metrics (another process in a deployment) counted none of it: no double count
        _, app = scrape(stack.platform.url + "/metrics")
        assert past_due(app) == 0
        assert (CALLS, (("operation", "list_accounts"), ("outcome", "ok"))) not in app
        assert app[("onboarding_fsm_accounts", (("state", "past_due"),))] == 1  # the database gauges: the app's
    finally:
        worker.exporter.stop()
        engine.close()
    with pytest.raises(httpx.TransportError):  # stopped: the port is closed, scrapes fail at once
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


def test_worker_metrics_port_is_unset_by_default(stack: Stack) -> None:
    assert build_worker(stack.settings, stack.engine).exporter is None


def test_the_worker_command_serves_its_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "ONBOARDING_FSM_DATABASE_URL": f"sqlite:///{tmp_path / 'worker.sqlite3'}",
        "ONBOARDING_FSM_WORKER_METRICS_PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "-v", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        Lines(proc.stderr).wait_for(f"metrics served on http://127.0.0.1:{port}/metrics", timeout=60)
        families, _ = scrape(f"http://127.0.0.1:{port}/metrics")
        assert {"onboarding_fsm_stripe_calls", "onboarding_fsm_transitions"} <= families
        assert not families & DATABASE_GAUGES
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0  # the exporter's thread does not hold the process up
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
