"""``onboarding-fsm demo``: every hosted-onboarding scenario on fresh accounts.

Runs on the embedded default (SQLite file + the simulator). The simulator and
the engine share a simulated clock that starts at the current time and jumps
forward when a scenario needs a deadline to pass — the demo takes seconds,
not weeks.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TextIO

from adapters.simulator import LinkUnusable, Simulator
from adapters.simulator.sandbox import Sandbox
from onboarding_fsm import FakeClock, Settings, bootstrap
from onboarding_fsm.engine import Engine
from onboarding_fsm.errors import IdentityLocked, LinkNotAllowed

from .audit import cause_text


@dataclass
class Demo:
    box: Sandbox
    run: str
    #: lines a scenario wants printed under its history
    notes: list[str] = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        return self.box.engine

    @property
    def sim(self) -> Simulator:
        return self.box.sim

    @property
    def clock(self) -> FakeClock:
        return self.box.clock

    def create(self, name: str, **kwargs: Any) -> str:
        return self.box.create(f"demo-{self.run}-{name}", **kwargs)

    def onboard(self, account_id: str, overrides: dict[str, str] | None = None, **link: Any) -> str:
        return self.box.onboard(account_id, overrides, **link)


def upfront(d: Demo) -> str:
    acct = d.create("upfront")
    d.onboard(acct, fields="eventually_due")
    return acct


def incremental(d: Demo) -> str:
    acct = d.create("incremental")
    d.onboard(acct, fields="currently_due")
    return acct


def save_for_later(d: Demo) -> str:
    acct = d.create("save-for-later")
    session = d.sim.visit(d.engine.issue_link(acct).url)
    session.submit({"business_type": "individual", "individual": {"first_name": "Jenny", "last_name": "Rosen"}})
    session.save_for_later()
    d.engine.handle_return(acct)
    d.onboard(acct)
    return acct


def refresh(d: Demo) -> str:
    acct = d.create("refresh")
    url = d.engine.issue_link(acct).url
    d.sim.visit(url)  # the holder opens it (or a link-preview bot does)
    try:
        d.sim.visit(url)
    except LinkUnusable:
        url = d.engine.refresh_link(acct).url  # Stripe sent the holder to refresh_url
    d.clock.advance(301)
    try:
        d.sim.visit(url)
    except LinkUnusable:
        url = d.engine.refresh_link(acct).url
    d.sim.visit(url).complete()
    d.engine.handle_return(acct)
    return acct


def identity_mismatch(d: Demo) -> str:
    acct = d.create("id-mismatch")
    d.onboard(acct, {"individual.id_number": "111111111"}, fields="eventually_due")
    d.onboard(acct)  # remediation: the form now asks for an identity document
    return acct


def prefilled(d: Demo) -> str:
    acct = d.create("prefilled", prefill={"business_profile": {"url": "https://accessible.stripe.com", "mcc": "5734"}})
    d.onboard(acct)
    return acct


def deadline(d: Demo) -> str:
    acct = d.create("deadline")
    d.onboard(acct)
    d.sim.add_future_requirements(acct, ["individual.id_number"], d.clock.now() + timedelta(days=30))
    d.sim.delivery.hold = True  # no webhook will tell us the deadline passed
    d.clock.advance(timedelta(days=30, seconds=1))
    d.engine.check_deadlines()
    d.sim.delivery.hold = False
    d.sim.deliver()
    d.onboard(acct)
    return acct


def rejected(d: Demo) -> str:
    acct = d.create("rejected")
    d.onboard(acct)
    d.sim.reject(acct, "fraud")
    return acct


def deauthorized(d: Demo) -> str:
    acct = d.create("deauthorized", type="standard")
    d.onboard(acct)
    d.sim.deauthorize(acct)
    return acct


def account_update(d: Demo) -> str:
    express = d.create("express", type="express")
    with contextlib.suppress(LinkNotAllowed):
        d.engine.issue_link(express, type="account_update")
    custom = d.create(
        "custom", controller={"requirement_collection": "application", "stripe_dashboard": {"type": "none"},
                              "fees": {"payer": "application"}, "losses": {"payments": "application"}}
    )  # fmt: skip
    d.onboard(custom)
    d.onboard(custom, type="account_update")
    return custom


def updated_later(d: Demo) -> str:
    acct = d.create("updated-later", type="express")
    d.engine.update_account(acct, {"business_type": "individual", "individual": {"first_name": "Jenny"}}, actor="ops")
    url = d.engine.issue_link(acct).url
    try:  # Stripe collects this account's requirements: the link locked identity fields
        d.engine.update_account(acct, {"individual": {"last_name": "Rosen"}}, actor="ops")
    except IdentityLocked as refused:
        d.notes.append(f"refused after the first link: {', '.join(refused.fields)} (IdentityLocked)")
    d.engine.update_account(acct, {"business_profile": {"url": "https://accessible.stripe.com"}}, actor="ops")
    d.sim.visit(url).complete()
    d.engine.handle_return(acct)
    return acct


def capability_later(d: Demo) -> str:
    acct = d.create("capability-later", capabilities=["transfers"])
    d.onboard(acct)
    d.sim.delivery.hold = True  # Stripe's webhook follows its answer, as in production
    d.engine.request_capabilities(acct, ["card_payments"], actor="ops")
    d.sim.delivery.hold = False
    d.sim.deliver()
    d.onboard(acct)  # the onboarding link collects what card_payments needs
    return acct


def future_included(d: Demo) -> str:
    acct = d.create("future-include")
    d.onboard(acct)
    d.sim.add_future_requirements(acct, ["individual.id_number"], d.clock.now() + timedelta(days=60))
    due = d.engine.get_account(acct).snapshot.future_requirements
    d.notes.append(f"future_requirements before: {list(due.currently_due) if due else []}")
    d.onboard(acct, future_requirements="include")
    due = d.engine.get_account(acct).snapshot.future_requirements
    d.notes.append(f"future_requirements after the include link: {list(due.currently_due) if due else []}")
    return acct


def left_halfway(d: Demo) -> str:
    acct = d.create("left-halfway")
    session = d.sim.visit(d.engine.issue_link(acct).url)
    session.submit({"business_type": "individual", "individual": {"first_name": "Jenny"}})
    session.save_for_later()
    d.engine.handle_return(acct)  # and the holder never comes back: see "needs attention" below
    return acct


SCENARIOS: list[tuple[str, Callable[[Demo], str]]] = [
    ("up-front onboarding in one visit", upfront),
    ("incremental onboarding (eventually_due still listed)", incremental),
    ("saved for later, then finished with a new link", save_for_later),
    ("link visited twice and expired: refreshed", refresh),
    ("identity mismatch, then remediation", identity_mismatch),
    ("pre-filled business profile: fewer fields asked", prefilled),
    ("future requirements missed, webhooks held: the deadline timer asks Stripe, past_due", deadline),
    ("rejected for fraud", rejected),
    ("deauthorized by the account", deauthorized),
    ("account_update refused for Express, used for a platform-collected account", account_update),
    ("pre-filled after creation; identity locked once the first link exists", updated_later),
    ("a capability requested later: owed again, collected by a new link", capability_later),
    ("future requirements collected early with future_requirements=include", future_included),
    ("saved for later and never finished", left_halfway),
]


def needs_attention(demo: Demo, out: TextIO) -> None:
    """Item 7: eight days on, with no worker sweeping, what an operator should look at."""
    upfront_account = demo.engine.find_account(f"demo-{demo.run}-upfront")
    assert upfront_account is not None
    demo.sim.add_future_requirements(
        upfront_account.stripe_account_id,
        ["individual.verification.additional_document"],
        demo.clock.now() + timedelta(days=40),
    )
    quiet = demo.create("gone-quiet")
    demo.engine.issue_link(quiet)  # the holder closes the tab: only the abandonment timer will notice
    demo.sim.delivery.hold = True  # nothing reaches the engine meanwhile
    demo.clock.advance(timedelta(days=8))
    summary = demo.engine.attention.summary()
    counts = ", ".join(f"{kind.value} {n}" for kind, n in summary.counts.items())
    out.write(f"Eight days later, no worker sweeping: {summary.total} need attention in this database ({counts})\n")
    mine = f"demo-{demo.run}-"
    for item in demo.engine.attention.stream():
        if item.platform_ref.startswith(mine):
            out.write(f"    {item.kind.value:<19} {item.account_id}  {item.state.value:<19} {item.why}\n")
    out.write("\n")


def run(settings: Settings, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    box = bootstrap.build_sandbox(settings, seed=secrets.randbits(32))
    demo = Demo(box, secrets.token_hex(3))
    engine = box.engine
    location = box.store.location
    out.write(f"onboarding-fsm demo (run {demo.run}) on {location}\n\n")
    last = None
    for number, (title, scenario) in enumerate(SCENARIOS, 1):
        account_id = scenario(demo)
        account = engine.get_account(account_id)
        out.write(f"[{number}] {title}\n    {account_id}  ref={account.platform_ref}  final={account.state.value}\n")
        if scenario is prefilled:
            out.write("    business_profile.url and .mcc were pre-filled: compare currently_due at creation\n")
        for note in demo.notes:
            out.write(f"    {note}\n")
        demo.notes.clear()
        for t in engine.history(account_id):
            step = f"{(t.from_state or '-')!s:>19} -> {t.to_state.value:<19} {t.trigger.value:<11}"
            out.write(f"    {step} {cause_text(t)}  {t.reason}\n")
        out.write("\n")
        last = account_id
    needs_attention(demo, out)
    sealed = engine.audit.checkpoint()
    report = engine.verify_audit()
    out.write(
        f"Audit trail verified: {report.accounts} chain(s), {report.records} record(s), "
        f"{len(sealed)} checkpoint(s) sealed now; {len(report.problems)} problem(s).\n"
    )
    for problem in report.problems:
        out.write(f"    PROBLEM {problem}\n")
    out.write(f"Database: {location}\n")
    out.write(f"Read an account's history:  onboarding-fsm history {last}\n")
    out.write("List accounts:               onboarding-fsm accounts\n")
    out.write("Verify the audit trail:      onboarding-fsm audit verify\n")
    out.write("Ask the trail:               onboarding-fsm audit transitions --to past_due --all\n")
    out.write("Accounts needing attention:  onboarding-fsm attention --kind stuck --kind timer_overdue\n")
    out.write("Export it, check it offline: onboarding-fsm audit export -o trail.jsonl && "
              "python -m onboarding_fsm.exportcheck trail.jsonl\n")  # fmt: skip
    return 0 if report.ok else 1
