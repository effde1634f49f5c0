"""HTTP benchmarks on loopback.

* the webhook endpoint under a bounded load (a fixed number of concurrent
  senders) — requests/s, p50 and p99 — beside in-process ingestion of the same
  kind of events measured in the same run;
* the SDK adapter's per-call overhead against the HTTP simulator, beside a
  bare HTTP GET of the same resource.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from adapters.http.serving import Served, bind
from adapters.simulator import Simulator
from adapters.stripe_wire.signing import sign
from onboarding_fsm import FakeClock, Settings, SystemClock, build_engine
from onboarding_fsm.bootstrap import build_app, build_simulated_stripe
from onboarding_fsm.settings import SIMULATOR_WEBHOOK_SECRET

from .common import Figure, report
from .ingest import START, build, events


def _serve_platform(db_url: str, port_queue: Any, stop: Any) -> None:
    settings = Settings(database_url=db_url)
    engine = build_engine(settings, clock=SystemClock(), gateway=Simulator(SystemClock()))
    served = Served(build_app(settings, engine), bind(), log_level="error")
    port_queue.put(served.url)
    stop.wait()
    served.stop()


def _signed_now(batch: list[dict[str, Any]]) -> list[tuple[bytes, str]]:
    now = int(SystemClock().now().timestamp())
    out = []
    for e in batch:
        body = json.dumps(e).encode()
        out.append((body, sign(body, SIMULATOR_WEBHOOK_SECRET, now)))
    return out


def webhook_endpoint(*, accounts: int = 200, requests: int = 1500, concurrency: int = 4) -> None:
    directory = Path(tempfile.mkdtemp(prefix="ofsm-http-"))
    engine, clock, templates = build(directory, accounts, "FULL")
    engine.close()
    served_db = directory / "served.sqlite3"
    shutil.copy(directory / "engine.sqlite3", served_db)
    now_created = int(SystemClock().now().timestamp()) - 3600  # newer than anything the accounts have seen
    batch = events(templates, requests, now_created)
    # in-process, same run, same kind of events, its own copy of the database
    clock = FakeClock(SystemClock().now())
    local = build_engine(
        Settings(database_url=f"sqlite:///{directory / 'engine.sqlite3'}"), clock=clock, gateway=Simulator(clock)
    )
    signed = _signed_now(batch)
    start = time.perf_counter()
    for body, header in signed:
        local.ingest_webhook(body, header)
    in_process = len(signed) / (time.perf_counter() - start)
    local.close()

    ctx = multiprocessing.get_context("spawn")
    ports, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve_platform, args=(f"sqlite:///{served_db}", ports, stop))
    proc.start()
    url = ports.get(timeout=60) + "/webhooks/stripe"
    signed = _signed_now(batch)
    latencies: list[float] = []
    lock = threading.Lock()

    def sender(part: list[tuple[bytes, str]]) -> None:
        with httpx.Client(timeout=30) as client:
            for body, header in part:
                t0 = time.perf_counter()
                response = client.post(
                    url, content=body, headers={"Stripe-Signature": header, "Content-Type": "application/json"}
                )
                elapsed = time.perf_counter() - t0
                assert response.status_code == 200, response.text
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=sender, args=(signed[i::concurrency],)) for i in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = time.perf_counter() - start
    stop.set()
    proc.join(timeout=30)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    over_http = Figure(
        f"POST /webhooks/stripe, {concurrency} concurrent senders", "requests/s", [len(latencies) / total]
    )
    inproc = Figure("engine.ingest_webhook in-process", "events/s", [in_process])
    report(
        f"Webhook endpoint over HTTP on loopback (SQLite file, {requests} events)",
        [
            over_http,
            Figure("  latency p50", "ms", [statistics.median(latencies) * 1000]),
            Figure("  latency p99", "ms", [p99 * 1000]),
            inproc,
        ],
        ratio=(over_http, inproc),
    )


def sdk_overhead(*, calls: int = 300) -> None:
    stripe = build_simulated_stripe(
        Settings(), bind(), clock=FakeClock(START), deliver=False, gateway_options={"max_network_retries": 0}
    )
    served, gateway = stripe.url, stripe.gateway
    try:
        from onboarding_fsm.account import NewAccount

        account = gateway.create_account(
            NewAccount("bench", "US", ("card_payments", "transfers")), idempotency_key="b"
        ).id
        raw = httpx.Client(headers={"Authorization": f"Bearer {stripe.api_key}"})
        sdk, bare = (
            Figure("SDK adapter retrieve_account", "ms/call", []),
            Figure("bare HTTP GET, same resource", "ms/call", []),
        )
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(calls):
                gateway.retrieve_account(account)
            sdk.samples.append((time.perf_counter() - t0) / calls * 1000)
            t0 = time.perf_counter()
            for _ in range(calls):
                raw.get(f"{served}/v1/accounts/{account}").json()
            bare.samples.append((time.perf_counter() - t0) / calls * 1000)
        raw.close()
        report("SDK adapter against the HTTP simulator (loopback)", [sdk, bare], ratio=(sdk, bare))
        print(
            f"  adapter overhead per call: {sdk.median - bare.median:.2f} ms (SDK request building, parsing, snapshot)"
        )
    finally:
        stripe.stop()


def main(quick: bool = False) -> None:
    sdk_overhead(calls=100 if quick else 300)
    webhook_endpoint(requests=400 if quick else 1500)


if __name__ == "__main__":
    main()
