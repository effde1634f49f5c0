"""A validly signed body that is not an event as Stripe documents it is a
``MalformedEvent`` (400), never a ``RecursionError``, ``OverflowError`` or
``TypeError`` (500), and nothing the database cannot hold gets past the parser.

Issue 9: fuzzed, validly signed events got 500s — deep nesting, out-of-range
timestamps, wrong types, lone surrogates; on PostgreSQL over-long ids and NUL
bytes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from onboarding_fsm.errors import MalformedEvent
from onboarding_fsm.webhooks import read

CREATED = 1_772_443_800


def event(**changes: Any) -> dict[str, Any]:
    account: dict[str, Any] = {"id": "acct_1", "object": "account", "country": "US", "type": "custom"}
    base: dict[str, Any] = {
        "id": "evt_1",
        "object": "event",
        "type": "account.updated",
        "created": CREATED,
        "livemode": False,
        "account": "acct_1",
        "data": {"object": account},
    }
    for path, value in changes.items():
        where = base
        *parents, last = path.split("__")
        for key in parents:
            where = where[key]
        where[last] = value
    return base


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def test_a_well_formed_event_reads() -> None:
    parsed, snapshot = read(body(event()))
    assert parsed.id == "evt_1" and snapshot is not None and snapshot.country == "US"


DEEP = 100_000


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * DEEP + b"]" * DEEP,  # was RecursionError
        b'{"id": "evt_1", "data": {"object": ' + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}}",
        body(event(data__object__controller={"x": json.loads("[" * 200 + "]" * 200)})),  # parses; too deep to keep
        b'{"id": "evt_1", "created": ' + b"9" * 5000 + b"}",  # int() refuses > 4300 digits: ValueError
        body(event(created=10**20)),  # OverflowError in datetime
        body(event(created=-(10**14))),
        body(event(data__object__requirements={"current_deadline": 10**18})),
        body(event(data__object__created=2**63)),
        body(event(data__object__requirements={"errors": 5})),  # was TypeError: int is not iterable
        body(event(data__object__requirements={"alternatives": [5]})),
        body(event(data__object__capabilities=[])),
        body(event(livemode=float("nan"))),
        b'{"id": "evt_1", "object": "event", "pending_webhooks": NaN}',
        body(event(data__object__metadata={"x": float("inf")})).replace(b"Infinity", b"1e400"),
        body(event(type="account.\ud800updated")),  # lone surrogates: unencodable as UTF-8
        body(event(data__object__requirements={"currently_due": ["\udfff"]})),
        body(event(data__object__metadata={"\ud800": "x"})),
        body(event(id="evt_\x00")),  # PostgreSQL text cannot hold NUL
        body(event(data__object__requirements={"currently_due": ["a\x00b"]})),
        body(event(id="evt_" + "x" * 300)),  # over the inbox's 255
        body(event(type="t" * 300)),
        body(event(account="acct_" + "x" * 100, data__object__id="acct_" + "x" * 100)),  # over 64
        body(event(account="acct 1", data__object__id="acct 1")),
        body(event(data__object__country="USA")),  # a two-letter column
        body(event(data__object__type="x" * 40)),
        body(event(data__object__controller={"requirement_collection": "x" * 40})),
        body(event(data__object__metadata={"onboarding_fsm_ref": "r" * 300})),
    ],
    ids=lambda raw: raw[:60].decode("utf-8", "replace"),
)
def test_malformed_events_are_malformed_event(raw: bytes) -> None:
    with pytest.raises(MalformedEvent):
        read(raw)


def test_escaped_surrogate_pairs_and_unicode_are_fine() -> None:
    """Only *lone* surrogates are refused: an escaped emoji is a valid pair."""
    raw = body(event(data__object__requirements={"currently_due": ["caf\u00e9 \U0001f600"]}))
    assert b"\\ud83d\\ude00" in raw
    _, snapshot = read(raw)
    assert snapshot is not None and snapshot.requirements.currently_due == ("caf\u00e9 \U0001f600",)
