"""Run ids: every sweep and reconcile run is named, and every transition it
causes carries the name, so an auditor can ask "what did that run do?"."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from .audit import Cause
from .states import Source


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


def operated(kind: str, operator: str | None) -> Run:
    """A run by the scheduler, or by the named operator (``Source.OPERATOR``)."""
    if operator is None:
        return Run.start(kind)
    return Run.start(kind, source=Source.OPERATOR, actor=f"operator:{operator}")
