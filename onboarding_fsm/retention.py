"""Retention: the inbox and the outbox do not grow forever.

Two tables would: every webhook's (redacted) payload in the inbox, and every
message ever published from the outbox. ``prune`` deletes outbox messages
published before the cut-off and empties inbox payloads received before it.
It keeps each inbox row itself — event id, type, account, outcome — because
dedupe reads only the id, so an event Stripe sends again is still known.
The audit trail (``ofsm_transitions``) is never touched: it is the record.

The cut-off is ``now - retention``, and ``retention`` is never shorter than
``MIN_RETENTION``: Stripe retries a live-mode event for three days, so a
payload is kept at least as long as its delivery may still be under way (to
be read when one fails), plus a day for the clocks and for a worker that was down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .errors import InvalidInput

#: Stripe's three-day retry window, and a day's margin
MIN_RETENTION = timedelta(days=4)


@dataclass(frozen=True, slots=True)
class PruneReport:
    #: what was pruned: rows published, or received, before this
    before: datetime
    #: outbox messages deleted (published ones only; pending ones are kept)
    outbox_deleted: int
    #: inbox rows whose payload was emptied (the rows stay, for dedupe)
    inbox_emptied: int
    #: rate-limit budgets idle since before the cut-off, deleted (``limits``)
    limits_deleted: int = 0
    #: recorded runs (``ofsm_runs``) started before the cut-off, deleted
    runs_deleted: int = 0


def cutoff(now: datetime, retention: timedelta) -> datetime:
    """What is older than this is pruned; refuses a retention shorter than ``MIN_RETENTION``."""
    if retention < MIN_RETENTION:
        raise InvalidInput(
            f"retention must be at least {MIN_RETENTION.days} days (Stripe retries for 3), got {retention}"
        )
    return now - retention
