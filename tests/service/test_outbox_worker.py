"""The worker's ``outbox`` job and the configured handler
(``outbox_handler = "package.module:factory"``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from adapters.worker import Worker, WorkerConfig
from onboarding_fsm.bootstrap import build_outbox_handler, build_worker
from onboarding_fsm.errors import SettingsError
from onboarding_fsm.outbox import DeliveryReport
from onboarding_fsm.settings import Settings
from tests.conftest import World, make_settings

#: what the handler ``recording`` made has received, across the whole test session
RECEIVED: list[dict[str, Any]] = []


def recording(settings: Settings) -> Any:
    """An outbox handler factory, as a platform writes one: ``factory(settings)``."""

    def handle(payload: Mapping[str, Any]) -> None:
        RECEIVED.append(dict(payload))

    return handle


def not_callable(settings: Settings) -> object:
    return object()


def test_the_outbox_job_runs_on_its_interval_and_like_the_others(world: World) -> None:
    worker = Worker(
        world.engine,
        WorkerConfig(outbox_interval=timedelta(seconds=2), misfire_grace=timedelta(seconds=42)),
        scheduler=BackgroundScheduler,
        outbox_handler=recording(Settings()),
    )
    worker.configure()
    worker.scheduler.start(paused=True)
    try:
        job = worker.scheduler.get_job("outbox")
        assert job is not None and job.trigger.interval == timedelta(seconds=2)
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 42)
    finally:
        worker.scheduler.shutdown(wait=False)


def test_the_job_delivers_in_batches_until_nothing_is_due(world: World) -> None:
    for n in range(3):
        world.engine.issue_link(world.create(f"seller-{n}"))
    got: list[Mapping[str, Any]] = []
    worker = Worker(world.engine, WorkerConfig(outbox_batch=2), outbox_handler=got.append)
    report = worker.deliver()
    assert report is not None and report.delivered == len(got) == 6
    assert worker.deliver() == DeliveryReport() and world.engine.outbox.backlog().pending == 0
    assert Worker(world.engine).deliver() is None, "no handler, no delivery"


def test_run_until_idle_delivers_the_outbox_checkpoint_announcement_included(world: World, db_url: str) -> None:
    acct = world.create()
    world.engine.issue_link(acct)
    world.clock.advance(timedelta(days=2))  # the link is abandoned
    worker = build_worker(make_settings(db_url, outbox_handler=f"{__name__}:recording"), world.engine)
    RECEIVED.clear()
    worker.run_until_idle()
    moves = [m["to"] for m in RECEIVED if m["type"] == "onboarding.transition"]
    assert moves == ["created", "link_issued", "returned_incomplete"]
    assert [m["seq"] for m in RECEIVED if m["type"] == "audit.checkpoint"] == [1], "the new head, announced"
    assert world.engine.outbox.backlog().pending == 0


def test_an_unusable_handler_is_refused_at_start_up(db_url: str) -> None:
    assert build_outbox_handler(make_settings(db_url)) is None
    for spec in ("tests.nowhere:factory", f"{__name__}:missing"):
        with pytest.raises(SettingsError, match="cannot be loaded"):
            build_outbox_handler(make_settings(db_url, outbox_handler=spec))
    with pytest.raises(SettingsError, match="not a callable"):
        build_outbox_handler(make_settings(db_url, outbox_handler=f"{__name__}:not_callable"))
    with pytest.raises(SettingsError, match="outbox_handler"):
        make_settings(db_url, outbox_handler="no colon here")
