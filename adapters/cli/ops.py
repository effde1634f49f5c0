"""The operator's commands for a running deployment: ``status``, ``sync
ACCOUNT`` and ``inbox reprocess --id EVT | --failed``.

``status`` reads only the database (timers, the outbox, the runs every
worker recorded, accounts per state), so it answers from any machine that
can reach it, whichever process did the work; it exits 1 when something
needs an operator, so a cron job or probe can page on it. ``sync`` and
``reprocess`` ask Stripe and apply its answer as audited records caused by
``operator:NAME``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from onboarding_fsm import build_engine
from onboarding_fsm.engine import Engine
from onboarding_fsm.operations import Status
from onboarding_fsm.outbox import OutboxBacklog
from onboarding_fsm.reprocessing import Reprocessed, Verdict
from onboarding_fsm.runs import RunRecord
from onboarding_fsm.settings import Settings
from onboarding_fsm.states import Source

#: the settings from the parsed arguments (main's handling of --config and the environment)
SettingsFor = Callable[[argparse.Namespace], Settings]
#: who runs a command by hand (main's: ``--operator``, else the OS user)
OperatorOf = Callable[[argparse.Namespace], str]
Command = Callable[[argparse.Namespace, Engine], int]


def _ago(when: datetime, now: datetime) -> str:
    seconds = (now - when).total_seconds()
    span = f"{abs(seconds):.0f} s"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            span = f"{abs(seconds) / size:.1f} {unit}"
            break
    return f"{span} ago" if seconds >= 0 else f"{span} ahead of this clock"


def _counts(run: RunRecord) -> str:
    shown = [f"{name} {n}" for name, n in run.counts.items() if n]
    return ", ".join(shown) if shown else "idle: nothing to do"


def _run_line(kind: str, run: RunRecord | None, now: datetime) -> str:
    if run is None:
        return f"last {kind:<10} never recorded"
    ended = run.finished_at or run.started_at
    outcome = run.outcome.value if run.outcome is not None else "unfinished"
    line = f"last {kind:<10} {ended.isoformat()} ({_ago(ended, now)}) by {run.actor or run.source.value}: {outcome}"
    line += f"; {_counts(run)}"
    if not run.idle:
        line += f" [{run.run_id}]"
    return line + (f" ({run.detail})" if run.detail else "")


def _print_status(status: Status, outbox: OutboxBacklog) -> None:
    now, t = status.at, status.timers
    after = int(status.overdue_after.total_seconds())
    print(f"status at {now.isoformat()}")
    print(f"timers         due {t.due}, overdue {t.overdue} (unfired > {after} s past due), retrying {t.retrying}")
    age = outbox.oldest_pending_age
    oldest = f" (oldest waiting {age.total_seconds():.0f} s)" if age is not None else ""
    print(
        f"outbox         pending {outbox.pending}{oldest}, due {outbox.due}, retrying {outbox.retrying}, "
        f"blocked {outbox.blocked}, dead letters {outbox.dead}"
    )
    for kind in ("sweep", "reconcile", "prune"):
        print(_run_line(kind, status.last_runs.get(kind), now))
    print("accounts       " + ", ".join(f"{state.value} {n}" for state, n in status.accounts.items() if n))
    for line in attention(status, outbox):
        print(f"ATTENTION: {line}")


def attention(status: Status, outbox: OutboxBacklog) -> list[str]:
    """What needs an operator: overdue timers, dead letters, a last reconcile
    run that failed or was guarded, and no sweep recorded lately (a worker
    that died with nothing due shows no overdue timer yet)."""
    after = status.overdue_after
    found = []
    if status.timers.overdue:
        found.append(
            f"{status.timers.overdue} timer(s) unfired more than {int(after.total_seconds())} s past due: is a "
            "worker running (onboarding-fsm worker)? can it reach Stripe (timers retrying)?"
        )
    if outbox.dead:
        found.append(f"{outbox.dead} dead letter(s) hold their accounts' messages (onboarding-fsm outbox dead)")
    reconciled = status.last_runs.get("reconcile")
    if reconciled is not None and reconciled.outcome is not None and reconciled.outcome.value != "ok":
        found.append(f"the last reconcile run was {reconciled.outcome.value}: {reconciled.detail or 'see its log'}")
    swept = status.last_runs.get("sweep")
    looked = (swept.finished_at or swept.started_at) if swept is not None else None
    if looked is None or status.at - looked > after:
        since = "ever" if looked is None else f"for {(status.at - looked).total_seconds():.0f} s"
        found.append(f"no sweep recorded {since}: is a worker running (onboarding-fsm worker)?")
    return found


def _run_json(run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "source": run.source.value,
        "actor": run.actor,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "outcome": run.outcome.value if run.outcome is not None else None,
        "idle": run.idle,
        "counts": dict(run.counts),
        "detail": run.detail,
    }


def _status_json(status: Status, outbox: OutboxBacklog) -> dict[str, Any]:
    age = outbox.oldest_pending_age
    return {
        "at": status.at.isoformat(),
        "timers": {
            "due": status.timers.due,
            "overdue": status.timers.overdue,
            "retrying": status.timers.retrying,
            "overdue_after_seconds": status.overdue_after.total_seconds(),
        },
        "outbox": {
            "pending": outbox.pending,
            "due": outbox.due,
            "leased": outbox.leased,
            "retrying": outbox.retrying,
            "blocked": outbox.blocked,
            "dead": outbox.dead,
            "oldest_pending_age_seconds": age.total_seconds() if age is not None else None,
        },
        "runs": {kind: _run_json(run) for kind, run in status.last_runs.items()},
        "accounts": {state.value: n for state, n in status.accounts.items()},
        "attention": attention(status, outbox),
    }


def cmd_status(args: argparse.Namespace, engine: Engine) -> int:
    overdue_after = timedelta(seconds=args.overdue_after) if args.overdue_after is not None else None
    status = engine.ops.status(overdue_after=overdue_after)
    outbox = engine.outbox.backlog()
    if args.json:
        print(json.dumps(_status_json(status, outbox), indent=2))
    else:
        _print_status(status, outbox)
    return 1 if attention(status, outbox) else 0


def cmd_sync(args: argparse.Namespace, engine: Engine, operator: str) -> int:
    before = engine.get_account(args.account)  # a clear error for an unknown account
    if before.detached:
        print(f"{before.stripe_account_id} is detached ({before.reason}): not synced; reconcile restores it")
        return 1
    after = engine.sync_account(before.stripe_account_id, source=Source.OPERATOR, actor=f"operator:{operator}")
    moved = [t for t in engine.history(before.stripe_account_id) if t.seq > before.audit_seq]
    for t in moved:
        print(
            f"{t.account_id} {(t.from_state or '-')!s} -> {t.to_state.value} ({t.trigger.value}, {t.actor}, "
            f"request {t.request_id or '-'}): {t.reason}"
        )
    if not moved:
        print(f"{after.stripe_account_id} {after.state.value}: no change, Stripe agrees ({after.reason})")
    return 0


def _reprocessed_line(r: Reprocessed) -> str:
    moved = ""
    if r.transition is not None:
        moved = f"  {(r.transition.from_state or '-')!s} -> {r.transition.to_state.value} (#{r.transition.seq})"
    return f"{r.verdict.value:<8} {r.event_id}  {r.account_id or '-'}{moved}  {r.detail}"


def cmd_reprocess(args: argparse.Namespace, engine: Engine, operator: str) -> int:
    if args.id is not None:
        done = [engine.ops.reprocess(args.id, operator=operator)]
    else:
        done = engine.ops.reprocess_failed(operator=operator, limit=args.limit)
    for r in done:
        print(_reprocessed_line(r))
    left = [r for r in done if r.verdict not in (Verdict.APPLIED, Verdict.SETTLED)]
    print(f"{len(done)} event(s) re-processed by operator:{operator}, {len(done) - len(left)} applied or settled")
    if args.failed and len(done) == args.limit:
        print("more failed events may remain: run it again", file=sys.stderr)
    return 1 if left else 0


def knows_stored_accounts(settings: Settings, what: str, *, prefix: str = "error") -> bool:
    """False (and why, on stderr) on the in-process simulator: it lives and dies
    with this process, so Stripe as it sees it has none of the stored accounts."""
    if settings.stripe_backend == "simulator":
        print(
            f"{prefix}: the in-process simulator lives and dies with this process and knows none of the stored "
            f"accounts; {what} stripe_backend=stripe (Stripe, or the simulator's HTTP server)",
            file=sys.stderr,
        )
        return False
    return True


def add_parsers(sub: Any, settings_for: SettingsFor, operator_of: OperatorOf) -> None:
    """Register ``status``, ``sync`` and ``inbox reprocess`` (after ``audit.add_parsers``,
    which registers ``inbox``)."""

    def bind(p: argparse.ArgumentParser, command: Command, *, stripe: bool = False) -> None:
        def run(args: argparse.Namespace) -> int:
            settings = settings_for(args)
            if stripe and not knows_stored_accounts(settings, "sync and reprocess need"):
                return 2
            engine = build_engine(settings, check_mode=stripe)
            try:
                return command(args, engine)
            finally:
                engine.close()

        p.set_defaults(func=run)

    status = sub.add_parser(
        "status",
        help="what a deployment is doing: timers due and overdue, the outbox, the last runs, accounts per state",
        description="Exit 1 when something needs an operator: a timer overdue (no worker sweeping, or Stripe "
        "away) or an outbox dead letter; else 0.",
    )
    status.add_argument("--overdue-after", type=int, help="seconds past due (default: timer_overdue_after_seconds)")
    status.add_argument("--json", action="store_true")
    bind(status, cmd_status)

    sync = sub.add_parser("sync", help="fetch one account from Stripe now and apply it (audited as operator:NAME)")
    sync.add_argument("account")
    sync.add_argument("--operator", help="who runs it, recorded as the actor (default: the OS user)")
    bind(sync, lambda args, engine: cmd_sync(args, engine, operator_of(args)), stripe=True)

    inbox_sub = sub.choices["inbox"].add_subparsers(dest="inbox_command", metavar="{reprocess}")
    reprocess = inbox_sub.add_parser(
        "reprocess",
        help="re-do failed webhook events (or one) from Stripe's current answer",
        description="Asks Stripe for the event's account now and applies the answer as a sync whose cause names "
        "the event (operator:NAME); a failed event is then recorded applied. Exit 1 when one could not be "
        "applied, 2 for an unknown event id.",
    )
    which = reprocess.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", help="one recorded event")
    which.add_argument("--failed", action="store_true", help="every event recorded failed, oldest first")
    reprocess.add_argument("--limit", type=int, default=100, help="at most this many failed events")
    reprocess.add_argument("--operator", help="who runs it, recorded as the actor (default: the OS user)")
    bind(reprocess, lambda args, engine: cmd_reprocess(args, engine, operator_of(args)), stripe=True)
