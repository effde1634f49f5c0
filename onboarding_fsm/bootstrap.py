"""The one place that wires adapters from settings (the only core module
allowed to import ``adapters``). Nothing is built at import time: every
adapter is imported inside the function that builds it.

* ``build_engine`` — the engine on the configured store and Stripe backend;
* ``build_store`` — the configured database (for ``db upgrade``);
* ``build_sandbox`` — an engine on the in-process simulator with a fake
  clock, webhooks delivered straight in (demo, tests, platform tests);
* ``build_simulated_stripe`` — the simulator served over HTTP and the
  official SDK gateway pointed at it (``serve`` on the embedded default);
* ``build_app`` — the platform's ASGI app with metrics observing the engine;
* ``self_check`` — Stripe's side of the configuration (``doctor``, start-up);
* ``build_worker`` — the APScheduler worker with its settings (and its own
  metrics endpoint when ``worker_metrics_port`` is set);
* ``build_outbox_handler`` — the platform's outbox handler (``outbox_handler``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .clock import FakeClock, SystemClock
from .engine import Engine
from .settings import Settings

if TYPE_CHECKING:
    from socket import socket

    from adapters.http.app import App
    from adapters.http.metrics import MetricsServer
    from adapters.http.serving import Served
    from adapters.simulator import Simulator
    from adapters.simulator.sandbox import Sandbox
    from adapters.simulator.server import SimulatorServer
    from adapters.sqlalchemy_store import SqlStore
    from adapters.stripe import StripeSdkGateway
    from adapters.worker import Worker

    from .outbox import Handler
    from .ports import Clock, Observer, Store, StripeGateway
    from .selfcheck import SelfCheck


def build_store(settings: Settings) -> SqlStore:
    """The configured database, not yet migrated."""
    from adapters.sqlalchemy_store import SqlStore

    return SqlStore.from_url(settings.database_url, synchronous=settings.sqlite_synchronous)


def build_stripe_gateway(settings: Settings, *, check_mode: bool = False) -> StripeSdkGateway:
    """The official SDK gateway; ``check_mode`` asks Stripe whether the key's
    mode is the configured one (for processes that talk to Stripe a while)."""
    from adapters.stripe import StripeSdkGateway

    from .errors import SettingsError

    if settings.stripe_api_key is None:
        raise SettingsError("stripe_backend='stripe' needs stripe_api_key")
    gateway = StripeSdkGateway(
        settings.stripe_api_key.get_secret_value(),
        api_base=settings.stripe_api_base,
        max_network_retries=settings.stripe_max_network_retries,
        timeout=settings.stripe_timeout_seconds,
        call_budget=settings.stripe_call_budget_seconds,
    )
    if check_mode:
        gateway.check_mode(settings.livemode)
    return gateway


def build_engine(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    gateway: StripeGateway | None = None,
    store: Store | None = None,
    observers: Iterable[Observer] = (),
    check_mode: bool = False,
) -> Engine:
    """Build an engine from settings (defaults: SQLite file + local simulator).

    ``gateway``/``store``/``clock`` replace what the settings would build —
    tests pass a simulator sharing a fake clock; platforms may pass their own.
    When the engine builds the simulator itself, the simulator's signed
    events are delivered straight into ``engine.ingest_webhook``.
    """
    from adapters.stripe import StripeSignatureVerifier
    from adapters.stripe.metered import MeteredGateway

    settings = settings or Settings()
    clock = clock or SystemClock()
    if store is None:
        store = build_store(settings)
        store.migrate()
    built: Simulator | None = None
    if gateway is None:
        if settings.stripe_backend == "simulator":
            gateway = built = _simulator(settings, clock)
        else:
            gateway = build_stripe_gateway(settings, check_mode=check_mode)
    metered = MeteredGateway(gateway)  # every Stripe call timed for the observers (the app's metrics)
    engine = Engine(
        config=settings.engine_config(),
        store=store,
        gateway=metered,
        verifier=StripeSignatureVerifier(settings.webhook_secret_values()),
        clock=clock,
        observers=observers,
    )
    metered.report_to(engine.ops.stripe_called)
    if built is not None:
        built.connect(engine.ingest_webhook)
    return engine


def _simulator(settings: Settings, clock: Clock) -> Simulator:
    """The in-process simulator, with this deployment's Connect endpoint registered."""
    from adapters.simulator import Simulator

    sim = Simulator(clock, webhook_secret=settings.webhook_secret_values()[0])
    sim.add_webhook_endpoint(settings.public_base_url + settings.webhook_path)  # as a correct set-up has
    return sim


def build_sandbox(settings: Settings | None = None, *, clock: FakeClock | None = None, **simulator: Any) -> Sandbox:
    """An engine and the in-process simulator it talks to, sharing one fake
    clock, with the simulator's events delivered straight into the engine.
    ``simulator`` are ``Simulator`` options (``delivery``, ``seed``…)."""
    from adapters.simulator import Simulator
    from adapters.simulator.sandbox import Sandbox

    settings = settings or Settings()
    clock = clock or FakeClock()
    simulator.setdefault("webhook_secret", settings.webhook_secret_values()[0])
    sim = Simulator(clock, **simulator)
    sim.add_webhook_endpoint(settings.public_base_url + settings.webhook_path)  # as a correct set-up has
    store = build_store(settings)
    store.migrate()
    engine = build_engine(settings, clock=clock, gateway=sim, store=store)
    sim.connect(engine.ingest_webhook)
    return Sandbox(engine, sim, clock, store)


class SimulatedStripe:
    """The simulator's HTTP server on a bound socket, and the SDK gateway that
    talks to it. Served from a background thread unless built with
    ``background=False`` (then the caller serves ``server.app`` on ``sock``)."""

    def __init__(
        self,
        server: SimulatorServer,
        sock: socket,
        url: str,
        served: Served | None,
        gateway: StripeSdkGateway,
        api_key: str,
    ) -> None:
        self.server = server
        self.api_key = api_key
        self.sock = sock
        self.url = url
        self.served = served
        self.gateway = gateway
        self.sim = server.sim

    def stop(self) -> None:
        if self.served is not None:
            self.served.stop()
        self.server.stop_delivery()


def build_simulated_stripe(
    settings: Settings,
    sock: socket,
    *,
    clock: Clock | None = None,
    webhook_url: str | None = None,
    deliver: bool = True,
    background: bool = True,
    gateway_options: dict[str, Any] | None = None,
) -> SimulatedStripe:
    """The simulator's HTTP server on ``sock`` (webhooks POSTed to
    ``webhook_url`` by a delivery thread when ``deliver``), and the official
    SDK gateway pointed at it: the code path real Stripe takes."""
    from adapters.http.serving import Served, url_of
    from adapters.simulator import Simulator
    from adapters.simulator.server import TEST_KEY, SimulatorServer
    from adapters.stripe import StripeSdkGateway

    sim = Simulator(
        clock or SystemClock(),
        webhook_secret=settings.webhook_secret_values()[0],
        hosted_base_url=url_of(sock),
        seed=secrets.randbits(32),
    )
    if webhook_url:
        sim.add_webhook_endpoint(webhook_url)  # the Connect endpoint a correct set-up has (``self_check``)
    server = SimulatorServer(sim, webhook_url=webhook_url)
    if deliver:
        server.start_delivery()
    url = url_of(sock)
    served = Served(server.app, sock) if background else None
    options: dict[str, Any] = {
        "max_network_retries": 2,
        "timeout": settings.stripe_timeout_seconds,
        "call_budget": settings.stripe_call_budget_seconds,
        **(gateway_options or {}),
    }
    return SimulatedStripe(server, sock, url, served, StripeSdkGateway(TEST_KEY, api_base=url, **options), TEST_KEY)


def self_check(settings: Settings, gateway: StripeGateway | None = None) -> SelfCheck:
    """Is Stripe set up to tell this deployment about its connected accounts
    (``selfcheck``)? For ``onboarding-fsm doctor`` and the start-up of
    ``serve``/``worker``. Without ``gateway``, the configured backend's: on
    Stripe, built with its start-up mode check (``build_stripe_gateway``),
    whose refusal becomes a finding here. Raises ``StripeFailure`` when
    Stripe cannot be asked."""
    from .errors import SettingsError
    from .selfcheck import Expected, Finding, SelfCheck, check, key_mode
    from .settings import SIMULATOR_WEBHOOK_SECRET

    found: tuple[Finding, ...] = ()
    if gateway is None and settings.stripe_backend == "stripe":
        try:
            gateway = build_stripe_gateway(settings, check_mode=True)
        except SettingsError as exc:
            return SelfCheck((key_mode(settings.livemode, str(exc)),))
        found = (key_mode(settings.livemode, None),)
    elif gateway is None:
        gateway = _simulator(settings, SystemClock())
    expected = Expected(
        webhook_url=settings.public_base_url + settings.webhook_path,
        livemode=settings.livemode,
        secrets=len(settings.webhook_secrets),
        public_secret=settings.stripe_backend == "stripe"
        and SIMULATOR_WEBHOOK_SECRET in settings.webhook_secret_values(),
    )
    return SelfCheck(found + check(gateway.list_webhook_endpoints(), expected).findings)


def build_app(settings: Settings, engine: Engine) -> App:
    """The platform's ASGI app over ``engine``, its metrics subscribed."""
    from adapters.http import create_app

    return create_app(engine, settings)


def build_worker(settings: Settings, engine: Engine, *, reconcile: bool = True) -> Worker:
    """The worker with the settings' intervals; ``reconcile=False`` when the
    backend cannot be reconciled against (the in-process simulator)."""
    from adapters.worker import Worker, WorkerConfig

    config = WorkerConfig(
        sweep_interval=timedelta(seconds=settings.sweep_interval_seconds),
        reconcile_interval=timedelta(seconds=settings.reconcile_interval_seconds) if reconcile else None,
        reconcile_stale_after=timedelta(seconds=settings.reconcile_stale_after_seconds),
        misfire_grace=timedelta(seconds=settings.misfire_grace_seconds),
        checkpoint_interval=timedelta(seconds=settings.audit_checkpoint_interval_seconds),
        outbox_interval=timedelta(seconds=settings.outbox_interval_seconds),
    )
    exporter = build_worker_metrics(settings, engine)
    return Worker(engine, config, outbox_handler=build_outbox_handler(settings), exporter=exporter)


def build_worker_metrics(settings: Settings, engine: Engine) -> MetricsServer | None:
    """The worker's share of the metrics — its deadline fetches, reconcile's
    Stripe calls, the transitions they fire, which the app's /metrics never
    sees — subscribed to ``engine`` and served on ``bind_host:worker_metrics_port``
    once the worker runs; None when the port is unset. Only the per-process
    series: the app already exports the database gauges for every process."""
    if settings.worker_metrics_port is None:
        return None
    from adapters.http.metrics import Metrics, MetricsServer

    metrics = Metrics.per_process()
    engine.subscribe(metrics)
    return MetricsServer(metrics.registry, settings.bind_host, settings.worker_metrics_port)


def build_outbox_handler(settings: Settings) -> Handler | None:
    """``factory(settings)`` for ``outbox_handler = "package.module:factory"``
    (None when unset): refused with a ``SettingsError`` at start-up when it
    cannot be imported or makes something that is not callable, not at the
    first message."""
    import importlib

    from .errors import SettingsError

    if settings.outbox_handler is None:
        return None
    module_name, _, attr = settings.outbox_handler.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise SettingsError(f"outbox_handler {settings.outbox_handler!r} cannot be loaded: {exc}") from None
    handler = factory(settings)
    if not callable(handler):
        raise SettingsError(f"outbox_handler {settings.outbox_handler!r} made {type(handler).__name__}, not a callable")
    built: Handler = handler
    return built
