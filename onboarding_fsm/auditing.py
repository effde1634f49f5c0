"""What auditors ask, as engine calls (``engine.audit``): transitions across
accounts and time, state as of an instant, the inbox, exports, checkpoints
and a verification that leaves no hole.

Reads only, except ``checkpoint``, which appends to the checkpoint chain.
Every list is paged by cursor (``queries``) and every stream holds one page,
so an auditor can walk 10^6 records with flat memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TextIO

from . import checkpoints, exports, inputs
from .audit import ChainReport, Transition, verify_chain
from .checkpoints import Checkpoint, Problem
from .clock import ensure_utc
from .config import EngineConfig
from .errors import AccountNotFound
from .events import InboxEntry
from .ports import Clock, Store
from .queries import InboxQuery, Order, Page, StateAt, TransitionQuery, decode, encode

#: records sealed per checkpoint (one transaction each)
SEAL_BATCH = 10_000
_TIME_KEY = (datetime, str, int)
_CHAIN_KEY = (str, int)
_INBOX_KEY = (datetime, str)


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The whole trail checked: every chain, the checkpoint chain, the
    cross-checks. ``ok`` only when nothing at all is wrong."""

    accounts: int
    records: int
    checkpoints: int
    #: records written since the last checkpoint (covered by chains and cross-checks only)
    unsealed: int
    #: the key the check was made with (None: plain hashes checked, keyed ones could not be)
    key_id: str | None
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def broken_chains(self) -> int:
        return len({p.where for p in self.problems if p.kind == "chain"})


class AuditTrail:
    def __init__(self, store: Store, clock: Clock, config: EngineConfig) -> None:
        self._store = store
        self._clock = clock
        self._config = config

    # ------------------------------------------------------------- queries

    def transitions(
        self, query: TransitionQuery | None = None, *, limit: int = 100, cursor: str | None = None
    ) -> Page[Transition]:
        """One page of transitions across accounts, oldest first (or chain by
        chain); pass ``page.cursor`` back for the next."""
        query = query or TransitionQuery()
        kind, shape = ("chain", _CHAIN_KEY) if query.order is Order.CHAIN else ("time", _TIME_KEY)
        size = inputs.page_size(limit)
        items = self._store.transitions(query, limit=size, after=decode(kind, cursor, shape))
        return Page(tuple(items), _next(kind, items, size, query.order))

    def stream(self, query: TransitionQuery | None = None, *, batch: int = 1000) -> Iterator[Transition]:
        """Every matching transition, one page in memory at a time."""
        cursor: str | None = None
        while True:
            page = self.transitions(query, limit=batch, cursor=cursor)
            yield from page
            if page.cursor is None:
                return
            cursor = page.cursor

    def state_at(self, account_id: str, at: datetime) -> StateAt | None:
        """Where the account stood at ``at`` (None: it did not exist yet)."""
        wanted = inputs.account_id(account_id)
        if self._store.get(wanted) is None:
            raise AccountNotFound(account_id)
        found = self._store.latest_records(ensure_utc(at, "at"), account_id=wanted, limit=1)
        return _state(found[0]) if found else None

    def states_at(self, at: datetime, *, batch: int = 500) -> Iterator[StateAt]:
        """Every account that existed at ``at``, with where it stood, by account id."""
        instant = ensure_utc(at, "at")
        after: str | None = None
        while True:
            found = self._store.latest_records(instant, limit=batch, after=after)
            if not found:
                return
            yield from (_state(t) for t in found)
            after = found[-1].account_id

    def inbox(
        self, query: InboxQuery | None = None, *, limit: int = 100, cursor: str | None = None
    ) -> Page[InboxEntry]:
        """Recorded webhook events, newest first (identity data stripped)."""
        size = inputs.page_size(limit)
        items = self._store.inbox(query or InboxQuery(), limit=size, after=decode("inbox", cursor, _INBOX_KEY))
        last = items[-1] if len(items) == size else None
        return Page(tuple(items), encode("inbox", (last.received_at, last.event_id)) if last else None)

    # -------------------------------------------------------------- exports

    def export(
        self, out: TextIO, *, format: exports.Format | str = exports.Format.JSONL, query: TransitionQuery | None = None
    ) -> exports.Summary:
        """Write the trail (or the part ``query`` selects) to ``out``, chain by
        chain, with every field its hashes are computed from; a whole export
        carries the checkpoints too, so ``exports.verify`` checks it without
        the database."""
        chosen = inputs.member(exports.Format, format, "format")
        wanted = replace(query or TransitionQuery(), order=Order.CHAIN)
        cps = self._all_checkpoints() if wanted.whole else iter(())
        writer = exports.writer(chosen, out)
        return writer.write(self.stream(wanted), cps, exported_at=self._clock.now(), whole=wanted.whole)

    # ---------------------------------------------------------- checkpoints

    def checkpoint(self, *, batch: int = SEAL_BATCH) -> list[Checkpoint]:
        """Seal every record written since the last checkpoint (a checkpoint
        per ``batch`` records) and publish the new head. Safe to run from
        several workers: one seals, the others find nothing left."""
        key = self._config.audit_key
        last = self._last_checkpoint()
        # once a checkpoint is keyed, plain-hash records are no longer vouched for
        keyed_only = key is not None and last is not None and last.key_id is not None
        made: list[Checkpoint] = []
        while (
            cp := self._store.seal_checkpoint(
                lambda prev, anchors: checkpoints.make(prev, anchors, self._clock.now(), key),
                limit=batch,
                keyed_only=keyed_only,
            )
        ) is not None:
            made.append(cp)
        return made

    def checkpoints(self) -> Iterator[Checkpoint]:
        return self._all_checkpoints()

    # --------------------------------------------------------------- verify

    def verify(self) -> AuditReport:
        """Recompute every chain and checkpoint, and cross-check the inbox,
        the outbox and the account rows against the records."""
        key = self._config.audit_key
        problems: list[Problem] = []
        accounts = records = 0
        for account, chain in self._store.chains():
            accounts += 1
            records += len(chain)
            report = verify_chain(account.stripe_account_id, chain, account.audit_head, key)
            if not report.ok:
                report = self._recheck(account.stripe_account_id) or report
            if not report.ok:
                problems.append(_chain_problem(report))
        cps = list(self._all_checkpoints())
        problems.extend(checkpoints.verify(cps, self._store.sealed(), key))
        since = self._clock.now() - self._config.retention
        evidence = self._store.evidence(outbox_since=since)
        problems.extend(evidence.problems)
        problems.extend(_key_problems(key is not None, cps, records, evidence.unsealed_unkeyed))
        return AuditReport(accounts, records, len(cps), evidence.unsealed, key.key_id if key else None, tuple(problems))

    # -------------------------------------------------------------- helpers

    def _recheck(self, account_id: str) -> ChainReport | None:
        """Read one chain again, records first: the account row and its newest
        record commit together, so a row that is no further than the records
        read is consistent with them. A row further on means a write landed
        in between (read again); a row behind them is a real problem."""
        for _ in range(3):
            chain = self._store.history(account_id)
            account = self._store.get(account_id)
            if account is None:
                return None
            if account.audit_seq <= (chain[-1].seq if chain else 0):
                return verify_chain(account_id, chain, account.audit_head, self._config.audit_key)
        return None

    def _last_checkpoint(self) -> Checkpoint | None:
        last = None
        for last in self._all_checkpoints():  # noqa: B007 - the chain is short (one per 10^4 records)
            pass
        return last

    def _all_checkpoints(self) -> Iterator[Checkpoint]:
        after = 0
        while page := self._store.checkpoints(after=after):
            yield from page
            after = page[-1].seq


def _next(kind: str, items: Sequence[Transition], size: int, order: Order) -> str | None:
    if len(items) < size:
        return None
    last = items[-1]
    key = (last.account_id, last.seq) if order is Order.CHAIN else (last.at, last.account_id, last.seq)
    return encode(kind, key)


def _state(record: Transition) -> StateAt:
    return StateAt(record.account_id, record.to_state, record.at, record.seq, record.reason)


def _chain_problem(report: ChainReport) -> Problem:
    return Problem("chain", report.account_id, f"at seq {report.broken_at}: {report.problem}")


def _key_problems(keyed: bool, cps: list[Checkpoint], records: int, unsealed_unkeyed: int) -> list[Problem]:
    """With a key, a trail that could have been rebuilt without it is suspect."""
    if not keyed or records == 0:
        return []
    if not any(cp.key_id is not None for cp in cps):
        return [Problem("key", "checkpoints", "nothing is sealed under the key (run `audit checkpoint`)")]
    if unsealed_unkeyed:
        return [Problem("key", "records", f"{unsealed_unkeyed} plain-hash record(s) written since the key sealed")]
    return []
