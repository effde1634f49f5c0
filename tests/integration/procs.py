"""Functions run in separate processes by the concurrency tests (importable for spawn)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from adapters.simulator import Simulator
from onboarding_fsm import FakeClock, Settings, build_engine


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


def sweep(db_url: str, now: datetime) -> tuple[int, int]:
    clock = FakeClock(now)
    engine = build_engine(Settings(database_url=db_url), clock=clock, gateway=Simulator(clock))
    fired = 0
    while True:
        report = engine.sweep(limit=200)
        fired += len(report.transitions)
        if report.timers == 0:
            break
    engine.close()
    return fired, engine.stats.conflicts_retried
