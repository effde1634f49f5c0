"""The APScheduler worker: job configuration, sweeps, the wake-up, clean stop."""

from __future__ import annotations

from datetime import timedelta

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from adapters.worker import Worker, WorkerConfig
from onboarding_fsm import State, Trigger
from tests.conftest import World


def worker_for(world: World, **config: object) -> Worker:
    """The worker's jobs and defaults on a scheduler that does not take over the thread."""
    return Worker(world.engine, WorkerConfig(**config), scheduler=BackgroundScheduler)  # type: ignore[arg-type]


def test_jobs_coalesce_run_alone_and_have_a_misfire_grace(world: World) -> None:
    worker = worker_for(world, misfire_grace=timedelta(seconds=42))
    worker.configure()
    worker.scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in worker.scheduler.get_jobs()}
        assert set(jobs) == {"sweep", "reconcile", "prune", "checkpoint"}
        for job in jobs.values():
            assert job.coalesce is True
            assert job.max_instances == 1
            assert job.misfire_grace_time == 42
        assert isinstance(worker.jobstore, MemoryJobStore)  # this process's only: never shared
        assert {job.id for job in worker.jobstore.get_all_jobs()} == set(jobs)
    finally:
        worker.scheduler.shutdown(wait=False)


def test_sweep_fires_what_is_due_and_arms_the_wake_up_at_the_next_due_time(world: World) -> None:
    early, late = world.create("early"), world.create("late")
    world.engine.issue_link(early)
    world.clock.advance(timedelta(hours=1))
    world.engine.issue_link(late)
    worker = worker_for(world, sweep_interval=timedelta(hours=6))
    worker.configure()
    worker.scheduler.start(paused=True)
    try:
        world.clock.advance(timedelta(hours=22, minutes=30))
        report = worker.sweep()
        assert report is not None and report.transitions == ()
        wake = worker.scheduler.get_job("wake")
        assert wake is not None
        due = world.engine.get_account(early).link_issued_at + timedelta(hours=24)  # type: ignore[operator]
        assert wake.next_run_time == due  # before the next interval run, so it is armed
        world.clock.advance(timedelta(minutes=30))
        report = worker.sweep()
        assert report is not None
        assert [(t.account_id, t.trigger) for t in report.transitions] == [(early, Trigger.ABANDON)]
        assert world.state(late) == State.LINK_ISSUED.value
    finally:
        worker.scheduler.shutdown(wait=False)


def test_sweep_works_in_batches_until_idle(world: World) -> None:
    accounts = [world.create(f"s{n}") for n in range(5)]
    for acct in accounts:
        world.engine.issue_link(acct)
    world.clock.advance(timedelta(days=2))
    worker = Worker(world.engine, WorkerConfig(sweep_batch=2))
    report = worker.run_until_idle()
    assert len(report.transitions) == 5
    assert worker.run_until_idle().transitions == ()


def test_without_reconciliation_there_is_no_reconcile_job(world: World) -> None:
    worker = worker_for(world, reconcile_interval=None)
    worker.configure()
    worker.scheduler.start(paused=True)
    try:
        assert {job.id for job in worker.scheduler.get_jobs()} == {"sweep", "prune", "checkpoint"}
    finally:
        worker.scheduler.shutdown(wait=False)


def test_stop_is_idempotent_and_clean(world: World) -> None:
    worker = worker_for(world)
    worker.configure()
    worker.scheduler.start(paused=True)
    worker.stop()
    worker.stop()
    assert not worker.scheduler.running
    assert worker.sweep() is not None  # a stopped worker's sweep does nothing harmful
