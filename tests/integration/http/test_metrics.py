"""The operations metrics read back from ``GET /metrics`` after a scenario
run through the served app: webhooks over HTTP, a holder's start and
return, a deadline nobody swept, a sweep, a reconcile run, a Stripe outage.
The sweep and the reconcile run are made on the app's own engine, so their
Stripe calls and transitions count here; a deployment's worker is another
process and exports those itself (``test_worker_metrics``)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from onboarding_fsm.reconcile import reconcile
from tests.integration.http.conftest import Stack
from tests.integration.http.holder import Holder

Labels = tuple[tuple[str, str], ...]


def scrape(stack: Stack) -> dict[tuple[str, Labels], float]:
    text = httpx.get(stack.platform.url + "/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_operations_metrics_after_a_scenario(stack: Stack, holder: Holder) -> None:
    acct = stack.create("seller-1")
    stack.clock.advance(120)  # the holder opens the start URL two minutes after the account was created
    holder.onboard(stack.start_url(acct))  # start (link), hosted form, return (fetch: verified)
    stack.clock.advance(45)  # Stripe's events reach us 45 s after they were created
    stack.settle()
    late = stack.create("seller-2")
    other = Holder()
    other.open_form(stack.start_url(late))  # a link, and the holder leaves
    stack.server.faults.add("status", status=500, times=20, method="GET", path_prefix=f"/v1/accounts/{late}")
    assert other.get(stack.settings.return_url(late)).status_code == 503  # Stripe away: "try again shortly"
    other.client.close()
    stack.server.faults.faults.clear()
    stack.clock.advance(timedelta(hours=24, minutes=10))  # abandoned 10 min ago, and no worker swept
    stack.sim.reject(acct)  # its webhook never arrives: reconcile finds it

    before = scrape(stack)
    assert before[("onboarding_fsm_timers_due", ())] == 1
    assert before[("onboarding_fsm_timers_overdue", ())] == 1

    # on the app's engine, so counted by the app's metrics (a worker process counts its own)
    assert len(stack.engine.sweep().transitions) == 1
    report = reconcile(stack.engine)
    assert [d.how.value for d in report.drift] == ["synced"]
    m = scrape(stack)

    # time in state, observed as accounts leave a state
    assert m[("onboarding_fsm_time_in_state_seconds_count", (("state", "created"),))] == 2
    assert m[("onboarding_fsm_time_in_state_seconds_bucket", (("le", "60.0"), ("state", "created")))] == 1
    assert m[("onboarding_fsm_time_in_state_seconds_bucket", (("le", "300.0"), ("state", "created")))] == 2
    assert m[("onboarding_fsm_time_in_state_seconds_sum", (("state", "created"),))] == 120
    assert m[("onboarding_fsm_time_in_state_seconds_sum", (("state", "link_issued"),))] >= 24 * 3600
    assert m[("onboarding_fsm_time_in_state_seconds_count", (("state", "verified"),))] == 1  # reconcile: disabled
    # webhook lag: every delivery 45 s after its event
    deliveries = m[("onboarding_fsm_webhook_lag_seconds_count", ())]
    assert deliveries >= 1 and m[("onboarding_fsm_webhook_lag_seconds_sum", ())] == 45 * deliveries
    assert m[("onboarding_fsm_webhook_lag_seconds_bucket", (("le", "30.0"),))] == 0
    assert m[("onboarding_fsm_webhook_lag_seconds_bucket", (("le", "60.0"),))] == deliveries
    # timers: the sweep fired the overdue one
    assert (m[("onboarding_fsm_timers_due", ())], m[("onboarding_fsm_timers_overdue", ())]) == (0, 0)
    # the runs, as recorded in the database (whichever process made them)
    now = stack.clock.now().timestamp()
    assert m[("onboarding_fsm_last_run_timestamp_seconds", (("kind", "reconcile"),))] == now
    assert m[("onboarding_fsm_last_run_timestamp_seconds", (("kind", "sweep"),))] == now
    assert m[("onboarding_fsm_last_run_ok", (("kind", "reconcile"),))] == 1
    assert m[("onboarding_fsm_reconcile_drift", (("kind", "synced"),))] == 1
    assert m[("onboarding_fsm_reconcile_drift", (("kind", "adopted"),))] == 0
    assert m[("onboarding_fsm_reconcile_errors", ())] == 0
    # Stripe calls by operation and outcome, with latency
    calls = "onboarding_fsm_stripe_calls_total"
    assert m[(calls, (("operation", "create_account"), ("outcome", "ok")))] == 2
    assert m[(calls, (("operation", "create_account_link"), ("outcome", "ok")))] == 2
    assert m[(calls, (("operation", "retrieve_account"), ("outcome", "ok")))] >= 1
    assert m[(calls, (("operation", "retrieve_account"), ("outcome", "StripeUnavailable")))] == 1
    assert m[(calls, (("operation", "list_accounts"), ("outcome", "ok")))] >= 1
    assert m[("onboarding_fsm_stripe_call_seconds_count", (("operation", "create_account"),))] == 2
    assert 0 < m[("onboarding_fsm_stripe_call_seconds_sum", (("operation", "create_account"),))] < 30
