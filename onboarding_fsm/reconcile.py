"""Reconciliation: read accounts from Stripe and heal what webhooks missed.

Webhooks are retried for three days at most, arrive in any order, and Stripe
very occasionally fails to generate an event; the Events API only reaches
back 30 days. So reconciliation reads *accounts*, not events: it pages
through the platform's accounts at Stripe, re-fetches local accounts that
have not been synced for a while (deauthorized and deleted accounts vanish
from the listing), and applies every snapshot through the normal ``sync``
trigger, so each repair is an audited transition with source ``reconcile``.
Accounts Stripe has with our platform reference but we do not (a crash
between Stripe's answer and our commit) are adopted.

Stripe answers 403 ``account_invalid`` for an account that left the platform,
for one that never existed, and for *every* account when the key belongs to
another platform. So the accounts found inaccessible are only detached at
the end of the run, and only if they are a small share of the accounts
checked (``reconcile_inaccessible_share``); otherwise the run is a
configuration error: nothing is detached, and the report says so.

Every run is recorded (``engine.ops``) with its counts and its drift by kind
— ``guarded`` when it detached nothing for that reason, ``failed`` when an
error ended it — for ``status`` and the metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from .account import Account
from .engine import Engine
from .errors import AccountNotFound, OnboardingError, StripeAuthenticationFailed, StripeRequestFailed
from .operations import failure
from .runs import Run, RunOutcome
from .snapshot import AccountSnapshot
from .states import Source, State


class DriftKind(StrEnum):
    SYNCED = "synced"  # Stripe said something the webhooks did not
    ADOPTED = "adopted"  # Stripe had an account of ours we had no row for
    DETACHED = "detached"  # the platform lost the account without a webhook
    RESTORED = "restored"  # a detached account Stripe shows the platform again


@dataclass(frozen=True, slots=True)
class Drift:
    account_id: str
    platform_ref: str
    from_state: State | None
    to_state: State
    reason: str
    how: DriftKind


@dataclass
class ReconcileReport:
    listed: int = 0
    refetched: int = 0
    #: local accounts checked against Stripe (found in the listing, or re-fetched)
    checked: int = 0
    #: local accounts Stripe would not show (403 account_invalid, or 404)
    inaccessible: int = 0
    #: too many inaccessible: nothing was detached (a wrong key or mode)
    guarded: bool = False
    #: inaccessible, not yet confirmed by a later run: left as they are
    unconfirmed: list[str] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: carried by every transition this run caused
    run_id: str | None = None

    @property
    def adopted(self) -> list[str]:
        return [d.account_id for d in self.drift if d.how is DriftKind.ADOPTED]

    @property
    def counts(self) -> dict[str, int]:
        """As its run is recorded: what it read, and its drift by kind."""
        counts = {
            "listed": self.listed,
            "refetched": self.refetched,
            "checked": self.checked,
            "inaccessible": self.inaccessible,
            "unconfirmed": len(self.unconfirmed),
            "errors": len(self.errors),
        }
        for kind in DriftKind:
            counts[f"drift.{kind.value}"] = sum(1 for d in self.drift if d.how is kind)
        return counts


def reconcile(
    engine: Engine,
    *,
    stale_after: timedelta = timedelta(hours=24),
    page_size: int = 100,
    full: bool = True,
    progress: Callable[[int], None] | None = None,
    actor: str = "reconcile",
    source: Source = Source.RECONCILE,
) -> ReconcileReport:
    """One reconciliation run; safe to run from several workers at once.
    Every transition it causes carries ``source``, ``actor`` and the run's
    id (an operator's run by hand: ``Source.OPERATOR``)."""
    run = Run.start("reconcile", source=source, actor=actor)
    report = ReconcileReport(run_id=run.id)
    started = engine.now()
    try:
        _run(engine, report, run, stale_after, page_size, full, progress or (lambda n: None))
    except Exception as exc:
        engine.ops.record(run.record(started, engine.now(), report.counts, RunOutcome.FAILED, failure(exc)))
        raise
    outcome = RunOutcome.GUARDED if report.guarded else RunOutcome.OK
    detail = "; ".join(report.errors[:3])[:500] or None
    engine.ops.record(run.record(started, engine.now(), report.counts, outcome, detail))
    return report


def _run(
    engine: Engine,
    report: ReconcileReport,
    run: Run,
    stale_after: timedelta,
    page_size: int,
    full: bool,
    tick: Callable[[int], None],
) -> None:
    seen: set[str] = set()
    orphans: list[AccountSnapshot] = []
    if full:
        for snapshot in engine.stripe_accounts(page_size=page_size):
            seen.add(snapshot.id)
            report.listed += 1
            _apply(engine, snapshot, report, run, orphans)
            tick(1)
    missing: list[Account] = []
    for local in engine.stale_accounts(stale_after):
        if local.stripe_account_id in seen:
            continue
        report.refetched += 1
        try:
            snapshot = engine.stripe_account(local.stripe_account_id)
        except StripeAuthenticationFailed as exc:
            if exc.http_status == 401:
                raise  # the key itself is bad: nothing to learn about any account
            missing.append(local)
        except StripeRequestFailed as exc:
            if exc.http_status == 404:
                missing.append(local)
            else:
                report.errors.append(f"{local.stripe_account_id}: {exc}")
        except OnboardingError as exc:
            report.errors.append(f"{local.stripe_account_id}: {exc}")
        else:
            _apply(engine, snapshot, report, run, orphans)  # counts it as checked
        tick(1)
    report.checked += len(missing)
    _detach_missing(engine, missing, report, run)
    if not report.guarded:  # a wrong key lists another platform's accounts: adopt none of them
        for snapshot in orphans:
            _adopt(engine, snapshot, report, run)


def _detach_missing(engine: Engine, missing: list[Account], report: ReconcileReport, run: Run) -> None:
    """Detach what stayed inaccessible since an earlier run at least
    ``reconcile_confirm_after`` ago; remember the first sighting of the rest."""
    report.inaccessible = len(missing)
    share = engine.config.reconcile_inaccessible_share
    if missing and len(missing) >= share * report.checked:
        report.guarded = True
        report.errors.append(
            f"{len(missing)} of {report.checked} checked account(s) are inaccessible (403/404), at least "
            f"{share:.0%}: a key of another platform or mode, not accounts leaving; nothing detached"
        )
        return
    confirmed_before = engine.now() - engine.config.reconcile_confirm_after
    for local in missing:
        if local.inaccessible_since is not None and local.inaccessible_since <= confirmed_before:
            since = local.inaccessible_since.isoformat()
            reason = f"inaccessible at Stripe since {since} (reconcile, confirmed)"
            _detach(engine, local, reason, report, run, confirmed_before)
        else:
            try:
                engine.mark_inaccessible(local.stripe_account_id)
            except OnboardingError as exc:
                report.errors.append(f"{local.stripe_account_id}: {exc}")
            report.unconfirmed.append(local.stripe_account_id)


def _apply(
    engine: Engine, snapshot: AccountSnapshot, report: ReconcileReport, run: Run, orphans: list[AccountSnapshot]
) -> None:
    try:
        try:
            local = engine.get_account(snapshot.id)
        except AccountNotFound:
            if snapshot.platform_ref and engine.find_account(snapshot.platform_ref) is None:
                orphans.append(snapshot)
            return
        report.checked += 1
        if local.detached:
            _restore(engine, local, snapshot, report, run)
            return
        account, transition = engine.sync_snapshot(snapshot, source=run.source, actor=run.actor, run_id=run.id)
        if transition is not None and transition.from_state != transition.to_state:
            report.drift.append(
                Drift(
                    account.stripe_account_id,
                    account.platform_ref,
                    transition.from_state,
                    transition.to_state,
                    transition.reason,
                    DriftKind.SYNCED,
                )
            )
    except OnboardingError as exc:
        report.errors.append(f"{snapshot.id}: {exc}")


def _restore(engine: Engine, local: Account, snapshot: AccountSnapshot, report: ReconcileReport, run: Run) -> None:
    """Only on Stripe's answer for this account alone: a listing page may predate
    a deauthorization that arrived meanwhile."""
    try:
        fresh = engine.stripe_account(local.stripe_account_id)
    except OnboardingError:
        return  # not visible after all: it stays detached
    transition = engine.restore(fresh, actor=run.actor, run_id=run.id)
    if transition is not None:
        report.drift.append(
            Drift(
                local.stripe_account_id, local.platform_ref, transition.from_state, transition.to_state,
                transition.reason, DriftKind.RESTORED,
            )
        )  # fmt: skip


def _adopt(engine: Engine, snapshot: AccountSnapshot, report: ReconcileReport, run: Run) -> None:
    try:
        adopted = engine.adopt(snapshot, actor=run.actor, run_id=run.id)
    except OnboardingError as exc:
        report.errors.append(f"{snapshot.id}: {exc}")
        return
    report.drift.append(
        Drift(adopted.stripe_account_id, adopted.platform_ref, None, adopted.state, adopted.reason, DriftKind.ADOPTED)
    )


def _detach(
    engine: Engine, local: Account, reason: str, report: ReconcileReport, run: Run, confirmed_before: datetime
) -> None:
    transition = engine.detach(
        local.stripe_account_id,
        reason,
        source=run.source,
        actor=run.actor,
        inaccessible_before=confirmed_before,
        run_id=run.id,
    )
    if transition is not None:
        report.drift.append(
            Drift(local.stripe_account_id, local.platform_ref, local.state, State.DISABLED, reason, DriftKind.DETACHED)
        )
