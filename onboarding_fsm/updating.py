"""The update use case: the platform changes an account at Stripe, and the
engine moves it to what Stripe then reports, in one audited ``update``.

Before this existed a platform had to call Stripe around the engine, which
learned of the change only from a later webhook — with no record of who
changed what. Now the rules (``updates``) refuse first what Stripe would
refuse; Stripe is called outside any transaction; its answer is applied like
a fetch (it is the freshest view there is), and the record names the
parameters set and the capabilities requested (never their values).
"""

from __future__ import annotations

from . import updates
from .account import Account
from .audit import Cause, Transition
from .ports import StripeGateway, WriteTx
from .service import Transactions


class AccountUpdate:
    def __init__(self, tx: Transactions, gateway: StripeGateway) -> None:
        self._tx = tx
        self._gateway = gateway

    def apply(self, account: Account, update: updates.Update, cause: Cause) -> Account:
        updates.allowed(account, update)
        snapshot = self._gateway.update_account(account.stripe_account_id, update.params)
        answered = cause.answered(snapshot.request_id)
        policy = self._tx.config.policy

        def step(tx: WriteTx) -> tuple[Account, Transition | None]:
            current = self._tx.load(tx, account.stripe_account_id)
            change = updates.applied(current, update, snapshot, answered, self._tx.clock.now(), policy)
            if change is None:
                return current, None
            saved = self._tx.save(tx, change)
            return saved.after, saved.transition

        after, transition = self._tx.write(step)
        self._tx.observe(transition)
        return after
