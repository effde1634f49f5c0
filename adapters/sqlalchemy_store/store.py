"""The ``Store`` port on SQLAlchemy Core (SQLite by default, PostgreSQL for scale).

Core, not the ORM: the ORM costs 2.5–3× on the same writes, and the hot path
(webhook ingestion, sweeps) is a handful of statements per transition.
The write transaction runs on the driver's cursor with SQL rendered once per
dialect (``fastpath``); schema, migrations and reads stay on SQLAlchemy.

SQLite runs in WAL mode and write transactions start with ``BEGIN IMMEDIATE``
so a read-then-write transaction never fails to upgrade its lock; reads use a
plain deferred ``BEGIN``. Inserts that dedupe use ``ON CONFLICT … RETURNING``
rather than ``rowcount``, which psycopg reports as -1 for ``DO NOTHING``.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from onboarding_fsm.account import Account, LinkParams
from onboarding_fsm.audit import Transition, delta_from_dict
from onboarding_fsm.errors import ConcurrencyConflict, StoreUnavailable
from onboarding_fsm.events import InboxEntry, Outcome
from onboarding_fsm.settings import Settings
from onboarding_fsm.snapshot import parse_account
from onboarding_fsm.states import Source, State, Trigger
from onboarding_fsm.timers import Timer, TimerKind

from .fastpath import ACCOUNT_COLUMNS, Dialect
from .tables import accounts, outbox, timers, transitions, webhook_events
from .timeconv import read_dt, read_json

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "ofsm_alembic_version"
_READ = "ofsm_read_only"


def create_sql_engine(url: str, *, synchronous: str = "FULL", pool_size: int = 5) -> Engine:
    """An engine configured for this store (SQLite pragmas and locking)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # No pre-ping and no reset-on-return: each would cost a round trip per
        # transaction. ``write`` always ends its transaction itself, reads run
        # on SQLAlchemy connections that roll back on close, and a connection
        # that breaks is invalidated by ``write`` (the error is retryable).
        return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_reset_on_return=None)
    memory = parsed.database in (None, "", ":memory:")
    if memory:
        engine = sa.create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
    else:
        Path(parsed.database or "").expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_conn.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ) else "BEGIN IMMEDIATE")

    return engine


def _translate(exc: Exception) -> Exception | None:
    """Driver errors that mean "try again", in the engine's error tree."""
    name = type(exc).__name__
    text = str(exc).lower()
    if name == "OperationalError" and ("locked" in text or "busy" in text):
        return StoreUnavailable(f"database busy: {exc}")
    if name in ("SerializationFailure", "DeadlockDetected") or "could not serialize" in text:
        return ConcurrencyConflict(f"serialization failure: {exc}")
    if name in ("OperationalError", "InterfaceError") and ("connection" in text or "server" in text):
        return StoreUnavailable(f"database unreachable: {exc}")
    return None


def account_from_mapping(m: Mapping[Any, Any]) -> Account:
    link = read_json(m["link_params"])
    return Account(
        stripe_account_id=m["stripe_account_id"],
        platform_ref=m["platform_ref"],
        state=State(m["state"]),
        reason=m["reason"],
        version=m["version"],
        snapshot=parse_account(read_json(m["snapshot"])),
        requested_capabilities=tuple(read_json(m["requested_capabilities"])),
        created_at=_dt(m["created_at"]),
        updated_at=_dt(m["updated_at"]),
        synced_at=_dt(m["synced_at"]),
        watermark=read_dt(m["watermark"]),
        deauthorized=bool(m["deauthorized"]),
        link=LinkParams.from_dict(link) if link else None,
        link_issued_at=read_dt(m["link_issued_at"]),
        link_expires_at=read_dt(m["link_expires_at"]),
        audit_seq=m["audit_seq"],
        audit_head=m["audit_head"],
    )


def _dt(value: Any) -> datetime:
    result = read_dt(value)
    assert result is not None
    return result


def transition_from_row(row: Any) -> Transition:
    m = row._mapping
    return Transition(
        account_id=m["account_id"],
        seq=m["seq"],
        from_state=State(m["from_state"]) if m["from_state"] else None,
        to_state=State(m["to_state"]),
        trigger=Trigger(m["trigger"]),
        source=Source(m["source"]),
        source_ref=m["source_ref"],
        actor=m["actor"],
        reason=m["reason"],
        delta=delta_from_dict(read_json(m["delta"])),
        at=_dt(m["at"]),
        stripe_time=read_dt(m["stripe_time"]),
        prev_hash=m["prev_hash"],
        hash=m["hash"],
    )


class AccountCache:
    """Parsed accounts by (id, version): a row whose version we have already
    parsed is the same row (every write bumps the version), so loading it
    again skips the JSON parse. Filled only after a commit succeeds."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._items: OrderedDict[str, Account] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, account_id: str, version: int) -> Account | None:
        with self._lock:
            hit = self._items.get(account_id)
            if hit is None or hit.version != version:
                return None
            self._items.move_to_end(account_id)
            return hit

    def latest(self, account_id: str) -> Account | None:
        with self._lock:
            return self._items.get(account_id)

    def evict(self, account_id: str) -> None:
        with self._lock:
            self._items.pop(account_id, None)

    def put(self, accounts: Sequence[Account]) -> None:
        with self._lock:
            for acct in accounts:
                self._items[acct.stripe_account_id] = acct
                self._items.move_to_end(acct.stripe_account_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class SqlWriteTx:
    """One write transaction on the driver's cursor (see ``fastpath``)."""

    def __init__(self, cursor: Any, dialect: Dialect, cache: AccountCache) -> None:
        self._cur = cursor
        self._d = dialect
        self._cache = cache
        self.written: list[Account] = []

    def _load(self, sql: str, params: dict[str, Any]) -> Account | None:
        self._cur.execute(sql, params)
        row = self._cur.fetchone()
        if row is None:
            return None
        return self._account(row)

    def _account(self, row: Sequence[Any]) -> Account:
        """An account row (``ACCOUNT_COLUMNS`` order), parsed unless this version is cached."""
        values = dict(zip(ACCOUNT_COLUMNS, row, strict=True))
        cached = self._cache.get(values["stripe_account_id"], values["version"])
        return cached if cached is not None else account_from_mapping(values)

    def load(self, account_id: str, *, cached: bool = False) -> Account | None:
        if cached:
            hit = self._cache.latest(account_id)
            if hit is not None:
                return hit
        return self._load(self._d.load, {"k_id": account_id})

    def load_by_ref(self, platform_ref: str) -> Account | None:
        return self._load(self._d.load_by_ref, {"k_ref": platform_ref})

    def insert(self, account: Account, birth: Transition, timers: Sequence[Timer]) -> bool:
        self._cur.execute(self._d.insert_account, self._d.account(account))
        if self._cur.fetchone() is None:
            return False
        self._append(account, birth)
        self._replace_timers(account.stripe_account_id, timers)
        self.written.append(account)
        return True

    def save(
        self,
        account: Account,
        *,
        expected_version: int,
        transition: Transition | None,
        timers: Sequence[Timer] | None,
    ) -> None:
        params = self._d.account(account, expected_version=expected_version)
        if self._d.postgres and transition is not None:
            # one round trip for account, audit and outbox
            params.update(self._audit_params(account, transition))
            self._cur.execute(self._d.save_with_audit, params)
            matched = self._cur.fetchone()[0]
        else:
            self._cur.execute(self._d.update_account, params)
            matched = self._cur.rowcount
            if matched == 1 and transition is not None:
                self._append(account, transition)
        self._finish_save(account, expected_version, matched == 1, timers)

    def _finish_save(
        self, account: Account, expected_version: int, matched: bool, timers: Sequence[Timer] | None
    ) -> None:
        """After the account row was (or was not) updated at the expected version."""
        if not matched:
            self._cache.evict(account.stripe_account_id)
            raise ConcurrencyConflict(
                f"account {account.stripe_account_id} changed since version {expected_version} was read"
            )
        if timers is not None:
            self._replace_timers(account.stripe_account_id, timers)
        self.written.append(account)

    def _audit_params(self, account: Account, record: Transition) -> dict[str, Any]:
        params = {f"t_{k}": v for k, v in self._d.transition(record).items()}
        params.update({f"o_{k}": v for k, v in self._d.transition_outbox(record, account.platform_ref).items()})
        return params

    def _append(self, account: Account, record: Transition) -> None:
        self._cur.execute(self._d.insert_transition, self._d.transition(record))
        self._cur.execute(self._d.insert_outbox, self._d.transition_outbox(record, account.platform_ref))

    def _replace_timers(self, account_id: str, new: Sequence[Timer]) -> None:
        self._cur.execute(self._d.clear_timers, {"k_id": account_id})
        if new:
            self._cur.executemany(
                self._d.insert_timer,
                [{"account_id": t.account_id, "kind": t.kind.value, "due_at": self._d.dt(t.due_at)} for t in new],
            )

    def record_and_save(
        self,
        entry: InboxEntry,
        account: Account,
        *,
        expected_version: int,
        transition: Transition | None,
        timers: Sequence[Timer] | None,
    ) -> bool:
        if not self._d.postgres:
            if not self.record_event(entry):
                return False
            self.save(account, expected_version=expected_version, transition=transition, timers=timers)
            return True
        params = {**self._d.event(entry), **self._d.account(account, expected_version=expected_version)}
        if transition is not None:
            params.update(self._audit_params(account, transition))
        self._cur.execute(self._d.event_and_account[transition is not None], params)
        inserted, updated = self._cur.fetchone()
        if not inserted:
            return False
        self._finish_save(account, expected_version, bool(updated), timers)
        return True

    def record_event(self, entry: InboxEntry) -> bool:
        self._cur.execute(self._d.record_event, self._d.event(entry))
        return self._cur.fetchone() is not None

    def claim_due_timer(self, now: datetime) -> tuple[Timer, Account | None] | None:
        self._cur.execute(self._d.claim_timer, {"k_now": self._d.dt(now)})
        row = self._cur.fetchone()
        if row is None:
            return None
        timer = Timer(due_at=_dt(row[2]), account_id=row[0], kind=TimerKind(row[1]))
        if not self._d.postgres:
            return timer, self.load(timer.account_id)
        if row[3] is None:
            return timer, None
        return timer, self._account(row[3:])

    def emit(self, account_id: str, kind: str, payload: Mapping[str, Any], at: datetime) -> None:
        self._cur.execute(self._d.insert_outbox, self._d.outbox(account_id, None, kind, dict(payload), at))


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = engine.execution_options(**{_READ: True})
        self._dialect = Dialect(engine.dialect.name)
        self._cache = AccountCache()
        # SQLite has one writer: threads of this process queue here, in order,
        # rather than in SQLite's busy handler (which sleeps 1..100 ms per try)
        self._writer = threading.Lock() if not self._dialect.postgres else contextlib.nullcontext()
        self._load = sa.select(accounts).where(accounts.c.stripe_account_id == sa.bindparam("k_id"))
        self._load_by_ref = sa.select(accounts).where(accounts.c.platform_ref == sa.bindparam("k_ref"))

    @classmethod
    def from_url(cls, url: str, *, synchronous: str = "FULL") -> SqlStore:
        return cls(create_sql_engine(url, synchronous=synchronous))

    @classmethod
    def from_settings(cls, settings: Settings) -> SqlStore:
        return cls.from_url(settings.database_url, synchronous=settings.sqlite_synchronous)

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
        with self._reader.connect() as conn:
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
        with self._writer:
            yield from self._transaction()

    def _transaction(self) -> Iterator[SqlWriteTx]:
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            tx = SqlWriteTx(cursor, self._dialect, self._cache)
            try:
                if self._dialect.begin:
                    cursor.execute(self._dialect.begin)
                yield tx
                raw.commit()
            except BaseException as exc:
                try:
                    raw.rollback()
                except Exception:
                    raw.invalidate()  # the connection itself is broken: never hand it out again
                translated = _translate(exc) if isinstance(exc, Exception) else None
                if translated is not None:
                    raise translated from exc
                raise
            finally:
                cursor.close()
            self._cache.put(tx.written)
        finally:
            raw.close()

    # --- reads ----------------------------------------------------------------

    def get(self, account_id: str) -> Account | None:
        with self._reader.connect() as conn:
            row = conn.execute(self._load, {"k_id": account_id}).first()
        return account_from_mapping(row._mapping) if row is not None else None

    def get_by_ref(self, platform_ref: str) -> Account | None:
        with self._reader.connect() as conn:
            row = conn.execute(self._load_by_ref, {"k_ref": platform_ref}).first()
        return account_from_mapping(row._mapping) if row is not None else None

    def accounts(self, *, state: State | None = None, limit: int = 100, after: str | None = None) -> list[Account]:
        query = sa.select(accounts).order_by(accounts.c.stripe_account_id).limit(limit)
        if state is not None:
            query = query.where(accounts.c.state == state.value)
        if after is not None:
            query = query.where(accounts.c.stripe_account_id > after)
        with self._reader.connect() as conn:
            return [account_from_mapping(r._mapping) for r in conn.execute(query)]

    def history(self, account_id: str) -> list[Transition]:
        query = sa.select(transitions).where(transitions.c.account_id == account_id).order_by(transitions.c.seq)
        with self._reader.connect() as conn:
            return [transition_from_row(r) for r in conn.execute(query)]

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
            with self._reader.connect() as conn:
                for row in conn.execute(query):
                    grouped[row.account_id].append(transition_from_row(row))
            for acct in batch:
                yield acct, grouped[acct.stripe_account_id]
            after = ids[-1]

    def inbox(self, *, account_id: str | None = None, limit: int = 100) -> list[InboxEntry]:
        w = webhook_events.c
        query = sa.select(webhook_events).order_by(w.received_at.desc(), w.event_id).limit(limit)
        if account_id is not None:
            query = query.where(w.account_id == account_id)
        with self._reader.connect() as conn:
            return [
                InboxEntry(
                    event_id=r.event_id,
                    type=r.type,
                    account_id=r.account_id,
                    created=r.created,
                    livemode=r.livemode,
                    received_at=r.received_at,
                    outcome=Outcome(r.outcome),
                    detail=r.detail,
                    payload=read_json(r.payload),
                )
                for r in conn.execute(query)
            ]

    def pending_outbox(self, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        query = sa.select(outbox.c.id, outbox.c.payload).where(outbox.c.published_at.is_(None)).order_by(outbox.c.id)
        with self._reader.connect() as conn:
            return [(r.id, read_json(r.payload)) for r in conn.execute(query.limit(limit))]

    def ack_outbox(self, ids: Sequence[int], at: datetime) -> None:
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(sa.update(outbox).where(outbox.c.id.in_(list(ids))).values(published_at=at))

    def count_by_state(self) -> dict[State, int]:
        query = sa.select(accounts.c.state, sa.func.count()).group_by(accounts.c.state)
        with self._reader.connect() as conn:
            counts = {State(state): n for state, n in conn.execute(query)}
        return {state: counts.get(state, 0) for state in State}

    def ping(self) -> None:
        with self._reader.connect() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()

    def next_due_at(self) -> datetime | None:
        query = sa.select(sa.func.min(timers.c.due_at)).where(timers.c.fired_at.is_(None))
        with self._reader.connect() as conn:
            return read_dt(conn.execute(query).scalar())

    def stale_accounts(self, synced_before: datetime, *, limit: int = 500, after: str | None = None) -> list[Account]:
        a = accounts.c
        query = (
            sa.select(accounts)
            .where(a.synced_at < synced_before, a.deauthorized.is_(False), a.stripe_account_id > (after or ""))
            .order_by(a.stripe_account_id)
            .limit(limit)
        )
        with self._reader.connect() as conn:
            return [account_from_mapping(r._mapping) for r in conn.execute(query)]

    def timers(self, account_id: str) -> list[tuple[Timer, datetime | None]]:
        query = sa.select(timers).where(timers.c.account_id == account_id).order_by(timers.c.due_at, timers.c.kind)
        with self._reader.connect() as conn:
            return [
                (Timer(due_at=r.due_at, account_id=r.account_id, kind=TimerKind(r.kind)), r.fired_at)
                for r in conn.execute(query)
            ]

    def close(self) -> None:
        self.engine.dispose()
