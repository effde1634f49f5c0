"""What a value from outside may look like before the engine keeps it.

A signed webhook is still input: issue 9's fuzzing got 500s from validly
signed events nested 100,000 deep (``RecursionError``), with timestamps past
``datetime``'s range, lone surrogates (unencodable as UTF-8) and, on
PostgreSQL, NUL bytes (text cannot hold them) and ids longer than their
columns. These checks refuse all of that as ``MalformedPayload`` up front, so
nothing reaches ``datetime``, a driver or the database that they would choke
on. The limits are Stripe's documented shapes, which the store's columns are
sized to: ids are short ASCII, countries two letters, enums short words.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from .clock import from_unix
from .errors import MalformedPayload

#: deeper than any Stripe object (an event with an account inside is ~7 levels)
MAX_DEPTH = 64
#: 3000-01-01: past any deadline Stripe sets, and far from ``datetime``'s limits
#: even after the engine adds its grace periods
MAX_UNIX_TIME = 32_503_680_000
#: the inbox's event_id and type columns
MAX_EVENT_ID = 255
#: account id columns (Stripe's are ``acct_`` and 16 characters)
MAX_ACCOUNT_ID = 64
#: short Stripe enums (account type, controller fields) and their columns
MAX_ENUM = 32
#: the longest platform reference the engine accepts (``inputs``) and its column
MAX_PLATFORM_REF = 200

_PRINTABLE = re.compile(r"[\x21-\x7e]+\Z")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def storable(text: str) -> bool:
    """Every database can hold it: no NUL, no lone surrogate (valid UTF-8)."""
    if "\x00" in text:
        return False
    return text.isascii() or _SURROGATE.search(text) is None


def check_tree(data: Any) -> None:
    """Refuse a decoded JSON document nested deeper than ``MAX_DEPTH``, or
    holding an unstorable string (key or value) or a non-finite number
    (``NaN``, ``Infinity``, ``1e400``: JSON has none; PostgreSQL refuses them).
    Iterative, so a deep document cannot exhaust the stack here either."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if not storable(value):
                raise MalformedPayload("a string holds a NUL byte or a lone surrogate")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise MalformedPayload("a number is not finite")
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise MalformedPayload(f"nested deeper than {MAX_DEPTH} levels")
            if isinstance(value, dict):
                stack.extend((key, depth) for key in value)
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)


def unix_time(value: Any, where: str) -> datetime:
    """A unix timestamp in seconds between 1970 and the year 3000."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UNIX_TIME:
        raise MalformedPayload(f"{where} must be a unix timestamp between 0 and {MAX_UNIX_TIME}")
    return from_unix(value)


def identifier(value: Any, where: str, max_length: int) -> str:
    """A Stripe id or type: printable ASCII without spaces, at most ``max_length``."""
    if not isinstance(value, str) or not value or len(value) > max_length or not _PRINTABLE.match(value):
        raise MalformedPayload(f"{where} must be 1-{max_length} printable ASCII characters")
    return value


def short_text(value: Any, where: str, max_length: int) -> str | None:
    """An optional short string (an enum or a country code) that fits its column."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise MalformedPayload(f"{where} must be a string of at most {max_length} characters or null")
    return value
