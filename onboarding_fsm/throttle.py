"""A pace for Stripe calls shared by every worker, kept in the database.

Stripe limits requests per second per platform (about 100 in live mode, 25
in test mode), whatever number of processes make them. When one regulatory
date puts every account's deadline on the same second, each timer's fetch
takes the next slot of one budget in the store (GCRA: one row, one atomic
statement) and waits for it on the engine's ``Clock`` — a fake clock skips
the wait, so tests never sleep. ``burst`` calls go at once after a quiet
spell; after that they are spaced ``1/rate`` apart across all workers.
"""

from __future__ import annotations

import time

from .config import Pace
from .ports import Clock, Store


class Throttle:
    def __init__(self, store: Store, clock: Clock, name: str, pace: Pace) -> None:
        self._store = store
        self._clock = clock
        self.name = name
        self.pace = pace
        #: seconds this process waited for the budget
        self.waited = 0.0

    def wait(self) -> None:
        """Block until this caller's slot in the shared budget."""
        now = self._clock.now()
        tat = self._store.reserve(self.name, self.pace.interval, now)
        delay = (tat - self.pace.burst * self.pace.interval - now).total_seconds()
        if delay > 0:
            self.waited += delay
            # a platform's own clock written before the port had ``sleep``: wait for real
            getattr(self._clock, "sleep", time.sleep)(delay)
