"""``onboarding-fsm serve``: the platform app under uvicorn.

On the embedded default it also serves the simulator over HTTP on its own
port and points the engine at it through the official SDK adapter — the
same code path as real Stripe — with webhooks delivered over HTTP to the
app's endpoint. With ``stripe_backend = "stripe"`` it serves the same
endpoints against Stripe (or any Stripe-compatible ``stripe_api_base``).
Everything is wired by ``bootstrap``; this module only starts and reports.

Where it listens (``--host``/``--port``, ``bind_host``/``bind_port``) is not
what it advertises (``public_base_url``, put into Account Links and the
webhook endpoint): behind a proxy it listens on ``0.0.0.0:8000`` while holders
and Stripe reach ``https://pay.example.com``. It says both, and warns about a
combination that cannot work or that exposes holders' tokens.
"""

from __future__ import annotations

import ipaddress
import secrets
import sys
from collections.abc import Callable
from typing import TextIO
from urllib.parse import urlsplit

from adapters.http import SignedTokenAuth
from adapters.http.serving import bind, serve_forever
from onboarding_fsm import Settings, bootstrap
from onboarding_fsm.engine import Engine

from . import doctor, logs


def run(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    simulator_port: int = 12111,
    out: TextIO | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM on ``host:port`` (default: ``bind_host`` and ``listen_port``)."""
    out = out or sys.stdout
    platform_sock = bind(host or settings.bind_host, listen_port(settings) if port is None else port)
    host, port = platform_sock.getsockname()[:2]  # the port chosen for --port 0
    stripe = None
    if settings.stripe_backend == "simulator":
        stripe = bootstrap.build_simulated_stripe(
            settings, bind("127.0.0.1", simulator_port), webhook_url=settings.public_base_url + settings.webhook_path
        )
        engine = bootstrap.build_engine(settings, gateway=stripe.gateway)
    else:
        engine = bootstrap.build_engine(settings, check_mode=True)
        doctor.at_start_up(settings)  # logs what it finds; never refuses to start (doctor.py says why)
    say = logs.banner(settings.log_format, out)
    app = bootstrap.build_app(settings, engine)
    say(f"onboarding-fsm listening on {host}:{port}, links and webhooks advertise {settings.public_base_url}")
    for warning in bind_warnings(settings, host, port):
        say(f"  warning: {warning}")
    say(f"  webhooks: POST {settings.public_base_url}{settings.webhook_path}")
    if stripe is not None:
        say(f"  simulated Stripe API: {stripe.url}/v1 (key {stripe.api_key})")
        _offer_a_start_url(settings, engine, app.state.auth, say)
    else:
        say("  start URLs for your accounts: onboarding-fsm start-url ACCOUNT (same session_secret)")
    out.flush()
    try:
        serve_forever(app, platform_sock, log_level="info", options=logs.uvicorn_options(settings.log_format))
    finally:
        if stripe is not None:
            stripe.stop()
        engine.close()
    return 0


_DEFAULT_PORT = {"http": 80, "https": 443}


def listen_port(settings: Settings) -> int:
    """``bind_port``, else public_base_url's own port, else 8000 (not 443 or 80:
    a URL without a port is a proxy's, and the app speaks plain HTTP)."""
    return settings.bind_port or urlsplit(settings.public_base_url).port or 8000


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def bind_warnings(settings: Settings, host: str, port: int) -> list[str]:
    """What is likely wrong with listening on ``host:port`` while advertising ``public_base_url``."""
    public = urlsplit(settings.public_base_url)
    found = []
    if public.hostname and _loopback(public.hostname) and (public.port or _DEFAULT_PORT[public.scheme]) != port:
        found.append(
            f"{settings.public_base_url} is this machine, but not port {port}: Stripe's redirects and webhooks "
            "will not reach this server unless a local proxy forwards them"
        )
    if not _loopback(host) and public.scheme == "http":
        found.append(
            f"listening on {host} (not loopback) while advertising plain http: start tokens and session cookies "
            "would cross the network in clear; put TLS in front and an https public_base_url"
        )
    return found


def _offer_a_start_url(settings: Settings, engine: Engine, auth: object, say: Callable[[str], None]) -> None:
    """On the embedded token scheme: a fresh account and its start URL, to try in a browser."""
    if not isinstance(auth, SignedTokenAuth):
        return
    account = engine.create_account(f"serve-{secrets.token_hex(3)}", "US", ["card_payments", "transfers"])
    token = auth.token_for(account.stripe_account_id)
    say("Start an onboarding in your browser:")
    say(f"  {settings.start_url(account.stripe_account_id)}?token={token}")
    say(f"  (account {account.stripe_account_id}; the link works once, within {auth.token_max_age // 60} minutes)")
