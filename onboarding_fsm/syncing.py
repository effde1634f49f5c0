"""The fetch use cases: the return page, a manual sync, a reconciler's snapshot.

A fetch is the freshest view of an account there is, so it applies whatever
the watermark says (``moves.fetched``). Stripe is asked outside the
transaction; the transaction re-reads the account and applies the answer.
"""

from __future__ import annotations

from .account import Account
from .audit import Cause, Transition
from .moves import fetched
from .ports import StripeGateway, WriteTx
from .service import Transactions
from .snapshot import AccountSnapshot


class Fetching:
    def __init__(self, tx: Transactions, gateway: StripeGateway) -> None:
        self._tx = tx
        self._gateway = gateway

    def fetch(self, account: Account, cause: Cause, *, returning: bool) -> Account:
        """Ask Stripe for ``account`` and apply its answer (a detached one stays as it is)."""
        if account.detached:
            return account
        snapshot = self._gateway.retrieve_account(account.stripe_account_id)
        after, _ = self.apply(snapshot, cause, returning=returning)
        return after

    def apply(self, snapshot: AccountSnapshot, cause: Cause, *, returning: bool) -> tuple[Account, Transition | None]:
        answered = cause.answered(snapshot.request_id)
        policy = self._tx.config.policy

        def step(tx: WriteTx) -> tuple[Account, Transition | None]:
            account = self._tx.load(tx, snapshot.id)
            change = fetched(account, snapshot, answered, self._tx.clock.now(), policy, returning=returning)
            if change is None:
                return account, None
            saved = self._tx.save(tx, change)
            return saved.after, saved.transition

        account, transition = self._tx.write(step)
        self._tx.observe(transition)
        return account, transition
