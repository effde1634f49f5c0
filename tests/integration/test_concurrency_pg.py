"""Concurrency proofs on PostgreSQL, with real processes.

* several processes ingesting the same 10,000 events (30 % delivered twice,
  shuffled) end where the in-order run ends, with no duplicate audit row and
  no lost update;
* several processes sweeping 10,000 due accounts fire each exactly once;
* a worker killed mid-sweep and started again neither misses nor repeats a deadline.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.http.serving import Served, bind
from adapters.simulator import Simulator
from adapters.simulator.server import TEST_KEY, SimulatorServer
from adapters.sqlalchemy_store.seeding import seed_due_accounts
from adapters.stripe_wire.signing import sign
from onboarding_fsm import FakeClock, Settings, State, SystemClock, build_engine
from onboarding_fsm.classify import classify
from onboarding_fsm.settings import SIMULATOR_WEBHOOK_SECRET
from onboarding_fsm.snapshot import parse_account
from tests.conftest import START
from tests.integration import procs
from tests.procio import Lines

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 4


def account_event(account_id: str, created: int, kind: str) -> dict[str, object]:
    requirements: dict[str, object] = {"currently_due": [], "past_due": [], "disabled_reason": None}
    if kind == "past_due":
        requirements = {"currently_due": ["individual.id_number"], "past_due": ["individual.id_number"],
                        "disabled_reason": "requirements.past_due"}  # fmt: skip
    elif kind == "rejected":
        requirements = {**requirements, "disabled_reason": "rejected.fraud"}
    obj = {"id": account_id, "object": "account", "details_submitted": True, "country": "US",
           "capabilities": {"transfers": "active"}, "requirements": requirements,
           "individual": {"first_name": "Jenny"}}  # fmt: skip
    return {"id": f"evt_{account_id}_{created}", "object": "event", "type": "account.updated", "account": account_id,
            "created": created, "livemode": False, "data": {"object": obj}}  # fmt: skip


def test_processes_ingesting_duplicated_shuffled_events_agree_with_the_in_order_run(pg_url: str) -> None:
    clock = FakeClock(START)
    engine = build_engine(Settings(database_url=pg_url), clock=clock, gateway=Simulator(clock))
    accounts = [engine.create_account(f"seller-{n}", "US", ["transfers"]).stripe_account_id for n in range(200)]
    base = int(START.timestamp()) + 10
    events = []
    for i, acct in enumerate(accounts):
        for k in range(50):
            kind = "verified" if (k + i) % 2 else "past_due"
            if k == 49 and i % 5 == 0:
                kind = "rejected"
            events.append(account_event(acct, base + k, kind))
    assert len(events) == 10_000
    expected = {
        e["account"]: classify(parse_account(e["data"]["object"]), engine.config.policy).state  # type: ignore[index]
        for e in events  # the in-order run ends at each account's newest event
    }
    rng = random.Random(7)
    deliveries = events + rng.sample(events, 3_000)
    rng.shuffle(deliveries)
    now = int(START.timestamp()) + 60
    signed = []
    for e in deliveries:
        body = json.dumps(e).encode()
        signed.append((body, sign(body, SIMULATOR_WEBHOOK_SECRET, now)))
    shards = [signed[p::PROCESSES] for p in range(PROCESSES)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        results = pool.starmap(procs.ingest, [(pg_url, clock.now() + timedelta(seconds=60), s) for s in shards])

    outcomes: Counter[str] = Counter()
    for counts, _, exhausted in results:
        outcomes.update(counts)
        assert exhausted == 0
    assert outcomes["duplicate"] == 3_000
    assert outcomes["applied"] + outcomes["stale"] == 10_000
    assert sum(retried for _, retried, _ in results) >= 0  # counted (contention decides how many)

    for acct in accounts:
        view = engine.get_account(acct)
        assert view.state is expected[acct], acct
        assert view.watermark is not None and int(view.watermark.timestamp()) == base + 49
    db = sa.create_engine(pg_url)
    with db.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM ofsm_webhook_events").scalar() == 10_000
        twice = conn.exec_driver_sql(
            "SELECT count(*) FROM (SELECT account_id, source_ref FROM ofsm_transitions WHERE source_ref IS NOT NULL "
            "GROUP BY account_id, source_ref HAVING count(*) > 1) d"
        ).scalar()
        assert twice == 0
    db.dispose()
    engine.audit.checkpoint()
    report = engine.verify_audit()  # contiguous sequences, intact chains: no update was lost
    assert report.accounts == 200 and report.ok and report.unsealed == 0, report.problems


def deadlines_per_account(conn: sa.Connection) -> tuple[int, int, int]:
    """(accounts moved to past_due, fewest such moves per account, most). The
    deadline timer's move is a ``sync`` when Stripe's fetched answer already says
    past due; a worker's reconcile run may get there first: once either way."""
    row = conn.exec_driver_sql(
        "SELECT count(*), min(n), max(n) FROM (SELECT account_id, count(*) AS n FROM ofsm_transitions "
        "WHERE to_state = 'past_due' GROUP BY account_id) c"
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


SWEPT = 4_000  # each process builds the simulated world that knows them (~1.4 ms an account)


def test_processes_sweeping_fire_each_deadline_exactly_once(pg_url: str) -> None:
    store_engine = sa.create_engine(pg_url)
    build_engine(Settings(database_url=pg_url)).close()  # migrate
    _, ids = procs.known_stripe(FakeClock(START - timedelta(hours=1)), SWEPT, START)
    seed_due_accounts(store_engine, 0, due_at=START, due_ids=ids)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        results = pool.starmap(procs.sweep, [(pg_url, START + timedelta(hours=1), SWEPT, START)] * PROCESSES)
    assert sum(fired for fired, _ in results) == SWEPT
    assert all(fired > 0 for fired, _ in results), results  # the work was shared
    with store_engine.connect() as conn:
        assert deadlines_per_account(conn) == (SWEPT, 1, 1)
        assert conn.exec_driver_sql("SELECT count(*) FROM ofsm_timers WHERE fired_at IS NULL").scalar() == 0
        assert conn.exec_driver_sql("SELECT count(*) FROM ofsm_accounts WHERE state = 'past_due'").scalar() == SWEPT
    store_engine.dispose()


LEASE = 5


def test_a_killed_worker_restarts_without_missing_or_repeating_a_deadline(pg_url: str) -> None:
    store_engine = sa.create_engine(pg_url)
    build_engine(Settings(database_url=pg_url)).close()
    now = SystemClock().now()  # the worker runs on real time
    # Stripe (the simulator over HTTP) knows the accounts: each deadline timer fetches its account
    sim, ids = procs.known_stripe(SystemClock(), 3_000, now - timedelta(minutes=5))
    stripe = Served(SimulatorServer(sim).app, bind())
    seed_due_accounts(store_engine, 0, due_at=now - timedelta(minutes=5), due_ids=ids)
    env = {
        **os.environ,
        "ONBOARDING_FSM_DATABASE_URL": pg_url,
        "ONBOARDING_FSM_SWEEP_INTERVAL_SECONDS": "1",
        "ONBOARDING_FSM_STRIPE_BACKEND": "stripe",
        "ONBOARDING_FSM_STRIPE_API_KEY": TEST_KEY,
        "ONBOARDING_FSM_STRIPE_API_BASE": stripe.url,
        "ONBOARDING_FSM_STRIPE_RATE_LIMIT": "10000",  # the pace is not under test here
        "ONBOARDING_FSM_TIMER_LEASE_SECONDS": str(LEASE),
    }
    try:
        worker = subprocess.Popen(
            [sys.executable, "-m", "adapters.cli", "-v", "worker"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
        )
        assert worker.stderr is not None
        lines = Lines(worker.stderr)
        try:
            lines.wait_for("-> past_due", count=300)
        finally:
            worker.send_signal(signal.SIGKILL)  # no clean shutdown: mid-transaction
            worker.wait(timeout=30)
        with store_engine.connect() as conn:
            done_before = conn.exec_driver_sql("SELECT count(*) FROM ofsm_timers WHERE fired_at IS NOT NULL").scalar()
        assert 0 < done_before < 3_000  # the log line of a killed transaction may precede its commit
        # the timer the killed worker held stays leased (timer_lease_seconds); a sweep as of
        # the lease's end takes it over: late by the lease at most, never missed
        after_lease = SystemClock().now() + timedelta(seconds=LEASE + 1)
        again = subprocess.run(
            [sys.executable, "-m", "adapters.cli", "check-deadlines", "--now", after_lease.isoformat()],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert again.returncode == 0, again.stderr
    finally:
        stripe.stop()
    with store_engine.connect() as conn:
        assert deadlines_per_account(conn) == (3_000, 1, 1)
        assert conn.exec_driver_sql("SELECT count(*) FROM ofsm_timers WHERE fired_at IS NULL").scalar() == 0
    store_engine.dispose()


def test_sigterm_stops_the_worker_cleanly(pg_url: str) -> None:
    build_engine(Settings(database_url=pg_url)).close()
    env = {**os.environ, "ONBOARDING_FSM_DATABASE_URL": pg_url}
    worker = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "-v", "worker"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    assert worker.stderr is not None
    lines = Lines(worker.stderr)
    lines.wait_for("sweep fired")
    worker.send_signal(signal.SIGTERM)
    lines.wait_for("worker stopped", timeout=60)
    assert worker.wait(timeout=60) == 0


def test_state_is_what_the_timers_say(pg_url: str) -> None:
    """The seeded accounts are what the engine would have written itself."""
    build_engine(Settings(database_url=pg_url)).close()
    clock = FakeClock(START - timedelta(hours=1))
    sim, ids = procs.known_stripe(clock, 3, START)
    seed_due_accounts(sa.create_engine(pg_url), 0, due_at=START, due_ids=ids)
    clock.set(START + timedelta(seconds=1))
    engine = build_engine(Settings(database_url=pg_url), clock=clock, gateway=sim)
    assert [t.to_state for t in engine.check_deadlines()] == [State.PAST_DUE] * 3
