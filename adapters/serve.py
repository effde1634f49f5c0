"""``onboarding-fsm serve``: the platform app under uvicorn.

On the embedded default it also serves the simulator over HTTP on its own
port and points the engine at it through the official SDK adapter — the
same code path as real Stripe — with webhooks delivered over HTTP to the
app's endpoint. With ``stripe_backend = "stripe"`` it serves the same
endpoints against Stripe (or any Stripe-compatible ``stripe_api_base``).
"""

from __future__ import annotations

import secrets
import sys
from typing import TextIO
from urllib.parse import urlsplit

import uvicorn

from onboarding_fsm import Settings, SystemClock, build_engine

from .http import SignedTokenAuth, create_app
from .serving import Served, bind, url_of
from .simulator import Simulator
from .simulator.server import TEST_KEY, SimulatorServer
from .stripe_sdk import StripeSdkGateway


def run(settings: Settings, *, simulator_port: int = 12111, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parts = urlsplit(settings.public_base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
    platform_sock = bind(host, port)
    simulated: Served | None = None
    server: SimulatorServer | None = None
    if settings.stripe_backend == "simulator":
        sim_sock = bind("127.0.0.1", simulator_port)
        sim = Simulator(
            SystemClock(),
            webhook_secret=settings.webhook_secret_values()[0],
            hosted_base_url=url_of(sim_sock),
            seed=secrets.randbits(32),
        )
        server = SimulatorServer(sim, webhook_url=settings.public_base_url + settings.webhook_path)
        server.start_delivery()
        simulated = Served(server.app, sim_sock)
        gateway = StripeSdkGateway(TEST_KEY, api_base=simulated.url, max_network_retries=2)
    else:
        gateway = StripeSdkGateway.from_settings(settings)
        gateway.check_mode(settings.livemode)
    engine = build_engine(settings, gateway=gateway)
    app = create_app(engine)
    out.write(f"onboarding-fsm serving on {settings.public_base_url}\n")
    out.write(f"  webhooks: POST {settings.public_base_url}{settings.webhook_path}\n")
    if simulated is not None:
        out.write(f"  simulated Stripe API: {simulated.url}/v1 (key {TEST_KEY})\n")
        auth = app.state.auth
        if isinstance(auth, SignedTokenAuth):
            account = engine.create_account(f"serve-{secrets.token_hex(3)}", "US", ["card_payments", "transfers"])
            token = auth.token_for(account.stripe_account_id)
            start = f"{settings.start_url(account.stripe_account_id)}?token={token}"
            out.write(f"\nStart an onboarding in your browser:\n  {start}\n")
            out.write(f"  (account {account.stripe_account_id}; the link is valid for {auth.max_age // 60} minutes)\n")
    else:
        out.write("  start URLs for your accounts: onboarding-fsm start-url ACCOUNT (same session_secret)\n")
    out.flush()
    try:
        # no access log: start URLs carry the holder's token in their query string
        config = uvicorn.Config(app, log_level="info", lifespan="off", access_log=False)
        uvicorn.Server(config).run(sockets=[platform_sock])
    finally:
        if server is not None:
            server.stop_delivery()
        if simulated is not None:
            simulated.stop()
        engine.store.close()
    return 0
