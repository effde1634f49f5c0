"""``onboarding-fsm doctor``: is Stripe set up to tell this deployment about
its connected accounts? And the same check at the start-up of ``serve`` and
``worker`` on Stripe, logged.

The check itself is ``bootstrap.self_check`` (findings from
``onboarding_fsm.selfcheck``). ``doctor`` prints each finding with its fix
and exits 0 when there is no problem (warnings allowed), 1 when there is
one, 2 when Stripe cannot be asked (unreachable, a wrong key, or a
restricted key without read access to webhook endpoints).

At start-up a problem is logged, never fatal: the webhook configuration is
fixed in Stripe's Dashboard while the process runs (no restart needed), the
worker's reconciliation is exactly what heals missed webhooks meanwhile,
and a Stripe that cannot be asked for a moment must not keep the platform
down. A wrong key mode stays fatal: ``build_engine(check_mode=True)``
refuses it before this runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any, TextIO

from onboarding_fsm import Settings, bootstrap
from onboarding_fsm.errors import OnboardingError, StripeFailure
from onboarding_fsm.ports import StripeGateway
from onboarding_fsm.selfcheck import Level, SelfCheck

log = logging.getLogger("onboarding_fsm.selfcheck")
#: how each finding is logged at start-up
LOG_LEVELS = {Level.OK: logging.INFO, Level.WARNING: logging.WARNING, Level.PROBLEM: logging.ERROR}
#: exit codes
PASSED, PROBLEMS, UNASKED = 0, 1, 2


def add_parser(sub: Any, settings_of: Callable[[argparse.Namespace], Settings]) -> None:
    """Register ``doctor`` on the main parser's subcommands."""
    doctor = sub.add_parser(
        "doctor", help="check Stripe's side: the Connect webhook endpoint (events, URL, status, mode), the secrets"
    )
    doctor.set_defaults(func=lambda args: run(settings_of(args)))


def run(settings: Settings, *, gateway: StripeGateway | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        report = bootstrap.self_check(settings, gateway)
    except StripeFailure as exc:
        hint = " (a restricted key needs read access to Webhook Endpoints)" if exc.http_status == 403 else ""
        print(f"error: Stripe could not be asked: {' '.join(str(exc).split())}{hint}", file=sys.stderr)
        return UNASKED
    if settings.stripe_backend == "simulator" and gateway is None:
        out.write("note: stripe_backend is the in-process simulator: this shows what a correct set-up looks like\n")
    for finding in report.findings:
        out.write(f"{finding.level.value:<8} {finding.topic:<17} {finding.message}\n")
        if finding.fix:
            out.write(f"{'':<8} {'':<17} fix: {finding.fix}\n")
    out.write(f"{len(report.problems)} problem(s), {len(report.warnings)} warning(s)\n")
    out.flush()
    return PASSED if report.passed else PROBLEMS


def at_start_up(settings: Settings, gateway: StripeGateway | None = None) -> SelfCheck | None:
    """The self-check on ``stripe_backend = "stripe"``, its findings logged;
    never raises (None: not run, or Stripe could not be asked)."""
    if settings.stripe_backend != "stripe" and gateway is None:
        return None
    try:
        report = bootstrap.self_check(settings, gateway or bootstrap.build_stripe_gateway(settings))
    except OnboardingError as exc:
        log.warning("self-check: Stripe could not be asked (%s); run onboarding-fsm doctor later", exc)
        return None
    for finding in report.findings:
        fix = f"; fix: {finding.fix}" if finding.fix else ""
        extra = {"check": finding.topic, "finding": finding.level.value}
        log.log(LOG_LEVELS[finding.level], "self-check %s: %s%s", finding.topic, finding.message, fix, extra=extra)
    if not report.passed:
        log.error("self-check: %d problem(s): this deployment may miss account updates", len(report.problems))
    return report
