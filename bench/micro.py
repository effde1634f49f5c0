"""The per-event building blocks the design rests on, measured here."""

from __future__ import annotations

import json
import time
import tracemalloc
from datetime import UTC, datetime

from adapters.simulator import Simulator
from adapters.stripe_wire.signing import sign
from onboarding_fsm import FakeClock
from onboarding_fsm.account import NewAccount
from onboarding_fsm.machine import definition, fire
from onboarding_fsm.settings import SIMULATOR_WEBHOOK_SECRET
from onboarding_fsm.states import State, Trigger

from .common import Figure, per_call_us, report


def payload() -> bytes:
    sim = Simulator(FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    acct = sim.create_account(NewAccount("micro", "US", ("card_payments", "transfers")), idempotency_key="m").id
    obj = sim.account_json(acct)
    event = {"id": "evt_micro", "object": "event", "type": "account.updated", "created": 1767225600,
             "account": acct, "livemode": False, "data": {"object": obj, "previous_attributes": {"x": obj}}}  # fmt: skip
    return json.dumps(event).encode()


def main(n: int = 2000) -> None:
    import stripe
    from transitions import Machine

    body = payload()
    now = int(time.time())
    header = sign(body, SIMULATOR_WEBHOOK_SECRET, now)
    text = body.decode()
    figures = []
    for _ in range(3):
        construct = per_call_us(lambda: stripe.Webhook.construct_event(body, header, SIMULATOR_WEBHOOK_SECRET), n // 4)
        verify = per_call_us(lambda: stripe.WebhookSignature.verify_header(text, header, SIMULATOR_WEBHOOK_SECRET), n)
        loads = per_call_us(lambda: json.loads(body), n)
        shared = per_call_us(lambda: fire("acct_1", State.LINK_ISSUED, Trigger.RETURN, State.VERIFIED), n * 5)
        figures.append((construct, verify, loads, shared))
    kwargs = definition()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    start = time.perf_counter()

    class Model:
        pass

    models = []
    for _ in range(200):
        model = Model()
        Machine(model=model, **kwargs)
        models.append(model)
    per_machine_us = (time.perf_counter() - start) / 200 * 1e6
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    per_machine_kb = sum(s.size_diff for s in after.compare_to(before, "filename")) / 200 / 1024
    cols = list(zip(*figures, strict=True))
    report(
        f"Per-event building blocks ({len(body) / 1024:.1f} KB event)",
        [
            Figure("stripe.Webhook.construct_event", "us/event", list(cols[0])),
            Figure("WebhookSignature.verify_header", "us/event", list(cols[1])),
            Figure("json.loads", "us/event", list(cols[2])),
            Figure("shared machine: one transition (fire)", "us", list(cols[3])),
            Figure("a machine per account: build one", "us", [per_machine_us]),
            Figure("a machine per account: memory each", "KB", [per_machine_kb]),
        ],
    )
    verify_loads = [v + j for _, v, j, _ in figures]
    print(f"  verify_header + json.loads is {min(cols[0]) / max(verify_loads):.0f}x cheaper than construct_event")


if __name__ == "__main__":
    main()
