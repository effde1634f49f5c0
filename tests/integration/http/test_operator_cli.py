"""The operator's commands end to end: ``inbox reprocess``, ``sync`` and
``status`` run in-process through the CLI's entry point, against the
simulator's HTTP server through the official SDK adapter (the path real
Stripe takes), with a webhook that failed because Stripe answered 500s."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.cli import main
from adapters.cli.ops import cmd_status
from adapters.http.serving import bind
from adapters.simulator.server import TEST_KEY
from adapters.stripe_wire.signing import sign
from onboarding_fsm import Outcome, Settings, Source, build_engine
from onboarding_fsm.bootstrap import SimulatedStripe, build_simulated_stripe
from onboarding_fsm.engine import Engine
from onboarding_fsm.errors import StripeUnavailable
from onboarding_fsm.settings import SIMULATOR_WEBHOOK_SECRET
from tests.conftest import World


@pytest.fixture
def stripe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatedStripe]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ops.sqlite3'}")
    served = build_simulated_stripe(settings, bind(), deliver=False, gateway_options={"sleep": lambda s: None})
    for name, value in {
        "DATABASE_URL": settings.database_url,
        "STRIPE_BACKEND": "stripe",
        "STRIPE_API_KEY": TEST_KEY,
        "STRIPE_API_BASE": served.url,
    }.items():
        monkeypatch.setenv(f"ONBOARDING_FSM_{name}", value)
    yield served
    served.stop()


@pytest.fixture
def engine(stripe: SimulatedStripe) -> Iterator[Engine]:
    """The platform's own engine (the serving process), on the same database and Stripe."""
    e = build_engine(Settings(clock_skew_tolerance_seconds=0), gateway=stripe.gateway)
    yield e
    e.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def webhook(engine: Engine, stripe: SimulatedStripe, account_id: str, event_id: str, created: int, **changes: object):  # type: ignore[no-untyped-def]
    obj = {**stripe.sim.account_json(account_id), **changes}
    event = {"id": event_id, "object": "event", "type": "account.updated", "account": account_id,
             "created": created, "livemode": False, "data": {"object": obj}}  # fmt: skip
    body = json.dumps(event).encode()
    return engine.ingest_webhook(body, sign(body, SIMULATOR_WEBHOOK_SECRET, int(time.time())))


def test_a_failed_event_is_reprocessed_by_an_operator(
    engine: Engine, stripe: SimulatedStripe, capsys: pytest.CaptureFixture[str]
) -> None:
    acct = engine.create_account("seller-ops", "US", ["card_payments", "transfers"]).stripe_account_id
    engine.issue_link(acct)
    created = int(time.time()) + 2  # after our own fetch
    assert webhook(engine, stripe, acct, "evt_1", created).outcome is Outcome.APPLIED
    stripe.server.faults.add("status", status=500, times=20, method="GET", path_prefix=f"/v1/accounts/{acct}")
    with pytest.raises(StripeUnavailable):  # a tie, and Stripe cannot be asked to settle it: 503, recorded failed
        webhook(engine, stripe, acct, "evt_2", created, requirements={"disabled_reason": "rejected.fraud"})
    stripe.server.faults.faults.clear()
    assert [e.outcome for e in engine.inbox() if e.event_id == "evt_2"] == [Outcome.FAILED]
    stripe.sim.reject(acct)  # what Stripe says now

    code, out = run(capsys, "inbox", "reprocess", "--failed", "--operator", "alice")
    assert code == 0, out
    assert f"applied  evt_2  {acct}  link_issued -> disabled" in out and "1 applied or settled" in out
    last = engine.history(acct)[-1]
    assert (last.source, last.source_ref, last.actor) == (Source.OPERATOR, "evt_2", "operator:alice")
    assert [e.outcome for e in engine.inbox() if e.event_id == "evt_2"] == [Outcome.APPLIED]

    code, out = run(capsys, "inbox", "reprocess", "--id", "evt_nope")
    assert (code, out.strip()) == (2, "error: no recorded webhook event 'evt_nope'")
    code, out = run(capsys, "inbox", "reprocess", "--id", "evt_1", "--operator", "bob")
    assert code == 0 and "stays recorded applied" in out
    code, out = run(capsys, "inbox", "--outcome", "applied")  # the inbox listing is as it was
    assert code == 0 and "evt_2" in out


def test_sync_and_status(engine: Engine, stripe: SimulatedStripe, capsys: pytest.CaptureFixture[str]) -> None:
    acct = engine.create_account("seller-sync", "US", ["card_payments", "transfers"]).stripe_account_id
    engine.issue_link(acct)
    stripe.sim.reject(acct)  # its webhook never arrives
    code, out = run(capsys, "sync", acct, "--operator", "bob")
    assert code == 0 and f"{acct} link_issued -> disabled (sync, operator:bob, request req_" in out
    code, out = run(capsys, "sync", acct, "--operator", "bob")
    assert code == 0 and "no change, Stripe agrees" in out
    assert run(capsys, "sync", "acct_nope")[0] == 2

    code, out = run(capsys, "check-deadlines", "--operator", "carol")
    assert code == 0
    code, out = run(capsys, "status")
    assert code == 0, out
    assert "timers         due 0, overdue 0" in out and "dead letters 0" in out
    assert "last sweep" in out and "by operator:carol: ok; idle: nothing to do" in out
    assert "last reconcile  never recorded" in out and "disabled 1" in out
    code, out = run(capsys, "status", "--json")
    status = json.loads(out)
    assert code == 0 and status["runs"]["sweep"]["idle"] and status["accounts"]["disabled"] == 1
    assert (status["timers"]["overdue_after_seconds"], status["attention"]) == (300, [])


def test_sync_and_reprocess_refuse_the_in_process_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONBOARDING_FSM_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    for argv in (("sync", "acct_1"), ("inbox", "reprocess", "--failed")):
        code, out = run(capsys, *argv)
        assert code == 2 and "stripe_backend=stripe" in out


def test_status_exits_1_when_a_timer_is_overdue(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    acct = world.create()
    world.engine.issue_link(acct)
    world.clock.advance(timedelta(hours=24, minutes=10))  # abandonment due 10 min ago, no worker
    assert cmd_status(argparse.Namespace(overdue_after=None, json=False), world.engine) == 1
    out = capsys.readouterr().out
    assert "overdue 1" in out and "ATTENTION: 1 timer(s) unfired more than 300 s past due" in out
    world.engine.sweep()
    assert cmd_status(argparse.Namespace(overdue_after=None, json=False), world.engine) == 0
