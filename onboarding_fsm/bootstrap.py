"""The one place that wires adapters from settings (the only core module
allowed to import ``adapters``). Nothing is built at import time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .clock import SystemClock
from .engine import Engine
from .settings import Settings

if TYPE_CHECKING:
    from .ports import Clock, Store, StripeGateway


def build_engine(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    gateway: StripeGateway | None = None,
    store: Store | None = None,
) -> Engine:
    """Build an engine from settings (defaults: SQLite file + local simulator).

    ``gateway``/``store``/``clock`` replace what the settings would build —
    tests pass a simulator sharing a fake clock; platforms may pass their own.
    When the engine builds the simulator itself, the simulator's signed
    events are delivered straight into ``engine.ingest_webhook``.
    """
    from adapters.signature import StripeSignatureVerifier
    from adapters.sqlalchemy_store import SqlStore

    settings = settings or Settings()
    clock = clock or SystemClock()
    if store is None:
        store = SqlStore.from_settings(settings)
        store.migrate()
    built_simulator = None
    if gateway is None:
        if settings.stripe_backend == "simulator":
            from adapters.simulator import Simulator

            built_simulator = Simulator(clock=clock, webhook_secret=settings.webhook_secret_values()[0])
            gateway = built_simulator
        else:
            from adapters.stripe_sdk import StripeSdkGateway

            gateway = StripeSdkGateway.from_settings(settings)
    verifier = StripeSignatureVerifier(settings.webhook_secret_values())
    engine = Engine(settings=settings, store=store, gateway=gateway, verifier=verifier, clock=clock)
    if built_simulator is not None:
        built_simulator.connect(engine.ingest_webhook)
    return engine
