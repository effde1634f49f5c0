"""The operator's outbox commands: ``outbox status | dead | redrive | deliver``.

Each is one ``engine.outbox`` call. ``dead`` lists what an operator needs to
decide (id, account, kind, attempts, since when, the handler's last error),
never a payload; ``redrive`` puts dead letters back in line once the
consumer is fixed, and the log records who did it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from onboarding_fsm import bootstrap, build_engine
from onboarding_fsm.engine import Engine
from onboarding_fsm.settings import Settings

#: the settings from the parsed arguments (main's handling of --config and the environment)
SettingsFor = Callable[[argparse.Namespace], Settings]
#: who runs a command by hand (main's: ``--operator``, else the OS user)
OperatorOf = Callable[[argparse.Namespace], str]
Command = Callable[[argparse.Namespace, Settings, Engine], int]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def cmd_status(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    b = engine.outbox.backlog()
    age = b.oldest_pending_age
    print(f"pending        {b.pending}  (oldest waiting {_age(age.total_seconds() if age is not None else None)})")
    print(f"  due now      {b.due}  (the oldest of their account, neither leased nor backing off)")
    print(f"  leased       {b.leased}")
    print(f"  retrying     {b.retrying}")
    print(f"  blocked      {b.blocked}  (behind a dead letter of their account)")
    print(f"dead letters   {b.dead}" + ("  (onboarding-fsm outbox dead; outbox redrive)" if b.dead else ""))
    return 0


def cmd_dead(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    letters = engine.outbox.dead(limit=args.limit, after=args.after)
    for d in letters:
        print(
            f"{d.id:>8}  {d.account_id or '-':<24}  {d.kind:<22}  {d.attempts:>3}  {d.dead_at.isoformat()}  "
            f"{d.last_error or '-'}"
        )
    if len(letters) == args.limit:
        print(f"more: --after {letters[-1].id}", file=sys.stderr)
    return 0


def cmd_redrive(args: argparse.Namespace, engine: Engine, operator: str) -> int:
    done = engine.outbox.redrive(args.id, every=args.all, operator=f"operator:{operator}")
    listed = ", ".join(map(str, done)) or "none"
    print(f"{len(done)} dead letter(s) back to pending, attempts reset: {listed} (operator:{operator})")
    return 0


def cmd_deliver(args: argparse.Namespace, settings: Settings, engine: Engine) -> int:
    handler = bootstrap.build_outbox_handler(settings)
    if handler is None:
        print('error: no outbox_handler is configured ("package.module:factory")', file=sys.stderr)
        return 2
    report = engine.outbox.deliver(handler, limit=args.limit)
    print(f"{report.delivered} delivered, {report.retried} to retry, {report.dead} dead-lettered")
    return 1 if report.dead else 0


def add_parsers(sub: Any, settings_for: SettingsFor, operator_of: OperatorOf) -> None:
    """Register ``outbox …`` on the main parser's subcommands."""

    def bind(p: argparse.ArgumentParser, command: Command) -> None:
        def run(args: argparse.Namespace) -> int:
            settings = settings_for(args)
            engine = build_engine(settings)
            try:
                return command(args, settings, engine)
            finally:
                engine.close()

        p.set_defaults(func=run)

    outbox = sub.add_parser("outbox", help="the outbox: backlog, dead letters, re-drive, deliver now")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    bind(outbox_sub.add_parser("status", help="pending, due, leased, retrying, blocked and dead messages"), cmd_status)
    dead = outbox_sub.add_parser("dead", help="dead letters: id, account, kind, attempts, since, last error")
    dead.add_argument("--limit", type=int, default=100)
    dead.add_argument("--after", type=int, default=0, help="list ids above this (the id a previous page printed)")
    bind(dead, cmd_dead)
    redrive = outbox_sub.add_parser("redrive", help="dead letters back to pending, attempts reset (logged)")
    which = redrive.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, action="append", help="a dead letter's id (repeatable)")
    which.add_argument("--all", action="store_true", help="every dead letter")
    redrive.add_argument("--operator", help="who re-drives, recorded in the log (default: the OS user)")
    bind(redrive, lambda args, settings, engine: cmd_redrive(args, engine, operator_of(args)))
    deliver = outbox_sub.add_parser("deliver", help="one delivery pass now, with the configured outbox_handler")
    deliver.add_argument("--limit", type=int, default=1000, help="at most this many handler calls")
    bind(deliver, cmd_deliver)
