from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from freezegun import freeze_time

from onboarding_fsm.clock import FakeClock, SystemClock, ensure_utc
from onboarding_fsm.errors import InvalidInput


def test_system_clock_is_aware_utc_and_follows_freezegun() -> None:
    with freeze_time("2026-05-01T10:00:00Z"):
        assert SystemClock().now() == datetime(2026, 5, 1, 10, tzinfo=UTC)


def test_fake_clock_moves_forward_only() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.advance(timedelta(minutes=5)) == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        clock.advance(-1)
    with pytest.raises(InvalidInput):
        clock.set(datetime(2025, 1, 1, tzinfo=UTC))


def test_naive_datetimes_are_refused_and_offsets_normalised() -> None:
    with pytest.raises(InvalidInput):
        ensure_utc(datetime(2026, 1, 1))
    plus2 = datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert ensure_utc(plus2) == datetime(2026, 1, 1, tzinfo=UTC)
    assert ensure_utc(plus2).tzinfo is UTC
