"""The ports: what the core needs from the outside world, and nothing more.

Adapters implement these structurally (``typing.Protocol``); one contract
suite per port in ``tests/contract`` runs against every adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol

from .account import Account, AccountPage, CreationIntent, Link, LinkRequest, NewAccount
from .attention import AttentionKind, AttentionQuery, Flagged
from .audit import Transition
from .checkpoints import Anchor, AuditEvidence, Checkpoint
from .config import Pace
from .events import InboxEntry
from .outbox import DeadLetter, Failure, OutboxBacklog, OutboxMessage
from .queries import InboxQuery, Key, TransitionQuery
from .retention import PruneReport
from .runs import RunRecord
from .selfcheck import WebhookEndpoint
from .snapshot import AccountSnapshot
from .states import State
from .timers import ClaimedTimer, Timer, TimerBacklog


class Observer(Protocol):
    """Told about what the engine committed (metrics, tracing). Called after
    the transaction, on the caller's thread; must not raise. An observer may
    also have the methods of ``DetailedObserver``: each is called only on
    observers that define it, so observers written before them still work."""

    def on_transition(self, transition: Transition) -> None: ...

    def on_webhook(self, outcome: str, seconds: float) -> None: ...


class DetailedObserver(Observer, Protocol):
    """The optional methods (``service.Transactions.notify``)."""

    def on_state_left(self, state: State, seconds: float) -> None:
        """An account left ``state`` (to another) after ``seconds`` in it."""
        ...

    def on_webhook_lag(self, seconds: float) -> None:
        """A delivery arrived ``seconds`` after Stripe created its event (our clock)."""
        ...

    def on_stripe_call(self, operation: str, outcome: str, seconds: float) -> None:
        """A gateway call (``create_account``…) ended: ``ok`` or the engine error's class name."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait (a fake clock moves instead), e.g. for a rate budget."""
        ...


class StripeGateway(Protocol):
    """The Stripe calls onboarding needs. Implementations translate Stripe's
    objects into snapshots and Stripe's errors into ``onboarding_fsm.errors``."""

    def create_account(self, new: NewAccount, *, idempotency_key: str) -> AccountSnapshot: ...

    def retrieve_account(self, account_id: str) -> AccountSnapshot: ...

    def update_account(
        self, account_id: str, params: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> AccountSnapshot: ...

    def list_accounts(
        self, *, limit: int = 100, starting_after: str | None = None, created_gte: datetime | None = None
    ) -> AccountPage:
        """Newest first; ``created_gte`` is Stripe's ``created[gte]`` filter."""
        ...

    def create_account_link(self, request: LinkRequest) -> Link: ...

    def list_webhook_endpoints(self) -> list[WebhookEndpoint]:
        """Every webhook endpoint the key's account has (all pages), for the
        self-check (``selfcheck``): Connect or not, events, URL, status, mode."""
        ...


class SignatureVerifier(Protocol):
    def verify(self, payload: bytes, header: str | None) -> int:
        """Check ``Stripe-Signature`` against every configured secret; return
        the signed timestamp. Raises ``SignatureInvalid``. The tolerance is
        the engine's job, against its own clock."""
        ...


class WriteTx(Protocol):
    """One database transaction (a unit of work): everything done through it
    is committed together when its context exits cleanly, or not at all."""

    def load(self, account_id: str) -> Account | None: ...

    def load_by_ref(self, platform_ref: str) -> Account | None: ...

    def insert(self, account: Account, birth: Transition, timers: Sequence[Timer]) -> bool:
        """False when the Stripe id or platform reference already exists."""
        ...

    def save(
        self,
        account: Account,
        *,
        expected_version: int,
        transition: Transition | None,
        timers: Sequence[Timer] | None,
    ) -> None:
        """Write the account if its stored version is ``expected_version``
        (else ``ConcurrencyConflict``), with its audit and outbox rows, and
        replace its unfired timers when ``timers`` is given."""
        ...

    def record_event(self, entry: InboxEntry) -> None:
        """Insert into the inbox (a previous ``failed`` outcome may be
        overwritten). ``DuplicateEvent`` if the event id is already there —
        raised here or, at the latest, when the transaction commits, which
        then rolls back everything done through it."""
        ...

    def claim_due_timer(self, now: datetime, *, lease_until: datetime) -> ClaimedTimer | None:
        """Lease the unfired timer that woke earliest (at or before ``now``):
        no sweep sees it again before ``lease_until`` unless this transaction
        rolls back. Concurrent claimers skip each other's rows (``FOR UPDATE
        SKIP LOCKED`` where the database has it). A sweep that dies while
        holding a lease leaves the timer to wake at the lease's end."""
        ...

    def finish_timer(self, timer: Timer, now: datetime) -> bool:
        """Mark it fired at ``now``; False if it is gone or fired already
        (re-derived away, or finished by a sweep whose lease ran out first)."""
        ...

    def retry_timer(self, timer: Timer, wake_at: datetime) -> None:
        """Stripe could not be asked: wake it again at ``wake_at``, one attempt more."""
        ...

    def intent(self, platform_ref: str) -> CreationIntent | None: ...

    def record_intent(self, intent: CreationIntent) -> None:
        """Insert or replace; ``insert`` of the account deletes it."""
        ...

    def drop_intent(self, platform_ref: str) -> None: ...

    def emit(self, account_id: str, kind: str, payload: Mapping[str, Any], at: datetime) -> None:
        """An outbox message that is not a transition (e.g. a reminder)."""
        ...


class Store(Protocol):
    @property
    def location(self) -> str:
        """Where the data lives, for people (no password)."""
        ...

    def migrate(self) -> None: ...

    def write(self) -> AbstractContextManager[WriteTx]: ...

    def get(self, account_id: str) -> Account | None: ...

    def get_by_ref(self, platform_ref: str) -> Account | None: ...

    def accounts(self, *, state: State | None = None, limit: int = 100, after: str | None = None) -> list[Account]: ...

    def history(self, account_id: str) -> list[Transition]: ...

    def chains(self) -> Iterator[tuple[Account, list[Transition]]]:
        """Every account with its whole audit chain, for ``audit verify``."""
        ...

    def inbox(self, query: InboxQuery | None = None, *, limit: int = 100, after: Key | None = None) -> list[InboxEntry]:
        """Newest first, keyset-paged on ``(received_at, event_id)``."""
        ...

    def transitions(self, query: TransitionQuery, *, limit: int = 100, after: Key | None = None) -> list[Transition]:
        """Across accounts, keyset-paged: on ``(at, account_id, seq)`` in time
        order, on ``(account_id, seq)`` in chain order."""
        ...

    def latest_records(
        self, at: datetime, *, account_id: str | None = None, limit: int = 500, after: str | None = None
    ) -> tuple[list[Transition], str | None]:
        """For the next ``limit`` accounts in id order (after ``after``), the
        record with the highest seq among those stamped at or before ``at``
        (accounts born later have none); and the cursor for the next page
        (None: those were the last accounts)."""
        ...

    def checkpoints(self, *, after: int = 0, limit: int = 500) -> list[Checkpoint]:
        """The checkpoint chain in order, from seq ``after + 1``."""
        ...

    def last_checkpoint(self) -> Checkpoint | None: ...

    def sealed_records(self, up_to: int, *, limit: int = 1000, after: Key | None = None) -> list[Transition]:
        """Records sealed by checkpoints ``1..up_to``, keyset-paged on
        ``(checkpoint, account_id, seq)``: a checkpoint's records together."""
        ...

    def unsealed_records(self, up_to: int, *, limit: int = 1000, after: Key | None = None) -> list[Transition]:
        """Records no checkpoint ``1..up_to`` sealed, keyset-paged on
        ``(account_id, seq)``, with ``checkpoint`` None (sealed later, if at all)."""
        ...

    def announced_checkpoints(self, since: datetime) -> list[tuple[int, str]]:
        """``(seq, hash)`` of the checkpoint heads the outbox published since ``since``."""
        ...

    def seal_checkpoint(
        self, make: Callable[[Checkpoint | None, list[Anchor]], Checkpoint], *, limit: int, keyed_only: bool
    ) -> Checkpoint | None:
        """In one transaction: take up to ``limit`` records no checkpoint
        sealed yet (only keyed ones if ``keyed_only``), mark them with the
        next checkpoint's seq and append ``make(last, anchors)``. None when
        there was nothing to seal, or another process sealed at the same time."""
        ...

    def sealed(self, up_to: int) -> Iterator[tuple[int, str, int]]:
        """Per checkpoint seq up to ``up_to``, recomputed from the records
        carrying it now: the ``checkpoints.covered`` digest (anchors in
        code-point order, whatever the database's collation) and the count."""
        ...

    def evidence(self, *, outbox_since: datetime, limit: int = 100) -> AuditEvidence:
        """What cross-checks need: records not sealed yet, and disagreements
        between the trail and the inbox, the outbox and the account rows."""
        ...

    def pending_outbox(self, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        """Undelivered messages (dead letters too) in id order, as stored: a
        raw view for tests and tools; delivery claims with ``claim_outbox``."""
        ...

    def ack_outbox(self, ids: Sequence[int], at: datetime) -> None:
        """Mark messages published without delivering them (tests and tools)."""
        ...

    def claim_outbox(self, now: datetime, *, lease_until: datetime, limit: int) -> list[OutboxMessage]:
        """Lease up to ``limit`` messages, in id order: each the oldest
        undelivered message of its account (an account whose oldest is a dead
        letter gives none), due by ``now`` and not leased past it. No claimer
        gets them again before ``lease_until``; concurrent claimers skip each
        other's rows (``FOR UPDATE SKIP LOCKED`` where the database has it), so
        no two ever hold messages of the same account."""
        ...

    def finish_outbox(self, message: OutboxMessage, at: datetime) -> bool:
        """Published at ``at`` (its handler returned), whoever holds its lease
        now; False if it was published already."""
        ...

    def fail_outbox(self, message: OutboxMessage, failure: Failure) -> bool:
        """Record the failure (attempts, error, next attempt or dead letter)
        and end the lease, only while ``message``'s lease is the current one:
        False if another deliverer claimed it since, or it was published."""
        ...

    def outbox_backlog(self, now: datetime) -> OutboxBacklog: ...

    def dead_letters(self, *, limit: int = 100, after: int = 0) -> list[DeadLetter]:
        """Dead letters with an id above ``after``, in id order."""
        ...

    def redrive_outbox(self, ids: Sequence[int] | None) -> list[int]:
        """In one transaction, dead letters back to pending (attempts 0, due
        at once, the last error kept): those of ``ids``, or all of them when
        None; their ids, ascending. ``InvalidInput`` and nothing changed when an
        id is not a dead letter."""
        ...

    def count_by_state(self) -> dict[State, int]: ...

    def needing_attention(
        self, kind: AttentionKind, query: AttentionQuery, *, limit: int = 100, after: tuple[datetime, str] | None = None
    ) -> list[Flagged]:
        """Accounts of one kind that need attention (``attention``), each once,
        in the kind's order, keyset-paged: ``after`` is the last row's ``key``."""
        ...

    def count_needing_attention(
        self, kinds: Sequence[AttentionKind], query: AttentionQuery
    ) -> dict[AttentionKind, int]:
        """How many accounts ``needing_attention`` would list, per kind."""
        ...

    def ping(self) -> None:
        """Raise if the database does not answer."""
        ...

    def next_due_at(self) -> datetime | None:
        """When the earliest unfired timer wakes (its due time, or later while
        leased or backing off)."""
        ...

    def timer_backlog(self, now: datetime, *, overdue_before: datetime | None = None) -> TimerBacklog:
        """Unfired timers awake at ``now``, retrying, and (with ``overdue_before``)
        due before that instant."""
        ...

    def record_run(self, run: RunRecord) -> None:
        """Insert the run, or update the row with its id (an idle run's, say)."""
        ...

    def runs(self, kind: str | None = None, *, limit: int = 20) -> list[RunRecord]:
        """Recorded runs, the latest finished first."""
        ...

    def inbox_event(self, event_id: str) -> InboxEntry | None: ...

    def reserve(self, name: str, interval: timedelta, now: datetime) -> datetime:
        """Take the next slot of the budget ``name`` (one call per
        ``interval``), shared by every process using this database; return
        the budget's new theoretical arrival time (GCRA)."""
        ...

    def admit(self, budgets: Sequence[tuple[str, Pace]], now: datetime) -> str | None:
        """Take one slot of every budget ``(name, pace)``, or of none, in one
        transaction shared by every process using this database: a budget has
        a slot when its new theoretical arrival time (GCRA, as ``reserve``)
        stays within ``now + burst × interval``. None when every slot was
        taken; else the name of a budget that refused, and nothing changed."""
        ...

    def stale_accounts(self, synced_before: datetime, *, limit: int = 500, after: str | None = None) -> list[Account]:
        """Accounts not detached whose last snapshot is older than ``synced_before``."""
        ...

    def timers(self, account_id: str) -> list[tuple[Timer, datetime | None]]:
        """All timers of an account with their fired time (None if unfired)."""
        ...

    def prune(self, before: datetime) -> PruneReport:
        """Delete outbox messages published before ``before`` and empty the
        payloads (to ``{}``) of inbox rows received before it, keeping the
        rows; never touch the audit trail. In batches, so no transaction is long."""
        ...

    def close(self) -> None: ...
