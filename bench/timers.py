"""Draining due deadline timers at Stripe's pace (embedded default: SQLite + simulator).

One regulatory date puts every account's deadline on the same second. Each
deadline timer fetches its account from Stripe before it decides, and the
fetches of every worker share one budget in the database (``Throttle``):
two sweeping workers (each its own engine, store and connections, as two
processes would have) drain N due timers, and the figure is the rate they
reach against the configured pace. The baseline, measured in the same run,
is the same drain with the pace set out of reach: what the engine could do
if Stripe allowed it. Stripe is the in-process simulator, which knows every
account (created through its API, requirements past their deadline).
"""

from __future__ import annotations

import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from adapters.simulator import Delivery, Simulator
from adapters.sqlalchemy_store.seeding import seed_due_accounts
from onboarding_fsm import Settings, SystemClock, build_engine
from onboarding_fsm.account import NewAccount

from .common import Figure, report

LIVE_PACE = 100.0  # Stripe's live-mode pace, requests per second


def _simulated_stripe(count: int, clock: SystemClock) -> tuple[Simulator, list[str], datetime]:
    """``count`` accounts Stripe knows, each with requirements whose deadline just passed."""
    sim = Simulator(clock, delivery=Delivery(hold=True), autodeliver=False)
    deadline = clock.now().replace(microsecond=0) - timedelta(minutes=1)
    ids = []
    for n in range(count):
        snap = sim.create_account(NewAccount(f"bench-{n}", "US", ("transfers",)), idempotency_key=f"bench-{n}")
        sim.trigger_next_requirements(snap.id, deadline)
        ids.append(snap.id)
    return sim, ids, deadline


def drain(count: int, pace: float, workers: int = 2) -> tuple[float, int]:
    """Timers fired per second by ``workers`` sweeping at once, and how many fired."""
    clock = SystemClock()
    sim, ids, deadline = _simulated_stripe(count, clock)
    with tempfile.TemporaryDirectory(prefix="ofsm-bench-timers-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'timers.sqlite3'}"
        settings = Settings(database_url=url, stripe_rate_limit=pace)
        build_engine(settings, clock=clock, gateway=sim).close()
        seed = sa.create_engine(url)
        seed_due_accounts(seed, 0, due_at=deadline, due_ids=ids)
        seed.dispose()
        engines = [build_engine(settings, clock=clock, gateway=sim) for _ in range(workers)]
        fired = [0] * workers

        def sweep(i: int) -> None:
            fired[i] = len(engines[i].sweep().transitions)

        threads = [threading.Thread(target=sweep, args=(i,)) for i in range(workers)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        for engine in engines:
            engine.close()
    return sum(fired) / elapsed, sum(fired)


def main(*, count: int = 10_000, baseline: int = 2_000) -> None:
    started = datetime.now(UTC)
    paced, fired = drain(count, LIVE_PACE)
    free, _ = drain(baseline, 10_000.0)
    took = (datetime.now(UTC) - started).total_seconds()
    report(
        f"Deadline timers due at once, 2 workers, each fetching its account first (SQLite, {took:.0f} s)",
        [
            Figure(f"{fired:,} timers at a pace of {LIVE_PACE:.0f}/s (live mode)", "timers/s", [paced]),
            Figure(f"{baseline:,} timers, pace out of reach (engine capacity)", "timers/s", [free]),
        ],
    )
    print(f"  drained at {paced / LIVE_PACE:.2f} of the pace; capacity {free / LIVE_PACE:.1f}x the pace")
