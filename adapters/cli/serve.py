"""``onboarding-fsm serve``: the platform app under uvicorn.

On the embedded default it also serves the simulator over HTTP on its own
port and points the engine at it through the official SDK adapter — the
same code path as real Stripe — with webhooks delivered over HTTP to the
app's endpoint. With ``stripe_backend = "stripe"`` it serves the same
endpoints against Stripe (or any Stripe-compatible ``stripe_api_base``).
Everything is wired by ``bootstrap``; this module only starts and reports.
"""

from __future__ import annotations

import secrets
import sys
from typing import TextIO
from urllib.parse import urlsplit

from adapters.http import SignedTokenAuth
from adapters.http.serving import bind, serve_forever
from onboarding_fsm import Settings, bootstrap
from onboarding_fsm.engine import Engine


def run(settings: Settings, *, simulator_port: int = 12111, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parts = urlsplit(settings.public_base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
    platform_sock = bind(host, port)
    stripe = None
    if settings.stripe_backend == "simulator":
        stripe = bootstrap.build_simulated_stripe(
            settings, bind("127.0.0.1", simulator_port), webhook_url=settings.public_base_url + settings.webhook_path
        )
        engine = bootstrap.build_engine(settings, gateway=stripe.gateway)
    else:
        engine = bootstrap.build_engine(settings, check_mode=True)
    app = bootstrap.build_app(settings, engine)
    out.write(f"onboarding-fsm serving on {settings.public_base_url}\n")
    out.write(f"  webhooks: POST {settings.public_base_url}{settings.webhook_path}\n")
    if stripe is not None:
        out.write(f"  simulated Stripe API: {stripe.url}/v1 (key {stripe.api_key})\n")
        _offer_a_start_url(settings, engine, app.state.auth, out)
    else:
        out.write("  start URLs for your accounts: onboarding-fsm start-url ACCOUNT (same session_secret)\n")
    out.flush()
    try:
        serve_forever(app, platform_sock, log_level="info")
    finally:
        if stripe is not None:
            stripe.stop()
        engine.close()
    return 0


def _offer_a_start_url(settings: Settings, engine: Engine, auth: object, out: TextIO) -> None:
    """On the embedded token scheme: a fresh account and its start URL, to try in a browser."""
    if not isinstance(auth, SignedTokenAuth):
        return
    account = engine.create_account(f"serve-{secrets.token_hex(3)}", "US", ["card_payments", "transfers"])
    token = auth.token_for(account.stripe_account_id)
    out.write(
        f"\nStart an onboarding in your browser:\n  {settings.start_url(account.stripe_account_id)}?token={token}\n"
    )
    out.write(
        f"  (account {account.stripe_account_id}; the link works once, within {auth.token_max_age // 60} minutes)\n"
    )
