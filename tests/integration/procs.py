"""Functions run in separate processes by the concurrency tests (importable for spawn)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from adapters.simulator import Delivery, Simulator
from onboarding_fsm import FakeClock, Settings, build_engine
from onboarding_fsm.account import NewAccount
from onboarding_fsm.ports import Clock

#: every process builds the same simulated world from this seed, so account ids agree
WORLD_SEED = 7


def known_stripe(clock: Clock, count: int, deadline: datetime) -> tuple[Simulator, list[str]]:
    """A simulator holding ``count`` accounts whose requirements' deadline is
    ``deadline`` — the same ids in every process (a seeded world), so each
    process's deadline timers fetch accounts Stripe knows."""
    sim = Simulator(clock, delivery=Delivery(hold=True), autodeliver=False, seed=WORLD_SEED)
    ids = []
    for n in range(count):
        snap = sim.create_account(NewAccount(f"due-{n}", "US", ("transfers",)), idempotency_key=f"due-{n}")
        sim.trigger_next_requirements(snap.id, deadline)
        ids.append(snap.id)
    return sim, ids


def ingest(db_url: str, now: datetime, deliveries: list[tuple[bytes, str]]) -> tuple[dict[str, int], int, int]:
    clock = FakeClock(now)
    engine = build_engine(
        Settings(database_url=db_url, max_conflict_retries=100), clock=clock, gateway=Simulator(clock)
    )
    outcomes: Counter[str] = Counter()
    for body, header in deliveries:
        outcomes[engine.ingest_webhook(body, header).outcome.value] += 1
    engine.close()
    return dict(outcomes), engine.stats.conflicts_retried, engine.stats.conflicts_exhausted


def sweep(db_url: str, now: datetime, accounts: int, deadline: datetime) -> tuple[int, int]:
    clock = FakeClock(now - timedelta(hours=1))
    sim, _ = known_stripe(clock, accounts, deadline)
    clock.set(now)
    settings = Settings(database_url=db_url, stripe_rate_limit=10_000)  # the pace is not under test here
    engine = build_engine(settings, clock=clock, gateway=sim)
    fired = 0
    while True:
        report = engine.sweep(limit=200)
        fired += len(report.transitions)
        if report.timers == 0:
            break
    engine.close()
    return fired, engine.stats.conflicts_retried
