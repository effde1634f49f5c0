"""Any duplication and any reordering of a scenario's events leave the same
final state and no duplicate audit row (hypothesis)."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections import Counter
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.simulator import Delivery, Simulator
from onboarding_fsm import FakeClock, Outcome, Settings, build_engine
from onboarding_fsm.engine import Engine
from tests.conftest import START


def record_scenario(variant: str) -> tuple[Simulator, FakeClock, list[dict[str, Any]], str]:
    """Run a scenario against the simulator alone, keeping every event it sends."""
    clock = FakeClock(START)
    sim = Simulator(clock, delivery=Delivery(hold=True), verification_delay=30)
    engine, _ = fresh_engine(sim, FakeClock(START))
    acct = engine.create_account("seller-p", "US", ["card_payments", "transfers"]).stripe_account_id
    session = sim.visit(engine.issue_link(acct).url)
    session.submit({"business_type": "individual", "individual": {"first_name": "Jenny"}}).save_for_later()
    clock.advance(2)
    sim.visit(engine.refresh_link(acct).url).complete({"individual.dob.year": "1901"})  # pending verification
    clock.advance(30)
    sim.tick()  # verification completes
    if variant == "deadline":
        # within Stripe's 24-hour idempotency window, so each replay's create gets this same account
        sim.add_future_requirements(acct, ["individual.id_number"], clock.now() + timedelta(hours=2))
        clock.advance(timedelta(hours=2))
        sim.tick()  # future requirements missed: past due
    elif variant == "rejected":
        sim.reject(acct, "fraud")  # same second as the verification: ties
    elif variant == "deauthorized":
        clock.advance(1)
        sim.deauthorize(acct)
        clock.advance(1)
        sim.review(acct)  # Stripe keeps changing it; the platform no longer hears
    return sim, clock, sim.events, acct


_COPIES = itertools.count()


@cache
def _template() -> Path:
    """A migrated database to copy: hypothesis runs many examples."""
    path = Path(tempfile.mkdtemp(prefix="ofsm-prop-")) / "template.sqlite3"
    build_engine(Settings(database_url=f"sqlite:///{path}"), clock=FakeClock(START)).close()
    return path


def fresh_engine(sim: Simulator, clock: FakeClock) -> tuple[Engine, Path]:
    copy = _template().with_name(f"copy-{next(_COPIES)}.sqlite3")
    shutil.copy(_template(), copy)
    return build_engine(Settings(database_url=f"sqlite:///{copy}"), clock=clock, gateway=sim), copy


def replay(
    sim: Simulator, events: list[dict[str, Any]], order: list[int], skew: float = 0.0
) -> tuple[str, list[Any], Counter[Outcome]]:
    """The events delivered in ``order`` to a fresh engine whose clock is
    ``skew`` seconds off Stripe's (the create's answer is our own fetch)."""
    clock = FakeClock(START + timedelta(seconds=skew))
    engine, path = fresh_engine(sim, clock)
    acct = engine.create_account("seller-p", "US", ["card_payments", "transfers"]).stripe_account_id
    clock.set(START + timedelta(days=2))
    outcomes: Counter[Outcome] = Counter()
    for i in order:
        body, header = sim.sign(events[i], int(clock.now().timestamp()))
        outcomes[engine.ingest_webhook(body, header).outcome] += 1
    assert acct == events[0]["account"], "the replay must create the recorded account"
    history = engine.history(acct)
    engine.close()
    path.unlink()
    return history[-1].to_state.value, history, outcomes


@pytest.mark.parametrize("skew", [0.0, 4.5, -4.5], ids=["in-step", "engine-ahead", "engine-behind"])
@pytest.mark.parametrize("variant", ["verified", "deadline", "rejected", "deauthorized"])
def test_duplicated_and_reordered_deliveries_converge(variant: str, skew: float) -> None:
    """Whatever the order, duplicates and clock skew (within the tolerance,
    either way), the engine ends where Stripe's events in order take it."""
    sim, _, events, _ = record_scenario(variant)
    assert len(events) >= 4
    expected_state, _, _ = replay(sim, events, list(range(len(events))))

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        n = len(events)
        extras = data.draw(st.lists(st.integers(0, n - 1), max_size=n), label="duplicates")
        order = data.draw(st.permutations(list(range(n)) + extras), label="order")
        state, history, outcomes = replay(sim, events, order, skew)
        assert state == expected_state
        refs = Counter(t.source_ref for t in history if t.source_ref and t.source_ref.startswith("evt_"))
        assert all(count == 1 for count in refs.values()), refs
        assert outcomes[Outcome.DUPLICATE] == len(extras)
        quiet = [
            t
            for prev, t in itertools.pairwise(history)
            if t.trigger.value == "sync" and t.from_state == t.to_state and t.reason == prev.reason and not t.delta
        ]
        assert not quiet, "a sync that changed nothing was recorded"

    check()
