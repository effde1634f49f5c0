"""The auditor's commands: ``audit transitions | state-at | export |
verify-export | checkpoint | verify`` and ``inbox``. Each is one engine call
(``engine.audit``); lists stream page by page, so a quarter of transitions
prints with flat memory."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from onboarding_fsm import exportcheck, exports
from onboarding_fsm.audit import Transition
from onboarding_fsm.engine import Engine
from onboarding_fsm.errors import InvalidInput
from onboarding_fsm.events import InboxEntry, Outcome
from onboarding_fsm.queries import InboxQuery, TransitionQuery
from onboarding_fsm.states import Source, State, Trigger

#: builds the engine from the parsed arguments (main's settings handling)
EngineFor = Callable[[argparse.Namespace], Engine]


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--{name} must be an ISO-8601 time with a zone, e.g. 2026-03-01T00:00:00+00:00") from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"--{name} needs a time zone (e.g. +00:00 or Z)")
    return parsed


def _enum(kind: Any, value: str | None, name: str) -> Any:
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(f"--{name} must be one of {', '.join(m.value for m in kind)}") from None


def query_of(args: argparse.Namespace) -> TransitionQuery:
    return TransitionQuery(
        since=_when(args.since, "since"),
        until=_when(args.until, "until"),
        account_id=args.account,
        from_state=_enum(State, args.from_state, "from"),
        to_state=_enum(State, args.to_state, "to"),
        trigger=_enum(Trigger, args.trigger, "trigger"),
        source=_enum(Source, args.source, "source"),
        actor=args.actor,
    )


def cause_text(t: Transition) -> str:
    """Source, reference and actor (and Stripe's request id, the run id) for text views."""
    parts = [t.source.value, t.source_ref or "-", t.actor or "-"]
    if t.request_id:
        parts.append(t.request_id)
    if t.run_id:
        parts.append(t.run_id)
    return " ".join(parts)


def line(t: Transition) -> str:
    return (
        f"{t.account_id} {t.seq:>4} {t.at.isoformat()} {(t.from_state or '-')!s:>19} -> {t.to_state.value:<19} "
        f"{t.trigger.value:<11} {cause_text(t)}  {t.reason}"
    )


def cmd_transitions(args: argparse.Namespace, engine_for: EngineFor) -> int:
    engine = engine_for(args)
    query = query_of(args)
    if args.all:
        records = engine.audit.stream(query)
        cursor = None
    else:
        page = engine.audit.transitions(query, limit=args.limit, cursor=args.cursor)
        records, cursor = iter(page), page.cursor
    count = 0
    for t in records:
        print(json.dumps(exports.transition_row(t)) if args.json else line(t))
        count += 1
    if cursor is not None:
        print(f"more: --cursor {cursor}", file=sys.stderr)
    print(f"{count} transition(s)", file=sys.stderr)
    return 0


def cmd_state_at(args: argparse.Namespace, engine_for: EngineFor) -> int:
    engine = engine_for(args)
    at = _when(args.at, "at")
    assert at is not None
    if args.account:
        found = engine.audit.state_at(args.account, at)
        states = [found] if found is not None else []
        if found is None:
            print(f"{args.account} did not exist yet at {at.isoformat()}", file=sys.stderr)
    else:
        states = engine.audit.states_at(at)  # type: ignore[assignment]
    for s in states:
        if args.json:
            print(json.dumps({"account": s.account_id, "state": s.state.value, "since": s.since.isoformat(),
                              "seq": s.seq, "reason": s.reason}))  # fmt: skip
        else:
            print(f"{s.account_id}  {s.state.value:<19} since {s.since.isoformat()} (#{s.seq})  {s.reason}")
    return 0


def cmd_export(args: argparse.Namespace, engine_for: EngineFor) -> int:
    engine = engine_for(args)
    query = query_of(args)
    out: TextIO
    if args.output in (None, "-"):
        summary = engine.audit.export(sys.stdout, format=args.format, query=query)
    else:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            summary = engine.audit.export(out, format=args.format, query=query)
    scope = "whole trail" if summary.whole else "filtered (partial)"
    print(f"exported {summary.transitions} record(s), {summary.checkpoints} checkpoint(s), {scope}", file=sys.stderr)
    return 0


def cmd_verify_export(args: argparse.Namespace, engine_for: EngineFor) -> int:
    argv = [str(args.file)] + (["--key-env", args.key_env] if args.key_env else [])
    return exportcheck.main(argv + [f"--expect={e}" for e in args.expect])


def cmd_checkpoint(args: argparse.Namespace, engine_for: EngineFor) -> int:
    made = engine_for(args).audit.checkpoint()
    for cp in made:
        print(f"checkpoint {cp.seq}: {cp.records} record(s) sealed at {cp.at.isoformat()}, hash {cp.hash}")
    if not made:
        print("nothing to seal: every record is in a checkpoint")
    return 0


def cmd_verify(args: argparse.Namespace, engine_for: EngineFor) -> int:
    try:
        witnessed = exportcheck.witnesses(args.expect)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    report = engine_for(args).verify_audit(witnessed=witnessed)
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    keyed = f"keyed ({report.key_id})" if report.key_id else "unkeyed (no audit_key configured)"
    print(
        f"{report.accounts} account chain(s), {report.records} record(s), {report.checkpoints} checkpoint(s), "
        f"{report.unsealed} record(s) not yet sealed; {keyed}; {report.broken_chains} broken chain(s), "
        f"{len(report.problems)} problem(s)"
    )
    return 0 if report.ok else 1


def _entry_line(e: InboxEntry) -> str:
    caused = f"#{e.transition_seq}" if e.transition_seq is not None else "-"
    return (
        f"{e.received_at.isoformat()} {e.event_id} {e.type:<32} {e.account_id or '-'} {e.outcome.value:<9} "
        f"{caused} {e.detail or ''}"
    )


def cmd_inbox(args: argparse.Namespace, engine_for: EngineFor) -> int:
    engine = engine_for(args)
    query = InboxQuery(
        account_id=args.account,
        type=args.type,
        outcome=_enum(Outcome, args.outcome, "outcome"),
        since=_when(args.since, "since"),
        until=_when(args.until, "until"),
    )
    page = engine.inbox(query, limit=args.limit, cursor=args.cursor)
    for e in page:
        if args.json:
            print(json.dumps({"id": e.event_id, "type": e.type, "account": e.account_id,
                              "created": e.created.isoformat(), "received_at": e.received_at.isoformat(),
                              "livemode": e.livemode, "outcome": e.outcome.value, "detail": e.detail,
                              "transition_seq": e.transition_seq}))  # fmt: skip
        else:
            print(_entry_line(e))
    if page.cursor is not None:
        print(f"more: --cursor {page.cursor}", file=sys.stderr)
    return 0


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", help="ISO-8601 time with zone, inclusive")
    p.add_argument("--until", help="ISO-8601 time with zone, exclusive")
    p.add_argument("--account")
    p.add_argument("--from", dest="from_state", help="state left")
    p.add_argument("--to", dest="to_state", help="state entered")
    p.add_argument("--trigger")
    p.add_argument("--source")
    p.add_argument("--actor")


def add_parsers(sub: Any, engine_for: EngineFor) -> None:
    """Register ``audit …`` and ``inbox`` on the main parser's subcommands."""

    def bind(p: argparse.ArgumentParser, fn: Callable[[argparse.Namespace, EngineFor], int]) -> None:
        p.set_defaults(func=lambda args: fn(args, engine_for))

    audit = sub.add_parser("audit", help="the audit trail: queries, exports, checkpoints, verification")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="recompute every chain and checkpoint; cross-check inbox and outbox")
    verify.add_argument(
        "--expect", action="append", default=[], metavar="SEQ:HASH",
        help="a checkpoint head witnessed outside the database (outbox audit.checkpoint message, worker log)",
    )  # fmt: skip
    bind(verify, cmd_verify)
    bind(audit_sub.add_parser("checkpoint", help="seal records written since the last checkpoint"), cmd_checkpoint)

    transitions = audit_sub.add_parser("transitions", help="transitions across accounts (time order)")
    _filters(transitions)
    transitions.add_argument("--limit", type=int, default=100)
    transitions.add_argument("--cursor", help="the cursor a previous page printed")
    transitions.add_argument("--all", action="store_true", help="every page, streamed")
    transitions.add_argument("--json", action="store_true", help="one JSON object per line (the export's fields)")
    bind(transitions, cmd_transitions)

    state_at = audit_sub.add_parser("state-at", help="where accounts stood at an instant")
    state_at.add_argument("at", help="ISO-8601 time with zone")
    state_at.add_argument("--account", help="one account (default: every account that existed then)")
    state_at.add_argument("--json", action="store_true")
    bind(state_at, cmd_state_at)

    export = audit_sub.add_parser("export", help="stream the trail as jsonl or csv, verifiable without the database")
    _filters(export)
    export.add_argument("--format", choices=[f.value for f in exports.Format], default="jsonl")
    export.add_argument("-o", "--output", help="file (default: stdout)")
    bind(export, cmd_export)

    check = audit_sub.add_parser("verify-export", help="check an export file on its own (no database)")
    check.add_argument("file", type=Path)
    check.add_argument("--key-env", help="environment variable holding the audit key (keyed exports)")
    check.add_argument("--expect", action="append", default=[], metavar="SEQ:HASH", help="a witnessed checkpoint head")
    bind(check, cmd_verify_export)

    inbox = sub.add_parser("inbox", help="recorded webhook events, newest first")
    inbox.add_argument("--account")
    inbox.add_argument("--type", help="e.g. account.updated")
    inbox.add_argument("--outcome", help="applied | duplicate | stale | ignored | failed")
    inbox.add_argument("--since")
    inbox.add_argument("--until")
    inbox.add_argument("--limit", type=int, default=100)
    inbox.add_argument("--cursor")
    inbox.add_argument("--json", action="store_true")
    bind(inbox, cmd_inbox)
