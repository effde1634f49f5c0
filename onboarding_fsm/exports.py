"""Audit exports: the trail as JSON Lines or CSV, with everything needed to
recompute every hash outside the system (``exportcheck`` does).

Both formats stream: one record is formatted at a time. Rows come chain by
chain (account, then seq), so a verifier needs one running state per
account and per checkpoint, never the whole file. The first row is a header,
the last an ``end`` row with the counts (a file cut short has none).

JSON Lines: one object per line, ``kind`` = ``header`` | ``transition`` |
``checkpoint`` | ``end``. CSV: one column set for every kind
(``COLUMNS``); a null is an empty cell named in the ``nulls`` column, so an
empty string and a null stay apart. Only the standard library is used here,
so an auditor can verify with nothing but Python.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TextIO

from .audit import FieldChange, Transition
from .checkpoints import Checkpoint
from .states import Source, State, Trigger

FORMAT = "onboarding-fsm-audit-export"
VERSION = 1
TRANSITION_FIELDS = (
    "account_id",
    "seq",
    "from_state",
    "to_state",
    "trigger",
    "source",
    "source_ref",
    "actor",
    "request_id",
    "run_id",
    "reason",
    "delta",
    "at",
    "stripe_time",
    "layout",
    "key_id",
    "prev_hash",
    "hash",
    "checkpoint",
)
COLUMNS = ("kind", *TRANSITION_FIELDS, "records", "covered", "format", "version", "whole", "nulls")
_INTS = {"seq", "layout", "checkpoint", "records", "version"}


class Format(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


@dataclass(frozen=True, slots=True)
class Summary:
    transitions: int
    checkpoints: int
    whole: bool


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="microseconds") if value is not None else None


def transition_row(t: Transition) -> dict[str, Any]:
    return {
        "kind": "transition",
        "account_id": t.account_id,
        "seq": t.seq,
        "from_state": t.from_state.value if t.from_state else None,
        "to_state": t.to_state.value,
        "trigger": t.trigger.value,
        "source": t.source.value,
        "source_ref": t.source_ref,
        "actor": t.actor,
        "request_id": t.request_id,
        "run_id": t.run_id,
        "reason": t.reason,
        "delta": sorted([c.list_name, list(c.added), list(c.removed)] for c in t.delta),
        "at": _iso(t.at),
        "stripe_time": _iso(t.stripe_time),
        "layout": t.layout,
        "key_id": t.key_id,
        "prev_hash": t.prev_hash,
        "hash": t.hash,
        "checkpoint": t.checkpoint,
    }


def checkpoint_row(cp: Checkpoint) -> dict[str, Any]:
    return {
        "kind": "checkpoint",
        "seq": cp.seq,
        "at": _iso(cp.at),
        "records": cp.records,
        "covered": cp.covered,
        "prev_hash": cp.prev_hash,
        "hash": cp.hash,
        "key_id": cp.key_id,
    }


def transition_of(row: Mapping[str, Any]) -> Transition:
    """The record a ``transition`` row describes (``ValueError``/``KeyError`` when malformed)."""
    return Transition(
        account_id=row["account_id"],
        seq=int(row["seq"]),
        from_state=State(row["from_state"]) if row["from_state"] is not None else None,
        to_state=State(row["to_state"]),
        trigger=Trigger(row["trigger"]),
        source=Source(row["source"]),
        source_ref=row["source_ref"],
        actor=row["actor"],
        reason=row["reason"],
        delta=tuple(FieldChange(name, tuple(added), tuple(removed)) for name, added, removed in row["delta"]),
        at=datetime.fromisoformat(row["at"]),
        stripe_time=datetime.fromisoformat(row["stripe_time"]) if row["stripe_time"] is not None else None,
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        request_id=row["request_id"],
        run_id=row["run_id"],
        layout=int(row["layout"]),
        key_id=row["key_id"],
        checkpoint=int(row["checkpoint"]) if row["checkpoint"] is not None else None,
    )


def checkpoint_of(row: Mapping[str, Any]) -> Checkpoint:
    return Checkpoint(
        seq=int(row["seq"]),
        at=datetime.fromisoformat(row["at"]),
        records=int(row["records"]),
        covered=row["covered"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        key_id=row["key_id"],
    )


class _Sink(Protocol):
    def row(self, row: dict[str, Any]) -> None: ...


class _JsonLines:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def row(self, row: dict[str, Any]) -> None:
        self._out.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n")


class _Csv:
    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\n")
        self._writer.writerow(COLUMNS)

    def row(self, row: dict[str, Any]) -> None:
        cells = {name: _cell(name, value) for name, value in row.items()}
        cells["nulls"] = " ".join(name for name, value in row.items() if value is None)
        self._writer.writerow([cells.get(c, "") for c in COLUMNS])


def _cell(name: str, value: Any) -> Any:
    if value is None:
        return ""
    if name == "delta":
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class Writer:
    def __init__(self, sink: _Sink) -> None:
        self._sink = sink

    def write(
        self, records: Iterable[Transition], checkpoints: Iterable[Checkpoint], *, exported_at: datetime, whole: bool
    ) -> Summary:
        self._sink.row(
            {"kind": "header", "format": FORMAT, "version": VERSION, "at": _iso(exported_at), "whole": whole}
        )
        n = m = 0
        for record in records:
            self._sink.row(transition_row(record))
            n += 1
        for cp in checkpoints:
            self._sink.row(checkpoint_row(cp))
            m += 1
        self._sink.row({"kind": "end", "records": n, "checkpoint": m})
        return Summary(n, m, whole)


def writer(format: Format, out: TextIO) -> Writer:
    return Writer(_Csv(out) if format is Format.CSV else _JsonLines(out))


def rows(lines: TextIO) -> Iterator[dict[str, Any]]:
    """The rows of an export in either format (sniffed from its first character)."""
    first = lines.read(1)
    if first == "{":
        for line in _prepend(first, lines):
            if line.strip():
                yield _parsed(json.loads, line)
        return
    reader = csv.DictReader(_prepend(first, lines))
    for cells in reader:
        yield _parsed(_from_cells, cells)


def _parsed(parse: Callable[[Any], Any], raw: Any) -> dict[str, Any]:
    """A row, or a ``malformed`` row saying why (the verifier reports it and goes on)."""
    try:
        row = parse(raw)
    except (ValueError, TypeError) as exc:
        return {"kind": "malformed", "error": f"{type(exc).__name__}: {exc}"}
    return row if isinstance(row, dict) else {"kind": "malformed", "error": "not an object"}


def _prepend(first: str, rest: TextIO) -> Iterator[str]:
    head = first + rest.readline()
    yield head
    yield from rest


def _from_cells(cells: Mapping[str, str]) -> dict[str, Any]:
    nulls = set((cells.get("nulls") or "").split())
    row: dict[str, Any] = {}
    for name, value in cells.items():
        if name == "nulls" or name is None:
            continue
        if name in nulls:
            row[name] = None
        elif name == "delta" and value:
            row[name] = json.loads(value)
        elif name in _INTS and value:
            row[name] = int(value)
        elif name == "whole":
            row[name] = value == "true"
        else:
            row[name] = value
    return row
