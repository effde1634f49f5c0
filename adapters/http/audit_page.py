"""The read-only audit page, mounted under ``settings.audit_path`` (``/audit``).

* ``GET {audit_path}``: accounts counted by state; the accounts, filtered by
  ``?state=`` (or one ``?ref=`` platform reference), 50 a page by keyset
  (``?after=``), each linking to its page;
* ``GET {audit_path}/accounts/{account}``: the account, its own chain
  recomputed (``verify_chain``), the state diagram with its path
  highlighted, its timeline with every cause, its recent webhook events;
* ``GET {audit_path}/transitions?since=&until=&from_state=&to_state=&trigger=&source=&actor=&account=&cursor=``:
  records across accounts, oldest first, paged by cursor;
* ``GET {audit_path}/verify``: ``engine.audit.verify()``, the whole trail —
  expensive on a big database, so only on request and one at a time.

Every request is authenticated by the auditor hook (``audit_auth``) and
logged with the auditor's identity. Engine calls are synchronous: they run
in the page's own threads (two; verification one at a time), so a slow audit
query never holds up webhooks, holders or health checks. Bad filter values
are a 400 page naming the filter, never a 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from onboarding_fsm.audit import verify_chain
from onboarding_fsm.engine import Engine
from onboarding_fsm.errors import AccountNotFound, InvalidInput, RetryableError, SettingsError
from onboarding_fsm.inputs import account_id as checked_id
from onboarding_fsm.inputs import member
from onboarding_fsm.queries import InboxQuery, TransitionQuery
from onboarding_fsm.settings import Settings
from onboarding_fsm.states import Source, State, Trigger

from . import audit_views as views
from . import state_svg
from .audit_auth import AuditorAuth
from .pools import Pools

log = logging.getLogger("adapters.http.audit")
PAGE = 50
#: the account page's recent webhook events
INBOX_ROWS = 20
#: threads for audit pages (apart from the holders', webhooks' and probes' pools)
READ_THREADS = 2
#: longest filter value accepted (actors and cursors are short; anything longer is not ours)
MAX_FILTER = 512
FILTERS = ("since", "until", "from_state", "to_state", "trigger", "source", "actor", "account")


@dataclass(frozen=True, slots=True)
class Ask:
    """One authenticated audit request."""

    request: Request
    base: str
    auditor: str

    def param(self, name: str) -> str | None:
        value = self.request.query_params.get(name, "").strip()
        if len(value) > MAX_FILTER:
            raise InvalidInput(f"{name} is too long (at most {MAX_FILTER} characters)")
        return value or None


#: a page: (the request) -> (title, body)
View = Callable[[Ask], tuple[str, str]]


def audit_prefix(path: str) -> str:
    """``settings.audit_path`` as a route prefix (no trailing slash)."""
    prefix = path.rstrip("/")
    if not prefix.startswith("/") or any(c in prefix for c in "{}?#") or prefix != prefix.strip():
        raise SettingsError(f"audit_path must be a path such as '/audit' (not '/'), got {path!r}")
    return prefix


def parse_time(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 time; without an offset it is UTC (what the form says)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 time such as 2026-03-02T09:30:00Z, got {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def audit_routes(engine: Engine, settings: Settings, auditor: AuditorAuth | None) -> list[Route]:
    """The audit page's routes; none without an auditor (live mode, unconfigured)."""
    if auditor is None:
        return []
    prefix = audit_prefix(settings.audit_path)
    reads = anyio.CapacityLimiter(READ_THREADS)
    verifies = anyio.CapacityLimiter(1)  # a whole-trail check at a time: a second waits for the first

    def answer(ask: Ask, view: View) -> Response:
        log.info("audit %s read by %s", ask.request.url.path, ask.auditor)
        base, who = ask.base, ask.auditor
        try:
            title, body = view(ask)
        except AccountNotFound as exc:
            return views.message("Unknown account", str(exc), base=base, auditor=who, status=404)
        except InvalidInput as exc:
            return views.message("Bad request", str(exc), base=base, auditor=who, status=400)
        except RetryableError:
            text = "The database is busy; try again in a moment."
            return views.message("Try again shortly", text, base=base, auditor=who, status=503)
        return views.page(title, body, base=base, auditor=who)

    def endpoint(limiter: anyio.CapacityLimiter, view: View) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            # the hook may block (a session store): it runs in a thread too, and first, so a
            # refused request never waits for a verification's turn
            who = await Pools.run(reads, auditor.authenticate, request)
            if who is None:
                return views.refused()
            ask = Ask(request, str(request.scope.get("root_path", "")) + prefix, who)
            return await Pools.run(limiter, answer, ask, view)

        return serve

    def index(ask: Ask) -> tuple[str, str]:
        state, ref = ask.param("state"), ask.param("ref")
        if state is not None:
            member(State, state, "state")
        after = ask.param("after")
        if after is not None:
            checked_id(after)
        if ref is not None:
            found = engine.find_account(ref)
            accounts = [found] if found is not None and (state is None or found.state.value == state) else []
        else:
            accounts = engine.accounts(state=state, limit=PAGE, after=after)
        more = ref is None and len(accounts) == PAGE
        next_url = views.url(ask.base, {"state": state, "after": accounts[-1].stripe_account_id}) if more else None
        body = views.index(ask.base, engine.count_by_state(), accounts, state=state, ref=ref, next_url=next_url)
        return "Accounts", body

    def account(ask: Ask) -> tuple[str, str]:
        account_id = checked_id(ask.request.path_params["account"])
        found = engine.get_account(account_id)
        history = engine.history(account_id)
        if history and history[-1].seq > found.audit_seq:  # a transition committed between the two reads
            found = engine.get_account(account_id)
        report = verify_chain(account_id, history, found.audit_head or None, engine.config.audit_key)
        inbox = engine.audit.inbox(InboxQuery(account_id=account_id), limit=INBOX_ROWS)
        diagram, legend = state_svg.render(history), state_svg.legend(history)
        body = views.account_page(ask.base, found, history, report, diagram, legend, list(inbox))
        return f"Account {account_id}", body

    def transitions(ask: Ask) -> tuple[str, str]:
        raw = {name: ask.param(name) for name in FILTERS}
        account_id = raw["account"]
        query = TransitionQuery(
            since=parse_time(raw["since"], "since"),
            until=parse_time(raw["until"], "until"),
            account_id=checked_id(account_id) if account_id is not None else None,
            from_state=member(State, raw["from_state"], "from_state") if raw["from_state"] else None,
            to_state=member(State, raw["to_state"], "to_state") if raw["to_state"] else None,
            trigger=member(Trigger, raw["trigger"], "trigger") if raw["trigger"] else None,
            source=member(Source, raw["source"], "source") if raw["source"] else None,
            actor=raw["actor"],
        )
        page = engine.audit.transitions(query, limit=PAGE, cursor=ask.param("cursor"))
        next_url = views.url(ask.base + "/transitions", {**raw, "cursor": page.cursor}) if page.cursor else None
        return "Transitions", views.transitions_page(ask.base, raw, list(page), next_url)

    def verify(ask: Ask) -> tuple[str, str]:
        started = time.monotonic()
        report = engine.audit.verify()
        return "Verification of the whole trail", views.verify_page(report, time.monotonic() - started)

    return [
        Route(prefix, endpoint(reads, index), methods=["GET"]),
        Route(prefix + "/accounts/{account}", endpoint(reads, account), methods=["GET"]),
        Route(prefix + "/transitions", endpoint(reads, transitions), methods=["GET"]),
        Route(prefix + "/verify", endpoint(verifies, verify), methods=["GET"]),
    ]
