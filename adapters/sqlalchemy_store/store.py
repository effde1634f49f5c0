"""The ``Store`` port on SQLAlchemy Core (SQLite by default, PostgreSQL for scale).

Core, not the ORM: the ORM costs 2.5–3× on the same writes. The write
transaction runs on the driver's cursor with SQL rendered once per dialect
(``statements``, ``writes``); schema (``tables``), migrations and every read
stay on SQLAlchemy. Driver errors of either path reach the engine as its own
retryable errors (``errors``). Inserts that dedupe use ``ON CONFLICT …
RETURNING`` rather than ``rowcount``, which psycopg reports as -1 for
``DO NOTHING``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from onboarding_fsm.account import Account
from onboarding_fsm.attention import AttentionKind, AttentionQuery, Flagged
from onboarding_fsm.audit import Transition
from onboarding_fsm.checkpoints import Anchor, AuditEvidence, Checkpoint
from onboarding_fsm.clock import from_unix
from onboarding_fsm.config import Pace
from onboarding_fsm.errors import ConcurrencyConflict, DuplicateEvent, OnboardingError
from onboarding_fsm.events import InboxEntry
from onboarding_fsm.outbox import DeadLetter, Failure, OutboxBacklog, OutboxMessage
from onboarding_fsm.queries import InboxQuery, Key, TransitionQuery
from onboarding_fsm.retention import PruneReport
from onboarding_fsm.runs import RunRecord
from onboarding_fsm.states import State
from onboarding_fsm.timers import Timer, TimerBacklog

from . import attention, auditing, limiting, pruning, rows
from . import operations as ops
from . import outbox as delivering
from .cache import AccountCache
from .connection import READ_ONLY, create_sql_engine
from .errors import translate
from .statements import Statements
from .tables import accounts, outbox, timers, transitions
from .timeconv import read_dt, read_json
from .writes import SqlWriteTx

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "ofsm_alembic_version"


def _roll_back(raw: Any) -> None:
    try:
        raw.rollback()
    except Exception:
        raw.invalidate()  # the connection itself is broken: never hand it out again


def _stale_reads(tx: SqlWriteTx) -> list[str]:
    """After a decision refused: was it made on cache entries that are out of date?"""
    try:
        return tx.stale_reads()
    except Exception:
        return []  # the transaction itself is broken: the refusal stands as raised


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = engine.execution_options(**{READ_ONLY: True})
        self._statements = Statements(engine.dialect.name)
        self._dbapi = engine.dialect.dbapi
        self._cache = AccountCache()
        # SQLite has one writer: threads of this process queue here, in order,
        # rather than in SQLite's busy handler (which sleeps 1..100 ms per try)
        self._writer = threading.Lock() if not self._statements.postgres else contextlib.nullcontext()
        self._load = sa.select(accounts).where(accounts.c.stripe_account_id == sa.bindparam("k_id"))
        self._load_by_ref = sa.select(accounts).where(accounts.c.platform_ref == sa.bindparam("k_ref"))

    @classmethod
    def from_url(cls, url: str, *, synchronous: str = "FULL") -> SqlStore:
        return cls(create_sql_engine(url, synchronous=synchronous))

    @property
    def location(self) -> str:
        """Where the data lives, password hidden."""
        url = self.engine.url
        if url.get_backend_name() == "sqlite" and url.database:
            return str(Path(url.database).resolve())
        return url.render_as_string(hide_password=True)

    # --- schema ---------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (no-op when current)."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        with self._reading() as conn:
            current = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
        if current == head:
            return
        with self.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    # --- writes ---------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[SqlWriteTx]:
        """One transaction on a pooled driver connection: ``BEGIN IMMEDIATE``
        on SQLite, the driver's implicit transaction on PostgreSQL."""
        with self._writer, self._translated():
            raw = self.engine.raw_connection()
            try:
                yield from self._transaction(raw)
            finally:
                raw.close()

    def _transaction(self, raw: Any) -> Iterator[SqlWriteTx]:
        cursor = raw.cursor()
        tx = SqlWriteTx(cursor, self._statements, self._cache)
        try:
            if self._statements.begin:
                cursor.execute(self._statements.begin)
            yield tx
            tx.validate()
            raw.commit()
        except OnboardingError as exc:
            stale = _stale_reads(tx) if not isinstance(exc, ConcurrencyConflict | DuplicateEvent) else []
            _roll_back(raw)
            if stale:
                raise ConcurrencyConflict(f"refused on outdated reads of {stale}; retry on fresh data") from exc
            raise
        except BaseException:
            _roll_back(raw)
            raise
        finally:
            cursor.close()
        self._cache.put(tx.written)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            translated = translate(exc, self._dbapi)
            if translated is None:
                raise
            raise translated from exc

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self._translated(), self._reader.connect() as conn:
            yield conn

    # --- reads ----------------------------------------------------------------

    def get(self, account_id: str) -> Account | None:
        with self._reading() as conn:
            row = conn.execute(self._load, {"k_id": account_id}).first()
        return rows.account(row._mapping) if row is not None else None

    def get_by_ref(self, platform_ref: str) -> Account | None:
        with self._reading() as conn:
            row = conn.execute(self._load_by_ref, {"k_ref": platform_ref}).first()
        return rows.account(row._mapping) if row is not None else None

    def accounts(self, *, state: State | None = None, limit: int = 100, after: str | None = None) -> list[Account]:
        query = sa.select(accounts).order_by(accounts.c.stripe_account_id).limit(limit)
        if state is not None:
            query = query.where(accounts.c.state == state.value)
        if after is not None:
            query = query.where(accounts.c.stripe_account_id > after)
        with self._reading() as conn:
            return [rows.account(r._mapping) for r in conn.execute(query)]

    def history(self, account_id: str) -> list[Transition]:
        query = sa.select(transitions).where(transitions.c.account_id == account_id).order_by(transitions.c.seq)
        with self._reading() as conn:
            return [rows.transition(r._mapping) for r in conn.execute(query)]

    def chains(self, page: int = 500) -> Iterator[tuple[Account, list[Transition]]]:
        after = ""
        while True:
            batch = self.accounts(limit=page, after=after)
            if not batch:
                return
            ids = [a.stripe_account_id for a in batch]
            query = (
                sa.select(transitions)
                .where(transitions.c.account_id.in_(ids))
                .order_by(transitions.c.account_id, transitions.c.seq)
            )
            grouped: dict[str, list[Transition]] = {i: [] for i in ids}
            with self._reading() as conn:
                for row in conn.execute(query):
                    grouped[row.account_id].append(rows.transition(row._mapping))
            for acct in batch:
                yield acct, grouped[acct.stripe_account_id]
            after = ids[-1]

    def inbox(self, query: InboxQuery | None = None, *, limit: int = 100, after: Key | None = None) -> list[InboxEntry]:
        with self._reading() as conn:
            return auditing.inbox_page(conn, query or InboxQuery(), limit, after)

    def transitions(self, query: TransitionQuery, *, limit: int = 100, after: Key | None = None) -> list[Transition]:
        with self._reading() as conn:
            return auditing.transitions_page(conn, query, limit, after)

    def latest_records(
        self, at: datetime, *, account_id: str | None = None, limit: int = 500, after: str | None = None
    ) -> tuple[list[Transition], str | None]:
        with self._reading() as conn:
            return auditing.latest_records(conn, at, account_id, limit, after)

    def checkpoints(self, *, after: int = 0, limit: int = 500) -> list[Checkpoint]:
        with self._reading() as conn:
            return auditing.checkpoints_page(conn, after, limit)

    def last_checkpoint(self) -> Checkpoint | None:
        with self._reading() as conn:
            return auditing.last_checkpoint(conn)

    def sealed_records(self, up_to: int, *, limit: int = 1000, after: Key | None = None) -> list[Transition]:
        with self._reading() as conn:
            return auditing.sealed_records(conn, up_to, limit, after)

    def unsealed_records(self, up_to: int, *, limit: int = 1000, after: Key | None = None) -> list[Transition]:
        with self._reading() as conn:
            return auditing.unsealed_records(conn, up_to, limit, after)

    def announced_checkpoints(self, since: datetime) -> list[tuple[int, str]]:
        with self._reading() as conn:
            return auditing.announced(conn, since)

    def seal_checkpoint(
        self, make: Callable[[Checkpoint | None, list[Anchor]], Checkpoint], *, limit: int, keyed_only: bool
    ) -> Checkpoint | None:
        try:
            with self._writer, self._translated(), self.engine.begin() as conn:
                return auditing.seal(conn, make, limit, keyed_only)
        except (ConcurrencyConflict, sa.exc.IntegrityError):
            return None  # another process appended this checkpoint number first

    def sealed(self, up_to: int) -> Iterator[tuple[int, str, int]]:
        with self._reading() as conn:
            yield from auditing.sealed(conn, up_to)

    def evidence(self, *, outbox_since: datetime, limit: int = 100) -> AuditEvidence:
        with self._reading() as conn:
            return auditing.evidence(conn, outbox_since, limit)

    def pending_outbox(self, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        query = sa.select(outbox.c.id, outbox.c.payload).where(outbox.c.published_at.is_(None)).order_by(outbox.c.id)
        with self._reading() as conn:
            return [(r.id, read_json(r.payload)) for r in conn.execute(query.limit(limit))]

    def ack_outbox(self, ids: Sequence[int], at: datetime) -> None:
        if not ids:
            return
        with self._translated(), self.engine.begin() as conn:
            conn.execute(sa.update(outbox).where(outbox.c.id.in_(list(ids))).values(published_at=at))

    def claim_outbox(self, now: datetime, *, lease_until: datetime, limit: int) -> list[OutboxMessage]:
        with self._writer, self._translated(), self.engine.begin() as conn:
            return delivering.claim(conn, now, lease_until, limit)

    def finish_outbox(self, message: OutboxMessage, at: datetime) -> bool:
        with self._writer, self._translated(), self.engine.begin() as conn:
            return delivering.finish(conn, message, at)

    def fail_outbox(self, message: OutboxMessage, failure: Failure) -> bool:
        with self._writer, self._translated(), self.engine.begin() as conn:
            return delivering.fail(conn, message, failure)

    def outbox_backlog(self, now: datetime) -> OutboxBacklog:
        with self._reading() as conn:
            return delivering.backlog(conn, now)

    def dead_letters(self, *, limit: int = 100, after: int = 0) -> list[DeadLetter]:
        with self._reading() as conn:
            return delivering.dead_letters(conn, limit, after)

    def redrive_outbox(self, ids: Sequence[int] | None) -> list[int]:
        with self._writer, self._translated(), self.engine.begin() as conn:
            return delivering.redrive(conn, ids)

    def count_by_state(self) -> dict[State, int]:
        query = sa.select(accounts.c.state, sa.func.count()).group_by(accounts.c.state)
        with self._reading() as conn:
            counts = {State(state): n for state, n in conn.execute(query)}
        return {state: counts.get(state, 0) for state in State}

    def needing_attention(
        self, kind: AttentionKind, query: AttentionQuery, *, limit: int = 100, after: tuple[datetime, str] | None = None
    ) -> list[Flagged]:
        with self._reading() as conn:
            return attention.flagged(conn, kind, query, limit, after)

    def count_needing_attention(
        self, kinds: Sequence[AttentionKind], query: AttentionQuery
    ) -> dict[AttentionKind, int]:
        with self._reading() as conn:
            return attention.counts(conn, kinds, query)

    def ping(self) -> None:
        with self._reading() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()

    def next_due_at(self) -> datetime | None:
        query = sa.select(sa.func.min(timers.c.wake_at)).where(timers.c.fired_at.is_(None))
        with self._reading() as conn:
            return read_dt(conn.execute(query).scalar())

    def timer_backlog(self, now: datetime, *, overdue_before: datetime | None = None) -> TimerBacklog:
        t = timers.c
        unfired = t.fired_at.is_(None)
        due = sa.select(sa.func.count()).where(unfired, t.wake_at <= now)
        retrying = sa.select(sa.func.count()).where(unfired, t.attempts > 0)
        with self._reading() as conn:
            overdue = ops.overdue_timers(conn, overdue_before) if overdue_before is not None else 0
            return TimerBacklog(
                due=conn.execute(due).scalar_one(), retrying=conn.execute(retrying).scalar_one(), overdue=overdue
            )

    def record_run(self, run: RunRecord) -> None:
        with self._writer, self._translated(), self.engine.begin() as conn:
            ops.record_run(conn, run)

    def runs(self, kind: str | None = None, *, limit: int = 20) -> list[RunRecord]:
        with self._reading() as conn:
            return ops.recorded_runs(conn, kind, limit)

    def inbox_event(self, event_id: str) -> InboxEntry | None:
        with self._reading() as conn:
            return ops.inbox_event(conn, event_id)

    def reserve(self, name: str, interval: timedelta, now: datetime) -> datetime:
        with self.write() as tx:
            tat = tx.reserve(name, interval.total_seconds(), now.timestamp())
        return from_unix(tat)

    def admit(self, budgets: Sequence[tuple[str, Pace]], now: datetime) -> str | None:
        with self._writer, self._translated(), self.engine.connect() as conn, conn.begin() as tx:
            refused = limiting.admit(conn, budgets, now.timestamp())
            if refused is not None:
                tx.rollback()  # a refused request takes no slot of the budgets that had one
        return refused

    def stale_accounts(self, synced_before: datetime, *, limit: int = 500, after: str | None = None) -> list[Account]:
        a = accounts.c
        query = (
            sa.select(accounts)
            .where(a.synced_at < synced_before, a.deauthorized.is_(False), a.stripe_account_id > (after or ""))
            .order_by(a.stripe_account_id)
            .limit(limit)
        )
        with self._reading() as conn:
            return [rows.account(r._mapping) for r in conn.execute(query)]

    def timers(self, account_id: str) -> list[tuple[Timer, datetime | None]]:
        query = sa.select(timers).where(timers.c.account_id == account_id).order_by(timers.c.due_at, timers.c.kind)
        with self._reading() as conn:
            return [(rows.timer(r._mapping), read_dt(r.fired_at)) for r in conn.execute(query)]

    def prune(self, before: datetime) -> PruneReport:
        deleted = self._in_batches(pruning.delete_published(before))
        emptied = self._in_batches(pruning.empty_payloads(before))
        idle = self._in_batches(pruning.delete_idle_limits(before))
        old_runs = self._in_batches(ops.delete_runs(before))
        return PruneReport(
            before=before, outbox_deleted=deleted, inbox_emptied=emptied, limits_deleted=idle, runs_deleted=old_runs
        )

    def _in_batches(self, statement: sa.Delete | sa.Update) -> int:
        """Run a batch-limited statement until it touches a short batch; each run commits alone."""
        total = 0
        while True:
            with self._writer, self._translated(), self.engine.begin() as conn:
                n = conn.execute(statement).rowcount
            total += n
            if n < pruning.BATCH:
                return total

    def close(self) -> None:
        self.engine.dispose()
