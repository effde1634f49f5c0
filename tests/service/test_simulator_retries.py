"""Issue 9, item 10: the simulator retries a failed webhook as Stripe does in
live mode — with exponential backoff for three days — on its own clock, so
these tests move a ``FakeClock`` and never sleep."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from adapters.simulator import Simulator
from onboarding_fsm import FakeClock
from tests.conftest import START

DAY = 86400.0
CONTROLLER = {
    "stripe_dashboard": {"type": "none"},
    "fees": {"payer": "application"},
    "losses": {"payments": "application"},
    "requirement_collection": "stripe",
}


class Platform:
    """A webhook endpoint that answers 500 (raises) while ``down``."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.down = True
        self.tried: list[float] = []
        self.received: list[bytes] = []

    def __call__(self, body: bytes, header: str) -> Any:
        self.tried.append(self.clock.now().timestamp())
        if self.down:
            raise RuntimeError("503 from the platform")
        self.received.append(body)
        return 200


def one_event(clock: FakeClock) -> tuple[Simulator, Platform]:
    sim = Simulator(clock)
    platform = Platform(clock)
    sim.connect(platform)
    account = sim.create_account_json(
        {"country": "US", "controller": CONTROLLER, "capabilities": {"transfers": {"requested": True}}}
    )
    sim.reject(account["id"])  # one account.updated event, its first attempt fails
    assert len(platform.tried) == 1 and not platform.received
    return sim, platform


def run_for(sim: Simulator, clock: FakeClock, seconds: float, step: float) -> None:
    """What the HTTP server's delivery thread does, on the fake clock."""
    for _ in range(int(seconds / step)):
        clock.advance(step)
        sim.tick()


def test_an_event_reaches_a_platform_that_was_down_longer_than_a_second() -> None:
    clock = FakeClock(START)
    sim, platform = one_event(clock)
    run_for(sim, clock, 3.0, 0.05)  # down for 3 s, polled every 50 ms (the old simulator gave up after ~0.8 s)
    assert not platform.received and sim.outbox.dead == []
    platform.down = False
    run_for(sim, clock, 60.0, 0.05)
    assert len(platform.received) == 1, "delivered once the platform is back"
    first = platform.tried[0]
    waits = [b - a for a, b in zip(platform.tried, platform.tried[1:], strict=False)]
    assert waits == sorted(waits) and waits[-1] > waits[0], f"backoff grows: {waits}"
    assert platform.tried[-1] - first < 10, "and the next attempt after the outage is not long in coming"
    assert sim.outbox.pending == 0


def test_retries_go_on_for_three_days_then_stop() -> None:
    clock = FakeClock(START)
    sim, platform = one_event(clock)
    run_for(sim, clock, 4 * DAY, 60.0)
    first, last = platform.tried[0], platform.tried[-1]
    assert 2.9 * DAY <= last - first <= 3 * DAY, f"tried until {(last - first) / DAY:.2f} days"
    assert len(sim.outbox.dead) == 1 and sim.outbox.pending == 0, "given up after three days"
    assert 20 < len(platform.tried) < 200, "backoff, not a flood"
    gaps = [b - a for a, b in zip(platform.tried, platform.tried[1:], strict=False)]
    assert max(gaps) <= sim.delivery.retry_cap + 60
    tried = len(platform.tried)
    clock.advance(timedelta(days=1))
    sim.tick()
    assert len(platform.tried) == tried, "nothing after giving up"
    platform.down = False
    run_for(sim, clock, 3600, 60)
    assert not platform.received
