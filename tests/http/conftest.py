"""Real sockets: the platform app and the simulator's HTTP server under uvicorn
on free loopback ports, the SDK adapter between them, webhooks over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from adapters.http import SignedTokenAuth, create_app
from adapters.serving import Served, bind, url_of
from adapters.simulator import Simulator
from adapters.simulator.server import TEST_KEY, SimulatorServer
from adapters.stripe_sdk import StripeSdkGateway
from onboarding_fsm import FakeClock, Settings, build_engine
from onboarding_fsm.engine import Engine
from tests.http.holder import Holder


@dataclass
class Stack:
    engine: Engine
    sim: Simulator
    server: SimulatorServer
    platform: Served
    simulated: Served
    auth: SignedTokenAuth
    gateway: StripeSdkGateway
    clock: FakeClock

    def start_url(self, account_id: str) -> str:
        return f"{self.engine.settings.start_url(account_id)}?token={self.auth.token_for(account_id)}"

    def create(self, ref: str = "seller-1", **kwargs: object) -> str:
        kwargs.setdefault("capabilities", ["card_payments", "transfers"])
        return self.engine.create_account(ref, str(kwargs.pop("country", "US")), **kwargs).stripe_account_id  # type: ignore[arg-type]

    def settle(self) -> None:
        """Deliver every pending webhook now (the delivery thread would, a moment later)."""
        self.sim.deliver()

    def state(self, account_id: str) -> str:
        return self.engine.get_account(account_id).state.value


def make_stack(db_url: str, clock: FakeClock, **settings: object) -> Stack:
    platform_sock, sim_sock = bind(), bind()
    sim = Simulator(clock, hosted_base_url=url_of(sim_sock))
    settings_obj = Settings(database_url=db_url, public_base_url=url_of(platform_sock), **settings)  # type: ignore[arg-type]
    server = SimulatorServer(sim, webhook_url=settings_obj.public_base_url + settings_obj.webhook_path)
    simulated = Served(server.app, sim_sock)
    gateway = StripeSdkGateway(TEST_KEY, api_base=simulated.url, max_network_retries=2, sleep=lambda s: None)
    engine = build_engine(settings_obj, clock=clock, gateway=gateway)
    auth = SignedTokenAuth("test-secret", max_age=900)
    platform = Served(create_app(engine, authenticator=auth), platform_sock)
    return Stack(engine, sim, server, platform, simulated, auth, gateway, clock)


@pytest.fixture
def stack(db_url: str, clock: FakeClock) -> Iterator[Stack]:
    s = make_stack(db_url, clock)
    yield s
    s.platform.stop()
    s.simulated.stop()
    s.server.stop_delivery()
    s.engine.store.close()


@pytest.fixture
def holder() -> Iterator[Holder]:
    h = Holder()
    yield h
    h.client.close()
