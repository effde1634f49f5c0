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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from . import checkpoints, exports
from .audit import GENESIS, AuditKey, Transition, verify_chain
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

    @property
    def ok(self) -> bool:
        return not self.problems


class _Check:
    def __init__(self, key: AuditKey | None, whole: bool) -> None:
        self.key = key
        self.whole = whole
        self.problems: list[Problem] = []
        self.chain: list[Transition] = []
        self.seen: set[str] = set()
        self.coverings: dict[int, Covering] = {}
        self.cps: list[Checkpoint] = []
        self.transitions = 0
        self.unchecked = 0

    def transition(self, record: Transition) -> None:
        self.transitions += 1
        if self.chain and record.account_id != self.chain[0].account_id:
            self.flush()
        if not self.chain and record.account_id in self.seen:
            self.problems.append(Problem("order", record.account_id, "its records are not together (reordered)"))
        self.seen.add(record.account_id)
        self.chain.append(record)
        if record.checkpoint is not None:
            self.coverings.setdefault(record.checkpoint, Covering()).add(
                Anchor(record.account_id, record.seq, record.hash)
            )

    def flush(self) -> None:
        if not self.chain:
            return
        first = self.chain[0]
        start = (1, GENESIS) if self.whole or first.seq == 1 else (first.seq, first.prev_hash)
        report = verify_chain(first.account_id, self.chain, None, self.key, start=start, skip_keyed=True)
        if not report.ok:
            self.problems.append(Problem("chain", first.account_id, f"at seq {report.broken_at}: {report.problem}"))
        if self.key is None:
            self.unchecked += sum(1 for r in self.chain if r.key_id is not None)
        self.chain = []


def verify_export(lines: TextIO, key: AuditKey | None = None) -> ExportReport:
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
            else:
                check.problems.append(Problem("file", f"row {number}", f"unknown kind {kind!r}"))
        except (KeyError, ValueError, TypeError) as exc:
            check.problems.append(Problem("file", f"row {number}", f"malformed: {type(exc).__name__} {exc}"))
    check.flush()
    if end is None:
        check.problems.append(Problem("file", "end", "no end row: the export is cut short"))
    elif (end.get("records"), end.get("checkpoint")) != (check.transitions, len(check.cps)):
        check.problems.append(Problem("file", "end", "row counts differ from the end row's"))
    if check.whole:
        sealed = [(seq, c.digest(), c.count) for seq, c in sorted(check.coverings.items())]
        check.problems.extend(checkpoints.verify(check.cps, sealed, key))
    return ExportReport(
        check.transitions, len(check.seen), len(check.cps), not check.whole, check.unchecked, tuple(check.problems)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m onboarding_fsm.exportcheck", description=__doc__.split("\n")[0])
    parser.add_argument("file", help="an export written by `onboarding-fsm audit export`")
    parser.add_argument("--key-env", help="environment variable holding the audit key (keyed exports)")
    args = parser.parse_args(argv)
    key = None
    if args.key_env:
        secret = os.environ.get(args.key_env)
        if not secret:
            print(f"error: {args.key_env} is not set", file=sys.stderr)
            return 2
        key = AuditKey(secret.encode())
    try:
        with open(args.file, encoding="utf-8", newline="") as lines:
            report = verify_export(lines, key)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    scope = "partial export (links within it checked)" if report.partial else "whole trail"
    print(
        f"{report.transitions} record(s) of {report.accounts} account(s), {report.checkpoints} checkpoint(s), "
        f"{scope}; {report.unchecked} keyed record(s) unchecked; {len(report.problems)} problem(s)"
    )
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
