"""One web worker in its own process (importable for ``spawn``): the platform
app with its own engine and store on a shared database, Stripe being the
simulator's HTTP server the test runs, served by uvicorn on a free port."""

from __future__ import annotations

from datetime import datetime
from multiprocessing.queues import Queue
from typing import Any

from adapters.http import SignedTokenAuth, create_app
from adapters.http.auth import link_marker_of
from adapters.http.serving import bind, serve_forever, url_of
from adapters.simulator.server import TEST_KEY
from adapters.stripe import StripeSdkGateway
from onboarding_fsm import FakeClock, Settings, build_engine

#: every worker and the test sign start tokens and session cookies with it
SECRET = "test-secret"


def serve(db_url: str, now: datetime, stripe_url: str, limits: dict[str, Any], ready: Queue[str]) -> None:
    """Serve until SIGTERM; put the worker's URL on ``ready`` once its socket listens."""
    sock = bind()
    settings = Settings(database_url=db_url, public_base_url=url_of(sock), **limits)
    gateway = StripeSdkGateway(TEST_KEY, api_base=stripe_url, max_network_retries=0)
    engine = build_engine(settings, clock=FakeClock(now), gateway=gateway)
    auth = SignedTokenAuth(SECRET, link_marker=link_marker_of(engine))
    app = create_app(engine, settings, authenticator=auth)
    ready.put(url_of(sock))
    try:
        serve_forever(app, sock)
    finally:
        engine.close()
