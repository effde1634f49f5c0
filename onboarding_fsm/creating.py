"""The creation use case: once per platform reference, even across crashes.

Stripe is called outside any transaction, so a crash can fall between its
answer and our commit. Two things make the retry safe: the Stripe call
carries an idempotency key derived from the reference (Stripe replays its
answer for 24 hours), and the intent is committed before the call. A retry
that finds an intent older than Stripe's window lists the accounts created
since and adopts the one carrying our reference instead of creating another.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

from . import creation
from .account import Account, CreationIntent, NewAccount, every_account
from .audit import Cause, Transition, sign
from .errors import ConcurrencyConflict, PermanentError, StripeIdempotencyConflict
from .ports import StripeGateway, WriteTx
from .service import Transactions, warn_unknown
from .snapshot import AccountSnapshot


class AccountCreation:
    def __init__(self, tx: Transactions, gateway: StripeGateway) -> None:
        self._tx = tx
        self._gateway = gateway

    def create(self, new: NewAccount, cause: Cause) -> Account:
        existing = self._tx.store.get_by_ref(new.platform_ref)
        if existing is not None:
            return existing
        now = self._tx.clock.now()
        prior = self._tx.write(lambda tx: self._intend(tx, new.platform_ref, now))
        if prior is not None and creation.must_search(prior, now):
            found = creation.ours(self._created_since(creation.search_from(prior)), new.platform_ref)
            if found is not None:
                return self.insert(new, found, cause)
            self._tx.write(lambda tx: tx.record_intent(creation.intent(new.platform_ref, now)))
        key = prior.idempotency_key if prior is not None else creation.idempotency_key(new.platform_ref)
        try:
            snapshot = self._gateway.create_account(new, idempotency_key=key)
        except StripeIdempotencyConflict:
            raise  # an earlier request with this key may have made the account: keep the intent
        except PermanentError:
            self._tx.write(lambda tx: tx.drop_intent(new.platform_ref))  # refused: nothing was made
            raise
        return self.insert(new, snapshot, cause)

    @staticmethod
    def _intend(tx: WriteTx, platform_ref: str, now: datetime) -> CreationIntent | None:
        """The earlier attempt's intent, if any; else record this one."""
        prior = tx.intent(platform_ref)
        if prior is None:
            tx.record_intent(creation.intent(platform_ref, now))
        return prior

    def _created_since(self, since: datetime) -> Iterator[AccountSnapshot]:
        return every_account(lambda cursor: self._gateway.list_accounts(starting_after=cursor, created_gte=since))

    def insert(self, new: NewAccount, snapshot: AccountSnapshot, cause: Cause) -> Account:
        def step(tx: WriteTx) -> tuple[Account, tuple[Transition, ...]]:
            existing = tx.load_by_ref(new.platform_ref) or tx.load(snapshot.id)
            if existing is not None:
                tx.drop_intent(new.platform_ref)
                return existing, ()
            born = creation.birth(
                new, snapshot, cause.answered(snapshot.request_id), self._tx.clock.now(), self._tx.config
            )
            if born.then is None:  # otherwise saving the follow-up sync warns
                warn_unknown(snapshot.id, born.unknown)
            record = sign(born.record, self._tx.config.audit_key)
            account = replace(born.account, audit_head=record.hash)
            if not tx.insert(account, record, born.timers):
                raise ConcurrencyConflict(f"account {snapshot.id} was inserted concurrently")
            if born.then is None:
                return account, (record,)
            then = self._tx.save(tx, self._tx.signed(born.then, prev_hash=record.hash))
            return then.after, (record, *((then.transition,) if then.transition is not None else ()))

        account, records = self._tx.write(step)
        self._tx.observe(*records)
        return account
