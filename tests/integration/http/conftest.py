"""Real sockets: the platform app and the simulator's HTTP server under uvicorn
on free loopback ports, the SDK adapter between them, webhooks over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from adapters.http import SignedTokenAuth, create_app
from adapters.http.auth import link_marker_of
from adapters.http.serving import Served, bind, url_of
from adapters.simulator import Simulator
from adapters.simulator.server import SimulatorServer
from adapters.sqlalchemy_store import SqlStore
from adapters.stripe import StripeSdkGateway
from onboarding_fsm import FakeClock, Settings
from onboarding_fsm.bootstrap import SimulatedStripe, build_engine, build_simulated_stripe, build_store
from onboarding_fsm.engine import Engine
from tests.integration.http.holder import Holder


@dataclass
class Stack:
    engine: Engine
    settings: Settings
    store: SqlStore
    stripe: SimulatedStripe
    platform: Served
    auth: SignedTokenAuth
    clock: FakeClock

    @property
    def sim(self) -> Simulator:
        return self.stripe.sim

    @property
    def server(self) -> SimulatorServer:
        return self.stripe.server

    @property
    def gateway(self) -> StripeSdkGateway:
        return self.stripe.gateway

    @property
    def simulated(self) -> Served:
        assert self.stripe.served is not None
        return self.stripe.served

    def start_url(self, account_id: str) -> str:
        return f"{self.settings.start_url(account_id)}?token={self.auth.token_for(account_id)}"

    def create(self, ref: str = "seller-1", **kwargs: object) -> str:
        kwargs.setdefault("capabilities", ["card_payments", "transfers"])
        return self.engine.create_account(ref, str(kwargs.pop("country", "US")), **kwargs).stripe_account_id  # type: ignore[arg-type]

    def settle(self) -> None:
        """Deliver every pending webhook now (the delivery thread would, a moment later)."""
        self.sim.deliver()

    def state(self, account_id: str) -> str:
        return self.engine.get_account(account_id).state.value

    def stop(self) -> None:
        self.platform.stop()
        self.stripe.stop()
        self.engine.close()


def make_stack(db_url: str, clock: FakeClock, **settings: object) -> Stack:
    platform_sock = bind()
    settings_obj = Settings(database_url=db_url, public_base_url=url_of(platform_sock), **settings)  # type: ignore[arg-type]
    stripe = build_simulated_stripe(
        settings_obj,
        bind(),
        clock=clock,
        webhook_url=settings_obj.public_base_url + settings_obj.webhook_path,
        deliver=False,  # tests deliver when they choose (``settle``)
        gateway_options={"sleep": lambda s: None},
    )
    store = build_store(settings_obj)
    store.migrate()
    engine = build_engine(settings_obj, clock=clock, gateway=stripe.gateway, store=store)
    auth = SignedTokenAuth("test-secret", link_marker=link_marker_of(engine))
    platform = Served(create_app(engine, settings_obj, authenticator=auth), platform_sock)
    return Stack(engine, settings_obj, store, stripe, platform, auth, clock)


@pytest.fixture
def stack(db_url: str, clock: FakeClock) -> Iterator[Stack]:
    s = make_stack(db_url, clock)
    yield s
    s.stop()


@pytest.fixture
def holder() -> Iterator[Holder]:
    h = Holder()
    yield h
    h.client.close()
