"""The link use cases: issue, refresh, and the "edit my profile" link.

Stripe is asked for the link outside any transaction (``links.request``
refuses first what Stripe would refuse); the transaction that records it
re-reads the account, so a start token's once-only check (``last_issued``)
holds however many workers race on it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from . import links
from .account import Account, Link, LinkParams
from .audit import Cause, Transition
from .ports import StripeGateway, WriteTx
from .service import Transactions
from .states import Trigger


class LinkIssuing:
    def __init__(self, tx: Transactions, gateway: StripeGateway) -> None:
        self._tx = tx
        self._gateway = gateway

    def refresh(self, account: Account, cause: Cause) -> Link:
        params, trigger = links.refresh(account)
        return self.mint(account, params, trigger, cause)

    def profile(
        self, account: Account, cause: Cause, last_issued: datetime | links.Unchecked | None = links.UNCHECKED
    ) -> Link:
        return self.mint(account, links.profile(account, self._tx.config), Trigger.ISSUE_LINK, cause, last_issued)

    def mint(
        self,
        account: Account,
        params: LinkParams,
        trigger: Trigger,
        cause: Cause,
        last_issued: datetime | links.Unchecked | None = links.UNCHECKED,
    ) -> Link:
        request = links.request(account, params, trigger, self._tx.config)
        link = replace(self._gateway.create_account_link(request), params=params)
        answered = cause.answered(link.request_id)

        def step(tx: WriteTx) -> Transition | None:
            current = self._tx.load(tx, account.stripe_account_id)
            now = self._tx.clock.now()
            change = links.issued(current, params, trigger, answered, now, link.expires_at, last_issued=last_issued)
            return self._tx.save(tx, change).transition

        self._tx.observe(self._tx.write(step))
        return link
