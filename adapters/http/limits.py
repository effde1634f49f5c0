"""How often a holder may ask for a new link.

A refresh URL that redirects in a loop (a broken browser, a preview bot)
must not mint Account Links forever. This limit is per account and per
process: N web workers allow N times the limit.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque


class RefreshLimiter:
    """At most ``limit`` refreshes per account per ``window`` seconds (this process)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, account_id: str, now: float) -> bool:
        with self._lock:
            hits = self._hits[account_id]
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True
