"""The Engine: the Python API backend services, schedulers and auditors use.

Every state change follows one path (``_move``): the shared machine checks the
edge, the audit record is sealed onto the account's hash chain, and the store
writes account, audit row, outbox row and re-derived timers in one
transaction guarded by the account's optimistic version. Stripe calls are
made *outside* database transactions so a slow Stripe never holds a lock.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from .account import (
    Account,
    FutureRequirements,
    Link,
    LinkFields,
    LinkParams,
    LinkRequest,
    LinkType,
    NewAccount,
)
from .audit import GENESIS, Cause, ChainReport, Transition, requirement_delta, seal, verify_chain
from .classify import classify, sync_target
from .clock import ensure_utc
from .errors import (
    AccountNotFound,
    ConcurrencyConflict,
    InsecureUrl,
    InvalidInput,
    LinkNotAllowed,
    MalformedEvent,
    MalformedPayload,
    PermanentError,
    TimestampOutOfTolerance,
    TriggerNotAllowed,
    WebhookRejected,
)
from .events import (
    ACCOUNT_UPDATED,
    CAPABILITY_UPDATED,
    DEAUTHORIZED,
    Event,
    InboxEntry,
    Outcome,
    WebhookResult,
    parse_event,
)
from .machine import allowed, fire
from .ports import Clock, Observer, SignatureVerifier, Store, StripeGateway, WriteTx
from .redact import strip_event
from .settings import Settings
from .snapshot import PLATFORM_REF_KEY, AccountSnapshot, parse_account
from .states import Source, State, Trigger
from .timers import Timer, TimerKind, derive_timers, missed_deadline

log = logging.getLogger("onboarding_fsm")
T = TypeVar("T")

_ACCOUNT_ID = re.compile(r"^acct_[A-Za-z0-9]{1,64}$")
_PLATFORM_REF = re.compile(r"^[\x21-\x7e]{1,200}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CAPABILITY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_BUSINESS_TYPES = frozenset({"individual", "company", "non_profit", "government_entity"})
_ACCOUNT_TYPES = frozenset({"custom", "express", "standard"})


@dataclass(frozen=True, slots=True)
class SweepReport:
    transitions: tuple[Transition, ...]
    reminders: int
    skipped: int

    @property
    def timers(self) -> int:
        return len(self.transitions) + self.reminders + self.skipped


@dataclass
class EngineStats:
    """Counters a worker or /metrics can report."""

    conflicts_retried: int = 0
    conflicts_exhausted: int = 0


class _Duplicate(Exception):
    """Raised inside a write transaction to roll it back on a duplicate event."""


@dataclass(frozen=True, slots=True)
class _Refetch:
    """The event's snapshot ties the watermark but differs: ask Stripe."""


@dataclass(frozen=True, slots=True)
class _Decision:
    outcome: Outcome
    detail: str | None = None
    account: Account | None = None
    previous: Account | None = None
    transition: Transition | None = None


class _NoObserver:
    def on_transition(self, transition: Transition) -> None:
        return None

    def on_webhook(self, outcome: str, seconds: float) -> None:
        return None


def _floor_second(value: datetime) -> datetime:
    return value.replace(microsecond=0)


class Engine:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        gateway: StripeGateway,
        verifier: SignatureVerifier,
        clock: Clock,
        observer: Observer | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.gateway = gateway
        self.clock = clock
        self.stats = EngineStats()
        self._verifier = verifier
        self.observer: Observer = observer or _NoObserver()
        self._policy = settings.policy
        self._abandon_after = settings.abandon_after
        self._reminders = settings.reminder_offsets

    # ------------------------------------------------------------------ API

    def create_account(
        self,
        platform_ref: str,
        country: str,
        capabilities: Sequence[str] = (),
        prefill: Mapping[str, Any] | None = None,
        *,
        controller: Mapping[str, Any] | None = None,
        type: str | None = None,
        business_type: str | None = None,
        actor: str | None = None,
    ) -> Account:
        """Create the connected account, once per ``platform_ref``.

        A second call with the same reference returns the first account; the
        Stripe call carries an idempotency key derived from the reference, so
        a retry after a crash between Stripe's answer and our commit gets the
        same account back instead of a second one.
        """
        new = self._validate_new_account(platform_ref, country, capabilities, prefill, controller, type, business_type)
        existing = self.store.get_by_ref(platform_ref)
        if existing is not None:
            return existing
        snapshot = self.gateway.create_account(new, idempotency_key=self.create_idempotency_key(platform_ref))
        now = self.clock.now()
        account, written = self._retrying(
            lambda: self._insert_account(new, snapshot, now, Cause(Source.API, actor=actor))
        )
        self._observe(*written)
        return account

    def issue_link(
        self,
        account_id: str,
        *,
        type: LinkType | str = LinkType.ACCOUNT_ONBOARDING,
        fields: LinkFields | str | None = None,
        future_requirements: FutureRequirements | str | None = None,
        actor: str | None = None,
    ) -> Link:
        """Mint an Account Link and move the account to ``link_issued``.

        The link's URL is returned to the caller and never stored; its
        parameters and expiry are, so ``refresh_link`` can mint the same one.
        """
        account = self._require(account_id)
        params = LinkParams(
            type=_enum(LinkType, type, "type"),
            fields=_enum(LinkFields, fields or self._policy.collection.link_fields, "fields"),
            future_requirements=_enum(
                FutureRequirements, future_requirements or self.settings.future_requirements, "future_requirements"
            ),
        )
        return self._mint(account, params, Trigger.ISSUE_LINK, Cause(Source.API, actor=actor))

    def refresh_link(self, account_id: str, *, actor: str | None = None) -> Link:
        """Handle the refresh_url: a new link with the last link's parameters."""
        account = self._require(account_id)
        if account.link is None:
            raise LinkNotAllowed(f"no link was ever issued for {account_id}; call issue_link first")
        trigger = Trigger.REFRESH if account.state is State.LINK_ISSUED else Trigger.ISSUE_LINK
        return self._mint(account, account.link, trigger, Cause(Source.REFRESH, actor=actor))

    def handle_return(self, account_id: str, *, actor: str | None = None) -> Account:
        """Handle the return_url: reaching it says nothing about completeness,
        so fetch the account from Stripe and classify what it says."""
        account = self._require(account_id)
        if account.detached:
            return account
        snapshot = self.gateway.retrieve_account(account_id)
        cause = Cause(Source.RETURN, actor=actor)
        account, transition = self._retrying(lambda: self._apply_fetched(account_id, snapshot, cause, returning=True))
        self._observe(transition)
        return account

    def sync_account(self, account_id: str, *, source: Source = Source.RECONCILE, actor: str | None = None) -> Account:
        """Fetch the account from Stripe and apply it as a ``sync``."""
        account = self._require(account_id)
        if account.detached:
            return account
        snapshot = self.gateway.retrieve_account(account_id)
        cause = Cause(source, actor=actor)
        account, transition = self._retrying(lambda: self._apply_fetched(account_id, snapshot, cause, returning=False))
        self._observe(transition)
        return account

    def ingest_webhook(self, raw_body: bytes, signature_header: str | None) -> WebhookResult:
        """Verify, dedupe and apply one Stripe webhook delivery.

        Raises a ``WebhookRejected`` (answer 400) for forged, stale, future
        or malformed deliveries, changing nothing. Everything else is recorded
        in the inbox and answered with a typed result.
        """
        if not isinstance(raw_body, bytes | bytearray | memoryview):
            raise InvalidInput("raw_body must be the raw request body as bytes")
        started = time.perf_counter()
        try:
            result = self._ingest_webhook(bytes(raw_body), signature_header)
        except WebhookRejected:
            self.observer.on_webhook("rejected", time.perf_counter() - started)
            raise
        self._observe(result.transition)
        self.observer.on_webhook(result.outcome.value, time.perf_counter() - started)
        return result

    def _ingest_webhook(self, body: bytes, signature_header: str | None) -> WebhookResult:
        signed_at = self._verifier.verify(body, signature_header)
        now = self.clock.now()
        skew = now.timestamp() - signed_at
        tolerance = self.settings.webhook_tolerance_seconds
        if skew > tolerance:
            raise TimestampOutOfTolerance(f"signature timestamp is {skew:.0f} s old (tolerance {tolerance} s)")
        if skew < -tolerance:
            raise TimestampOutOfTolerance(
                f"signature timestamp is {-skew:.0f} s in the future (tolerance {tolerance} s)"
            )
        event = parse_event(body)
        try:
            snapshot = parse_account(event.object) if event.type == ACCOUNT_UPDATED else None
            if event.type == CAPABILITY_UPDATED:
                _capability_status(event.object)
        except MalformedPayload as exc:
            raise MalformedEvent(f"event {event.id}: {exc}") from None
        result = self._retrying(lambda: self._ingest(event, snapshot, now))
        if isinstance(result, _Refetch):
            return self._ingest_refetched(event, now)
        return result

    def check_deadlines(self, now: datetime | None = None) -> list[Transition]:
        """Fire every due timer (deadline, abandonment, reminder), each in its
        own transaction; return the transitions that happened."""
        return list(self.sweep(now).transitions)

    def sweep(self, now: datetime | None = None, *, limit: int | None = None) -> SweepReport:
        """``check_deadlines`` with the whole story: transitions, reminders
        sent, timers that no longer applied. Any number of processes may
        sweep at once: each timer is claimed by exactly one of them."""
        at = ensure_utc(now, "now") if now is not None else self.clock.now()
        fired: list[Transition] = []
        reminders = skipped = 0
        while limit is None or len(fired) + reminders + skipped < limit:
            outcome = self._retrying(lambda: self._fire_next_timer(at))
            if outcome is None:
                break
            if outcome.transition is not None:
                fired.append(outcome.transition)
                self._observe(outcome.transition)
            elif outcome.detail == "reminder":
                reminders += 1
            else:
                skipped += 1
        return SweepReport(tuple(fired), reminders, skipped)

    def next_due(self) -> datetime | None:
        """When the earliest unfired timer is due (for a scheduler to wake)."""
        return self.store.next_due_at()

    # ------------------------------------------------------ reconciliation

    def sync_snapshot(
        self, snapshot: AccountSnapshot, *, source: Source = Source.RECONCILE, actor: str | None = None
    ) -> tuple[Account, Transition | None]:
        """Apply a snapshot just fetched from Stripe (e.g. by a reconciler's listing)."""
        cause = Cause(source, actor=actor)
        account, transition = self._retrying(lambda: self._apply_fetched(snapshot.id, snapshot, cause, returning=False))
        self._observe(transition)
        return account, transition

    def adopt(self, snapshot: AccountSnapshot, *, actor: str | None = "reconcile") -> Account:
        """Take in a Stripe account tagged with our platform reference that
        has no local row: Stripe created it, our commit never happened."""
        if not snapshot.platform_ref:
            raise InvalidInput(f"{snapshot.id} carries no {PLATFORM_REF_KEY} metadata; it is not ours to adopt")
        new = NewAccount(
            platform_ref=snapshot.platform_ref,
            country=snapshot.country or "",
            capabilities=tuple(name for name, _ in snapshot.capabilities),
        )
        cause = Cause(Source.RECONCILE, "adopted", actor)
        account, written = self._retrying(lambda: self._insert_account(new, snapshot, self.clock.now(), cause))
        self._observe(*written)
        return account

    def detach(
        self, account_id: str, reason: str, *, source: Source = Source.RECONCILE, actor: str | None = None
    ) -> Transition | None:
        """The platform lost the account (access refused, or deleted) without
        a webhook saying so: disable it for good."""

        def attempt() -> Transition | None:
            with self.store.write() as tx:
                account = tx.load(account_id)
                if account is None:
                    raise AccountNotFound(account_id)
                if account.detached:
                    return None
                now = self.clock.now()
                moved, transition = self._move(
                    account,
                    Trigger.DEAUTHORIZE,
                    State.DISABLED,
                    reason,
                    Cause(source, actor=actor),
                    now,
                    deauthorized=True,
                )
                self._save(tx, account, moved, transition)
                return transition

        transition = self._retrying(attempt)
        self._observe(transition)
        return transition

    # ---------------------------------------------------------------- views

    def get_account(self, account_id: str) -> Account:
        return self._require(account_id)

    def find_account(self, platform_ref: str) -> Account | None:
        return self.store.get_by_ref(platform_ref)

    def history(self, account_id: str) -> list[Transition]:
        self._require(account_id)
        return self.store.history(account_id)

    def accounts(
        self, *, state: State | str | None = None, limit: int = 100, after: str | None = None
    ) -> list[Account]:
        wanted = _enum(State, state, "state") if state is not None else None
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit must be between 1 and 10000")
        return self.store.accounts(state=wanted, limit=limit, after=after)

    def verify_audit(self) -> list[ChainReport]:
        return [verify_chain(acct.stripe_account_id, chain, acct.audit_head) for acct, chain in self.store.chains()]

    def dispatch_outbox(self, handler: Callable[[Mapping[str, Any]], None], *, limit: int = 100) -> int:
        """Hand pending outbox messages to ``handler`` in order; a message is
        marked sent only after ``handler`` returns (at-least-once)."""
        sent = 0
        for message_id, payload in self.store.pending_outbox(limit):
            handler(payload)
            self.store.ack_outbox([message_id], self.clock.now())
            sent += 1
        return sent

    @staticmethod
    def create_idempotency_key(platform_ref: str) -> str:
        return "onboarding-fsm-create-" + hashlib.sha256(platform_ref.encode("utf-8")).hexdigest()[:48]

    # ------------------------------------------------------------- helpers

    def _observe(self, *transitions: Transition | None) -> None:
        """Tell the observer (metrics) about transitions that were committed."""
        for transition in transitions:
            if transition is not None:
                self.observer.on_transition(transition)

    def _require(self, account_id: str) -> Account:
        if not isinstance(account_id, str) or not _ACCOUNT_ID.match(account_id):
            raise InvalidInput(f"not a Stripe account id: {account_id!r}")
        account = self.store.get(account_id)
        if account is None:
            raise AccountNotFound(account_id)
        return account

    def _retrying(self, attempt: Callable[[], T]) -> T:
        tries = self.settings.max_conflict_retries + 1
        for n in range(tries):
            try:
                return attempt()
            except ConcurrencyConflict:
                if n == tries - 1:
                    self.stats.conflicts_exhausted += 1
                    raise
                self.stats.conflicts_retried += 1
        raise AssertionError("unreachable")

    def _validate_new_account(
        self,
        platform_ref: str,
        country: str,
        capabilities: Sequence[str],
        prefill: Mapping[str, Any] | None,
        controller: Mapping[str, Any] | None,
        account_type: str | None,
        business_type: str | None,
    ) -> NewAccount:
        if not isinstance(platform_ref, str) or not _PLATFORM_REF.match(platform_ref):
            raise InvalidInput("platform_ref must be 1-200 printable ASCII characters without spaces")
        if not isinstance(country, str) or not _COUNTRY.match(country):
            raise InvalidInput(f"country must be an ISO 3166-1 alpha-2 code such as 'US', got {country!r}")
        if isinstance(capabilities, str) or not all(isinstance(c, str) and _CAPABILITY.match(c) for c in capabilities):
            raise InvalidInput("capabilities must be a list of capability names such as 'card_payments'")
        if controller is not None and account_type is not None:
            raise InvalidInput("pass controller properties or the legacy type, not both")
        if controller is not None and not isinstance(controller, Mapping):
            raise InvalidInput("controller must be a mapping of controller properties")
        if account_type is not None and account_type not in _ACCOUNT_TYPES:
            raise InvalidInput(f"type must be one of {sorted(_ACCOUNT_TYPES)}")
        if business_type is not None and business_type not in _BUSINESS_TYPES:
            raise InvalidInput(f"business_type must be one of {sorted(_BUSINESS_TYPES)}")
        if prefill is not None and not isinstance(prefill, Mapping):
            raise InvalidInput("prefill must be a mapping of Stripe account parameters")
        if prefill and "metadata" in prefill:
            raise InvalidInput("prefill must not set metadata: the engine owns it")
        return NewAccount(
            platform_ref=platform_ref,
            country=country,
            capabilities=tuple(dict.fromkeys(capabilities)),
            controller=dict(controller) if controller is not None else None,
            type=account_type,
            business_type=business_type,
            prefill=dict(prefill or {}),
        )

    def _move(
        self,
        account: Account,
        trigger: Trigger,
        target: State,
        reason: str,
        cause: Cause,
        now: datetime,
        **changes: Any,
    ) -> tuple[Account, Transition | None]:
        """The one way an account changes: validate the edge, seal the audit
        record (unless nothing worth recording changed), bump the version."""
        fire(account.stripe_account_id, account.state, trigger, target)
        snapshot: AccountSnapshot = changes.get("snapshot", account.snapshot)
        delta = requirement_delta(account.snapshot.requirements, snapshot.requirements)
        quiet = trigger is Trigger.SYNC and target is account.state and reason == account.reason and not delta
        transition = None
        if not quiet:
            transition = seal(
                account_id=account.stripe_account_id,
                seq=account.audit_seq + 1,
                prev_hash=account.audit_head,
                from_state=account.state,
                to_state=target,
                trigger=trigger,
                cause=cause,
                reason=reason,
                delta=delta,
                at=now,
            )
            changes.update(audit_seq=transition.seq, audit_head=transition.hash)
            log.info(
                "account %s %s -> %s by %s (%s %s): %s",
                account.stripe_account_id,
                account.state.value,
                target.value,
                trigger.value,
                cause.source.value,
                cause.source_ref or "-",
                reason,
            )
        updated = replace(account, state=target, reason=reason, version=account.version + 1, updated_at=now, **changes)
        return updated, transition

    def _timers(self, before: Account, after: Account) -> tuple[Timer, ...] | None:
        """The account's re-derived timers, or None when they did not change."""
        old = derive_timers(before, abandon_after=self._abandon_after, reminder_offsets=self._reminders)
        new = derive_timers(after, abandon_after=self._abandon_after, reminder_offsets=self._reminders)
        return None if old == new else new

    def _save(self, tx: WriteTx, before: Account, after: Account, transition: Transition | None) -> None:
        tx.save(after, expected_version=before.version, transition=transition, timers=self._timers(before, after))

    def _save_with_event(
        self, tx: WriteTx, entry: InboxEntry, before: Account, after: Account, transition: Transition | None
    ) -> None:
        """Inbox row and account change together (one statement on PostgreSQL)."""
        if not tx.record_and_save(
            entry, after, expected_version=before.version, transition=transition, timers=self._timers(before, after)
        ):
            raise _Duplicate

    def _classified_move(
        self, account: Account, snapshot: AccountSnapshot, trigger: Trigger, cause: Cause, now: datetime, **changes: Any
    ) -> tuple[Account, Transition | None]:
        result = classify(snapshot, self._policy)
        if result.unknown:
            log.warning("account %s: unknown Stripe values %s; classified conservatively", snapshot.id, result.unknown)
        target = (
            result.state
            if trigger is Trigger.RETURN
            else sync_target(account.state, result.state, detached=account.detached)
        )
        return self._move(account, trigger, target, result.reason, cause, now, snapshot=snapshot, **changes)

    # --------------------------------------------------------- create/link

    def _insert_account(
        self, new: NewAccount, snapshot: AccountSnapshot, now: datetime, cause: Cause
    ) -> tuple[Account, list[Transition]]:
        with self.store.write() as tx:
            existing = tx.load_by_ref(new.platform_ref) or tx.load(snapshot.id)
            if existing is not None:
                return existing, []
            result = classify(snapshot, self._policy)
            birth_reason = (
                result.reason
                if sync_target(State.CREATED, result.state, detached=False) is State.CREATED
                else "created"
            )
            birth = seal(
                account_id=snapshot.id,
                seq=1,
                prev_hash=GENESIS,
                from_state=None,
                to_state=State.CREATED,
                trigger=Trigger.CREATE,
                cause=cause,
                reason=birth_reason,
                delta=requirement_delta(None, snapshot.requirements),
                at=now,
            )
            account = Account(
                stripe_account_id=snapshot.id,
                platform_ref=new.platform_ref,
                state=State.CREATED,
                reason=birth_reason,
                version=1,
                snapshot=snapshot,
                requested_capabilities=new.capabilities,
                created_at=now,
                updated_at=now,
                synced_at=now,
                watermark=_floor_second(now),
                audit_seq=1,
                audit_head=birth.hash,
            )
            timers = derive_timers(account, abandon_after=self._abandon_after, reminder_offsets=self._reminders)
            if not tx.insert(account, birth, timers):
                raise ConcurrencyConflict(f"account {snapshot.id} was inserted concurrently")
            # Stripe may already say something decisive (e.g. rejected at once)
            moved, transition = self._classified_move(account, snapshot, Trigger.SYNC, cause, now)
            if transition is not None:
                self._save(tx, account, moved, transition)
                return moved, [birth, transition]
            return account, [birth]

    def _mint(self, account: Account, params: LinkParams, trigger: Trigger, cause: Cause) -> Link:
        if not allowed(account.state, trigger):
            raise TriggerNotAllowed(account.stripe_account_id, account.state.value, trigger.value)
        if params.type is LinkType.ACCOUNT_UPDATE and not (
            account.snapshot.platform_collects_requirements and not account.snapshot.has_stripe_dashboard
        ):
            raise LinkNotAllowed(
                "account_update links need an account whose platform collects requirements "
                "and which has no Stripe-hosted dashboard; use account_onboarding"
            )
        request = LinkRequest(
            account_id=account.stripe_account_id,
            params=params,
            refresh_url=self.settings.refresh_url(account.stripe_account_id),
            return_url=self.settings.return_url(account.stripe_account_id),
        )
        if self.settings.livemode and not all(
            url.startswith("https://") for url in (request.refresh_url, request.return_url)
        ):
            raise InsecureUrl("live mode needs https refresh and return URLs")
        link = self.gateway.create_account_link(request)
        link = replace(link, params=params)
        reason = f"link={params.type.value}/{params.fields.value}/future={params.future_requirements.value}"

        def record() -> Transition | None:
            with self.store.write() as tx:
                current = tx.load(account.stripe_account_id)
                if current is None:
                    raise AccountNotFound(account.stripe_account_id)
                now = self.clock.now()
                moved, transition = self._move(
                    current,
                    trigger,
                    State.LINK_ISSUED,
                    reason,
                    cause,
                    now,
                    link=params,
                    link_issued_at=now,
                    link_expires_at=link.expires_at,
                )
                self._save(tx, current, moved, transition)
                return transition

        self._observe(self._retrying(record))
        return link

    # -------------------------------------------------------------- syncing

    def _apply_fetched(
        self, account_id: str, snapshot: AccountSnapshot, cause: Cause, *, returning: bool, event: Event | None = None
    ) -> tuple[Account, Transition | None]:
        """Apply a snapshot fetched from Stripe just now: it is the freshest
        state there is, so it applies whatever the watermark says and raises
        the watermark to this second."""
        now = self.clock.now()
        with self.store.write() as tx:
            account = tx.load(account_id)
            if account is None:
                raise AccountNotFound(account_id)
            if account.detached:
                return account, None
            trigger = Trigger.RETURN if returning and account.state is State.LINK_ISSUED else Trigger.SYNC
            watermark = _floor_second(now)
            if account.watermark is not None and account.watermark > watermark:
                watermark = account.watermark
            moved, transition = self._classified_move(
                account, snapshot, trigger, cause, now, watermark=watermark, synced_at=now
            )
            if event is not None:
                entry = self._inbox_entry(event, now, Outcome.APPLIED, "snapshot tied the watermark; re-fetched")
                self._save_with_event(tx, entry, account, moved, transition)
            else:
                self._save(tx, account, moved, transition)
            return moved, transition

    def _inbox_entry(self, event: Event, now: datetime, outcome: Outcome, detail: str | None) -> InboxEntry:
        return InboxEntry(
            event_id=event.id,
            type=event.type,
            account_id=event.account_id,
            created=event.created,
            livemode=event.livemode,
            received_at=now,
            outcome=outcome,
            detail=detail,
            payload=strip_event(event.raw),
        )

    def _ingest(self, event: Event, payload: AccountSnapshot | None, now: datetime) -> WebhookResult | _Refetch:
        try:
            with self.store.write() as tx:
                # cached: every write below is version-checked, and what it decides
                # without writing (stale, detached) stays true on older knowledge
                account = tx.load(event.account_id, cached=True) if event.account_id else None
                decision = self._decide(event, payload, account, now)
                if isinstance(decision, _Refetch):
                    return decision
                entry = self._inbox_entry(event, now, decision.outcome, decision.detail)
                if decision.account is not None and decision.previous is not None:
                    self._save_with_event(tx, entry, decision.previous, decision.account, decision.transition)
                elif not tx.record_event(entry):
                    raise _Duplicate
        except _Duplicate:
            return WebhookResult(
                event.id, event.type, event.account_id, Outcome.DUPLICATE, detail="event id already seen"
            )
        return WebhookResult(
            event.id, event.type, event.account_id, decision.outcome, decision.transition, decision.detail
        )

    def _ingest_refetched(self, event: Event, now: datetime) -> WebhookResult:
        assert event.account_id is not None
        try:
            snapshot = self.gateway.retrieve_account(event.account_id)
        except PermanentError as exc:
            return self._record_only(event, now, Outcome.IGNORED, f"re-fetch refused: {exc.__class__.__name__}")
        except Exception as exc:
            self._record_only(event, now, Outcome.FAILED, f"re-fetch failed: {exc.__class__.__name__}")
            raise
        cause = Cause(Source.WEBHOOK, event.id, "stripe", event.created)
        try:
            _, transition = self._retrying(
                lambda: self._apply_fetched(event.account_id or "", snapshot, cause, returning=False, event=event)
            )
        except _Duplicate:
            return WebhookResult(
                event.id, event.type, event.account_id, Outcome.DUPLICATE, detail="event id already seen"
            )
        return WebhookResult(
            event.id,
            event.type,
            event.account_id,
            Outcome.APPLIED,
            transition,
            "snapshot tied the watermark; re-fetched",
        )

    def _record_only(self, event: Event, now: datetime, outcome: Outcome, detail: str) -> WebhookResult:
        try:
            with self.store.write() as tx:
                if not tx.record_event(self._inbox_entry(event, now, outcome, detail)):
                    raise _Duplicate
        except _Duplicate:
            return WebhookResult(
                event.id, event.type, event.account_id, Outcome.DUPLICATE, detail="event id already seen"
            )
        return WebhookResult(event.id, event.type, event.account_id, outcome, detail=detail)

    def _decide(
        self, event: Event, payload: AccountSnapshot | None, account: Account | None, now: datetime
    ) -> _Decision | _Refetch:
        if event.type not in (ACCOUNT_UPDATED, CAPABILITY_UPDATED, DEAUTHORIZED):
            return _Decision(Outcome.IGNORED, f"event type {event.type} is not used by onboarding")
        if account is None:
            return _Decision(Outcome.IGNORED, f"unknown account {event.account_id}")
        if event.livemode != self.settings.livemode:
            return _Decision(
                Outcome.IGNORED, f"livemode={event.livemode} event on a livemode={self.settings.livemode} engine"
            )
        cause = Cause(Source.WEBHOOK, event.id, "stripe", event.created)
        if event.type == DEAUTHORIZED:
            if account.deauthorized:
                return _Decision(Outcome.IGNORED, "account already deauthorized")
            moved, transition = self._move(
                account, Trigger.DEAUTHORIZE, State.DISABLED, "deauthorized", cause, now, deauthorized=True
            )
            return _Decision(Outcome.APPLIED, None, moved, account, transition)
        if account.detached:
            return _Decision(Outcome.IGNORED, "account is deauthorized or deleted; recorded only")
        if payload is not None:
            if payload.id != account.stripe_account_id:
                return _Decision(Outcome.IGNORED, f"data.object is {payload.id}, not event.account")
            snapshot = payload
        else:
            snapshot = _with_capability(account.snapshot, event.object)
        watermark = account.watermark
        if watermark is not None and event.created < watermark:
            return _Decision(
                Outcome.STALE, f"snapshot from {event.created.isoformat()} is older than {watermark.isoformat()}"
            )
        if watermark is not None and event.created == watermark and snapshot != account.snapshot:
            return _Refetch()
        moved, transition = self._classified_move(
            account, snapshot, Trigger.SYNC, cause, now, watermark=event.created, synced_at=now
        )
        return _Decision(Outcome.APPLIED, None, moved, account, transition)

    # --------------------------------------------------------------- timers

    def _fire_next_timer(self, now: datetime) -> _Decision | None:
        with self.store.write() as tx:
            claimed = tx.claim_due_timer(now)
            if claimed is None:
                return None
            timer, account = claimed
            if account is None:
                return _Decision(Outcome.IGNORED, "account gone")
            decision = self._timer_decision(tx, account, timer, now)
            if decision.account is not None:
                self._save(tx, account, decision.account, decision.transition)
            return decision

    def _timer_decision(self, tx: WriteTx, account: Account, timer: Timer, now: datetime) -> _Decision:
        cause = Cause(Source.SCHEDULER, f"timer:{timer.kind.value}@{timer.due_at.isoformat()}", "scheduler")
        if timer.kind is TimerKind.REMINDER:
            tx.emit(
                account.stripe_account_id,
                "deadline_approaching",
                {
                    "type": "onboarding.deadline_approaching",
                    "account": account.stripe_account_id,
                    "platform_ref": account.platform_ref,
                    "state": account.state.value,
                    "reminder_at": timer.due_at.isoformat(),
                    "deadlines": _deadline_summary(account.snapshot),
                },
                now,
            )
            return _Decision(Outcome.APPLIED, "reminder")
        if timer.kind is TimerKind.ABANDON:
            issued = account.link_issued_at
            if account.state is State.LINK_ISSUED and issued is not None and issued + self._abandon_after <= now:
                reason = f"abandoned: no return within {int(self._abandon_after.total_seconds())} s"
                moved, transition = self._move(account, Trigger.ABANDON, State.RETURNED_INCOMPLETE, reason, cause, now)
                return _Decision(Outcome.APPLIED, None, moved, account, transition)
            return _Decision(Outcome.IGNORED, "link already returned or re-issued")
        missed = missed_deadline(account.snapshot, now)
        if missed is not None and allowed(account.state, Trigger.DEADLINE):
            moved, transition = self._move(account, Trigger.DEADLINE, State.PAST_DUE, missed, cause, now)
            return _Decision(Outcome.APPLIED, None, moved, account, transition)
        return _Decision(Outcome.IGNORED, "deadline no longer applies")


def _deadline_summary(snapshot: AccountSnapshot) -> dict[str, Any]:
    out: dict[str, Any] = {}
    req = snapshot.requirements
    if req.current_deadline is not None:
        out["requirements"] = {"deadline": req.current_deadline.isoformat(), "currently_due": list(req.currently_due)}
    fut = snapshot.future_requirements
    if fut is not None and fut.current_deadline is not None:
        out["future_requirements"] = {
            "deadline": fut.current_deadline.isoformat(),
            "currently_due": list(fut.currently_due),
        }
    return out


def _capability_status(capability: Mapping[str, Any]) -> tuple[str, str]:
    name, status = capability.get("id"), capability.get("status")
    if (
        capability.get("object", "capability") != "capability"
        or not isinstance(name, str)
        or not isinstance(status, str)
    ):
        raise MalformedPayload("capability.updated needs data.object with string id and status")
    return name, status


def _with_capability(snapshot: AccountSnapshot, capability: Mapping[str, Any]) -> AccountSnapshot:
    name, status = _capability_status(capability)
    merged = dict(snapshot.capabilities)
    merged[name] = status
    return replace(snapshot, capabilities=tuple(sorted(merged.items())))


E = TypeVar("E", LinkType, LinkFields, FutureRequirements, State)


def _enum(kind: type[E], value: E | str, name: str) -> E:
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(f"{name} must be one of {[m.value for m in kind]}, got {value!r}") from None
