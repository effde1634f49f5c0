"""What auditors ask, as engine calls (``engine.audit``): transitions across
accounts and time, state as of an instant, the inbox, exports, checkpoints
and a verification that leaves no hole.

Reads only, except ``checkpoint``, which appends to the checkpoint chain.
Every list is paged by cursor (``queries``) and every stream holds one page,
so an auditor can walk 10^6 records with flat memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TextIO

from . import checkpoints, exports, inputs
from .audit import ChainReport, Transition, verify_chain
from .checkpoints import Checkpoint, Problem
from .clock import ensure_utc
from .config import EngineConfig
from .errors import AccountNotFound, InvalidInput, SettingsError
from .events import InboxEntry
from .ports import Clock, Store
from .queries import InboxQuery, Key, Order, Page, StateAt, TransitionQuery, decode, encode

#: records sealed per checkpoint (one transaction each): also the most an export holds at once
SEAL_BATCH = 10_000
EXPORT_PAGE = 1000
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
        found, _ = self._store.latest_records(ensure_utc(at, "at"), account_id=wanted, limit=1)
        return _state(found[0]) if found else None

    def states_at(self, at: datetime, *, batch: int = 500) -> Iterator[StateAt]:
        """Every account that existed at ``at``, with where it stood, by account id."""
        instant = ensure_utc(at, "at")
        after: str | None = None
        while True:
            found, after = self._store.latest_records(instant, limit=inputs.page_size(batch), after=after)
            yield from (_state(t) for t in found)
            if after is None:
                return

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
        """Write the trail (or the part ``query`` selects) to ``out`` with every
        field its hashes are computed from (``exportcheck`` verifies it without
        the database). A whole export is the records sealed by each checkpoint
        in turn, then the records sealed since, then the checkpoints; a
        filtered one is chain by chain, with no checkpoints."""
        chosen = inputs.member(exports.Format, format, "format")
        wanted = replace(query or TransitionQuery(), order=Order.CHAIN)
        writer = exports.writer(chosen, out)
        at = self._clock.now()
        if not wanted.whole:
            return writer.write(self.stream(wanted), (), exported_at=at, whole=False)
        newest = self._store.last_checkpoint()  # anything sealed after this is exported as unsealed
        up_to = newest.seq if newest else 0
        records = itertools.chain(self._sealed_records(up_to), self._unsealed_records(up_to))
        return writer.write(records, self._all_checkpoints(up_to), exported_at=at, whole=True)

    # ---------------------------------------------------------- checkpoints

    def checkpoint(self, *, batch: int = SEAL_BATCH) -> list[Checkpoint]:
        """Seal every record written since the last checkpoint (a checkpoint
        per ``batch`` records) and publish the new head. Safe to run from
        several workers: one seals, the others find nothing left."""
        if not 1 <= batch <= SEAL_BATCH:
            raise InvalidInput(f"batch must be 1..{SEAL_BATCH} (an export holds one checkpoint's records at once)")
        key = self._config.audit_key
        last = self._store.last_checkpoint()
        if key is None and last is not None and last.key_id is not None:
            raise SettingsError(
                f"the checkpoint chain is keyed ({last.key_id}): set audit_key to seal; "
                "a plain checkpoint after keyed ones would read as tampering"
            )
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

    def verify(self, *, witnessed: Mapping[int, str] | None = None) -> AuditReport:
        """Recompute every chain and checkpoint, and cross-check the inbox,
        the outbox and the account rows against the records. ``witnessed``:
        checkpoint heads (seq -> hash) kept outside the database, e.g. from
        the outbox's ``audit.checkpoint`` messages or the worker's log."""
        key = self._config.audit_key
        newest = self._store.last_checkpoint()  # first: a checkpoint sealed meanwhile is left for next time
        up_to = newest.seq if newest else 0
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
        cps = list(self._all_checkpoints(up_to))
        problems.extend(checkpoints.verify(cps, self._store.sealed(up_to), key, witnessed=witnessed))
        since = self._clock.now() - self._config.retention
        evidence = self._store.evidence(outbox_since=since)
        problems.extend(evidence.problems)
        announced = self._store.announced_checkpoints(since)
        latest = self._store.last_checkpoint()
        problems.extend(_unannounced(cps, announced, up_to, latest.seq if latest else 0))
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

    def _all_checkpoints(self, up_to: int | None = None) -> Iterator[Checkpoint]:
        after = 0
        while page := self._store.checkpoints(after=after):
            for cp in page:
                if up_to is not None and cp.seq > up_to:
                    return
                yield cp
            after = page[-1].seq

    def _sealed_records(self, up_to: int) -> Iterator[Transition]:
        """Checkpoint by checkpoint, each one's records in code-point order of
        (account, seq), the order its digest was computed in (the database's
        collation may differ); one checkpoint in memory at a time."""
        group: list[Transition] = []
        after: Key | None = None
        while page := self._store.sealed_records(up_to, limit=EXPORT_PAGE, after=after):
            for record in page:
                if group and record.checkpoint != group[0].checkpoint:
                    yield from sorted(group, key=_chain_key)
                    group = []
                group.append(record)
            last = page[-1]
            after = (last.checkpoint or 0, last.account_id, last.seq)
        yield from sorted(group, key=_chain_key)

    def _unsealed_records(self, up_to: int) -> Iterator[Transition]:
        after: Key | None = None
        while page := self._store.unsealed_records(up_to, limit=EXPORT_PAGE, after=after):
            yield from page
            after = (page[-1].account_id, page[-1].seq)


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


def _chain_key(record: Transition) -> tuple[str, int]:
    return record.account_id, record.seq


def _unannounced(cps: list[Checkpoint], announced: list[tuple[int, str]], up_to: int, latest: int) -> list[Problem]:
    """Heads the outbox published that the checkpoint chain no longer has
    (or has with another hash). ``up_to``: the newest checkpoint when the
    check began; ``latest``: when it ended (one sealed in between is fine)."""
    hashes = {cp.seq: cp.hash for cp in cps}
    return [
        Problem("checkpoint", f"checkpoint {seq}", "published in the outbox, but not in the chain as published")
        for seq, hash_ in sorted(announced)
        if (seq <= up_to and hashes.get(seq) != hash_) or seq > latest
    ]


def _key_problems(keyed: bool, cps: list[Checkpoint], records: int, unsealed_unkeyed: int) -> list[Problem]:
    """With a key, a trail that could have been rebuilt without it is suspect."""
    if not keyed or records == 0:
        return []
    if not any(cp.key_id is not None for cp in cps):
        return [Problem("key", "checkpoints", "nothing is sealed under the key (run `audit checkpoint`)")]
    if unsealed_unkeyed:
        return [Problem("key", "records", f"{unsealed_unkeyed} plain-hash record(s) written since the key sealed")]
    return []
