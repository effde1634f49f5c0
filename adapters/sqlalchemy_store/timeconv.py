"""Reading values back the same way whichever driver (and SQLAlchemy or not) produced them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def read_dt(value: Any) -> datetime | None:
    """Aware UTC from a driver value (SQLite text, naive or aware datetime)."""
    if value is None:
        return None
    when: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def read_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value
