"""The store's side of ``engine.ops``: recorded runs, one inbox event by id,
overdue timers, and the retention of runs.

A run is written once, when it ends, as an upsert on its id: an idle run's
row (``sweep_idle_scheduler``) is rewritten every time a worker finds nothing
to do, every other run inserts its own. ``ON CONFLICT … DO UPDATE`` is the
same statement on SQLite and PostgreSQL (SQLAlchemy's dialect inserts).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from onboarding_fsm.events import InboxEntry
from onboarding_fsm.runs import RunOutcome, RunRecord
from onboarding_fsm.states import Source

from . import rows
from .pruning import BATCH
from .tables import runs, timers, webhook_events
from .timeconv import read_dt, read_json

_UPDATED = ("kind", "source", "actor", "started_at", "finished_at", "outcome", "counts", "detail")


def record_run(conn: Connection, run: RunRecord) -> None:
    values: dict[str, Any] = {
        "run_id": run.run_id,
        "kind": run.kind,
        "source": run.source.value,
        "actor": run.actor,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "outcome": run.outcome.value if run.outcome is not None else None,
        "counts": dict(run.counts),
        "detail": run.detail,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(runs).values(values)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[runs.c.run_id], set_={name: insert.excluded[name] for name in _UPDATED}
        )
    )


def recorded_runs(conn: Connection, kind: str | None, limit: int) -> list[RunRecord]:
    r = runs.c
    query = sa.select(runs).order_by(r.started_at.desc(), r.run_id.desc()).limit(limit)
    if kind is not None:
        query = query.where(r.kind == kind)  # ix_ofsm_runs_kind_started
    return [_run(row._mapping) for row in conn.execute(query)]


def _run(m: Any) -> RunRecord:
    started = read_dt(m["started_at"])
    assert started is not None
    return RunRecord(
        run_id=m["run_id"],
        kind=m["kind"],
        source=Source(m["source"]),
        actor=m["actor"],
        started_at=started,
        finished_at=read_dt(m["finished_at"]),
        outcome=RunOutcome(m["outcome"]) if m["outcome"] is not None else None,
        counts={str(k): int(v) for k, v in (read_json(m["counts"]) or {}).items()},
        detail=m["detail"],
    )


def inbox_event(conn: Connection, event_id: str) -> InboxEntry | None:
    row = conn.execute(sa.select(webhook_events).where(webhook_events.c.event_id == event_id)).first()
    return rows.inbox_entry(row._mapping) if row is not None else None


def overdue_timers(conn: Connection, before: datetime) -> int:
    """Unfired timers due before ``before``, whether awake, leased or backing off."""
    t = timers.c
    return int(conn.execute(sa.select(sa.func.count()).where(t.fired_at.is_(None), t.due_at < before)).scalar_one())


def delete_runs(before: datetime, batch: int = BATCH) -> sa.Delete:
    """Runs started before ``before`` (an idle run's row is restarted every time,
    so it stays while a worker is alive)."""
    r = runs.c
    ids = sa.select(r.run_id).where(r.started_at < before).order_by(r.run_id).limit(batch)
    return sa.delete(runs).where(r.run_id.in_(ids.scalar_subquery()))
