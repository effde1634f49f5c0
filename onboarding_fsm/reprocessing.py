"""Re-processing webhook events: those whose processing failed, or one named.

The inbox keeps an event's id, type, account, times and outcome, not what
it said: the payload is redacted (identity stripped) and emptied after the
retention. So an event recorded ``failed`` (Stripe could not be asked when
its tie had to be settled, say) is re-done the one way that stays right
whatever happened since: ask Stripe for the account now — a fresh retrieve
is the truth — and apply the answer as an audited sync whose cause names
the event (source ``operator``, ``source_ref`` the event id, the operator as
actor), covering the event's ``created`` as ingestion's own re-fetch does.

A failed event's inbox row becomes ``applied`` in the same transaction,
with ``transition_seq`` set when the account moved, so the audit
cross-check finds the record it names. A row that is no longer ``failed``
by then (Stripe's redelivery got there first) rolls the whole transaction
back: nothing is applied twice. Stripe refusing the account (403, 404)
records the failed event ``ignored``, as ingestion does; Stripe still out
of reach leaves it ``failed``. Another event named by id is synced the same
way, its recorded outcome left as it was. An event with no account, of an
account this engine does not know, or of the other mode is reported, not
applied.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from . import moves
from .audit import Cause, Transition
from .errors import DuplicateEvent, EventNotFound, InvalidInput, StripeAccountInaccessible
from .events import InboxEntry, Outcome
from .ports import StripeGateway, WriteTx
from .queries import InboxQuery
from .service import Transactions
from .snapshot import AccountSnapshot
from .states import Source
from .throttle import Throttle

DETACHED = "account is deauthorized or deleted; recorded only"


class Verdict(StrEnum):
    #: Stripe answered and its answer was applied (a failed event is now ``applied``)
    APPLIED = "applied"
    #: nothing to apply: no account, an unknown account, the other mode, a detached account
    SKIPPED = "skipped"
    #: Stripe could not be asked: a failed event stays ``failed``
    FAILED = "failed"
    #: Stripe refused the account: a failed event is recorded ``ignored``
    REFUSED = "refused"
    #: no longer ``failed`` when it came to be recorded: processed meanwhile, nothing changed
    SETTLED = "settled"


@dataclass(frozen=True, slots=True)
class Reprocessed:
    event_id: str
    account_id: str | None
    verdict: Verdict
    detail: str
    #: the audit record the sync wrote (None: nothing moved)
    transition: Transition | None = None


class Reprocessing:
    def __init__(self, tx: Transactions, gateway: StripeGateway, throttle: Throttle) -> None:
        self._tx = tx
        self._gateway = gateway
        self._throttle = throttle

    def one(self, event_id: str, actor: str) -> Reprocessed:
        if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
            raise InvalidInput(f"not an event id: {event_id!r:.60}")
        entry = self._tx.store.inbox_event(event_id)
        if entry is None:
            raise EventNotFound(event_id)
        return self._redo(entry, actor)

    def failed(self, actor: str, limit: int) -> list[Reprocessed]:
        """Up to ``limit`` failed events, oldest first (each once: one still
        failing is not retried in the same call)."""
        oldest = list(reversed(self._all_failed()))[:limit]
        return [self._redo(entry, actor) for entry in oldest]

    def _all_failed(self) -> list[InboxEntry]:
        """Every failed event, newest first (failures are few: an outage's worth)."""
        found: list[InboxEntry] = []
        after = None
        while page := self._tx.store.inbox(InboxQuery(outcome=Outcome.FAILED), limit=500, after=after):
            found.extend(page)
            after = (page[-1].received_at, page[-1].event_id)
        return found

    def _redo(self, entry: InboxEntry, actor: str) -> Reprocessed:
        account_id = entry.account_id
        config = self._tx.config
        if account_id is None:
            return _done(entry, Verdict.SKIPPED, "the event names no account")
        if entry.livemode != config.livemode:
            return _done(
                entry, Verdict.SKIPPED, f"livemode={entry.livemode} event on a livemode={config.livemode} engine"
            )
        account = self._tx.store.get(account_id)
        if account is None:
            return _done(entry, Verdict.SKIPPED, f"unknown account {account_id}")
        if account.detached:
            return self._record_only(entry, Outcome.IGNORED, Verdict.SKIPPED, DETACHED)
        try:
            self._throttle.wait()
            snapshot = self._gateway.retrieve_account(account_id)
        except StripeAccountInaccessible as exc:  # the account left (or was never ours): nothing to apply, ever
            return self._record_only(entry, Outcome.IGNORED, Verdict.REFUSED, f"re-fetch refused: {type(exc).__name__}")
        except Exception as exc:  # the outside world: whatever went wrong, it stays as it is
            return _done(entry, Verdict.FAILED, f"Stripe not asked: {type(exc).__name__}: {exc}")
        cause = Cause(Source.OPERATOR, entry.event_id, actor).answered(snapshot.request_id)
        try:
            done = self._tx.write(lambda tx: self._apply(tx, entry, snapshot, cause))
        except DuplicateEvent:
            return _done(entry, Verdict.SETTLED, "no longer failed: processed meanwhile; nothing changed")
        self._tx.observe(done.transition)
        return done

    def _apply(self, tx: WriteTx, entry: InboxEntry, snapshot: AccountSnapshot, cause: Cause) -> Reprocessed:
        now = self._tx.clock.now()  # after Stripe answered: the snapshot is this fresh
        account = self._tx.load(tx, snapshot.id)
        policy = self._tx.config.policy
        change = moves.fetched(account, snapshot, cause, now, policy, returning=False, covers=entry.created)
        if change is None:  # detached meanwhile
            _settle(tx, entry, Outcome.IGNORED, DETACHED, None)
            return _done(entry, Verdict.SKIPPED, DETACHED)
        if entry.outcome is Outcome.FAILED:
            detail = f"re-processed by {cause.actor}: Stripe asked again"
        else:
            detail = f"synced from Stripe by {cause.actor}; the event stays recorded {entry.outcome.value}"
        _settle(tx, entry, Outcome.APPLIED, detail, change.transition)
        saved = self._tx.save(tx, change)
        return _done(entry, Verdict.APPLIED, detail, saved.transition)

    def _record_only(self, entry: InboxEntry, outcome: Outcome, verdict: Verdict, detail: str) -> Reprocessed:
        if entry.outcome is Outcome.FAILED:
            try:
                self._tx.write(lambda tx: _settle(tx, entry, outcome, detail, None))
            except DuplicateEvent:
                return _done(entry, Verdict.SETTLED, "no longer failed: processed meanwhile; nothing changed")
        return _done(entry, verdict, detail)


def _settle(tx: WriteTx, entry: InboxEntry, outcome: Outcome, detail: str, caused: Transition | None) -> None:
    """A failed event's new outcome (the store overwrites only a ``failed`` row:
    anything else is ``DuplicateEvent``, and the transaction rolls back)."""
    if entry.outcome is Outcome.FAILED:
        seq = caused.seq if caused is not None else None
        tx.record_event(replace(entry, outcome=outcome, detail=detail, transition_seq=seq))


def _done(entry: InboxEntry, verdict: Verdict, detail: str, transition: Transition | None = None) -> Reprocessed:
    return Reprocessed(entry.event_id, entry.account_id, verdict, detail, transition)
