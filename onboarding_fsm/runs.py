"""Run ids: every sweep and reconcile run is named, and every transition it
causes carries the name, so an auditor can ask "what did that run do?".

Each run also leaves a ``RunRecord`` (``ofsm_runs``): who ran it, when, how
it ended and what it counted, for ``status`` and the metrics. A worker sweeps
every few seconds and almost always finds nothing due; a row per idle run
would grow the table by 17,000 rows a day per worker and say nothing. So a
run that counted nothing (and did not fail) is recorded under one row per
kind and source (``sweep_idle_scheduler``), updated each time: the last idle
run still shows when a worker last looked, and every run that did something
keeps its own row under its own id (the id its transitions carry). ``prune``
deletes records older than the retention.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .audit import Cause
from .states import Source

SWEEP = "sweep"
RECONCILE = "reconcile"
PRUNE = "prune"


class RunOutcome(StrEnum):
    OK = "ok"
    #: an error ended it early (``detail`` says which)
    FAILED = "failed"
    #: reconcile refused to detach anything: a key of another platform or mode
    GUARDED = "guarded"


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One recorded run of a sweep, reconcile or prune (``ofsm_runs``)."""

    run_id: str
    kind: str
    source: Source
    actor: str | None
    started_at: datetime
    finished_at: datetime | None
    outcome: RunOutcome | None
    #: what it did, e.g. ``{"transitions": 3, "reminders": 1}`` or ``{"drift.synced": 2}``
    counts: Mapping[str, int]
    detail: str | None = None

    @property
    def idle(self) -> bool:
        """It counted nothing: recorded under the kind's idle id, updated each time."""
        return self.outcome is RunOutcome.OK and not any(self.counts.values())


def new_run_id(kind: str) -> str:
    """``sweep_…`` / ``reconcile_…``: unique without coordination between workers."""
    return f"{kind}_{uuid.uuid4().hex[:20]}"


@dataclass(frozen=True, slots=True)
class Run:
    """Who started a run: the scheduler, or an operator by hand."""

    id: str
    source: Source = Source.SCHEDULER
    actor: str = "scheduler"

    @classmethod
    def start(cls, kind: str, *, source: Source = Source.SCHEDULER, actor: str | None = None) -> Run:
        return cls(new_run_id(kind), source, actor or source.value)

    def cause(self, source_ref: str | None = None) -> Cause:
        return Cause(self.source, source_ref, self.actor, run_id=self.id)

    @property
    def kind(self) -> str:
        return self.id.partition("_")[0]

    def record(
        self,
        started_at: datetime,
        finished_at: datetime,
        counts: Mapping[str, int],
        outcome: RunOutcome = RunOutcome.OK,
        detail: str | None = None,
    ) -> RunRecord:
        """What this run leaves in ``ofsm_runs``: an idle run (nothing counted,
        not failed) under its kind's idle id, any other under its own."""
        idle = outcome is RunOutcome.OK and not any(counts.values())
        run_id = f"{self.kind}_idle_{self.source.value}" if idle else self.id
        return RunRecord(
            run_id, self.kind, self.source, self.actor, started_at, finished_at, outcome, dict(counts), detail
        )


def operated(kind: str, operator: str | None) -> Run:
    """A run by the scheduler, or by the named operator (``Source.OPERATOR``)."""
    if operator is None:
        return Run.start(kind)
    return Run.start(kind, source=Source.OPERATOR, actor=f"operator:{operator}")
