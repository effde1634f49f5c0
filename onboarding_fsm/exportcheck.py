"""Verify an audit export on its own: no database, no settings, nothing but
Python's standard library and this package's pure modules.

    python -m onboarding_fsm.exportcheck audit.jsonl [--key-env VAR]

Every record's hash is recomputed from its fields (the canonical form in
the README), every chain's links are followed, and in a whole export every
checkpoint's digest is recomputed over the records it sealed and the
checkpoint chain is followed. Keyed records need the key (``--key-env``
names the environment variable holding it); without it their links are
still checked and they are counted as unchecked.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from . import checkpoints, exports
from .audit import GENESIS, AuditKey, ChainCheck, Transition
from .checkpoints import Anchor, Checkpoint, Covering, Problem


@dataclass(frozen=True, slots=True)
class ExportReport:
    transitions: int
    accounts: int
    checkpoints: int
    #: not the whole trail (filtered): chains may start mid-way, checkpoints are not checked
    partial: bool
    #: keyed records whose content could not be checked (no key given)
    unchecked: int
    problems: tuple[Problem, ...]
    #: records no checkpoint in the file sealed: vouched for by their chain only
    unsealed: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


class _Check:
    """Running state: one chain check per account (memory grows with the
    number of accounts, not of records) and one digest per checkpoint."""

    def __init__(self, key: AuditKey | None, whole: bool) -> None:
        self.key = key
        self.whole = whole
        self.problems: list[Problem] = []
        self.chains: dict[str, ChainCheck] = {}
        self.coverings: dict[int, Covering] = {}
        self.current: int | None = None
        self.cps: list[Checkpoint] = []
        self.transitions = 0
        self.unchecked = 0
        self.unsealed = 0

    def transition(self, record: Transition) -> None:
        self.transitions += 1
        self.unchecked += self.key is None and record.key_id is not None
        check = self.chains.get(record.account_id)
        if check is None or (not self.whole and record.seq != check.expected_seq):
            # a filtered export skips records: each run of consecutive ones is checked on its own
            start = (1, GENESIS) if self.whole else (record.seq, record.prev_hash)
            check = self.chains[record.account_id] = ChainCheck(
                record.account_id, self.key, start=start, skip_keyed=True
            )
        if check.broken is None and check.add(record) is not None and check.broken is not None:
            broken = check.broken
            self.problems.append(Problem("chain", broken.account_id, f"at seq {broken.broken_at}: {broken.problem}"))
        self._cover(record)

    def _cover(self, record: Transition) -> None:
        if record.checkpoint is None:
            self.unsealed += 1
            self.current = None
            return
        if record.checkpoint != self.current:
            if record.checkpoint in self.coverings:
                where = f"checkpoint {record.checkpoint}"
                self.problems.append(Problem("order", where, "its records are not together (reordered)"))
            self.current = record.checkpoint
        self.coverings.setdefault(record.checkpoint, Covering()).add(Anchor(record.account_id, record.seq, record.hash))


def verify_export(
    lines: TextIO, key: AuditKey | None = None, *, witnessed: Mapping[int, str] | None = None
) -> ExportReport:
    """Check an export file (either format) without the database."""
    rows = exports.rows(lines)
    header = next(rows, None)
    if not header or header.get("kind") != "header" or header.get("format") != exports.FORMAT:
        return ExportReport(0, 0, 0, True, 0, (Problem("file", "header", "not an onboarding-fsm audit export"),))
    if header.get("version") != exports.VERSION:
        return ExportReport(0, 0, 0, True, 0, (Problem("file", "header", f"unknown version {header.get('version')}"),))
    check = _Check(key, bool(header.get("whole")))
    end: dict[str, Any] | None = None
    for number, row in enumerate(rows, start=2):
        kind = row.get("kind")
        if end is not None:
            check.problems.append(Problem("file", f"row {number}", "rows after the end row"))
        try:
            if kind == "transition":
                check.transition(exports.transition_of(row))
            elif kind == "checkpoint":
                check.cps.append(exports.checkpoint_of(row))
            elif kind == "end":
                end = row
            elif kind == "malformed":
                check.problems.append(Problem("file", f"row {number}", f"malformed: {row.get('error')}"))
            else:
                check.problems.append(Problem("file", f"row {number}", f"not a row of an export ({kind!r})"))
        except (KeyError, ValueError, TypeError) as exc:
            check.problems.append(Problem("file", f"row {number}", f"malformed: {type(exc).__name__} {exc}"))
    if end is None:
        check.problems.append(Problem("file", "end", "no end row: the export is cut short"))
    elif (end.get("records"), end.get("checkpoint")) != (check.transitions, len(check.cps)):
        check.problems.append(Problem("file", "end", "row counts differ from the end row's"))
    if check.whole:
        sealed = [(seq, c.digest(), c.count) for seq, c in sorted(check.coverings.items())]
        check.problems.extend(checkpoints.verify(check.cps, sealed, key, skip_keyed=True, witnessed=witnessed))
    elif witnessed:
        check.problems.append(Problem("witness", "file", "a filtered export carries no checkpoints to compare"))
    return ExportReport(
        check.transitions,
        len(check.chains),
        len(check.cps),
        not check.whole,
        check.unchecked,
        tuple(check.problems),
        check.unsealed,
    )


def witnesses(values: Sequence[str]) -> dict[int, str]:
    """``SEQ:HASH`` pairs (checkpoint heads kept outside), as a mapping."""
    out = {}
    for value in values:
        seq, _, hash_ = value.partition(":")
        if not seq.isdigit() or len(hash_) != 64:
            raise ValueError(f"--expect takes SEQ:HASH (a checkpoint number and its 64-hex hash), got {value!r}")
        out[int(seq)] = hash_
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m onboarding_fsm.exportcheck", description=__doc__.split("\n")[0])
    parser.add_argument("file", help="an export written by `onboarding-fsm audit export`")
    parser.add_argument("--key-env", help="environment variable holding the audit key (keyed exports)")
    parser.add_argument(
        "--expect", action="append", default=[], metavar="SEQ:HASH",
        help="a checkpoint head witnessed outside (the outbox's audit.checkpoint message, the worker's log)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        witnessed = witnesses(args.expect)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    key = None
    if args.key_env:
        secret = os.environ.get(args.key_env)
        if not secret:
            print(f"error: {args.key_env} is not set", file=sys.stderr)
            return 2
        key = AuditKey(secret.encode())
    try:
        with open(args.file, encoding="utf-8", newline="") as lines:
            report = verify_export(lines, key, witnessed=witnessed)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    scope = "partial export (links within it checked)" if report.partial else "whole trail"
    print(
        f"{report.transitions} record(s) of {report.accounts} account(s), {report.checkpoints} checkpoint(s), "
        f"{scope}; {report.unsealed} record(s) sealed by no checkpoint in it (their chain vouches for them); "
        f"{report.unchecked} keyed record(s) unchecked (no key given); {len(report.problems)} problem(s)"
    )
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
