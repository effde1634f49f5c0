"""The update use case: the platform changes an account at Stripe, and the
engine moves it to what Stripe then reports, in one audited ``update``.

Before this existed a platform had to call Stripe around the engine, which
learned of the change only from a later webhook — with no record of who
changed what. Now the rules (``updates``) refuse first what Stripe would
refuse; Stripe is called outside any transaction; its answer is applied like
a fetch (it is the freshest view there is), and the record names the
parameters set and the capabilities requested (never their values).

Unless the account moved while Stripe was being asked (a webhook, a return):
then Stripe's answer to the update may be older than what is stored, so the
update is recorded against the stored view and the account is fetched anew.
"""

from __future__ import annotations

from . import updates
from .account import Account
from .audit import Cause, Transition
from .ports import StripeGateway, WriteTx
from .service import Transactions
from .syncing import Fetching


class AccountUpdate:
    def __init__(self, tx: Transactions, gateway: StripeGateway, fetching: Fetching) -> None:
        self._tx = tx
        self._gateway = gateway
        self._fetching = fetching

    def apply(
        self, account: Account, update: updates.Update, cause: Cause, *, idempotency_key: str | None = None
    ) -> Account:
        updates.allowed(account, update)
        answer = self._gateway.update_account(account.stripe_account_id, update.params, idempotency_key=idempotency_key)
        answered = cause.answered(answer.request_id)
        policy = self._tx.config.policy

        def step(tx: WriteTx) -> tuple[Account, Transition | None, bool]:
            current = self._tx.load(tx, account.stripe_account_id)
            raced = current.version != account.version
            snapshot = current.snapshot if raced else answer
            change = updates.applied(current, update, snapshot, answered, self._tx.clock.now(), policy)
            if change is None:
                return current, None, False
            saved = self._tx.save(tx, change)
            return saved.after, saved.transition, raced

        after, transition, raced = self._tx.write(step)
        self._tx.observe(transition)
        if raced:
            after = self._fetching.fetch(after, Cause(cause.source, actor=cause.actor), returning=False)
        return after
