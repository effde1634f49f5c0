"""What Stripe does to accounts on its own, driven by hand in tests and demos.

Each action changes the simulated account under the world's lock, renders
it, and emits the events Stripe would (``SimState.publish``): requirements
announced for later, volume thresholds reached, Stripe's requirement-trigger
test cards, verifications completing, rejection, review, deauthorization,
deletion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from . import catalog
from .catalog import Verdict
from .errors import SimulatorError
from .model import SimAccount
from .state import SimState

REJECTION_REASONS = ("fraud", "terms_of_service", "listed", "other", "incomplete_verification")


class Operator:
    def __init__(self, state: SimState, *, threshold_grace: timedelta) -> None:
        self._state = state
        self.threshold_grace = threshold_grace

    def _operate(self, account_id: str, change: Callable[[SimAccount, int], None]) -> None:
        s = self._state
        with s.lock:
            s.evaluate()
            acct = s.account(account_id)
            change(acct, s.now())
            s.publish(acct)
        s.after_change()

    def add_future_requirements(self, account_id: str, fields: Sequence[str], deadline: datetime) -> None:
        """Stripe announces fields that become due at ``deadline`` (e.g. a
        regulation change); until then they sit in ``future_requirements``."""
        due = int(deadline.timestamp())

        def change(acct: SimAccount, now: int) -> None:
            if due <= now:
                raise SimulatorError("a future requirement's deadline must be in the future")
            for name in fields:
                acct.future[name] = due

        self._operate(account_id, change)

    def trigger_next_requirements(self, account_id: str, deadline: datetime | None = None) -> None:
        """Volume thresholds hit: ``later`` fields become currently due with a deadline."""

        def change(acct: SimAccount, now: int) -> None:
            due = int(deadline.timestamp()) if deadline else now + int(self.threshold_grace.total_seconds())
            _promote(acct, due, now)

        self._operate(account_id, change)

    def charge(self, account_id: str, card_number: str) -> None:
        """A Connect charge with one of Stripe's requirement-trigger cards."""

        def change(acct: SimAccount, now: int) -> None:
            if not acct.details_submitted or not any(not acct.satisfied(f, now) for f in acct.later_set(now)):
                return  # no effect until onboarded with something eventually due (Stripe's rule)
            if card_number == catalog.CARD_NEXT_REQUIREMENTS:
                _promote(acct, now + int(self.threshold_grace.total_seconds()), now)
            elif card_number in (catalog.CARD_CHARGE_BLOCK, catalog.CARD_PAYOUT_BLOCK):
                _promote(acct, now, now)
                acct.block = "charges" if card_number == catalog.CARD_CHARGE_BLOCK else "payouts"

        self._operate(account_id, change)

    def complete_verifications(self, account_id: str | None = None) -> None:
        """Finish pending verifications now instead of after ``verification_delay``."""
        s = self._state
        with s.lock:
            now = s.now()
            targets = [s.accounts[account_id]] if account_id else list(s.accounts.values())
            for acct in targets:
                for field in acct.fields.values():
                    if field.verdict is Verdict.PENDING and field.verified_at > now:
                        field.verified_at = now
                s.publish(acct)
        s.after_change()

    def reject(self, account_id: str, reason: str = "fraud") -> None:
        """Stripe rejects the account (``rejected.<reason>``)."""
        if reason not in REJECTION_REASONS:
            raise SimulatorError(f"unknown rejection reason {reason!r}")
        self._operate(account_id, lambda acct, now: setattr(acct, "rejected", reason))

    def review(self, account_id: str, under_review: bool = True) -> None:
        """Put the account under review, or lift the review."""
        self._operate(account_id, lambda acct, now: setattr(acct, "under_review", under_review))

    def deauthorize(self, account_id: str) -> None:
        """The account disconnects from its platform, whose key gets 403 for it from now on."""
        s = self._state
        with s.lock:
            acct = s.account(account_id)
            if acct.deauthorized:
                return
            acct.deauthorized = True
            s.emit("account.application.deauthorized", s.platform(acct.platform).application, acct.id)
        s.after_change()

    def delete(self, account_id: str) -> None:
        """Delete the account (test mode allows it at any time); no event."""
        with self._state.lock:
            self._state.account(account_id).deleted = True


def _promote(acct: SimAccount, due: int, now: int) -> None:
    for name in acct.later_set(now):
        if not acct.satisfied(name, now):
            acct.deadlines[name] = due
