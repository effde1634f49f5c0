"""Issue 12, item 4: two web workers sharing a limit over real sockets.

Two worker processes, each its own uvicorn server, app, engine and store, on
one database (a SQLite file, or a PostgreSQL schema); Stripe is the
simulator's HTTP server in the test process. A holder's browser alternates
between the workers, as a load balancer would send it. The limit is the
database's, not a process's: the (limit+1)-th link is refused whichever worker
gets the request, another account is unaffected, and a holder's budget spans
accounts.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import cycle

import httpx
import pytest

from adapters.http import SignedTokenAuth
from adapters.http.auth import link_marker_of
from adapters.http.serving import bind
from onboarding_fsm import FakeClock, Settings
from onboarding_fsm.bootstrap import SimulatedStripe, build_engine, build_simulated_stripe
from onboarding_fsm.engine import Engine
from onboarding_fsm.states import Trigger
from tests.integration.http import webworker

PER_ACCOUNT, PER_HOLDER, WINDOW = 3, 5, 600
LIMITS = {"refresh_limit": PER_ACCOUNT, "holder_limit": PER_HOLDER, "refresh_window_seconds": WINDOW}


@dataclass
class Farm:
    """The workers behind an imaginary load balancer, and what the test needs to drive them."""

    urls: list[str]
    engine: Engine
    stripe_url: str
    auth: SignedTokenAuth

    def create(self, ref: str) -> str:
        return self.engine.create_account(ref, "US", ["transfers"]).stripe_account_id

    def start_path(self, account_id: str, holder: str) -> str:
        return f"/onboarding/{account_id}/start?token={self.auth.token_for(account_id, holder)}"


@pytest.fixture
def farm(any_db_url: str, clock: FakeClock) -> Iterator[Farm]:
    settings = Settings(database_url=any_db_url, **LIMITS)  # type: ignore[arg-type]
    stripe: SimulatedStripe = build_simulated_stripe(settings, bind(), clock=clock, deliver=False)
    engine = build_engine(settings, clock=clock, gateway=stripe.gateway)  # migrates the database
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    workers = [
        ctx.Process(target=webworker.serve, args=(any_db_url, clock.now(), stripe.url, LIMITS, ready)) for _ in range(2)
    ]
    for w in workers:
        w.start()
    try:
        urls = [ready.get(timeout=90) for _ in workers]
        yield Farm(urls, engine, stripe.url, SignedTokenAuth(webworker.SECRET, link_marker=link_marker_of(engine)))
    finally:
        for w in workers:
            w.terminate()  # SIGTERM: uvicorn shuts down cleanly
        for w in workers:
            w.join(timeout=30)
        stripe.stop()
        engine.close()


def test_two_workers_share_the_per_account_limit(farm: Farm) -> None:
    acct, other = farm.create("seller-1"), farm.create("seller-2")
    browser = httpx.Client(follow_redirects=False, timeout=30)  # its session cookie is good on both workers
    try:
        started = browser.get(farm.urls[0] + farm.start_path(acct, "alice"))
        assert started.status_code == 303
        worker = cycle(farm.urls)
        answers = [browser.get(f"{next(worker)}/onboarding/{acct}/refresh") for _ in range(2 * PER_ACCOUNT)]
        codes = [a.status_code for a in answers]
        assert codes == [303] * PER_ACCOUNT + [429] * PER_ACCOUNT, "the 4th refresh is refused on either worker"
        # a limit in each process's memory would have let each worker mint 3: 6 in all
        refreshes = [t for t in farm.engine.history(acct) if t.trigger is Trigger.REFRESH]
        assert len(refreshes) == PER_ACCOUNT
        assert {a.headers["location"].split("/setup/")[0] for a in answers[:PER_ACCOUNT]} == {farm.stripe_url}
        assert answers[-1].headers["retry-after"] == str(WINDOW // PER_ACCOUNT), "a slot frees within one interval"
        refused = 'onboarding_fsm_links_rate_limited_total{action="refresh",budget="account"}'
        counted = [line for url in farm.urls for line in httpx.get(url + "/metrics").text.splitlines()]
        assert sum(float(line.split()[-1]) for line in counted if line.startswith(refused)) == PER_ACCOUNT

        someone_else = httpx.Client(follow_redirects=False, timeout=30)
        try:
            assert someone_else.get(farm.urls[1] + farm.start_path(other, "bob")).status_code == 303
            assert someone_else.get(f"{farm.urls[0]}/onboarding/{other}/refresh").status_code == 303
        finally:
            someone_else.close()
        # starting is its own budget: a refresh loop does not lock the holder out of the start button
        assert browser.get(f"{farm.urls[1]}/onboarding/{acct}/start").status_code == 303
    finally:
        browser.close()


def test_two_workers_share_the_per_holder_limit_across_accounts(farm: Farm) -> None:
    accounts = [farm.create(f"seller-{n}") for n in range(PER_HOLDER + 2)]
    browser = httpx.Client(follow_redirects=False, timeout=30)
    try:
        worker = cycle(farm.urls)
        codes = [browser.get(next(worker) + farm.start_path(a, "carol")).status_code for a in accounts]
        assert codes == [303] * PER_HOLDER + [429, 429], "each account's budget is fresh; carol's is spent"
        assert browser.get(farm.urls[0] + farm.start_path(accounts[-1], "dave")).status_code == 303, "not dave's"
    finally:
        browser.close()
