"""PostgreSQL benchmarks (run when a server URL is given).

* ingestion through the engine beside the same writes as plain SQL on psycopg,
  same run, same server (goal >= 0.6);
* ingestion by one process, then by two, on disjoint accounts (goal >= 1.7x);
* the timer sweep over N accounts with 1 % due: time to claim a due timer,
  rate of firing (each deadline timer fetches its account from the simulator
  first, pace out of reach), and the sweeping process's peak memory at two
  sizes (goal: claims well under a second, memory flat in the number of accounts).
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from adapters.simulator import Delivery, Simulator
from adapters.sqlalchemy_store.schemas import temporary_schema
from adapters.sqlalchemy_store.seeding import seed_due_accounts
from adapters.stripe_wire.signing import sign
from onboarding_fsm import FakeClock, Settings, build_engine
from onboarding_fsm.account import NewAccount
from onboarding_fsm.bootstrap import build_sandbox
from onboarding_fsm.redact import strip_event
from onboarding_fsm.settings import SIMULATOR_WEBHOOK_SECRET
from onboarding_fsm.snapshot import parse_account, snapshot_to_dict

from .common import Figure, rate, report
from .ingest import START, events


def schema(base_url: str) -> Any:
    return temporary_schema(base_url, "ofsm_bench_")


def _setup(url: str, accounts: int, prefix: str) -> tuple[list[dict[str, Any]], Any]:
    box = build_sandbox(Settings(database_url=url), clock=FakeClock(START), delivery=Delivery(hold=True))
    engine, sim = box.engine, box.sim
    templates = []
    for n in range(accounts):
        acct = engine.create_account(f"{prefix}-{n}", "US", ["card_payments", "transfers"]).stripe_account_id
        sim.visit(engine.issue_link(acct).url).complete()
        templates.append(sim.account_json(acct))
    return templates, engine


def _signed(templates: list[dict[str, Any]], count: int, created: int, now: int) -> list[tuple[bytes, str]]:
    out = []
    for e in events(templates, count, created):
        body = json.dumps(e).encode()
        out.append((body, sign(body, SIMULATOR_WEBHOOK_SECRET, now)))
    return out


def _ingest_proc(url: str, deliveries: list[tuple[bytes, str]], now: datetime) -> float:
    clock = FakeClock(now)
    engine = build_engine(Settings(database_url=url), clock=clock, gateway=Simulator(clock))
    start = time.perf_counter()
    for body, header in deliveries:
        engine.ingest_webhook(body, header)
    elapsed = time.perf_counter() - start
    engine.close()
    return elapsed


def ingestion(base_url: str, *, accounts: int = 200, per_round: int = 600, rounds: int = 3) -> None:
    with schema(base_url) as url:
        templates, engine = _setup(url, accounts, "bench")
        now = START + timedelta(days=1)
        created = int(START.timestamp()) + 1
        import psycopg

        raw = psycopg.connect(sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
        ours, base = (
            Figure("engine.ingest_webhook", "events/s", []),
            Figure("plain SQL (psycopg), same writes", "events/s", []),
        )
        for _ in range(rounds):
            batch = _signed(templates, per_round, created, int(now.timestamp()))
            created += per_round
            clock = FakeClock(now)
            eng = build_engine(Settings(database_url=url), clock=clock, gateway=Simulator(clock))
            ours.samples.append(rate(lambda batch=batch, eng=eng: sum(1 for b, h in batch if eng.ingest_webhook(b, h))))
            eng.close()
            versions = dict(raw.execute("SELECT stripe_account_id, version FROM ofsm_accounts").fetchall())
            seqs = dict(raw.execute("SELECT account_id, max(seq) FROM ofsm_transitions GROUP BY account_id").fetchall())
            raw.commit()
            rows = []
            for body, _ in batch:
                e = json.loads(body)
                acct = e["account"]
                e["id"] = "base_" + e["id"]
                versions[acct] += 1
                seqs[acct] += 1
                payload = json.dumps(strip_event(e))
                snap = json.dumps(snapshot_to_dict(parse_account(e["data"]["object"])))
                rows.append((e, acct, versions[acct], seqs[acct], payload, snap))
            base.samples.append(rate(lambda rows=rows: _baseline(raw, rows)))
        report(
            f"PostgreSQL ingestion ({accounts} accounts, {rounds}x{per_round} events)",
            [ours, base],
            ratio=(ours, base),
            goal=0.6,
        )
        raw.close()
        engine.close()


def _baseline(conn: Any, rows: list[Any]) -> int:
    for e, acct, version, seq, payload, snap in rows:
        with conn.transaction():
            conn.execute(
                "INSERT INTO ofsm_webhook_events (event_id, type, account_id, created, livemode, received_at, outcome, "
                "detail, payload) VALUES (%s, %s, %s, now(), false, now(), 'applied', NULL, %s::jsonb) ON CONFLICT DO NOTHING",
                (e["id"], e["type"], acct, payload),
            )
            cur = conn.execute(
                "UPDATE ofsm_accounts SET state = 'past_due', reason = 'r', version = %s, snapshot = %s::jsonb, "
                "watermark = now(), audit_seq = %s, audit_head = %s, updated_at = now(), synced_at = now() "
                "WHERE stripe_account_id = %s AND version = %s",
                (version, snap, seq, "1" * 64, acct, version - 1),
            )
            assert cur.rowcount == 1
            conn.execute(
                "INSERT INTO ofsm_transitions (account_id, seq, from_state, to_state, trigger, source, source_ref, actor, "
                "reason, delta, at, stripe_time, prev_hash, hash) VALUES (%s, %s, 'verified', 'past_due', 'sync', "
                "'webhook', %s, 'stripe', 'r', '{}'::jsonb, now(), now(), %s, %s)",
                (acct, seq, e["id"], "0" * 64, "1" * 64),
            )
    return len(rows)


def scale_out(base_url: str, *, accounts: int = 200, events_per_process: int = 1500) -> None:
    with schema(base_url) as url:
        t_a, eng_a = _setup(url, accounts, "a")
        t_b, eng_b = _setup(url, accounts, "b")
        eng_a.close(), eng_b.close()
        now = START + timedelta(days=1)
        created = int(START.timestamp()) + 1
        ctx = multiprocessing.get_context("spawn")
        one = _signed(t_a, events_per_process, created, int(now.timestamp()))
        with ctx.Pool(1) as pool:
            single = events_per_process / pool.apply(_ingest_proc, (url, one, now))
        a = _signed(t_a, events_per_process, created + events_per_process, int(now.timestamp()))
        b = _signed(t_b, events_per_process, created + events_per_process, int(now.timestamp()))
        start = time.perf_counter()
        with ctx.Pool(2) as pool:
            pool.starmap(_ingest_proc, [(url, a, now), (url, b, now)])
        double = 2 * events_per_process / (time.perf_counter() - start)
        f1, f2 = Figure("one process", "events/s", [single]), Figure("two processes", "events/s", [double])
        report("PostgreSQL ingestion, scale-out on this machine's cores", [f1, f2], ratio=(f2, f1), goal=1.7)


def _sweep_proc(url: str, now: datetime, due: int, limit: int) -> tuple[float, float, int, int, float]:
    """In a fresh process: ``due`` accounts Stripe (the simulator) knows, past
    their deadline, added to the seeded ones; then the claim query alone, and
    a sweep firing ``limit`` timers, each fetching its account first (the
    pace is set out of reach: this measures the engine)."""
    clock = FakeClock(now)
    sim = Simulator(clock, delivery=Delivery(hold=True), autodeliver=False)
    started = time.perf_counter()
    ids = []
    for n in range(due):
        snap = sim.create_account(NewAccount(f"due-{n}", "US", ("transfers",)), idempotency_key=f"due-{n}")
        sim.trigger_next_requirements(snap.id, now - timedelta(minutes=1))
        ids.append(snap.id)
    probe = sa.create_engine(url)
    seed_due_accounts(probe, 0, due_at=now - timedelta(minutes=1), due_ids=ids)
    with probe.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    seeded = time.perf_counter() - started
    engine = build_engine(Settings(database_url=url, stripe_rate_limit=10_000), clock=clock, gateway=sim)
    with probe.connect() as conn:  # the claim query alone, as the sweep runs it
        start = time.perf_counter()
        conn.exec_driver_sql(
            "SELECT account_id FROM ofsm_timers WHERE fired_at IS NULL AND wake_at <= %(now)s "
            "ORDER BY wake_at LIMIT 1 FOR UPDATE SKIP LOCKED",
            {"now": now},
        ).all()
        claim = time.perf_counter() - start
        conn.rollback()
    probe.dispose()
    start = time.perf_counter()
    report_ = engine.sweep(limit=limit)
    elapsed = time.perf_counter() - start
    engine.close()
    fired = len([t for t in report_.transitions if t.to_state.value == "past_due"])
    return claim, fired / elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, fired, seeded


def sweep(base_url: str, *, sizes: tuple[int, ...] = (100_000, 1_000_000), fire: int = 2000) -> None:
    figures = []
    for size in sizes:
        with schema(base_url) as url:
            build_engine(Settings(database_url=url)).close()
            due = datetime(2026, 1, 1, tzinfo=UTC)
            started = time.perf_counter()
            seed_due_accounts(sa.create_engine(url), size - size // 100, due_at=due, due_every=0)
            seeded = time.perf_counter() - started
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(1) as pool:
                claim, fired_rate, rss_kb, fired, known = pool.apply(
                    _sweep_proc, (url, due + timedelta(hours=1), size // 100, fire)
                )
            print(
                f"  seeded {size:,} accounts in {seeded:.1f} s; {size // 100:,} of them due and known to the "
                f"simulator in {known:.1f} s"
            )
            figures += [
                Figure(f"{size:,} accounts: claim the next due timer", "ms", [claim * 1000]),
                Figure(f"{size:,} accounts: firing ({fired} timers)", "timers/s", [fired_rate]),
                Figure(f"{size:,} accounts: sweeping process peak RSS", "MB", [rss_kb / 1024]),
            ]
    report("Timer sweep on PostgreSQL, 1 % of accounts due", figures)
