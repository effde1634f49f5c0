"""Rate limits on minting links, shared by every web worker (kept in the store).

A start or refresh URL opened in a loop (a broken browser, a preview bot, a
script holding a session) must not mint Account Links forever. A limit kept
in one process's memory allows N times as much behind N web workers, so each
request takes one slot of its budgets in the database instead: the account's
(``start:acct:<id>``, ``refresh:acct:<id>``) and, when the holder is known,
the holder's across every account (``start:holder:#<digest>``). It takes a slot
of every budget or of none (``Store.admit``, one transaction), so a request
refused by one budget spends nothing of the other.

Each budget is a GCRA (``Store.admit``): ``count`` requests at once after a
quiet spell, then one more every ``window / count``. Over any long stretch
that is ``count`` per ``window``; the worst single window sees ``2 × count -
1`` (a full burst at its start, then the refill). A refused request changes
nothing, so a client hammering a refused URL is let in again on schedule.

The holder's id may be an e-mail address: the key carries a digest of it,
never the id itself (this table is not the audit trail, which records the
holder as the actor). Rows of idle budgets are deleted by ``Engine.prune``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta

from . import inputs
from .config import Pace
from .errors import InvalidInput
from .ports import Clock, Store

#: the store's budget names are at most this long (``ofsm_rate_limits.name``)
MAX_NAME = 64
_ACTION = re.compile(r"[a-z][a-z_]{0,15}")
#: separates this digest from any other SHA-256 of the same id
_DOMAIN = b"onboarding-fsm rate limit\x00"


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` per ``window`` (a burst of ``count``, then one every ``window / count``)."""

    count: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.count < 1 or self.window <= timedelta(0):
            raise InvalidInput(f"a limit needs count >= 1 and a positive window, got {self.count} per {self.window}")

    @property
    def pace(self) -> Pace:
        return Pace(self.count / self.window.total_seconds(), self.count)


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer: let through, or refused by the ``account`` or the ``holder`` budget."""

    refused_by: str | None = None
    #: when one more request will be let through, at the latest (zero when admitted)
    retry_after: timedelta = timedelta(0)

    @property
    def allowed(self) -> bool:
        return self.refused_by is None


def digest(value: str) -> str:
    """128 bits of a domain-separated SHA-256: a key, not the value."""
    return hashlib.sha256(_DOMAIN + value.encode()).hexdigest()[:32]


def budget_name(action: str, scope: str, value: str) -> str:
    """``<action>:<scope>:<value>``; a value too long for the column is replaced by its digest."""
    name = f"{action}:{scope}:{value}"
    return name if len(name) <= MAX_NAME else f"{action}:{scope}:#{digest(value)}"


class RateLimits:
    """``engine.limits``: budgets per account and per holder, shared through the store."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def admit(
        self,
        action: str,
        account_id: str,
        holder: str | None = None,
        *,
        per_account: Limit,
        per_holder: Limit | None = None,
    ) -> Admission:
        """Take one slot of ``account_id``'s budget for ``action`` and, with a
        ``holder`` and ``per_holder``, of the holder's (across accounts); or none.
        A malformed account id is refused (``InvalidInput``) before anything is stored."""
        if not isinstance(action, str) or not _ACTION.fullmatch(action):
            raise InvalidInput(f"a rate-limited action is a short lowercase name, got {action!r}")
        budgets = {budget_name(action, "acct", inputs.account_id(account_id)): ("account", per_account)}
        if holder is not None and per_holder is not None:
            budgets[budget_name(action, "holder", "#" + digest(holder))] = ("holder", per_holder)
        refused = self._store.admit([(name, limit.pace) for name, (_, limit) in budgets.items()], self._clock.now())
        if refused is None:
            return Admission()
        scope, limit = budgets[refused]
        # the budget's theoretical arrival time is at most now + window, so a slot frees within one interval
        return Admission(scope, limit.pace.interval)
