"""Where a holder lands after Stripe's return, and how they pick up again.

Reaching the return URL says nothing about completeness (the engine fetches
the account); a holder who still owes something needs a way back into
Stripe's form with a fresh link. That way back is the refresh URL: it mints
a new link with the last link's parameters, authenticated like the return
itself (the holder's session), so nothing here is a credential.

The built-in page reads only its query string, which anyone can write:
everything it shows is escaped, an unknown state is not echoed, and the
"Continue onboarding" link is built from a validated account id and the
configured refresh path, never from a URL in the query. A platform's own
``return_page_url`` receives the same facts as query parameters
(``account``, ``state`` and, when something is owed, ``continue``).
"""

from __future__ import annotations

import html
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.responses import HTMLResponse

from onboarding_fsm.errors import InvalidInput
from onboarding_fsm.inputs import account_id as valid_account_id
from onboarding_fsm.settings import Settings
from onboarding_fsm.states import State

#: the built-in landing page (used without ``return_page_url``)
DONE_PATH = "/onboarding/done"
#: states in which the holder still owes Stripe something after a return
OWED = frozenset({State.RETURNED_INCOMPLETE.value, State.PAST_DUE.value})
MESSAGES = {
    State.VERIFIED.value: "You are all set.",
    State.RETURNED_INCOMPLETE.value: "Stripe still needs some information from you.",
    State.PAST_DUE.value: "Some information is overdue; please complete it.",
    State.DISABLED.value: "This account cannot be used right now.",
}


def page(title: str, body: str, status: int, *, link: tuple[str, str] | None = None) -> HTMLResponse:
    """A minimal HTML page; every piece escaped. ``link``: (label, URL) shown under the text."""
    action = ""
    if link is not None:
        label, url = link
        action = f"<p><a id='continue' href='{html.escape(url, quote=True)}'>{html.escape(label)}</a></p>"
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(body)}</p>{action}</body></html>",
        status_code=status,
    )


def continue_url(settings: Settings, account_id: str, state: str) -> str | None:
    """The way back into Stripe's form while ``state`` owes something: the
    account's refresh URL; None when nothing is owed or the id is not one."""
    if state not in OWED:
        return None
    try:
        return settings.refresh_url(valid_account_id(account_id))
    except InvalidInput:
        return None


def landing_url(return_page: str, settings: Settings, account_id: str, state: str) -> str:
    """``return_page`` with ``account``, ``state`` and (when owed) ``continue``
    added to whatever query it already has."""
    facts = {"account": account_id}
    if (resume := continue_url(settings, account_id, state)) is not None:
        facts["continue"] = resume
    facts["state"] = state  # last, as before ``continue`` existed
    parts = urlsplit(return_page)
    query = "&".join(q for q in (parts.query, urlencode(facts)) if q)
    return urlunsplit(parts._replace(query=query))


def done_page(settings: Settings, account_id: str, state: str) -> HTMLResponse:
    """The built-in landing page for the query's ``account`` and ``state``."""
    message = MESSAGES.get(state)
    title = f"Onboarding: {state}" if message is not None else "Onboarding"
    resume = continue_url(settings, account_id, state)
    return page(title, message or "Thanks.", 200, link=("Continue onboarding", resume) if resume else None)
