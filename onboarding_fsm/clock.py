"""Time as a port: the engine never calls ``datetime.now`` itself.

Deadlines and signature tolerances are decided against the ``Clock`` the
engine was built with, so tests (and the simulator's demo) can skip time
deterministically instead of sleeping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from .errors import InvalidInput


def ensure_utc(value: datetime, name: str = "datetime") -> datetime:
    """Refuse naive datetimes instead of guessing their zone."""
    if not isinstance(value, datetime):
        raise InvalidInput(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{name} must be timezone-aware (UTC), got a naive datetime")
    return value.astimezone(UTC)


def from_unix(seconds: int | float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class SystemClock:
    """Wall-clock UTC; freezegun can still move it in tests."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock:
    """A clock that moves only when told to (tests, demo, simulator)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = ensure_utc(start) if start is not None else datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        """Waiting on a fake clock is moving it: time-skipping, never a real sleep."""
        self.advance(max(0.0, seconds))

    def advance(self, delta: timedelta | float) -> datetime:
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise InvalidInput("a clock does not run backwards")
        self._now += step
        return self._now

    def set(self, when: datetime) -> datetime:
        when = ensure_utc(when, "when")
        if when < self._now:
            raise InvalidInput("a clock does not run backwards")
        self._now = when
        return self._now
