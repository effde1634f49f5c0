"""``onboarding-fsm attention``: the accounts that need attention, with why.

One ``engine.attention`` page (and the counts per kind) from the database
alone, so it answers from any machine that reaches it. It exits 1 when the
kinds asked list at least one account, 0 when none: a cron job or probe
pages on exactly the kinds it names (``--kind timer_overdue --kind stuck``,
say; an incremental platform always has accounts with eventually_due left).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from onboarding_fsm import build_engine
from onboarding_fsm.attention import AttentionKind, AttentionSummary, NeedsAttention, span
from onboarding_fsm.errors import InvalidInput
from onboarding_fsm.queries import Page
from onboarding_fsm.settings import Settings

#: the settings from the parsed arguments (main's handling of --config and the environment)
SettingsFor = Callable[[argparse.Namespace], Settings]


def _now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput("--now must be an ISO-8601 time with a zone, e.g. 2026-03-01T00:00:00+00:00") from None
    if parsed.tzinfo is None:
        raise InvalidInput("--now needs a time zone (e.g. +00:00 or Z)")
    return parsed


def _line(item: NeedsAttention) -> str:
    return f"{item.kind.value:<19} {item.account_id:<28} {item.state.value:<19} {item.platform_ref:<24} {item.why}"


def _counts(summary: AttentionSummary) -> str:
    return ", ".join(f"{kind.value} {n}" for kind, n in summary.counts.items())


def _item_json(item: NeedsAttention) -> dict[str, Any]:
    return {
        "kind": item.kind.value,
        "account_id": item.account_id,
        "platform_ref": item.platform_ref,
        "state": item.state.value,
        "why": item.why,
        "at": item.at.isoformat() if item.at is not None else None,
        "count": item.count,
    }


def _json(page: Page[NeedsAttention], summary: AttentionSummary) -> dict[str, Any]:
    return {
        "at": summary.at.isoformat(),
        "stuck_after_seconds": summary.stuck_after.total_seconds(),
        "overdue_after_seconds": summary.overdue_after.total_seconds(),
        "counts": {kind.value: n for kind, n in summary.counts.items()},
        "accounts": [_item_json(item) for item in page],
        "cursor": page.cursor,
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    engine = build_engine(settings)
    try:
        now = _now(args.now) or engine.now()  # one instant for the page and the counts
        page = engine.attention.accounts(args.kind, limit=args.limit, cursor=args.cursor, now=now)
        summary = engine.attention.summary(now=now)
    finally:
        engine.close()
    if args.json:
        print(json.dumps(_json(page, summary), indent=2))
    else:
        for item in page:
            print(_line(item))
        print(
            f"{len(page)} listed at {summary.at.isoformat()}; per kind: {_counts(summary)} "
            f"(stuck after {span(summary.stuck_after)}, timers overdue after {span(summary.overdue_after)})"
        )
    if page.cursor is not None and not args.json:
        print(f"more: --cursor {page.cursor}", file=sys.stderr)
    return 1 if len(page) else 0


def add_parser(sub: Any, settings_for: SettingsFor) -> None:
    """Register ``attention`` on the main parser's subcommands."""
    kinds = ", ".join(k.value for k in AttentionKind)
    attention = sub.add_parser(
        "attention",
        help="accounts that need attention: timers overdue, stuck, future requirements, eventually_due left",
        description=f"Kinds, listed in this order: {kinds}. Exit 1 when the kinds asked list an account, else 0.",
    )
    attention.add_argument("--kind", action="append", help=f"only this kind (repeatable): {kinds}")
    attention.add_argument("--limit", type=int, default=100, help="at most this many accounts (one page)")
    attention.add_argument("--cursor", help="the next page: the cursor a previous run printed")
    attention.add_argument("--now", help="ISO-8601 time to judge at (default: now)")
    attention.add_argument("--json", action="store_true")
    attention.set_defaults(func=lambda args: run(args, settings_for(args)))
