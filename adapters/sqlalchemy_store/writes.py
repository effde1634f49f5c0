"""One write transaction on the driver's cursor: the ``WriteTx`` port.

Two optimisations live here and nowhere else, invisible to the engine:

* **reads from the process's cache.** ``load`` answers from ``AccountCache``
  when it holds the account, without a query. Every account so loaded is
  validated before the commit: by the version check of its ``save``, or, if
  it was not saved, by reading its version. A stale entry therefore ends in
  ``ConcurrencyConflict`` (and a retry on fresh data), never in a decision
  committed on old knowledge.
* **one statement per webhook on PostgreSQL.** ``record_event`` is held back
  and sent with the following ``save`` as one data-modifying CTE (inbox row,
  account, audit row, outbox row); alone, it is sent at the next statement
  or at commit. A duplicate raises ``DuplicateEvent`` either way, before the
  commit, so nothing of the transaction is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from onboarding_fsm.account import Account, CreationIntent
from onboarding_fsm.audit import Transition
from onboarding_fsm.errors import ConcurrencyConflict, DuplicateEvent
from onboarding_fsm.events import InboxEntry
from onboarding_fsm.timers import ClaimedTimer, Timer

from . import rows
from .cache import AccountCache
from .statements import ACCOUNT_COLUMNS, Statements


class SqlWriteTx:
    def __init__(self, cursor: Any, statements: Statements, cache: AccountCache) -> None:
        self._cur = cursor
        self._s = statements
        self._cache = cache
        self._pending: InboxEntry | None = None
        #: accounts answered from the cache and not yet validated: id -> version
        self._unchecked: dict[str, int] = {}
        self.written: list[Account] = []

    # --- reads ------------------------------------------------------------------

    def load(self, account_id: str) -> Account | None:
        self.flush()
        hit = self._cache.latest(account_id)
        if hit is not None:
            self._unchecked.setdefault(account_id, hit.version)
            return hit
        return self._fetch(self._s.load, {"k_id": account_id})

    def load_by_ref(self, platform_ref: str) -> Account | None:
        self.flush()
        return self._fetch(self._s.load_by_ref, {"k_ref": platform_ref})

    def _fetch(self, sql: str, params: dict[str, Any]) -> Account | None:
        self._cur.execute(sql, params)
        row = self._cur.fetchone()
        return self._account(row) if row is not None else None

    def _account(self, row: Sequence[Any]) -> Account:
        """An account row (``ACCOUNT_COLUMNS`` order), parsed unless this version is cached."""
        values = dict(zip(ACCOUNT_COLUMNS, row, strict=True))
        cached = self._cache.get(values["stripe_account_id"], values["version"])
        return cached if cached is not None else rows.account(values)

    # --- writes -----------------------------------------------------------------

    def insert(self, account: Account, birth: Transition, timers: Sequence[Timer]) -> bool:
        self.flush()
        self._cur.execute(self._s.insert_account, self._s.account(account))
        if self._cur.fetchone() is None:
            return False
        self._append(account, birth)
        self._cur.execute(self._s.drop_intent, {"k_ref": account.platform_ref})
        if timers:
            self._cur.executemany(self._s.insert_timer, [self._s.timer(t) for t in timers])
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
        params = self._s.account(account, expected_version=expected_version)
        if self._pending is not None:  # PostgreSQL: the held-back event goes with it
            entry, self._pending = self._pending, None
            params.update({f"e_{k}": v for k, v in self._s.event(entry).items()})
            if transition is not None:
                params.update(self._audit_params(account, transition))
            self._cur.execute(self._s.event_and_account[transition is not None], params)
            inserted, matched = self._cur.fetchone()
            if not inserted:
                raise DuplicateEvent(entry.event_id)
        elif self._s.postgres and transition is not None:
            params.update(self._audit_params(account, transition))
            self._cur.execute(self._s.save_with_audit, params)
            matched = self._cur.fetchone()[0]
        else:
            self._cur.execute(self._s.update_account, params)
            matched = self._cur.rowcount
            if matched == 1 and transition is not None:
                self._append(account, transition)
        if matched != 1:
            self._cache.evict(account.stripe_account_id)
            raise ConcurrencyConflict(
                f"account {account.stripe_account_id} changed since version {expected_version} was read"
            )
        self._unchecked.pop(account.stripe_account_id, None)  # the version check covered it
        if timers is not None:
            self._replace_timers(account.stripe_account_id, timers)
        self.written.append(account)

    def record_event(self, entry: InboxEntry) -> None:
        self.flush()
        if self._s.postgres:
            self._pending = entry
        else:
            self._insert_event(entry)

    def claim_due_timer(self, now: datetime, *, lease_until: datetime) -> ClaimedTimer | None:
        self.flush()
        self._cur.execute(self._s.claim_timer, {"k_now": self._s.dt(now), "k_lease": self._s.dt(lease_until)})
        row = self._cur.fetchone()
        if row is None:
            return None
        head = {"account_id": row[0], "kind": row[1], "due_at": row[2], "attempts": row[3]}
        if not self._s.postgres:
            return rows.claimed(head, self._fetch(self._s.load, {"k_id": row[0]}))
        return rows.claimed(head, self._account(row[4:]) if row[4] is not None else None)

    def finish_timer(self, timer: Timer, now: datetime) -> bool:
        self.flush()
        self._cur.execute(self._s.finish_timer, {**self._timer_key(timer), "k_now": self._s.dt(now)})
        return self._cur.fetchone() is not None

    def retry_timer(self, timer: Timer, wake_at: datetime) -> None:
        self.flush()
        self._cur.execute(self._s.retry_timer, {**self._timer_key(timer), "k_wake": self._s.dt(wake_at)})

    def _timer_key(self, timer: Timer) -> dict[str, Any]:
        return {"k_id": timer.account_id, "k_kind": timer.kind.value, "k_due": self._s.dt(timer.due_at)}

    def drop_intent(self, platform_ref: str) -> None:
        self.flush()
        self._cur.execute(self._s.drop_intent, {"k_ref": platform_ref})

    def reserve(self, name: str, interval: float, now: float) -> float:
        """The rate budget's new theoretical arrival time (unix seconds)."""
        self.flush()
        self._cur.execute(self._s.reserve, {"k_name": name, "k_now": now, "k_interval": interval})
        return float(self._cur.fetchone()[0])

    def intent(self, platform_ref: str) -> CreationIntent | None:
        self.flush()
        self._cur.execute(self._s.load_intent, {"k_ref": platform_ref})
        row = self._cur.fetchone()
        return rows.intent(row) if row is not None else None

    def record_intent(self, intent: CreationIntent) -> None:
        self.flush()
        params = {
            "k_ref": intent.platform_ref,
            "k_key": intent.idempotency_key,
            "k_at": self._s.dt(intent.requested_at),
        }
        self._cur.execute(self._s.save_intent, params)

    def emit(self, account_id: str, kind: str, payload: Mapping[str, Any], at: datetime) -> None:
        self.flush()
        self._cur.execute(self._s.insert_outbox, self._s.outbox(account_id, None, kind, dict(payload), at))

    def flush(self) -> None:
        """Send the held-back event (before any other statement, and before the commit)."""
        if self._pending is not None:
            entry, self._pending = self._pending, None
            self._insert_event(entry)

    def validate(self) -> None:
        """Before the commit: every account answered from the cache and not
        saved must still be at the version the decision saw."""
        self.flush()
        stale = self.stale_reads()
        if stale:
            raise ConcurrencyConflict(f"accounts {stale} changed since the versions this transaction read")

    def stale_reads(self) -> list[str]:
        """Accounts answered from the cache that changed since (evicted). Also
        asked when a decision *refused* on cached data: a refusal made on old
        knowledge must be retried on fresh data, not reported."""
        stale = []
        for account_id, version in self._unchecked.items():
            self._cur.execute(self._s.version_of, {"k_id": account_id})
            row = self._cur.fetchone()
            if row is None or row[0] != version:
                self._cache.evict(account_id)
                stale.append(account_id)
        self._unchecked.clear()
        return stale

    # --- helpers ----------------------------------------------------------------

    def _insert_event(self, entry: InboxEntry) -> None:
        self._cur.execute(self._s.record_event, self._s.event(entry))
        if self._cur.fetchone() is None:
            raise DuplicateEvent(entry.event_id)

    def _audit_params(self, account: Account, record: Transition) -> dict[str, Any]:
        params = {f"t_{k}": v for k, v in self._s.transition(record).items()}
        params.update({f"o_{k}": v for k, v in self._s.transition_outbox(record, account.platform_ref).items()})
        return params

    def _append(self, account: Account, record: Transition) -> None:
        self._cur.execute(self._s.insert_transition, self._s.transition(record))
        self._cur.execute(self._s.insert_outbox, self._s.transition_outbox(record, account.platform_ref))

    def _replace_timers(self, account_id: str, new: Sequence[Timer]) -> None:
        """Drop the unfired timers not in ``new`` and add the missing ones. A
        timer in both keeps its row: a sweep's lease, its backoff and its
        attempts survive the account changing; a fired one is not re-armed."""
        self._cur.execute(self._s.unfired_timers, {"k_id": account_id})
        existing = {rows.timer({"account_id": r[0], "kind": r[1], "due_at": r[2]}) for r in self._cur.fetchall()}
        wanted = set(new)
        for gone in existing - wanted:
            self._cur.execute(self._s.drop_timer, self._timer_key(gone))
        added = [t for t in new if t not in existing]
        if added:
            self._cur.executemany(self._s.insert_timer, [self._s.timer(t) for t in added])
