"""The self-check against the simulator: in process, and over the official SDK
adapter talking to the simulator's HTTP server — passing and failing; the
``doctor`` command and the start-up check."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pytest

from adapters.cli import main
from adapters.cli.doctor import at_start_up
from adapters.cli.doctor import run as doctor
from adapters.http.serving import Served, bind, url_of
from adapters.simulator import Simulator
from adapters.simulator.server import TEST_KEY, SimulatorServer
from adapters.stripe import StripeSdkGateway
from onboarding_fsm import FakeClock, Settings
from onboarding_fsm.bootstrap import build_sandbox, build_simulated_stripe, self_check
from onboarding_fsm.errors import StripeRequestFailed
from onboarding_fsm.ports import StripeGateway
from onboarding_fsm.selfcheck import Expected, SelfCheck, check

BASE = "https://pay.example"
URL = BASE + "/webhooks/stripe"
SECRET = "whsec_doctor_test_secret"


@dataclass
class Side:
    """A simulator, and the gateway that asks it (itself, or the SDK over HTTP)."""

    sim: Simulator
    gateway: StripeGateway

    def add(self, url: str = URL, events: tuple[str, ...] = ("account.updated",), *, connect: bool = True) -> str:
        endpoint_id: str = self.sim.add_webhook_endpoint(url, events, connect=connect)["id"]
        return endpoint_id


@pytest.fixture(params=["in-process", "sdk-over-http"])
def side(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Side]:
    sim = Simulator(clock, webhook_secret=SECRET)
    if request.param == "in-process":
        yield Side(sim, sim)
        return
    served = Served(SimulatorServer(sim).app, bind())
    try:
        yield Side(sim, StripeSdkGateway(TEST_KEY, api_base=served.url, max_network_retries=0, sleep=lambda s: None))
    finally:
        served.stop()


def settings(**overrides: object) -> Settings:
    return Settings(public_base_url=BASE, webhook_secrets=SECRET, **overrides)  # type: ignore[arg-type]


def findings(report: SelfCheck) -> str:
    return "\n".join(f"{f.level.value} {f.topic}: {f.message}" for f in report.findings)


def test_a_correct_connect_endpoint_passes(side: Side) -> None:
    side.add(events=("account.updated", "capability.updated", "account.application.deauthorized"))
    report = self_check(settings(), side.gateway)
    assert report.passed and report.warnings == (), findings(report)


def test_no_endpoint_fails(side: Side) -> None:
    report = self_check(settings(), side.gateway)
    assert not report.passed and "no webhook endpoint at all in test mode" in findings(report)


def test_a_platform_endpoint_alone_fails(side: Side) -> None:
    side.add(events=("*",), connect=False)
    report = self_check(settings(), side.gateway)
    assert not report.passed and "only platform endpoint(s)" in findings(report)


def test_a_connect_endpoint_elsewhere_fails(side: Side) -> None:
    side.add("https://staging.example/webhooks/stripe")
    report = self_check(settings(), side.gateway)
    assert not report.passed and "point elsewhere" in findings(report)


def test_a_disabled_endpoint_fails_and_passes_once_enabled(side: Side) -> None:
    endpoint = side.add(events=("*",))
    side.sim.api.update_webhook_endpoint(endpoint, {"disabled": True})
    report = self_check(settings(), side.gateway)
    assert not report.passed and f"{endpoint} at {URL} is disabled" in findings(report)
    side.sim.api.update_webhook_endpoint(endpoint, {"disabled": False})
    assert self_check(settings(), side.gateway).passed


def test_an_endpoint_without_account_updated_fails(side: Side) -> None:
    side.add(events=("capability.updated", "account.application.deauthorized"))
    report = self_check(settings(), side.gateway)
    assert not report.passed and "not subscribed to account.updated" in findings(report)


def test_missing_capability_and_deauthorization_events_are_warnings(side: Side) -> None:
    side.add(events=("account.updated",))
    report = self_check(settings(), side.gateway)
    assert report.passed and len(report.warnings) == 2, findings(report)


def test_the_wrong_mode_fails(side: Side) -> None:
    """The simulator is test mode only: what a live deployment would make of its endpoints."""
    side.add(events=("*",))
    report = check(side.gateway.list_webhook_endpoints(), Expected(URL, livemode=True))
    assert not report.passed and "test mode endpoints" in findings(report)


def test_every_page_is_listed_and_only_this_platforms(side: Side) -> None:
    ids = {side.add(f"{BASE}/hooks/{n}") for n in range(105)}
    side.sim.as_platform("other").api.create_webhook_endpoint({"url": URL, "enabled_events": ["*"], "connect": True})
    listed = side.gateway.list_webhook_endpoints()
    assert {e.id for e in listed} == ids and all(e.connect and not e.livemode for e in listed)


def test_deleted_endpoints_are_gone_and_unknown_ones_are_404(side: Side) -> None:
    endpoint = side.add(events=("*",))
    assert side.sim.api.delete_webhook_endpoint(endpoint) == {
        "id": endpoint,
        "object": "webhook_endpoint",
        "deleted": True,
    }
    assert side.gateway.list_webhook_endpoints() == []
    with pytest.raises(StripeRequestFailed) as info:
        side.sim.api.delete_webhook_endpoint(endpoint)
    assert info.value.http_status == 404 and info.value.code == "resource_missing"


# --- what bootstrap wires --------------------------------------------------------------


def test_the_sandbox_and_the_embedded_default_pass_their_own_check(db_url: str, clock: FakeClock) -> None:
    sandbox = build_sandbox(Settings(database_url=db_url), clock=clock)
    try:
        report = self_check(Settings(database_url=db_url), sandbox.sim)
        assert report.passed and report.warnings == (), findings(report)
    finally:
        sandbox.close()
    # ``serve`` on the embedded default: the simulator over HTTP, the SDK gateway, webhooks to the app
    served = settings()
    stripe = build_simulated_stripe(served, bind(), clock=clock, webhook_url=URL, deliver=False)
    try:
        report = self_check(served, stripe.gateway)
        assert report.passed and report.warnings == (), findings(report)
    finally:
        stripe.stop()


@pytest.fixture
def stripe_env(monkeypatch: pytest.MonkeyPatch, clock: FakeClock, tmp_path: Path) -> Iterator[Simulator]:
    """``stripe_backend = "stripe"`` pointed at the simulator's HTTP server, in the environment."""
    sock = bind()
    stripe = build_simulated_stripe(settings(), sock, clock=clock, webhook_url=URL, deliver=False)
    for name, value in {
        "STRIPE_BACKEND": "stripe",
        "STRIPE_API_KEY": TEST_KEY,
        "STRIPE_API_BASE": url_of(sock),
        "PUBLIC_BASE_URL": BASE,
        "WEBHOOK_SECRETS": SECRET,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'doctor.sqlite3'}",
    }.items():
        monkeypatch.setenv(f"ONBOARDING_FSM_{name}", value)
    try:
        yield stripe.sim
    finally:
        stripe.stop()


def test_doctor_command_passes_fails_and_cannot_ask(
    stripe_env: Simulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "ok       key               the API key is a test mode key, as livemode=False says" in out
    assert "ok       Connect endpoint " in out and out.endswith("0 problem(s), 0 warning(s)\n")

    (endpoint,) = stripe_env.list_webhook_endpoints()
    stripe_env.api.delete_webhook_endpoint(endpoint.id)
    stripe_env.add_webhook_endpoint(URL, ["*"], connect=False)
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "problem  Connect endpoint  only platform endpoint(s)" in out and "fix: create a Connect endpoint" in out

    monkeypatch.setenv("ONBOARDING_FSM_STRIPE_API_KEY", "sk_test_nobody")
    assert main(["doctor"]) == 2
    assert "error: Stripe could not be asked: " in capsys.readouterr().err


def test_doctor_on_the_embedded_default_shows_a_correct_set_up() -> None:
    out = StringIO()
    assert doctor(Settings(), out=out) == 0
    assert out.getvalue().startswith("note: stripe_backend is the in-process simulator")


def test_the_start_up_check_logs_and_never_raises(
    stripe_env: Simulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="onboarding_fsm.selfcheck")
    report = at_start_up(Settings())
    assert report is not None and report.passed
    assert any(r.levelno == logging.INFO and getattr(r, "finding", None) == "ok" for r in caplog.records)

    (endpoint,) = stripe_env.list_webhook_endpoints()
    stripe_env.api.update_webhook_endpoint(endpoint.id, {"disabled": True})
    caplog.clear()
    report = at_start_up(Settings())
    assert report is not None and not report.passed
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("is disabled" in r.getMessage() and getattr(r, "check", None) == "Connect endpoint" for r in errors)
    assert "this deployment may miss account updates" in errors[-1].getMessage()

    monkeypatch.setenv("ONBOARDING_FSM_STRIPE_API_BASE", "http://127.0.0.1:9")  # nobody answers
    monkeypatch.setenv("ONBOARDING_FSM_STRIPE_MAX_NETWORK_RETRIES", "0")
    monkeypatch.setenv("ONBOARDING_FSM_STRIPE_CALL_BUDGET_SECONDS", "0.5")
    caplog.clear()
    assert at_start_up(Settings()) is None
    assert "Stripe could not be asked" in caplog.records[-1].getMessage()
    assert at_start_up(Settings(stripe_backend="simulator")) is None  # the in-process simulator: nothing to ask
