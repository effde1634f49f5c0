"""The Engine: the Python API backend services, schedulers and auditors use.

This is the service layer only. Every use case reads the same way: load the
account, make one pure decision (``webhooks``, ``deadlines``, ``links``,
``creation``, ``moves``), save the resulting ``Change`` in one transaction
(account, audit row, outbox row, re-derived timers, guarded by the account's
optimistic version), then tell the observers what was committed. The
transaction, the retry policy and the observers are ``service``; the two
larger use cases have their own modules (``ingestion``, ``sweeping``).
Stripe is called *outside* database transactions, so a slow Stripe never
holds a lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from . import creation, inputs, links, moves, operations, retention, runs, updates
from .account import Account, AccountPage, FutureRequirements, Link, LinkFields, LinkType, every_account
from .attention import Attention
from .audit import Cause, Transition
from .auditing import AuditReport, AuditTrail
from .clock import ensure_utc
from .config import EngineConfig
from .creating import AccountCreation
from .delivery import OutboxDelivery
from .errors import AccountNotFound
from .events import InboxEntry, WebhookResult
from .ingestion import WebhookIngestion
from .issuing import LinkIssuing
from .limits import RateLimits
from .ports import Clock, Observer, SignatureVerifier, Store, StripeGateway, WriteTx
from .queries import InboxQuery, Page
from .retention import PruneReport
from .service import EngineStats, Transactions
from .snapshot import AccountSnapshot
from .states import Source, State, Trigger
from .sweeping import SweepReport, TimerSweep
from .syncing import Fetching
from .throttle import Throttle
from .timers import TimerBacklog
from .updating import AccountUpdate

__all__ = ["Engine", "EngineStats", "PruneReport", "SweepReport"]


class Engine:
    def __init__(
        self,
        *,
        config: EngineConfig,
        store: Store,
        gateway: StripeGateway,
        verifier: SignatureVerifier,
        clock: Clock,
        observers: Iterable[Observer] = (),
    ) -> None:
        self.config = config
        self._tx = Transactions(store, clock, config, observers)
        self._store = store
        self._gateway = gateway
        self._clock = clock
        #: bulk Stripe reads (timers, reconcile) share one pace across workers
        self.throttle = Throttle(store, clock, f"stripe:{'live' if config.livemode else 'test'}", config.stripe_pace)
        self._webhooks = WebhookIngestion(self._tx, gateway, verifier)
        self._timers = TimerSweep(self._tx, gateway, self.throttle)
        self._creation = AccountCreation(self._tx, gateway)
        self._links = LinkIssuing(self._tx, gateway)
        self._fetching = Fetching(self._tx, gateway)
        self._updates = AccountUpdate(self._tx, gateway, self._fetching)
        #: the auditor's calls: queries across accounts and time, exports, checkpoints
        self.audit = AuditTrail(store, clock, config)
        #: accounts that need attention: timers overdue, stuck, future requirements, eventually_due left
        self.attention = Attention(store, clock, config)
        #: an operator's calls: runs recorded, status, re-processing failed events
        self.ops = operations.Operations(self._tx, gateway, self.throttle)
        #: the outbox to the platform's handler: at least once, in order per account, retries, dead letters
        self.outbox = OutboxDelivery(store, clock, config)
        #: start and refresh budgets per account and per holder, shared by every web worker
        self.limits = RateLimits(store, clock)

    @property
    def stats(self) -> EngineStats:
        return self._tx.stats

    def subscribe(self, observer: Observer) -> None:
        """Also tell ``observer`` what is committed from now on (metrics, tracing)."""
        self._tx.subscribe(observer)

    # ------------------------------------------------------------ accounts

    def create_account(
        self,
        platform_ref: str,
        country: str | None = None,
        capabilities: Sequence[str] = (),
        prefill: Mapping[str, Any] | None = None,
        *,
        controller: Mapping[str, Any] | None = None,
        type: str | None = None,
        business_type: str | None = None,
        actor: str | None = None,
    ) -> Account:
        """Create the connected account, once per ``platform_ref``.

        A second call with the same reference returns the first account. The
        intent is recorded before Stripe is called and the call carries an
        idempotency key derived from the reference, so a retry after a crash
        between Stripe's answer and our commit gets the same account back —
        after Stripe's 24-hour idempotency window too (``creating``).
        Without ``country`` (and capabilities) the holder chooses it in the form.
        """
        new = inputs.new_account(platform_ref, country, capabilities, prefill, controller, type, business_type)
        return self._creation.create(new, Cause(Source.API, actor=actor))

    def adopt(
        self, snapshot: AccountSnapshot, *, actor: str | None = "reconcile", run_id: str | None = None
    ) -> Account:
        """Take in a Stripe account tagged with our platform reference that
        has no local row: Stripe created it, our commit never happened."""
        cause = Cause(Source.RECONCILE, "adopted", actor, run_id=run_id)
        return self._creation.insert(creation.adoption(snapshot), snapshot, cause)

    # --------------------------------------------------------------- links

    def issue_link(
        self,
        account_id: str,
        *,
        type: LinkType | str = LinkType.ACCOUNT_ONBOARDING,
        fields: LinkFields | str | None = None,
        future_requirements: FutureRequirements | str | None = None,
        actor: str | None = None,
        last_issued: datetime | links.Unchecked | None = links.UNCHECKED,
    ) -> Link:
        """Mint an Account Link and move the account to ``link_issued``.

        The link's URL is returned to the caller and never stored; its
        parameters and expiry are, so ``refresh_link`` can mint the same one.
        ``last_issued`` makes it once-only (``links.issued``): a start token's.
        """
        account = self._require(account_id)
        params = links.params(self.config, type, fields, future_requirements)
        return self._links.mint(account, params, Trigger.ISSUE_LINK, Cause(Source.API, actor=actor), last_issued)

    def refresh_link(self, account_id: str, *, actor: str | None = None) -> Link:
        """Handle the refresh_url: a new link with the last link's parameters."""
        return self._links.refresh(self._require(account_id), Cause(Source.REFRESH, actor=actor))

    def issue_profile_link(
        self,
        account_id: str,
        *,
        actor: str | None = None,
        last_issued: datetime | links.Unchecked | None = links.UNCHECKED,
    ) -> Link:
        """ "Edit my profile": an ``account_update`` link where Stripe allows
        one, an onboarding link while something is owed, else ``LinkNotAllowed``
        (the holder edits their details in their Stripe Dashboard; ``links.profile``)."""
        return self._links.profile(self._require(account_id), Cause(Source.API, actor=actor), last_issued)

    # ------------------------------------------------------------- updates

    def update_account(
        self,
        account_id: str,
        params: Mapping[str, Any] | None = None,
        *,
        capabilities: Sequence[str] = (),
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> Account:
        """Pre-fill more or request capabilities (Stripe's update parameters),
        then move to what Stripe reports, audited as an ``update``. Identity
        fields and the bank account are refused (``IdentityLocked``) once a
        link exists on an account where Stripe collects requirements: Stripe
        locks them then. ``idempotency_key`` makes a retry after a timeout safe."""
        update = updates.checked(params, capabilities)
        cause = Cause(Source.API, actor=actor)
        return self._updates.apply(self._require(account_id), update, cause, idempotency_key=idempotency_key)

    def request_capabilities(self, account_id: str, names: Sequence[str], *, actor: str | None = None) -> Account:
        """Request capabilities later (``update_account``); new requirements
        owed move a verified account to ``returned_incomplete``: send the
        holder through an onboarding link again."""
        return self.update_account(account_id, capabilities=names, actor=actor)

    # ------------------------------------------------------------- syncing

    def handle_return(self, account_id: str, *, actor: str | None = None) -> Account:
        """Handle the return_url: reaching it says nothing about completeness,
        so fetch the account from Stripe and classify what it says."""
        return self._fetching.fetch(self._require(account_id), Cause(Source.RETURN, actor=actor), returning=True)

    def sync_account(self, account_id: str, *, source: Source = Source.RECONCILE, actor: str | None = None) -> Account:
        """Fetch the account from Stripe and apply it as a ``sync``."""
        return self._fetching.fetch(self._require(account_id), Cause(source, actor=actor), returning=False)

    def sync_snapshot(
        self,
        snapshot: AccountSnapshot,
        *,
        source: Source = Source.RECONCILE,
        actor: str | None = None,
        run_id: str | None = None,
    ) -> tuple[Account, Transition | None]:
        """Apply a snapshot just fetched from Stripe (e.g. by a reconciler's listing)."""
        return self._fetching.apply(snapshot, Cause(source, actor=actor, run_id=run_id), returning=False)

    def detach(
        self,
        account_id: str,
        reason: str,
        *,
        source: Source = Source.RECONCILE,
        actor: str | None = None,
        inaccessible_before: datetime | None = None,
        run_id: str | None = None,
    ) -> Transition | None:
        """The platform lost the account (access refused, or deleted) without
        a webhook saying so: disable it (until Stripe shows it again). With
        ``inaccessible_before``, only if it was still marked inaccessible since
        before then when the transaction runs (an answer meanwhile clears it).
        No Stripe answer is involved, so the record's cause is its actor: the
        source's name when the caller names no one."""
        cause = Cause(source, actor=actor or source.value, run_id=run_id)

        def decide(account: Account, now: datetime) -> moves.Change | None:
            if inaccessible_before is not None and (
                account.inaccessible_since is None or account.inaccessible_since > inaccessible_before
            ):
                return None
            return moves.detach(account, reason, cause, now)

        return self._change(account_id, decide)

    def mark_inaccessible(self, account_id: str) -> Account:
        """Reconciliation could not see the account: remember since when (the
        first time only), so a later run can confirm before detaching."""
        self._change(account_id, moves.inaccessible)
        return self._require(account_id)

    def restore(
        self, snapshot: AccountSnapshot, *, actor: str | None = "reconcile", run_id: str | None = None
    ) -> Transition | None:
        """A detached account Stripe shows this platform again: an audited
        ``restore`` to where the snapshot classifies."""
        cause = Cause(Source.RECONCILE, "restored", actor, request_id=snapshot.request_id, run_id=run_id)
        policy = self.config.policy
        return self._change(snapshot.id, lambda account, now: moves.restore(account, snapshot, cause, now, policy))

    def _change(self, account_id: str, decide: Callable[[Account, datetime], moves.Change | None]) -> Transition | None:
        def step(tx: WriteTx) -> Transition | None:
            change = decide(self._tx.load(tx, account_id), self._clock.now())
            if change is None:
                return None
            return self._tx.save(tx, change).transition

        transition = self._tx.write(step)
        self._tx.observe(transition)
        return transition

    # ------------------------------------------------------------ webhooks

    def ingest_webhook(self, raw_body: bytes, signature_header: str | None) -> WebhookResult:
        """Verify, dedupe and apply one Stripe webhook delivery.

        Raises a ``WebhookRejected`` (answer 400) for forged, stale, future
        or malformed deliveries, changing nothing. Everything else is recorded
        in the inbox and answered with a typed result.
        """
        return self._webhooks.ingest(raw_body, signature_header)

    # ------------------------------------------------------------- timers

    def check_deadlines(self, now: datetime | None = None, *, operator: str | None = None) -> list[Transition]:
        """Fire every due timer (deadline, abandonment, reminder), each in its
        own transaction; return the transitions that happened."""
        return list(self.sweep(now, operator=operator).transitions)

    def sweep(
        self, now: datetime | None = None, *, limit: int | None = None, operator: str | None = None
    ) -> SweepReport:
        """``check_deadlines`` with the whole story: transitions, reminders
        sent, timers that no longer applied, the run's id. Any number of
        processes may sweep at once: each timer is claimed by exactly one of
        them. ``operator`` names who ran it by hand (recorded as the cause)."""
        at = ensure_utc(now, "now") if now is not None else self._clock.now()
        return self._timers.sweep(at, limit, runs.operated("sweep", operator))

    def next_due(self) -> datetime | None:
        """When the earliest unfired timer wakes (for a scheduler to wake)."""
        return self._store.next_due_at()

    def timer_backlog(self) -> TimerBacklog:
        """Timers awake and unfired, overdue, and waiting for Stripe to answer (metrics)."""
        return self.ops.timer_backlog()

    # -------------------------------------------------- Stripe's side (reconciliation)

    def stripe_account(self, account_id: str) -> AccountSnapshot:
        """Stripe's current view of one account, not applied (at the shared pace)."""
        wanted = inputs.account_id(account_id)
        self.throttle.wait()
        return self._gateway.retrieve_account(wanted)

    def stripe_accounts(self, *, page_size: int = 100) -> Iterator[AccountSnapshot]:
        """Every account Stripe lists for the platform, page by page, not applied."""

        def page_after(cursor: str | None) -> AccountPage:
            self.throttle.wait()
            return self._gateway.list_accounts(limit=page_size, starting_after=cursor)

        return every_account(page_after)

    def stale_accounts(self, older_than: timedelta, *, batch: int = 500) -> Iterator[Account]:
        """Accounts not detached whose snapshot is older than ``older_than``."""
        cutoff = self._clock.now() - older_than
        after: str | None = None
        while page := self._store.stale_accounts(cutoff, limit=batch, after=after):
            yield from page
            after = page[-1].stripe_account_id

    # --------------------------------------------------------------- views

    def get_account(self, account_id: str) -> Account:
        return self._require(account_id)

    def find_account(self, platform_ref: str) -> Account | None:
        return self._store.get_by_ref(platform_ref)

    def history(self, account_id: str) -> list[Transition]:
        self._require(account_id)
        return self._store.history(account_id)

    def accounts(
        self, *, state: State | str | None = None, limit: int = 100, after: str | None = None
    ) -> list[Account]:
        wanted = inputs.member(State, state, "state") if state is not None else None
        return self._store.accounts(state=wanted, limit=inputs.page_size(limit), after=after)

    def inbox(
        self,
        query: InboxQuery | None = None,
        *,
        account_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[InboxEntry]:
        """Recorded webhook events, newest first (identity data stripped),
        filtered by ``query`` (account, type, outcome, time) and paged."""
        return self.audit.inbox(query or InboxQuery(account_id=account_id), limit=limit, cursor=cursor)

    def count_by_state(self) -> dict[State, int]:
        return self._store.count_by_state()

    def verify_audit(self, *, witnessed: Mapping[int, str] | None = None) -> AuditReport:
        """Every chain, the checkpoint chain and the cross-checks (``engine.audit.verify``)."""
        return self.audit.verify(witnessed=witnessed)

    def dispatch_outbox(self, handler: Callable[[Mapping[str, Any]], object], *, limit: int = 100) -> int:
        """``engine.outbox.deliver`` (at least once, in order per account); the
        number delivered. A handler that raises is retried later, not re-raised."""
        return self.outbox.deliver(handler, limit=limit).delivered

    def prune(self, now: datetime | None = None, *, operator: str | None = None) -> PruneReport:
        """Delete outbox messages published more than ``config.retention`` ago
        and empty older inbox payloads, keeping the inbox rows (dedupe) and every
        audit record (``retention``). Idempotent, recorded as a run; daily in the worker."""
        at = ensure_utc(now, "now") if now is not None else self._clock.now()
        return self.ops.prune(retention.cutoff(at, self.config.retention), runs.operated(runs.PRUNE, operator))

    def now(self) -> datetime:
        """The engine's time (its ``Clock``): for adapters that must keep time
        with it, such as a rate limit or a scheduler's wake-up."""
        return self._clock.now()

    def ping(self) -> None:
        """Raise if the database does not answer (health checks)."""
        self._store.ping()

    def close(self) -> None:
        self._store.close()

    # ------------------------------------------------------------- helpers

    def _require(self, account_id: str) -> Account:
        account = self._store.get(inputs.account_id(account_id))
        if account is None:
            raise AccountNotFound(account_id)
        return account
