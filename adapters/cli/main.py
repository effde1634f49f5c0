"""The ``onboarding-fsm`` command line. Each command is a thin shell over
one engine call; the engine and its adapters come from ``bootstrap``."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from onboarding_fsm import OnboardingError, Settings, Source, bootstrap, build_engine, exports

from . import attention, audit, doctor, logs, ops, outbox


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "database", None):
        overrides["database_url"] = args.database
    if args.config:
        return Settings.from_file(args.config, **overrides)
    return Settings(**overrides)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(_settings(args))


def cmd_diagram(args: argparse.Namespace) -> int:
    from .layout import render

    directory = Path(args.out)
    wanted = render(directory)
    if args.check:
        stale = [p for p, text in wanted.items() if not p.exists() or p.read_text("utf-8") != text]
        for path in stale:
            print(f"out of date: {path}", file=sys.stderr)
        return 1 if stale else 0
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in wanted.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    store = bootstrap.build_store(_settings(args))
    store.migrate()
    print(f"schema up to date: {store.location}")
    return 0


def _operator(args: argparse.Namespace) -> str:
    """Who runs a manual command: ``--operator``, else the OS user (a container
    running under a uid with no name and no $USER: ``uid:N``)."""
    named = getattr(args, "operator", None)
    if named:
        return str(named)
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def cmd_check_deadlines(args: argparse.Namespace) -> int:
    engine = build_engine(_settings(args))
    now = datetime.fromisoformat(args.now) if args.now else None
    report = engine.sweep(now, operator=_operator(args))
    for t in report.transitions:
        print(f"{t.account_id} {t.from_state} -> {t.to_state} ({t.trigger.value}): {t.reason}")
    print(f"{len(report.transitions)} transition(s) fired (run {report.run_id}, operator:{_operator(args)})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import run

    return run(_settings(args), host=args.host, port=args.port, simulator_port=args.simulator_port)


def cmd_simulator(args: argparse.Namespace) -> int:
    from adapters.http.serving import bind, serve_forever

    settings = _settings(args)
    stripe = bootstrap.build_simulated_stripe(
        settings, bind(args.host, args.port), webhook_url=args.webhook_url, background=False
    )
    key = stripe.api_key
    print(f"simulated Stripe API on {stripe.url}/v1 (key {key})")
    print(f"webhooks to {args.webhook_url or '(none: pass --webhook-url)'}, signed with the first webhook secret")
    print(
        f"point onboarding-fsm at it: ONBOARDING_FSM_STRIPE_BACKEND=stripe ONBOARDING_FSM_STRIPE_API_KEY={key} "
        f"ONBOARDING_FSM_STRIPE_API_BASE={stripe.url}",
        flush=True,
    )
    try:
        serve_forever(stripe.server.app, stripe.sock)
    finally:
        stripe.stop()
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    engine = build_engine(_settings(args))
    report = engine.prune(datetime.fromisoformat(args.now) if args.now else None, operator=_operator(args))
    print(
        f"before {report.before.isoformat()}: {report.outbox_deleted} published outbox message(s) deleted, "
        f"{report.inbox_emptied} inbox payload(s) emptied, {report.limits_deleted} idle rate-limit budget(s) "
        "deleted (inbox rows and audit records kept)"
    )
    return 0


def cmd_start_url(args: argparse.Namespace) -> int:
    from adapters.http.auth import SignedTokenAuth, link_marker_of

    settings = _settings(args)
    if settings.session_secret is None:
        print("error: set ONBOARDING_FSM_SESSION_SECRET (shared with the serving process)", file=sys.stderr)
        return 2
    engine = build_engine(settings)
    engine.get_account(args.account)  # a clear error for an unknown account
    auth = SignedTokenAuth(
        settings.session_secret.get_secret_value(),
        max_age=settings.session_max_age_seconds,
        token_max_age=settings.start_token_max_age_seconds,
        link_marker=link_marker_of(engine),  # single-use: the serving app checks the same marker
    )
    url = settings.profile_url(args.account) if args.profile else settings.start_url(args.account)
    print(f"{url}?token={auth.token_for(args.account, args.holder)}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    engine = build_engine(settings, check_mode=True)
    doctor.at_start_up(settings)  # logs what it finds; a problem is no reason to stop healing (doctor.py)
    reconciles = ops.knows_stored_accounts(settings, "reconciliation needs", prefix="note")
    if not reconciles:
        print(
            "note: deadline timers ask Stripe about each account when they fire; this process's simulator "
            "knows none of them, so they will wait (onboarding_fsm_timers_retrying) until a Stripe that does",
            file=sys.stderr,
        )
    worker = bootstrap.build_worker(settings, engine, reconcile=reconciles)
    if args.until_idle:
        report = worker.run_until_idle()
        print(f"{len(report.transitions)} transition(s), {report.reminders} reminder(s), {report.skipped} obsolete")
        return 0
    worker.run()
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from onboarding_fsm.reconcile import reconcile

    settings = _settings(args)
    if not ops.knows_stored_accounts(settings, "reconciliation needs", prefix="note"):
        return 2
    engine = build_engine(settings, check_mode=True)
    stale_after = timedelta(seconds=args.stale_after or settings.reconcile_stale_after_seconds)
    with tqdm(unit=" accounts", desc="reconcile", disable=None, file=sys.stderr) as bar:
        report = reconcile(
            engine,
            stale_after=stale_after,
            full=not args.stale_only,
            progress=bar.update,
            source=Source.OPERATOR,
            actor=f"operator:{_operator(args)}",
        )
    for d in report.drift:
        moved = f"{d.from_state or '-'} -> {d.to_state.value}"
        print(f"{d.how.value:<9} {d.account_id}  {d.platform_ref}  {moved}  {d.reason}")
    for error in report.errors:
        print(f"error     {error}", file=sys.stderr)
    print(
        f"listed {report.listed}, re-fetched {report.refetched}, drift {len(report.drift)} "
        f"({len(report.adopted)} adopted), errors {len(report.errors)} (run {report.run_id})"
    )
    return 1 if report.errors else 0


def cmd_accounts(args: argparse.Namespace) -> int:
    engine = build_engine(_settings(args))
    for acct in engine.accounts(state=args.state, limit=args.limit):
        print(f"{acct.stripe_account_id}  {acct.state.value:<19}  {acct.platform_ref:<32}  {acct.reason}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """One account's records: as text with their causes, or as the export's JSON
    (with ``prev_hash`` and every hashed field, so each line can be re-hashed)."""
    engine = build_engine(_settings(args))
    for t in engine.history(args.account):
        if args.json:
            print(json.dumps(exports.transition_row(t)))
        else:
            print(
                f"{t.seq:>4} {t.at.isoformat()} {(t.from_state or '-')!s:>19} -> {t.to_state.value:<19} "
                f"{t.trigger.value:<11} {audit.cause_text(t)}  {t.reason}"
            )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="onboarding-fsm", description=__doc__)
    p.add_argument("--config", help="TOML settings file (see config/example.toml)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every transition")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run every onboarding scenario on the embedded default")
    demo.add_argument("--database", help="SQLAlchemy URL (default: settings)")
    demo.set_defaults(func=cmd_demo)

    diagram = sub.add_parser("diagram", help="write diagrams/: the state machine and the code's layout")
    diagram.add_argument("--out", default="diagrams")
    diagram.add_argument("--check", action="store_true", help="exit 1 if the committed diagrams are stale")
    diagram.set_defaults(func=cmd_diagram)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply Alembic migrations")
    upgrade.add_argument("--database")
    upgrade.set_defaults(func=cmd_db_upgrade)

    deadlines = sub.add_parser("check-deadlines", help="fire due deadline, abandonment and reminder timers")
    deadlines.add_argument("--now", help="ISO-8601 UTC time to check at (default: now)")
    deadlines.add_argument("--operator", help="who runs it, recorded as the cause (default: the OS user)")
    deadlines.set_defaults(func=cmd_check_deadlines)

    serve = sub.add_parser("serve", help="serve the webhook and onboarding endpoints (+ the simulator by default)")
    serve.add_argument("--host", help="address to listen on (default: bind_host; 0.0.0.0 behind a proxy)")
    serve.add_argument("--port", type=int, help="port to listen on (default: bind_port, public_base_url's, 8000)")
    serve.add_argument("--simulator-port", type=int, default=12111)
    serve.set_defaults(func=cmd_serve)

    simulator = sub.add_parser("simulator", help="serve only the simulated Stripe API and hosted form over HTTP")
    simulator.add_argument("--host", default="127.0.0.1")
    simulator.add_argument("--port", type=int, default=12111)
    simulator.add_argument(
        "--webhook-url", help="where to POST signed events (e.g. http://127.0.0.1:8000/webhooks/stripe)"
    )
    simulator.set_defaults(func=cmd_simulator)

    prune = sub.add_parser("prune", help="retention: drop old published outbox messages and inbox payloads")
    prune.add_argument("--now", help="ISO-8601 UTC time to prune as of (default: now)")
    prune.add_argument("--operator", help="who runs it, recorded with the run (default: the OS user)")
    prune.set_defaults(func=cmd_prune)

    start_url = sub.add_parser("start-url", help="a signed start URL for an account (embedded token scheme)")
    start_url.add_argument("account")
    start_url.add_argument("--holder", required=True, help="who is signed in (recorded as holder:NAME); an opaque id")
    start_url.add_argument("--profile", action="store_true", help="the 'edit my profile' URL instead (same token)")
    start_url.set_defaults(func=cmd_start_url)

    worker = sub.add_parser("worker", help="run the timer sweep and reconciliation (APScheduler, this process)")
    worker.add_argument("--until-idle", action="store_true", help="sweep until nothing is due, then exit (cron)")
    worker.set_defaults(func=cmd_worker)

    rec = sub.add_parser("reconcile", help="heal missed webhooks from Stripe's accounts; adopt orphans")
    rec.add_argument("--stale-only", action="store_true", help="only re-fetch local accounts not synced lately")
    rec.add_argument("--stale-after", type=int, help="seconds since the last sync (default: settings)")
    rec.add_argument("--operator", help="who runs it, recorded as the actor (default: the OS user)")
    rec.set_defaults(func=cmd_reconcile)

    accounts = sub.add_parser("accounts", help="list accounts")
    accounts.add_argument("--state")
    accounts.add_argument("--limit", type=int, default=100)
    accounts.set_defaults(func=cmd_accounts)

    history = sub.add_parser("history", help="an account's audited transitions")
    history.add_argument("account")
    history.add_argument("--json", action="store_true")
    history.set_defaults(func=cmd_history)

    audit.add_parsers(sub, lambda args: build_engine(_settings(args)))
    ops.add_parsers(sub, _settings, _operator)  # status, sync, inbox reprocess (after inbox)
    outbox.add_parsers(sub, _settings, _operator)
    doctor.add_parser(sub, _settings)
    attention.add_parser(sub, _settings)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.configure(logging.INFO if args.verbose else logging.WARNING, _log_format(args))
    try:
        result: int = args.func(args)
        return result
    except OnboardingError as exc:  # ours: settings refused, database unavailable, account not found ...
        return _fail(exc, args.verbose, 2, str(exc))
    except Exception as exc:  # a library's own (a database URL SQLAlchemy has no dialect for, say)
        return _fail(exc, args.verbose, 1, f"{type(exc).__name__}: {exc}")


def _log_format(args: argparse.Namespace) -> logs.LogFormat:
    """The settings' ``log_format``; text when the settings are refused (the command says why)."""
    try:
        return _settings(args).log_format
    except OnboardingError:
        return "text"


def _fail(exc: Exception, verbose: bool, code: int, message: str) -> int:
    """One line on stderr, so an operator (or a log scraper) sees the cause,
    not 40 lines of traceback; ``-v`` adds the traceback for a bug report."""
    line = " ".join(message.split())  # drivers' messages span lines (psycopg's hint)
    hint = "" if verbose or code == 2 else " (-v for the traceback)"
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"error: {line}{hint}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
