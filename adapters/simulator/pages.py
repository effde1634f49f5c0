"""The hosted onboarding form as real web pages, at the links' URLs.

GET opens the link (a used or expired one redirects to its refresh URL, as
Stripe does); the page lists what the form asks, pre-filled with passing
test data; POST submits it, and Finish or Save for later redirect to the
return URL. An account whose holder may choose its country first shows a
country choice alone; Continue applies it and shows the rest of the form,
for that country. Sessions live in this process only.
"""

from __future__ import annotations

import html
import secrets
import threading
from collections.abc import Mapping

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from . import catalog
from .errors import FormError, LinkUnusable, SimulatorError
from .hosted import HostedSession
from .simulator import Simulator


class HostedPages:
    def __init__(self, sim: Simulator) -> None:
        self._sim = sim
        self._sessions: dict[str, HostedSession] = {}
        self._lock = threading.Lock()

    async def index(self, request: Request) -> Response:
        return HTMLResponse("<h1>onboarding-fsm Stripe simulator</h1><p>API at <code>/v1</code>.</p>")

    async def form(self, request: Request) -> Response:
        token = request.path_params["token"]
        if request.method == "GET":
            try:
                session = await run_in_threadpool(self._sim.visit, str(request.url))
            except LinkUnusable as exc:
                return RedirectResponse(exc.refresh_url, status_code=303)
            except SimulatorError:
                return HTMLResponse("<h1>Unknown link</h1>", status_code=404)
            session_id = secrets.token_urlsafe(16)
            with self._lock:
                self._sessions[session_id] = session
            return HTMLResponse(_render(token, session_id, session, None, {}))
        form = await request.form()
        values = {k: str(v) for k, v in form.items()}
        session_id = values.pop("_session", "")
        with self._lock:
            found = self._sessions.get(session_id)
        if found is None:
            return HTMLResponse("<h1>This onboarding session has ended</h1>", status_code=410)
        session = found
        action = values.pop("_action", "finish")
        sms = values.pop("_sms_code", "")
        entered = {k: v for k, v in values.items() if v.strip()}
        try:
            if entered:
                await run_in_threadpool(session.submit, entered)
            if action == "continue":
                return HTMLResponse(_render(token, session_id, session, None, {}))
            if sms:
                session.confirm_sms(sms)
            target = await run_in_threadpool(session.finish if action == "finish" else session.save_for_later)
        except FormError as exc:
            return HTMLResponse(_render(token, session_id, session, str(exc), values), status_code=400)
        return RedirectResponse(target, status_code=303)


def _country_choice(session: HostedSession) -> str:
    options = "".join(
        f'<option value="{c}"{" selected" if c == session.country else ""}>{c}</option>'
        for c in catalog.SUPPORTED_COUNTRIES
    )
    return f'<label>country<select name="country">{options}</select></label>'


def _render(token: str, session_id: str, session: HostedSession, error: str | None, values: Mapping[str, str]) -> str:
    due = session.asked  # everything the form asks, with what was entered so far
    choosing = "country" in due  # asked first, alone: the rest of the form depends on it
    samples = catalog.valid_test_data(due, country=session.country)
    rows = (
        _country_choice(session)
        if choosing
        else "".join(
            f'<label>{html.escape(name)}<input name="{html.escape(name)}" '
            f'value="{html.escape(values.get(name, samples.get(name, "")))}"></label>'
            for name in due
        )
    )
    buttons = (
        '<button type="submit" name="_action" value="continue" id="continue">Continue</button>'
        if choosing
        else '<button type="submit" name="_action" value="finish" id="finish">Finish</button>\n'
        '<button type="submit" name="_action" value="save" id="save">Save for later</button>'
    )
    sms = (
        '<label>SMS code (test mode: 000-000)<input name="_sms_code" value=""></label>'
        if any(f in catalog.PHONE_FIELDS for f in due) and not choosing
        else ""
    )
    problem = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Onboarding (simulated Stripe)</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}label{{display:block;margin:.4em 0}}
input{{display:block;width:100%}}.error{{color:#b00}}</style></head>
<body><h1>Verify your account</h1>
<p>Simulated Stripe-hosted onboarding for <code>{html.escape(session.account_id)}</code>
({html.escape(session.link_type)}). Values are Stripe test-mode data; change them to try other outcomes
(ID number <code>111111111</code> mismatches, date of birth year <code>1900</code> triggers a review).</p>
{problem}
<form method="post" action="/setup/s/{html.escape(token)}">
<input type="hidden" name="_session" value="{html.escape(session_id)}">
{rows}{sms}
{buttons}
</form></body></html>"""
