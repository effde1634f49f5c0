"""Parsed accounts, by id and version, for this process.

Parsing an account row (its JSON snapshot) is the largest cost of a load.
Every write bumps the version, so a row whose version we already parsed is
the same row: ``get`` skips the parse. ``latest`` answers a load without
reading at all; the write transaction then validates that version before it
commits (``SqlWriteTx``), so a stale entry costs a retry, never a wrong write.
Filled only after a commit succeeds.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from onboarding_fsm.account import Account


class AccountCache:
    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._items: OrderedDict[str, Account] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, account_id: str, version: int) -> Account | None:
        with self._lock:
            hit = self._items.get(account_id)
            if hit is None or hit.version != version:
                return None
            self._items.move_to_end(account_id)
            return hit

    def latest(self, account_id: str) -> Account | None:
        with self._lock:
            return self._items.get(account_id)

    def evict(self, account_id: str) -> None:
        with self._lock:
            self._items.pop(account_id, None)

    def put(self, accounts: Sequence[Account]) -> None:
        with self._lock:
            for acct in accounts:
                self._items[acct.stripe_account_id] = acct
                self._items.move_to_end(acct.stripe_account_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
