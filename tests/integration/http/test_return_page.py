"""After Stripe's return (issue 11, item 6): while something is still owed,
the built-in page offers "Continue onboarding" (the refresh URL: a fresh link
with the last link's parameters) and a platform's own page gets the same URL
as the ``continue`` parameter; nothing in the query is trusted or echoed raw."""

from __future__ import annotations

from html import unescape
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from onboarding_fsm import FakeClock, Source, Trigger
from tests.integration.http.conftest import Stack, make_stack
from tests.integration.http.holder import Holder


@pytest.fixture
def db_url(any_db_url: str) -> str:
    return any_db_url


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a":
            self.hrefs[a.get("id", "")] = a.get("href", "")


def continue_link(page: httpx.Response) -> str | None:
    links = _Links()
    links.feed(page.text)
    return links.hrefs.get("continue")


def save_for_later(holder: Holder, url: str) -> httpx.Response:
    """Open Stripe's form through ``url``, enter almost nothing, save for later; the last answer."""
    action, fields, _ = holder.open_form(url)
    partial = {k: ("" if k not in ("business_type", "individual.first_name") and not k.startswith("_") else v)
               for k, v in fields.items()}  # fmt: skip
    return holder.submit(action, partial, finish=False)


def test_the_done_page_continues_an_onboarding_left_unfinished(stack: Stack, holder: Holder) -> None:
    acct = stack.create()
    page = holder.follow(save_for_later(holder, stack.start_url(acct)))
    assert "state=returned_incomplete" in str(page.url) and "Stripe still needs" in page.text
    resume = continue_link(page)
    assert resume == stack.settings.refresh_url(acct)
    stack.clock.advance(60)
    opened = holder.get(resume)  # the session cookie authenticates it, as it did the return
    assert opened.status_code == 303 and opened.headers["cache-control"] == "no-store"
    assert opened.headers["location"].startswith(stack.simulated.url)
    last = stack.engine.history(acct)[-1]
    assert (last.trigger, last.source) == (Trigger.ISSUE_LINK, Source.REFRESH)  # no longer link_issued: a new issue
    action, fields, _ = holder.open_form(opened.headers["location"])  # the simulator accepts the new link
    done = holder.follow(holder.submit(action, fields))
    assert "state=verified" in str(done.url) and "You are all set." in done.text
    assert continue_link(done) is None
    assert [t.trigger.value for t in stack.engine.history(acct)] == [
        "create", "issue_link", "return", "issue_link", "return",
    ]  # fmt: skip


def test_a_platforms_own_return_page_gets_the_continue_url(db_url: str, clock: FakeClock, holder: Holder) -> None:
    stack = make_stack(db_url, clock, return_page_url="https://platform.example/welcome?from=stripe")
    try:
        acct = stack.create()
        landing = to_platform(holder, save_for_later(holder, stack.start_url(acct)))
        assert landing.startswith("https://platform.example/welcome?")
        assert parse_qs(urlsplit(landing).query) == {
            "from": ["stripe"],  # the platform's own query is kept
            "account": [acct],
            "state": ["returned_incomplete"],
            "continue": [stack.settings.refresh_url(acct)],
        }
        resumed = holder.get(parse_qs(urlsplit(landing).query)["continue"][0])
        assert resumed.status_code == 303
        action, fields, _ = holder.open_form(resumed.headers["location"])
        finished = to_platform(holder, holder.submit(action, fields))
        assert parse_qs(urlsplit(finished).query) == {"from": ["stripe"], "account": [acct], "state": ["verified"]}
    finally:
        stack.stop()


def to_platform(holder: Holder, response: httpx.Response) -> str:
    """Follow redirects until one leaves for the platform's own page (not served here)."""
    while not response.headers["location"].startswith("https://platform.example/"):
        response = holder.get(response.headers["location"])
        assert response.status_code == 303, response.text
    return response.headers["location"]


#: (query, whether the page offers to continue)
QUERIES: list[tuple[dict[str, str], bool]] = [
    ({"state": "returned_incomplete", "account": "acct_1A"}, True),
    ({"state": "past_due", "account": "acct_1A", "continue": "https://evil.example/x"}, True),
    ({"state": "verified", "account": "acct_1A"}, False),
    ({"state": "disabled", "account": "acct_1A"}, False),
    ({"state": "past_due", "account": "acct_1A'><script>alert(1)</script>"}, False),
    ({"state": "past_due", "account": "acct_1A/../../evil.example"}, False),
    ({"state": "<script>alert(1)</script>", "account": "acct_1A"}, False),
    ({"state": 'returned_incomplete"><img src=x onerror=alert(1)>', "account": "acct_1A"}, False),
    ({}, False),
]


def test_the_done_page_trusts_nothing_in_its_query(stack: Stack) -> None:
    with httpx.Client(timeout=30) as client:
        for query, offered in QUERIES:
            page = client.get(f"{stack.platform.url}/onboarding/done", params=query)
            assert page.status_code == 200, query
            assert "<script" not in page.text and "<img" not in page.text and "evil.example" not in page.text, query
            assert continue_link(page) == (stack.settings.refresh_url("acct_1A") if offered else None), query
            assert unescape(page.text).count("Continue onboarding") == (1 if offered else 0), query
            if query.get("state") not in ("returned_incomplete", "past_due", "verified", "disabled"):
                assert "<title>Onboarding</title>" in page.text, query  # an unknown state is not echoed
