"""Issue 9, item 11: retention. ``Engine.prune`` deletes published outbox
messages and empties inbox payloads older than ``retention_days``; inbox rows
keep deduping Stripe's retries, and the audit trail is never touched. The
worker runs it daily and ``onboarding-fsm prune`` on demand."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from adapters.cli import main
from adapters.worker import Worker, WorkerConfig
from onboarding_fsm.errors import InvalidInput, SettingsError
from onboarding_fsm.events import Outcome
from onboarding_fsm.retention import cutoff
from onboarding_fsm.settings import Settings
from tests.conftest import World


def test_prune_keeps_what_dedupe_and_audit_need(world: World) -> None:
    acct = world.create()
    world.onboard(acct)
    world.sim.tick()
    assert world.engine.inbox(), "the onboarding produced webhooks"
    sent = world.engine.dispatch_outbox(lambda message: None, limit=1000)
    assert sent > 0
    history = world.engine.history(acct)
    event = world.sim.events[0]

    assert world.engine.prune().outbox_deleted == 0, "nothing is old yet"
    world.clock.advance(timedelta(days=91))
    report = world.engine.prune()

    assert report.before == world.clock.now() - timedelta(days=90)
    assert report.outbox_deleted == sent and report.inbox_emptied == len(world.engine.inbox())
    assert all(entry.payload == {} for entry in world.engine.inbox())
    assert world.engine.history(acct) == history and world.engine.verify_audit().ok
    body, header = world.sim.sign(event)  # Stripe sends an old event again, signed anew
    assert world.engine.ingest_webhook(body, header).outcome is Outcome.DUPLICATE


def test_the_retention_never_undercuts_stripes_retry_window(world: World) -> None:
    with pytest.raises(SettingsError, match="retention_days"):
        Settings(retention_days=3)
    assert Settings(retention_days=30).engine_config().retention == timedelta(days=30)
    assert world.engine.config.retention == timedelta(days=90)
    with pytest.raises(InvalidInput, match="at least 4 days"):
        cutoff(world.clock.now(), timedelta(days=3))  # what an EngineConfig built by hand meets in prune


def test_the_worker_prunes_daily(world: World) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    worker = Worker(world.engine, WorkerConfig(), scheduler=BackgroundScheduler)
    worker.configure()
    worker.scheduler.start(paused=True)
    try:
        job = worker.scheduler.get_job("prune")
        assert job is not None and job.trigger.interval == timedelta(days=1)
    finally:
        worker.scheduler.shutdown(wait=False)
    assert worker.prune().outbox_deleted == 0


def test_the_prune_command(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONBOARDING_FSM_DATABASE_URL", f"sqlite:///{tmp_path / 'p.sqlite3'}")
    assert main(["demo"]) == 0
    capsys.readouterr()
    assert main(["prune", "--now", "2100-01-01T00:00:00+00:00"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("before 2099-10-03T00:00:00+00:00: ") and "inbox payload(s) emptied" in out
    assert main(["audit", "verify"]) == 0, "the audit trail is intact"
