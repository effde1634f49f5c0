"""A hanging Stripe cannot take the service down (issue 9, item 5): every
Stripe call has a budget, and the holders' Stripe-bound requests have their
own threads, so health checks and webhooks keep answering."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from adapters.http.pools import STRIPE_BOUND
from adapters.simulator.faults import FaultKind
from adapters.stripe_wire.signing import sign
from onboarding_fsm import FakeClock
from onboarding_fsm.settings import SIMULATOR_WEBHOOK_SECRET
from tests.integration.http.conftest import make_stack

HOLDERS = 45


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Synchronise with the server's threads (not a way to move time)."""
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, "the holders' requests never reached Stripe"
        event.wait(0.01)


def test_health_and_webhooks_answer_while_stripe_hangs(db_url: str, clock: FakeClock) -> None:
    # one holder starts 45 accounts here: the per-holder link limit is not what this test is about
    stack = make_stack(db_url, clock, stripe_call_budget_seconds=2, stripe_max_network_retries=0, holder_limit=100)
    accounts = [stack.create(f"seller-{n}") for n in range(HOLDERS)]
    urls = [stack.start_url(a) for a in accounts]
    stack.server.faults.add(FaultKind.DELAY, seconds=3, times=10_000, path_prefix="/v1/account_links")
    pool = ThreadPoolExecutor(HOLDERS)
    try:
        starts = [pool.submit(httpx.get, url, timeout=30) for url in urls]
        wait_until(lambda: stack.server.faults.seen >= STRIPE_BOUND)  # every Stripe-bound thread is hanging
        with httpx.Client(timeout=1.0) as probe:  # raises if no answer within a second
            assert probe.get(stack.platform.url + "/healthz").json() == {"status": "ok"}
            clock.advance(10)
            event = {"id": "evt_ok", "object": "event", "type": "account.updated", "account": accounts[0],
                     "created": int(clock.now().timestamp()), "livemode": False,
                     "data": {"object": stack.sim.account_json(accounts[0])}}  # fmt: skip
            body = json.dumps(event).encode()
            header = sign(body, SIMULATOR_WEBHOOK_SECRET, int(clock.now().timestamp()))
            answer = probe.post(stack.platform.url + stack.settings.webhook_path, content=body,
                                headers={"Stripe-Signature": header})  # fmt: skip
            assert answer.status_code == 200
        codes = {f.result().status_code for f in starts}
        assert codes == {503}  # each gave up within its budget: "try again shortly", not a hung thread
    finally:
        pool.shutdown(wait=True)
        stack.stop()
